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
