//! Builds: history with durations, one build's phases, and its log read
//! from an offset (`cutover builds logs --follow` polls it while the build
//! runs).

use super::{ApiError, ApiResult, AppState, views};
use axum::Json;
use axum::extract::{Path, Query, State};
use cutover_api::builds::{BuildEnvelope, BuildList, BuildLog};
use cutover_api::query::{BuildListQuery, BuildLogQuery};
use cutover_ci::log_path;
use cutover_store::{BuildRow, pipeline_ops};
use std::io::{Read, Seek, SeekFrom};

/// Most log bytes answered at once.
const MAX_CHUNK: u64 = 1 << 20;

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<BuildListQuery>,
) -> ApiResult<Json<BuildList>> {
    let rows = st
        .store
        .call(move |c| pipeline_ops::list_builds(c, q.project.as_deref(), q.limit))
        .await?;
    let builds = rows.into_iter().map(views::build).collect();
    Ok(Json(BuildList { builds }))
}

async fn find(st: &AppState, id: &str) -> Result<BuildRow, ApiError> {
    let owned = id.to_string();
    st.store
        .call(move |c| pipeline_ops::build(c, &owned))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("build {id:?}")))
}

pub(crate) async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BuildEnvelope>> {
    Ok(Json(BuildEnvelope {
        build: views::build(find(&st, &id).await?),
    }))
}

pub(crate) async fn logs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<BuildLogQuery>,
) -> ApiResult<Json<BuildLog>> {
    let build = find(&st, &id).await?;
    let path = log_path(&build);
    let text = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        f.seek(SeekFrom::Start(q.offset))?;
        let mut buf = Vec::new();
        f.take(MAX_CHUNK).read_to_end(&mut buf)?;
        // Answer whole lines only, so a reader never sees half a line.
        if let Some(end) = buf.iter().rposition(|b| *b == b'\n') {
            buf.truncate(end + 1);
        } else {
            buf.clear();
        }
        Ok(buf)
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(anyhow::Error::from)?;
    Ok(Json(BuildLog {
        text: String::from_utf8_lossy(&text).into_owned(),
        next_offset: q.offset + text.len() as u64,
        finished: build.finished_at.is_some(),
        status: build.status,
    }))
}
