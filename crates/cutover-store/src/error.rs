//! The store's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened.
    #[error("cannot open the state database {path}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("state store: {op}")]
    Sql {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored JSON column did not decode.
    #[error("state store: corrupt {what}")]
    Json {
        /// Which column.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The database is newer than this binary.
    #[error(
        "the state database has schema version {found}, newer than this cutover ({supported}); upgrade cutover"
    )]
    TooNew {
        /// Version in the file.
        found: u32,
        /// Newest version this binary knows.
        supported: u32,
    },
    /// A lookup found nothing.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// What kind of object.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// The runtime is shutting down and the operation was not run.
    #[error("state store: the server is shutting down")]
    ShuttingDown,
    /// A write conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    /// A closure mapping a rusqlite error to [`StoreError::Sql`] with context.
    pub fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sql { op, source }
    }

    /// A closure mapping a serde error to [`StoreError::Json`] with context.
    pub fn json(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
        move |source| StoreError::Json { what, source }
    }
}
