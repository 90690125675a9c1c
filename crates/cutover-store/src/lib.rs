//! SQLite state store with migrations.
