//! The control plane's HTTP API as types: every request body and every
//! answer of the `/v1/` routes, with the exact JSON field names the server
//! emits, shared by `cutover-server` (which answers with them) and the
//! `cutover` CLI (which reads them). The OpenAPI document served at
//! `/v1/openapi.json` is generated from these types ([`openapi::document`]),
//! so it cannot drift from what the server answers.
//!
//! Pure: types, (de)serialisation and small helpers, no IO.
//!
//! Fields that the server still builds from a `serde_json::Value` stored in
//! the database (a build's `detail`, a task definition's `body`) stay
//! `serde_json::Value` here until the stored rows are typed.

pub mod access_keys;
pub mod agents;
pub mod alarms;
pub mod apply;
pub mod builds;
pub mod deployments;
pub mod error;
pub mod host_deployments;
pub mod openapi;
pub mod pipelines;
pub mod query;
pub mod registry;
mod schema;
pub mod services;
pub mod stream;
pub mod task_definitions;
pub mod tasks;

pub use cutover_spec::diag::Diagnostic;
pub use error::{ApiErrorBody, ApiErrorDetail};

/// The JSON name of a value that serialises to a string (a status enum):
/// `wire_name(&TaskState::Running) == "RUNNING"`. Anything else gives its
/// JSON text.
pub fn wire_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}
