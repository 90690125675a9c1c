//! Declarative apply of a stack file (`POST /v1/apply` is its HTTP face),
//! in three steps with no HTTP in them, so that a rejected file changes
//! nothing:
//! 1. [`validate`]: parse the stack and every file it references and
//!    collect all of their errors, located (`file:line:col: path: message`);
//! 2. [`plan`]: a pure diff of the validated stack against the store's
//!    current state: revisions to register, services and alarms to create
//!    or update, blue/green services to deploy;
//! 3. [`commit`]: compute that plan and write it in one transaction (a dry
//!    run writes nothing).
//!
//! Applying the same file twice is a no-op: a task definition whose
//! canonical JSON equals the newest revision of its family reuses it.

pub(crate) mod commit;
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
