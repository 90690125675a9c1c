//! Image scans and advisories under `/v1`: `POST /v1/registry/scans`
//! (start a scan), `GET /v1/registry/scans` (an image's latest scan,
//! optionally waiting while it runs: `cutover scan`), `GET
//! /v1/vulnerabilities` (the advisory database) and `POST
//! /v1/vulnerabilities/import` (a body of OSV's `all.zip` format, streamed
//! to a temporary file in the data directory, never a path the client names).

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use cutover_api::registry::{
    AdvisoryStatus, ImportResponse, ScanQuery, ScanStatus, ScanView, StartScanRequest,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{ApiError, ApiResult, AppState};
use crate::registry::scans::{self, ScanError};

/// The largest advisory archive accepted.
pub(crate) const MAX_IMPORT_BYTES: u64 = 2 << 30;

/// The longest a `GET` waits for a scan to end.
const MAX_WAIT: Duration = Duration::from_secs(60);

impl From<ScanError> for ApiError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::ImageNotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            ScanError::Store(e) => e.into(),
            ScanError::Registry(e) => anyhow::Error::from(e).into(),
        }
    }
}

/// The digest `reference` names in `repository`; 404 if none.
async fn resolve(st: &AppState, repository: &str, reference: &str) -> ApiResult<String> {
    st.registry
        .stat_manifest(repository, reference)
        .await
        .map(|m| m.digest)
        .map_err(|_| {
            ApiError::not_found(format!("image {repository}:{reference} of this registry"))
        })
}

async fn view(st: &AppState, repository: &str, digest: &str) -> ApiResult<ScanView> {
    let report = st.scans.report(repository, digest).await?;
    let mut v = ScanView {
        repository: repository.to_string(),
        digest: digest.to_string(),
        status: None,
        description: String::new(),
        completed_at_ms: None,
        advisories_updated_at_ms: None,
        findings: Vec::new(),
        counts: Default::default(),
    };
    if let Some(r) = report {
        v.status = Some(match r.status {
            scans::ScanStatus::InProgress => ScanStatus::InProgress,
            scans::ScanStatus::Complete => ScanStatus::Complete,
            scans::ScanStatus::Failed => ScanStatus::Failed,
            scans::ScanStatus::UnsupportedImage => ScanStatus::UnsupportedImage,
        });
        v.description = r.description;
        v.completed_at_ms = r.completed_at_ms;
        v.advisories_updated_at_ms = r.advisories_updated_at_ms;
        v.findings = r.findings;
        v.counts = r.counts;
    }
    Ok(v)
}

pub(crate) async fn start(
    State(st): State<AppState>,
    Json(req): Json<StartScanRequest>,
) -> ApiResult<Json<ScanView>> {
    let digest = resolve(&st, &req.repository, &req.reference).await?;
    st.scans.start(&req.repository, &digest).await?;
    Ok(Json(view(&st, &req.repository, &digest).await?))
}

pub(crate) async fn report(
    State(st): State<AppState>,
    Query(q): Query<ScanQuery>,
) -> ApiResult<Json<ScanView>> {
    let digest = resolve(&st, &q.repository, &q.reference).await?;
    let wait = Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let changed = st.scans.changed();
    loop {
        // Registered before reading, so an end between the read and the
        // wait is not missed.
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let v = view(&st, &q.repository, &digest).await?;
        if v.status != Some(ScanStatus::InProgress) {
            return Ok(Json(v));
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(Json(v));
        }
    }
}

pub(crate) async fn status(State(st): State<AppState>) -> ApiResult<Json<AdvisoryStatus>> {
    Ok(Json(st.scanner.status().await?))
}

pub(crate) async fn import(
    State(st): State<AppState>,
    body: Body,
) -> ApiResult<Json<ImportResponse>> {
    let io = |e: std::io::Error| anyhow::anyhow!("cannot keep the uploaded archive: {e}");
    let tmp = tempfile::tempfile_in(st.scanner.data_dir()).map_err(io)?;
    let mut file = tokio::fs::File::from_std(tmp);
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        size += chunk.len() as u64;
        if size > MAX_IMPORT_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("an advisory archive is at most {MAX_IMPORT_BYTES} bytes"),
            ));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    let mut file = file.into_std().await;
    std::io::Seek::rewind(&mut file).map_err(io)?;
    match st.scanner.import(file).await {
        Ok(r) => Ok(Json(r)),
        Err(crate::registry::ImportError::Archive(e)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("not an OSV archive: {e}"),
        )),
        Err(crate::registry::ImportError::Store(e)) => Err(e.into()),
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}
