//! The registry's errors, each with the Distribution Spec's error code and
//! the HTTP status the spec gives it.

/// The spec's error codes (and ECR's `TAG_INVALID`). Our own enum rather
/// than `oci_spec::distribution::ErrorCode`, which lacks `TAG_INVALID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The blob is not in the repository.
    BlobUnknown,
    /// The upload was refused (bad chunk, bad range).
    BlobUploadInvalid,
    /// No such upload.
    BlobUploadUnknown,
    /// The digest is malformed or does not match the content.
    DigestInvalid,
    /// The manifest references a blob the repository lacks.
    ManifestBlobUnknown,
    /// The manifest is malformed or too large.
    ManifestInvalid,
    /// No such manifest.
    ManifestUnknown,
    /// The repository name breaks the spec's grammar.
    NameInvalid,
    /// No such repository.
    NameUnknown,
    /// A length does not match the content.
    SizeInvalid,
    /// Credentials are missing or wrong.
    Unauthorized,
    /// The credentials do not allow this.
    Denied,
    /// The operation is not supported.
    Unsupported,
    /// ECR's code for a tag that cannot be written (immutable repository).
    TagInvalid,
}

impl ErrorCode {
    /// The code as the spec writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TagInvalid => "TAG_INVALID",
        }
    }

    /// The HTTP status the spec (or distribution) answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => 404,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Denied => 403,
            ErrorCode::Unsupported => 405,
            _ => 400,
        }
    }
}

/// Everything a registry operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A refusal the client is told about, with its spec code.
    #[error("{code:?}: {message}")]
    Refused {
        /// The spec's code.
        code: ErrorCode,
        /// What was wrong, for the client.
        message: String,
    },
    /// A chunk does not start where the upload ends (HTTP 416).
    #[error("the chunk starts at {start}, the upload is at {offset}")]
    RangeInvalid {
        /// Where the chunk said it starts.
        start: u64,
        /// How many bytes the upload holds.
        offset: u64,
    },
    /// A blob range outside the blob (HTTP 416).
    #[error("the range is not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable {
        /// The blob's size.
        size: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] cutover_store::StoreError),
    /// The file system failed.
    #[error("registry storage: {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The request body broke off.
    #[error("the request body broke off")]
    Body(#[source] std::io::Error),
}

impl RegistryError {
    /// A refusal with `code`.
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> RegistryError {
        RegistryError::Refused {
            code,
            message: message.into(),
        }
    }

    /// A closure mapping an IO error on `path` to [`RegistryError::Io`].
    pub fn io(
        op: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> RegistryError {
        let path = path.to_path_buf();
        move |source| RegistryError::Io { op, path, source }
    }
}

/// A registry result.
pub type Result<T> = std::result::Result<T, RegistryError>;
