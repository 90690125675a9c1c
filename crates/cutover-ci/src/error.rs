//! What a caller of [`crate::Pipelines`] must tell apart: a missing
//! pipeline, an input the engine refused (by [`EngineError`] variant), a
//! driver that is gone, and failures of the store or of git. The server
//! maps these to HTTP statuses in its `api/error.rs`, and only there.

use cutover_pipeline::engine::EngineError;
use cutover_store::StoreError;

use crate::source::GitError;

/// Why a pipeline call failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// No pipeline of that name.
    #[error("pipeline {0:?} not found")]
    NotFound(String),
    /// The engine refused the input (unknown execution or stage, a
    /// finished execution, an undeclared variable, ...).
    #[error(transparent)]
    Refused(#[from] EngineError),
    /// The pipeline's driver is not running (the server is stopping, or
    /// the pipeline could not be loaded; see the log).
    #[error("the driver of pipeline {0:?} is not running")]
    DriverStopped(String),
    /// The stored engine state of a pipeline cannot be read.
    #[error("the stored state of pipeline {pipeline:?} cannot be read: {source}")]
    State {
        /// The pipeline.
        pipeline: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A git operation failed (a webhook's fetch).
    #[error(transparent)]
    Git(#[from] GitError),
    /// A push matched pipelines but none of their executions could be
    /// started (each cause is logged); the push is not recorded as acted
    /// on, so a redelivery or the next poll tries again.
    #[error("no execution could be started for {reference} at {commit}")]
    NotStarted {
        /// The pushed ref.
        reference: String,
        /// The commit it points at.
        commit: String,
    },
    /// No build project of that name.
    #[error("build project {0:?} not found")]
    BuildProjectNotFound(String),
    /// No build of that id.
    #[error("build {0:?} not found")]
    BuildNotFound(String),
    /// A build cannot start as asked (no source to build, a bad buildspec
    /// override or source version); the text says why.
    #[error("{0}")]
    InvalidBuild(String),
    /// A build could not be prepared (its directory, its source copy).
    #[error("the build could not start: {0}")]
    BuildNotStarted(String),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
