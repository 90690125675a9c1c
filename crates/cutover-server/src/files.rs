//! The one place the control plane calls the file-format crate: turns
//! parsed files into what the store keeps, and rejections into a
//! [`FileError`] (mapped to a 422 only in `api/`).

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

/// A file the control plane refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    /// The file (or a file it references) has errors; nothing was changed.
    #[error("{file} was rejected ({n} error{s}); nothing was changed", n = error.diagnostics.len(), s = if error.diagnostics.len() == 1 { "" } else { "s" })]
    Rejected {
        /// The file named in the request.
        file: String,
        /// Every diagnostic, and the warnings found on the way.
        error: SpecError,
    },
}

/// A rejected file, carrying every diagnostic.
pub(crate) fn rejected(file: &str, error: SpecError) -> FileError {
    FileError::Rejected {
        file: file.to_string(),
        error,
    }
}

/// Parses and validates a task definition file.
pub(crate) fn task_definition(file: &str, content: &str) -> Result<TaskDefFile, FileError> {
    let parsed = cutover_spec::taskdef::parse_task_definition(file, content)
        .map_err(|e| rejected(file, e))?;
    Ok(TaskDefFile {
        family: parsed.value.family.clone(),
        body: parsed.value.to_json(),
        warnings: parsed.warnings,
        parsed: parsed.value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_file_counts_its_errors_and_keeps_every_diagnostic() {
        let Err(e) = task_definition("taskdef.json", "{\"family\": 3}") else {
            panic!("a family that is a number is refused");
        };
        let FileError::Rejected { file, error } = &e;
        assert_eq!(file, "taskdef.json");
        assert!(!error.diagnostics.is_empty());
        let n = error.diagnostics.len();
        assert_eq!(
            e.to_string(),
            format!(
                "taskdef.json was rejected ({n} error{}); nothing was changed",
                if n == 1 { "" } else { "s" }
            )
        );
    }
}
