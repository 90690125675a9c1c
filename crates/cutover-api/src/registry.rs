//! The OCI registry's `/v1` side: what `cutover registry gc` sends and
//! reads. The registry itself speaks the Distribution Spec under `/v2/`.

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
