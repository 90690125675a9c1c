//! Errors of the runtimes, each naming the task and, where relevant, the path.

use std::path::PathBuf;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The task id cannot be used as a name on disk.
    #[error("invalid task id {task_id:?}: {reason}")]
    InvalidTaskId {
        /// The offending id.
        task_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The task spec cannot be run.
    #[error("task {task_id}: {reason}")]
    InvalidSpec {
        /// Id of the task.
        task_id: String,
        /// What is wrong.
        reason: String,
    },
    /// A file operation on the task's state failed.
    #[error("task {task_id}: cannot {action} {path}")]
    Io {
        /// Id of the task (empty for runtime-wide state).
        task_id: String,
        /// What was attempted, e.g. "write".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A state file exists but cannot be parsed.
    #[error("task {task_id}: corrupt state file {path}")]
    Corrupt {
        /// Id of the task.
        task_id: String,
        /// The file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The task's image cannot be prepared.
    #[error("task {task_id}: image {image:?}")]
    Image {
        /// Id of the task.
        task_id: String,
        /// The image as written in the task definition.
        image: String,
        /// Underlying error.
        #[source]
        source: crate::process::ImageError,
    },
    /// The task's process could not be started (the task is recorded as exited).
    #[error("task {task_id}: {message}")]
    CannotStart {
        /// Id of the task.
        task_id: String,
        /// What went wrong, e.g. "CannotStartContainerError: ...".
        message: String,
    },
    /// The task supervisor (shim) failed before it could report.
    #[error("task {task_id}: supervisor failed: {message}")]
    Shim {
        /// Id of the task.
        task_id: String,
        /// What is known about the failure.
        message: String,
    },
    /// The runtime knows no such task.
    #[error("task {task_id}: not found")]
    NotFound {
        /// Id of the task.
        task_id: String,
    },
    /// The operation needs an exited task.
    #[error("task {task_id}: still running")]
    StillRunning {
        /// Id of the task.
        task_id: String,
    },
}

impl RuntimeError {
    pub(crate) fn io(
        task_id: &str,
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            task_id: task_id.to_owned(),
            action,
            path: path.into(),
            source,
        }
    }
}
