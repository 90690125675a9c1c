//! Task definition registration and lookup.

use super::{ApiError, ApiResult, AppState};
use crate::files::{self, diagnostics_json};
use axum::Json;
use axum::extract::{Path, Query, State};
use cutover_store::{TaskDefinitionRow, ops};
use serde::Deserialize;
use serde_json::{Value, json};

/// Body of `POST /v1/task-definitions`: the file as the user has it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegisterRequest {
    /// File name, for error messages.
    #[serde(default = "default_file")]
    file: String,
    /// The file's text.
    content: String,
}

fn default_file() -> String {
    "taskdef.json".into()
}

pub(crate) async fn register(
    State(st): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<Json<Value>> {
    let parsed = files::task_definition(&req.file, &req.content)?;
    let (row, created) = st.store.with(|c| {
        ops::register_task_definition(c, &parsed.family, &parsed.body, st.clock.now_ms(), true)
    })?;
    Ok(Json(json!({
        "taskDefinition": summary(&row, true),
        "created": created,
        "warnings": diagnostics_json(&parsed.warnings),
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    family: Option<String>,
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let rows = st
        .store
        .with(|c| ops::list_task_definitions(c, q.family.as_deref()))?;
    Ok(Json(json!({
        "taskDefinitions": rows.iter().map(|r| summary(r, false)).collect::<Vec<_>>()
    })))
}

pub(crate) async fn describe(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let (family, revision) = parse_name(&name)?;
    let row = st
        .store
        .with(|c| ops::task_definition(c, family, revision))?
        .ok_or_else(|| ApiError::not_found(format!("task definition {name}")))?;
    Ok(Json(json!({"taskDefinition": summary(&row, true)})))
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

fn summary(row: &TaskDefinitionRow, with_body: bool) -> Value {
    let mut v = json!({
        "name": row.name(),
        "family": row.family,
        "revision": row.revision,
        "registeredAt": row.registered_at,
        "digest": row.digest,
    });
    if with_body {
        v["body"] = row.body.clone();
    }
    v
}
