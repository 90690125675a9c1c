//! Declarative apply of a stack file (`POST /v1/apply` is its HTTP face),
//! in three steps with no HTTP in them, so that a rejected file changes
//! nothing:
//! 1. [`validate`]: parse the stack and every file it references and
//!    collect all of their errors, located (`file:line:col: path: message`);
//! 2. [`plan`]: a pure diff of the validated stack against the store's
//!    current state: revisions to register, services and alarms to create
//!    or update, blue/green services to deploy;
//! 3. [`commit`]: compute that plan and write it in one transaction (a dry
//!    run writes nothing), with the pipeline sections and the registry's
//!    repositories ([`image_repositories`]) in the same transaction.
//!
//! Applying the same file twice is a no-op: a task definition whose
//! canonical JSON equals the newest revision of its family reuses it.

pub(crate) mod commit;
pub(crate) mod image_repositories;
pub(crate) mod plan;
#[cfg(test)]
mod tests;
pub(crate) mod validate;

use crate::files::FileError;
use cutover_store::StoreError;

/// Why an apply changed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// The stack or a file it references has errors.
    #[error(transparent)]
    Rejected(#[from] FileError),
    /// The state store failed (or refused a conflicting write).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stack could not be encoded for the store.
    #[error("cannot encode the stack: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Validates a stack and the files it references with no server
/// (`cutover validate`): every check of an apply, over an empty store
/// where task definitions named by family are taken as registered and
/// every runtime is available. The warnings, or every diagnostic.
pub fn validate_offline(
    req: &cutover_api::apply::ApplyRequest,
) -> Result<Vec<cutover_spec::Diagnostic>, cutover_spec::SpecError> {
    let rejected = |e: ApplyError| match e {
        ApplyError::Rejected(FileError::Rejected { error, .. }) => error,
        other => cutover_spec::SpecError {
            diagnostics: vec![
                cutover_spec::diag::SourceMap::new(&req.file, &req.content)
                    .error("", other.to_string()),
            ],
            warnings: Vec::new(),
        },
    };
    let parsed = validate::parse(&req.file, &req.content).map_err(|e| rejected(e.into()))?;
    let runtimes = ["process", "docker", "swarm"].map(String::from).into();
    let known = validate::Known {
        offline: true,
        ..validate::Known::default()
    };
    validate::validate(req, parsed, &runtimes, "process", &known)
        .map(|v| v.warnings)
        .map_err(rejected)
}
