//! The one place the control plane calls the file-format crate: turns
//! parsed files into what the store keeps and rejections into API errors.

use crate::api::ApiError;
use cutover_spec::diag::{Diagnostic, SpecError};
use serde_json::Value;

/// A validated task definition file.
#[derive(Clone)]
pub(crate) struct TaskDefFile {
    pub(crate) family: String,
    /// Canonical JSON, as stored.
    pub(crate) body: Value,
    pub(crate) warnings: Vec<Diagnostic>,
    /// The parsed file, for cross-checks against the stack.
    pub(crate) parsed: cutover_spec::taskdef::TaskDefinition,
}

/// Diagnostics as API JSON.
pub(crate) fn diagnostics_json(d: &[Diagnostic]) -> Vec<Value> {
    d.iter()
        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
        .collect()
}

/// A rejected file as a 422 carrying every diagnostic.
pub(crate) fn rejected(file: &str, e: SpecError) -> ApiError {
    let n = e.diagnostics.len();
    ApiError::invalid(
        format!(
            "{file} was rejected ({n} error{}); nothing was changed",
            if n == 1 { "" } else { "s" }
        ),
        diagnostics_json(&e.diagnostics),
        diagnostics_json(&e.warnings),
    )
}

/// Parses and validates a task definition file.
pub(crate) fn task_definition(file: &str, content: &str) -> Result<TaskDefFile, ApiError> {
    let parsed = cutover_spec::taskdef::parse_task_definition(file, content)
        .map_err(|e| rejected(file, e))?;
    Ok(TaskDefFile {
        family: parsed.value.family.clone(),
        body: parsed.value.to_json(),
        warnings: parsed.warnings,
        parsed: parsed.value,
    })
}
