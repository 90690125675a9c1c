//! The overview (`/`) and a service's page.

use super::auth::Session;
use super::layout::{badge, button_form, page, time, traffic_bar};
use crate::api::{ApiError, AppState, deployments, pipelines, services, task_definitions};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use cutover_api::deployments::Deployment;
use cutover_api::query::DeploymentListQuery;
use cutover_api::services::Service;
use cutover_api::wire_name;
use maud::{Markup, html};
use std::collections::BTreeMap;

/// An error as a page with the API's status and message.
pub(crate) fn error_page(e: ApiError) -> Response {
    (
        e.status(),
        super::layout::message_page("Not available", &e.to_string()),
    )
        .into_response()
}

/// Deployments of a service (or all), newest first, through the `/v1` handler.
pub(crate) async fn deployments_of(
    st: &AppState,
    service: Option<&str>,
    limit: u32,
) -> Result<Vec<Deployment>, ApiError> {
    let q = DeploymentListQuery {
        service: service.map(str::to_string),
        limit: Some(limit),
    };
    Ok(deployments::list(State(st.clone()), Query(q))
        .await?
        .0
        .deployments)
}

/// Whether a service needs attention: fewer healthy or running tasks than desired.
fn failing(s: &Service) -> bool {
    s.running_count < s.desired_count || s.healthy_count < s.running_count
}

pub(crate) async fn overview(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    match overview_markup(&st, &session).await {
        Ok(m) => m.into_response(),
        Err(e) => error_page(e),
    }
}

async fn overview_markup(st: &AppState, session: &Session) -> Result<Markup, ApiError> {
    let mut list = services::list(State(st.clone())).await?.0.services;
    let active: BTreeMap<String, Deployment> = deployments_of(st, None, 1000)
        .await?
        .into_iter()
        .filter(|d| d.finished_at.is_none())
        .map(|d| (d.service.clone(), d))
        .collect();
    let pipelines = pipelines::list(State(st.clone())).await?.0.pipelines;
    // Failing first, then deploying, then by name.
    list.sort_by_key(|s| (!failing(s), !active.contains_key(&s.name), s.name.clone()));
    Ok(page(
        "Services",
        Some("services"),
        session,
        html! {
            @if list.is_empty() {
                p { "No services yet. Apply a stack: " code { "cutover apply -f stack.yaml" } }
            } @else {
                div.scroll {
                table {
                    caption.sr { "Services, failing ones first" }
                    thead { tr {
                        th scope="col" { "Service" } th scope="col" { "Desired" } th scope="col" { "Running" }
                        th scope="col" { "Healthy" } th scope="col" { "Revision" } th scope="col" { "Deployment" }
                    } }
                    tbody {
                        @for s in &list {
                            tr class=[failing(s).then_some("failing")] {
                                th scope="row" { a href={ "/services/" (s.name) } { (s.name) } }
                                td { (s.desired_count) }
                                td { (s.running_count) }
                                td { (s.healthy_count) @if failing(s) { " " (badge("UNHEALTHY")) } }
                                td { code { (s.task_definition) } }
                                td {
                                    @if let Some(d) = active.get(&s.name) {
                                        a href={ "/deployments/" (d.id) } { (wire_name(&d.status)) }
                                        (traffic_bar(d.prod_green_percent))
                                    } @else { "—" }
                                }
                            }
                        }
                    }
                }
                }
            }
            h2 #pipelines { "Pipelines" }
            @if pipelines.is_empty() { p { "No pipelines." } }
            ul.timeline { @for p in &pipelines { li {
                a href={ "/pipelines/" (p.name) } { (p.name) } " "
                @if let Some(e) = &p.latest_execution {
                    (badge(&wire_name(&e.status))) " " (time(e.started_at)) " · " (e.trigger)
                } @else { "never run" }
            } } }
        },
    ))
}

pub(crate) async fn service(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    match service_markup(&st, &session, name).await {
        Ok(m) => m.into_response(),
        Err(e) => error_page(e),
    }
}

