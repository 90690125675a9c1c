//! The OCI registry's `/v1` side: what `cutover registry gc` and
//! `cutover registry lifecycle` send and read. The registry itself speaks
//! the Distribution Spec under `/v2/` (and ECR's API on the AWS endpoint).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The answer of `POST /v1/registry/gc`: what one collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcResponse {
    /// Blob files deleted (referenced by no manifest, older than the grace period).
    pub blobs_deleted: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Unfinished uploads older than 24 hours removed.
    pub uploads_removed: u64,
}

/// Where an image's scan is (ECR's `ScanStatus` values that apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanStatus {
    /// Queued or running.
    InProgress,
    /// Done: the findings are current.
    Complete,
    /// The scan failed (the description says why).
    Failed,
    /// Not an image the scanner reads (an artifact, an unknown OS).
    UnsupportedImage,
}

impl ScanStatus {
    /// ECR's name (`IN_PROGRESS`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::InProgress => "IN_PROGRESS",
            ScanStatus::Complete => "COMPLETE",
            ScanStatus::Failed => "FAILED",
            ScanStatus::UnsupportedImage => "UNSUPPORTED_IMAGE",
        }
    }

    /// Reads ECR's name.
    pub fn parse(s: &str) -> Option<ScanStatus> {
        [
            ScanStatus::InProgress,
            ScanStatus::Complete,
            ScanStatus::Failed,
            ScanStatus::UnsupportedImage,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// `POST /v1/registry/scans`: scan an image of this registry now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartScanRequest {
    /// The repository.
    pub repository: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
}

/// `GET /v1/registry/scans`: an image's latest scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScanQuery {
    /// The repository.
    pub repository: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
    /// Seconds to wait (at most 60) while the scan is in progress.
    #[serde(default)]
    pub wait: Option<u64>,
}

/// An image's latest scan, as `cutover scan` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanView {
    /// The repository.
    pub repository: String,
    /// The manifest digest.
    pub digest: String,
    /// Where the scan is; absent when the image was never scanned.
    pub status: Option<ScanStatus>,
    /// Why it failed, or a summary.
    pub description: String,
    /// When the last completed scan ended (ms since the epoch).
    pub completed_at_ms: Option<u64>,
    /// When the advisory data it used was last updated (ms).
    pub advisories_updated_at_ms: Option<u64>,
    /// The findings, highest severity first.
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<cutover_scan::Finding>,
    /// Findings counted by severity (`{"HIGH": 1}`).
    #[schema(value_type = Object)]
    pub counts: cutover_scan::SeverityCounts,
}

/// The answer of `POST /v1/vulnerabilities/import` (body: an OSV `all.zip`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportResponse {
    /// Records read from the archive.
    pub records: u64,
    /// Records kept (of a supported ecosystem, not withdrawn).
    pub kept: u64,
    /// Records not kept.
    pub skipped: u64,
    /// Files skipped and why (the first 100).
    pub notes: Vec<String>,
    /// The database after the import.
    pub status: AdvisoryStatus,
    /// Whether the data changed (stored images are then rescanned).
    pub changed: bool,
}

/// `GET /v1/vulnerabilities`: the advisory database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvisoryStatus {
    /// The content version (a SHA-256 of the data).
    pub version: String,
    /// How many advisories it holds.
    pub advisories: u64,
    /// When it last changed (ms), if ever.
    pub updated_at_ms: Option<u64>,
    /// The OSV ecosystems (`Debian`, `npm`, ...) of the packages in stored
    /// images: what `cutover vulnerabilities update` downloads.
    pub image_ecosystems: Vec<String>,
    /// Images scanned against an older version, or queued.
    pub rescans_pending: u64,
}

/// The answer of `POST /v1/registry/lifecycle`: one run of every
/// repository's lifecycle policy now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRunResponse {
    /// The instant the policies were evaluated at (ms since the epoch).
    pub evaluated_at_ms: u64,
    /// Each repository that has a policy, and what its run deleted.
    pub repositories: Vec<LifecycleRun>,
}

/// One repository's run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRun {
    /// The repository.
    pub repository: String,
    /// The images deleted (exactly what a preview at the same instant lists).
    pub expired: Vec<ExpiredImage>,
}

/// An image a lifecycle policy expired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiredImage {
    /// Its manifest digest.
    pub digest: String,
    /// The tags it had.
    pub tags: Vec<String>,
    /// When it was pushed (ms since the epoch).
    pub pushed_at_ms: u64,
    /// The priority of the rule that expired it.
    pub rule_priority: u32,
}
