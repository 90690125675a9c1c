//! AWS access keys: create (the secret is answered once), list (never a
//! secret) and delete. Behind the API token like every `/v1` route; the
//! keys then sign AWS-protocol requests (`crate::aws`).

use super::{ApiError, ApiResult, AppState};
use axum::Json;
use axum::extract::{Path, State};
use cutover_api::access_keys::{
    AccessKey, AccessKeyList, AccessKeyMetadata, CreateAccessKeyRequest, CreateAccessKeyResponse,
    DeleteAccessKeyResponse,
};
use cutover_aws::keys::KeyKind;
use cutover_store::access_keys;
use secrecy::ExposeSecret;

/// The name of a key created without one.
const DEFAULT_NAME: &str = "cutover";

/// An IAM user name: 1-64 of `[A-Za-z0-9+=,.@_-]`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

pub(crate) async fn create(
    State(st): State<AppState>,
    body: Option<Json<CreateAccessKeyRequest>>,
) -> ApiResult<Json<CreateAccessKeyResponse>> {
    let name = body
        .and_then(|Json(b)| b.name)
        .unwrap_or_else(|| DEFAULT_NAME.to_string());
    if !valid_name(&name) {
        return Err(ApiError::bad_request(format!(
            "access key name {name:?}: use 1 to 64 of A-Z a-z 0-9 + = , . @ _ -"
        )));
    }
    let now = st.clock.now_ms();
    let row = st
        .aws
        .keys
        .create(name, KeyKind::LongLived, now, None, None)
        .await?;
    tracing::info!(key = %row.id, name = %row.name, "access key created");
    Ok(Json(CreateAccessKeyResponse {
        access_key: AccessKey {
            user_name: row.name,
            access_key_id: row.id,
            secret_access_key: row.secret.expose_secret().to_string(),
            status: row.status,
            create_date: rfc3339(row.created_at),
        },
    }))
}

pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<AccessKeyList>> {
    let rows = st.store.call(access_keys::list).await?;
    Ok(Json(AccessKeyList {
        access_key_metadata: rows
            .into_iter()
            .map(|r| AccessKeyMetadata {
                user_name: r.name,
                access_key_id: r.id,
                status: r.status,
                create_date: rfc3339(r.created_at),
                expiration: r.expires_at.map(rfc3339),
                owner: r.owner,
            })
            .collect(),
    }))
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeleteAccessKeyResponse>> {
    if !st.aws.keys.delete(&id).await? {
        return Err(ApiError::not_found(format!("access key {id:?}")));
    }
    tracing::info!(key = %id, "access key deleted");
    Ok(Json(DeleteAccessKeyResponse { access_key_id: id }))
}

/// Milliseconds since the epoch as RFC 3339 (`2026-12-06T18:00:00Z`).
pub(crate) fn rfc3339(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
