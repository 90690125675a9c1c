//! Task definition registration and lookup.

use super::{ApiError, ApiResult, AppState, views};
use crate::files;
use axum::Json;
use axum::extract::{Path, Query, State};
use cutover_api::query::TaskDefinitionListQuery;
use cutover_api::task_definitions::{
    RegisterTaskDefinitionRequest, RegisterTaskDefinitionResponse, TaskDefinitionEnvelope,
    TaskDefinitionList,
};
use cutover_store::ops;

pub(crate) async fn register(
    State(st): State<AppState>,
    Json(req): Json<RegisterTaskDefinitionRequest>,
) -> ApiResult<Json<RegisterTaskDefinitionResponse>> {
    let parsed = files::task_definition(&req.file, &req.content)?;
    let (family, body, now) = (
        parsed.family.clone(),
        parsed.body.clone(),
        st.clock.now_ms(),
    );
    let (row, created) = st
        .store
        .call(move |c| ops::register_task_definition(c, &family, &body, now, true))
        .await?;
    Ok(Json(RegisterTaskDefinitionResponse {
        task_definition: views::task_definition(&row, true),
        created,
        warnings: parsed.warnings,
    }))
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<TaskDefinitionListQuery>,
) -> ApiResult<Json<TaskDefinitionList>> {
    let rows = st
        .store
        .call(move |c| ops::list_task_definitions(c, q.family.as_deref()))
        .await?;
    Ok(Json(TaskDefinitionList {
        task_definitions: rows
            .iter()
            .map(|r| views::task_definition(r, false))
            .collect(),
    }))
}

pub(crate) async fn describe(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<TaskDefinitionEnvelope>> {
    let (family, revision) = parse_name(&name)?;
    let family = family.to_string();
    let row = st
        .store
        .call(move |c| ops::task_definition(c, &family, revision))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task definition {name}")))?;
    Ok(Json(TaskDefinitionEnvelope {
        task_definition: views::task_definition(&row, true),
    }))
}

/// Splits `family[:revision]`.
pub(crate) fn parse_name(name: &str) -> ApiResult<(&str, Option<u32>)> {
    match name.rsplit_once(':') {
        Some((family, rev)) => {
            let rev = rev.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "{name:?}: the revision after ':' must be a positive integer"
                ))
            })?;
            Ok((family, Some(rev)))
        }
        None => Ok((name, None)),
    }
}
