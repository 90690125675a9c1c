//! AWS's wire protocols, without IO: what the control plane needs to answer
//! the calls of the aws CLI and the SDKs.
//!
//! - [`sigv4`]: Signature Version 4 verification (the time is an argument).
//! - [`protocol`]: JSON 1.1 framing: `X-Amz-Target` to service and operation,
//!   and AWS's error body.
//! - [`query`]: the query protocol (STS): form in, XML out.
//! - [`shapes`]: request and response types generated from botocore's models.
//! - [`keys`]: access key ids, secrets, the account id, IAM's key status.
//! - [`arn`]: ARNs, read and written alike; names accepted in their place.
//! - [`docs`]: the generated page of the operations answered (`docs/aws-api.md`).
//!
//! Pure like `cutover-core`: no clock, no file system, no network
//! (`clippy.toml` enforces it).

pub mod arn;
pub mod docs;
pub mod keys;
pub mod protocol;
pub mod query;
pub mod shapes;
pub mod sigv4;
