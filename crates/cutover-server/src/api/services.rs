//! Services: list, describe, scale, delete, events; and the server status.

use super::{ApiError, ApiResult, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use cutover_store::{ServiceRow, ops};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) async fn status(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "startedAt": st.started_at,
        "schemaVersion": st.store.schema_version()?,
        "runtimes": st.controller.runtimes().keys().collect::<Vec<_>>(),
    })))
}

/// A service with counts of its tasks, as `aws ecs describe-services` shows.
fn view(svc: &ServiceRow, counts: ops::TaskCounts) -> Value {
    json!({
        "name": svc.name,
        "status": svc.status,
        "taskDefinition": svc.task_definition,
        "desiredCount": svc.desired_count,
        "runningCount": counts.running,
        "pendingCount": counts.pending,
        "healthyCount": counts.healthy,
        "runtime": svc.runtime,
        "generation": svc.generation,
        "createdAt": svc.created_at,
        "updatedAt": svc.updated_at,
        "spec": svc.spec,
    })
}

/// The counts of one service (one query per service is fine for one).
fn counts_of(st: &AppState, name: &str) -> ApiResult<ops::TaskCounts> {
    Ok(st
        .store
        .with(ops::task_counts)?
        .remove(name)
        .unwrap_or_default())
}

pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    // Two queries whatever the number of services.
    let (services, counts) = st
        .store
        .with(|c| Ok((ops::list_services(c)?, ops::task_counts(c)?)))?;
    let views: Vec<Value> = services
        .iter()
        .map(|s| view(s, counts.get(&s.name).copied().unwrap_or_default()))
        .collect();
    Ok(Json(json!({"services": views})))
}

fn load(st: &AppState, name: &str) -> ApiResult<ServiceRow> {
    st.store
        .with(|c| ops::service(c, name))?
        .ok_or_else(|| ApiError::not_found(format!("service {name:?}")))
}

pub(crate) async fn describe(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let svc = load(&st, &name)?;
    let mut v = view(&svc, counts_of(&st, &name)?);
    let events = st
        .store
        .with(|c| ops::events(c, &format!("service/{name}"), 20))?;
    v["events"] = serde_json::to_value(events).map_err(anyhow::Error::from)?;
    let tasks = st
        .store
        .with(|c| ops::list_tasks(c, Some(&name), false, u32::MAX))?;
    v["tasks"] = serde_json::to_value(tasks).map_err(anyhow::Error::from)?;
    Ok(Json(json!({"service": v})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ScaleRequest {
    desired_count: u32,
}

pub(crate) async fn scale(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Json(req): Json<ScaleRequest>,
) -> ApiResult<Json<Value>> {
    if req.desired_count > 1000 {
        return Err(ApiError::bad_request(
            "desiredCount must be between 0 and 1000",
        ));
    }
    let svc = st.store.atomically(|c| {
        let mut svc = ops::service(c, &name)?.ok_or(cutover_store::StoreError::NotFound {
            kind: "service",
            name: name.clone(),
        })?;
        if svc.status != "ACTIVE" {
            return Err(cutover_store::StoreError::Conflict(format!(
                "service {name:?} is being deleted"
            )));
        }
        let now = st.clock.now_ms();
        let before = svc.desired_count;
        svc.desired_count = req.desired_count;
        svc.generation += 1;
        svc.updated_at = now;
        ops::put_service(c, &svc)?;
        ops::add_event(
            c,
            now,
            &format!("service/{name}"),
            &format!(
                "desired count changed from {before} to {}",
                req.desired_count
            ),
        )?;
        Ok(svc)
    })?;
    st.controller.wake(&name);
    Ok(Json(
        json!({"service": view(&svc, counts_of(&st, &svc.name)?)}),
    ))
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let svc = st.store.atomically(|c| {
        let mut svc = ops::service(c, &name)?.ok_or(cutover_store::StoreError::NotFound {
            kind: "service",
            name: name.clone(),
        })?;
        let now = st.clock.now_ms();
        svc.status = "DRAINING".into();
        svc.generation += 1;
        svc.updated_at = now;
        ops::put_service(c, &svc)?;
        ops::add_event(
            c,
            now,
            &format!("service/{name}"),
            "service delete requested: stopping its tasks",
        )?;
        Ok(svc)
    })?;
    st.controller.wake(&name);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"service": view(&svc, counts_of(&st, &svc.name)?)})),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    limit: Option<u32>,
}

pub(crate) async fn events(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Value>> {
    let events = st.store.with(|c| {
        ops::events(
            c,
            &format!("service/{name}"),
            q.limit.unwrap_or(100).min(10_000),
        )
    })?;
    Ok(Json(json!({"events": events})))
}
