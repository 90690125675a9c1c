//! AWS's wire protocols, without IO: what the control plane needs to answer
//! the calls of the aws CLI and the SDKs.
//!
//! - [`sigv4`]: Signature Version 4 verification (the time is an argument).
//!
//! Pure like `cutover-core`: no clock, no file system, no network
//! (`clippy.toml` enforces it).

pub mod shapes;
pub mod sigv4;