/// The body of a task definition revision as pretty JSON lines.
async fn revision_text(st: &AppState, name: &str) -> Result<String, ApiError> {
    let td = task_definitions::describe(State(st.clone()), Path(name.to_string()))
        .await?
        .0
        .task_definition;
    Ok(serde_json::to_string_pretty(&td.body.unwrap_or_default()).unwrap_or_default())
}

/// A unified line diff of two texts.
fn diff(before: &str, after: &str) -> Markup {
    let d = similar::TextDiff::from_lines(before, after);
    html! {
        pre.diff {
            @for change in d.iter_all_changes() {
                @match change.tag() {
                    similar::ChangeTag::Delete => del { "- " (change) },
                    similar::ChangeTag::Insert => ins { "+ " (change) },
                    similar::ChangeTag::Equal => span { "  " (change) },
                }
            }
        }
    }
}

async fn service_markup(
    st: &AppState,
    session: &Session,
    name: String,
) -> Result<Markup, ApiError> {
    let svc = services::describe(State(st.clone()), Path(name.clone()))
        .await?
        .0
        .service;
    let history = deployments_of(st, Some(&name), 20).await?;
    // Each revision deployed, as a diff against the one it replaced.
    let mut diffs = Vec::new();
    for d in history.iter().take(5) {
        if d.from_task_definition != d.to_task_definition && !d.from_task_definition.is_empty() {
            let before = revision_text(st, &d.from_task_definition)
                .await
                .unwrap_or_default();
            let after = revision_text(st, &d.to_task_definition).await?;
            diffs.push((d, diff(&before, &after)));
        }
    }
    let tasks = svc.tasks.clone().unwrap_or_default();
    Ok(page(
        &format!("Service {name}"),
        Some(&format!("service/{name}")),
        session,
        html! {
            section aria-labelledby="summary" {
                h2 #summary { "Summary" }
                p { "Desired " (svc.desired_count) " · running " (svc.running_count)
                    " · healthy " (svc.healthy_count) " · revision " code { (svc.task_definition) } }
                (button_form(session, &format!("/services/{name}/rollback"), "Roll back", "danger", &[]))
            }
            section aria-labelledby="tasks" {
                h2 #tasks { "Tasks" }
                div.scroll { table {
                    thead { tr { th scope="col" { "Task" } th scope="col" { "Status" } th scope="col" { "Health" }
                        th scope="col" { "Revision" } th scope="col" { "Endpoint" } } }
                    tbody { @for t in &tasks { tr {
                        td { code { (t.id.get(..8).unwrap_or(&t.id)) } }
                        td { (badge(&wire_name(&t.last_status))) }
                        td { (badge(&wire_name(&t.health_status))) }
                        td { code { (t.task_definition) } }
                        td { (t.endpoint.as_deref().unwrap_or("—")) }
                    } } }
                } }
            }
            section aria-labelledby="history" {
                h2 #history { "Deployments" }
                ul.timeline { @for d in &history { li {
                    a href={ "/deployments/" (d.id) } { (d.id) } " " (badge(&wire_name(&d.status)))
                    " " code { (d.to_task_definition) } " · " (time(d.created_at))
                    @if let Some(o) = &d.outcome { " · " (o) }
                } } }
            }
            section aria-labelledby="diffs" {
                h2 #diffs { "Task definition changes" }
                @for (d, markup) in &diffs {
                    details { summary { code { (d.from_task_definition) } " → " code { (d.to_task_definition) } }
                        (markup) }
                }
            }
            section aria-labelledby="events" {
                h2 #events { "Events" }
                ul.timeline { @for e in svc.events.iter().flatten().rev() { li { (time(e.at)) " " (e.message) } } }
            }
            section aria-labelledby="logs" data-static {
                h2 #logs { "Logs" }
                pre.logs data-follow={ "/v1/services/" (name) "/logs?follow=true" } tabindex="0"
                    aria-label="Live log tail" { "Logs stream here with JavaScript on; "
                    a href={ "/v1/services/" (name) "/logs" } { "read them as text" } "." }
            }
        },
    ))
}
