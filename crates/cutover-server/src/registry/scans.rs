//! The seam between the registry's API (ECR's `StartImageScan`,
//! `DescribeImageScanFindings`, `DescribeImages`' scan fields, the
//! `cutover scan` gate) and the scanning service that inventories images
//! with `cutover-scan` and keeps their findings.
//!
//! [`Scans`] is a trait so the API is tested over a fake in milliseconds
//! and the scanning service without the API. Invariants every
//! implementation keeps:
//! - `start` is idempotent: starting a scan of an image already being
//!   scanned changes nothing; a finished image is scanned again (ECR allows
//!   one manual scan a day; Cutover has no such quota).
//! - A report's findings are those of one scan against one advisory
//!   database version, never a mix; a rescan replaces them atomically.
//! - `changed` wakes every waiter whenever a scan of any image ends.

use std::sync::Arc;

use async_trait::async_trait;
use cutover_scan::{Finding, SeverityCounts};
use tokio::sync::Notify;

/// Where an image's scan is (ECR's `ScanStatus` values that apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanStatus {
    /// Queued or running.
    InProgress,
    /// Done: the report's findings are current.
    Complete,
    /// The scan failed (the description says why).
    Failed,
    /// Not an image the scanner reads (an artifact, an index of nothing
    /// scannable, an unknown OS).
    UnsupportedImage,
}

/// One image's latest scan.
#[derive(Debug, Clone)]
pub(crate) struct ScanReport {
    /// Where it is.
    pub(crate) status: ScanStatus,
    /// ECR's `imageScanStatus.description` (why it failed, or a summary).
    pub(crate) description: String,
    /// When the last completed scan ended (ms since the epoch).
    pub(crate) completed_at_ms: Option<u64>,
    /// When the advisory data it used was last updated (ECR's
    /// `vulnerabilitySourceUpdatedAt`).
    pub(crate) advisories_updated_at_ms: Option<u64>,
    /// The findings of the last completed scan.
    pub(crate) findings: Vec<Finding>,
    /// Their counts by severity (ECR's `findingSeverityCounts`).
    pub(crate) counts: SeverityCounts,
}

/// Why a scan operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScanError {
    /// The repository or the image does not exist.
    #[error("image {digest} not found in repository {repository}")]
    ImageNotFound {
        /// The repository.
        repository: String,
        /// The manifest digest.
        digest: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] cutover_store::StoreError),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] cutover_registry::RegistryError),
}

/// What the registry's API needs of the scanning service.
#[async_trait]
pub(crate) trait Scans: Send + Sync {
    /// Queues a scan of the image `digest` (a manifest digest) of `repository`.
    async fn start(&self, repository: &str, digest: &str) -> Result<(), ScanError>;
    /// The image's latest scan, if it was ever scanned or is being scanned.
    async fn report(&self, repository: &str, digest: &str)
    -> Result<Option<ScanReport>, ScanError>;
    /// Notified whenever a scan ends.
    fn changed(&self) -> Arc<Notify>;
}
