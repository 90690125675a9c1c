//! The crate's error type.

/// What can go wrong reading layers, advisories or a database file.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A file the caller named could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A layer could not be read as a (compressed) tar stream.
    #[error("layer {layer}: {message}")]
    Layer {
        /// The layer's index, 0 for the base.
        layer: usize,
        /// What went wrong.
        message: String,
    },
    /// A zip archive of advisories could not be opened.
    #[error("zip archive: {0}")]
    Zip(String),
    /// An advisory database file is not one, is corrupt, or is of another version.
    #[error("advisory database: {0}")]
    Database(String),
}
