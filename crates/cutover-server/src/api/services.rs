//! Services: list, describe, scale, delete, events; and the server status.

use super::{ApiError, ApiResult, AppState, views};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use cutover_api::query::EventsQuery;
use cutover_api::services::{
    EventList, ScaleRequest, ServerStatus, ServiceEnvelope, ServiceList, ServiceStatus,
};
use cutover_store::{ServiceRow, ops};

pub(crate) async fn status(State(st): State<AppState>) -> ApiResult<Json<ServerStatus>> {
    Ok(Json(ServerStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: st.started_at,
        schema_version: st.store.call(ops::schema_version).await?,
        runtimes: st.controller.runtimes().keys().cloned().collect(),
    }))
}

/// The counts of one service (one query per service is fine for one).
async fn counts_of(st: &AppState, name: &str) -> ApiResult<ops::TaskCounts> {
    Ok(st
        .store
        .call(ops::task_counts)
        .await?
        .remove(name)
        .unwrap_or_default())
}

pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<ServiceList>> {
    // Two queries whatever the number of services.
    let (services, counts) = st
        .store
        .call(|c| Ok((ops::list_services(c)?, ops::task_counts(c)?)))
        .await?;
    let services = services
        .iter()
        .map(|s| views::service(s, counts.get(&s.name).copied().unwrap_or_default()))
        .collect::<ApiResult<_>>()?;
    Ok(Json(ServiceList { services }))
}

/// A service and its counts, as scale and delete answer it.
async fn envelope(st: &AppState, svc: &ServiceRow) -> ApiResult<ServiceEnvelope> {
    Ok(ServiceEnvelope {
        service: views::service(svc, counts_of(st, &svc.name).await?)?,
    })
}

async fn load(st: &AppState, name: &str) -> ApiResult<ServiceRow> {
    let n = name.to_string();
    st.store
        .call(move |c| ops::service(c, &n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("service {name:?}")))
}

pub(crate) async fn describe(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ServiceEnvelope>> {
    let svc = load(&st, &name).await?;
    let mut service = views::service(&svc, counts_of(&st, &name).await?)?;
    let (events, tasks) = {
        let name = name.clone();
        st.store
            .call(move |c| {
                Ok((
                    ops::events(c, &format!("service/{name}"), 20)?,
                    ops::list_tasks(c, Some(&name), false, u32::MAX)?,
                ))
            })
            .await?
    };
    service.events = Some(views::events(events));
    let pins = views::pins(&st, Some(&name)).await?;
    let mut tasks = views::tasks(tasks);
    tasks.iter_mut().for_each(|t| views::pin_task(t, &pins));
    service.tasks = Some(tasks);
    Ok(Json(ServiceEnvelope { service }))
}

pub(crate) async fn scale(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Json(req): Json<ScaleRequest>,
) -> ApiResult<Json<ServiceEnvelope>> {
    if req.desired_count > 1000 {
        return Err(ApiError::bad_request(
            "desiredCount must be between 0 and 1000",
        ));
    }
    let (n, clock) = (name.clone(), st.clock.clone());
    let svc = st
        .store
        .transact(move |c| {
            let name = n;
            let mut svc = ops::service(c, &name)?.ok_or(cutover_store::StoreError::NotFound {
                kind: "service",
                name: name.clone(),
            })?;
            if svc.status != ServiceStatus::Active {
                return Err(cutover_store::StoreError::Conflict(format!(
                    "service {name:?} is being deleted"
                )));
            }
            let now = clock.now_ms();
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
        })
        .await?;
    st.controller.wake(&name);
    Ok(Json(envelope(&st, &svc).await?))
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<ServiceEnvelope>)> {
    let (n, clock) = (name.clone(), st.clock.clone());
    let svc = st
        .store
        .transact(move |c| {
            let name = n;
            let mut svc = ops::service(c, &name)?.ok_or(cutover_store::StoreError::NotFound {
                kind: "service",
                name: name.clone(),
            })?;
            let now = clock.now_ms();
            svc.status = ServiceStatus::Draining;
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
        })
        .await?;
    st.controller.wake(&name);
    Ok((StatusCode::ACCEPTED, Json(envelope(&st, &svc).await?)))
}

pub(crate) async fn events(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<EventList>> {
    let limit = q.limit.unwrap_or(100).min(10_000);
    let events = st
        .store
        .call(move |c| ops::events(c, &format!("service/{name}"), limit))
        .await?;
    Ok(Json(EventList {
        events: views::events(events),
    }))
}
