//! The built-in demo service (cutover sample-app).
