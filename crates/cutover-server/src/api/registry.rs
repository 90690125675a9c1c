//! `POST /v1/registry/gc`: one garbage collection of the registry now
//! (the server also runs one every hour, `crate::registry`);
//! `POST /v1/registry/lifecycle`: one run of every lifecycle policy now
//! (also at start and hourly, `crate::registry::lifecycle`).

use super::{ApiError, ApiResult, AppState};
use axum::Json;
use axum::extract::State;
use cutover_api::registry::{GcResponse, LifecycleRunResponse};

pub(crate) async fn gc(State(st): State<AppState>) -> ApiResult<Json<GcResponse>> {
    let report = st.registry.gc().await.map_err(|e| {
        tracing::error!(error = %e, "registry garbage collection failed");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "registry garbage collection failed",
        )
    })?;
    Ok(Json(GcResponse {
        blobs_deleted: report.blobs_deleted,
        bytes_freed: report.bytes_freed,
        uploads_removed: report.uploads_removed,
    }))
}

pub(crate) async fn lifecycle(State(st): State<AppState>) -> ApiResult<Json<LifecycleRunResponse>> {
    let now = st.clock.now_ms();
    let run = crate::registry::lifecycle::run(&st.store, &st.lifecycle, now).await?;
    Ok(Json(run))
}
