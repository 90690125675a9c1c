//! The hosts pages: `/hosts`, the agents (name, zone, tags, status, last
//! seen, the revision each deployment group last installed), live over
//! topic `agents`, and the 20 newest host deployments; and `/host-deployments/{id}`, a host deployment's
//! progress host by host with each lifecycle event and its scripts' output,
//! live over topic `host-deployment/ID`, with Stop and Stop and roll back.
//!
//! Read through the `/v1` handlers (`GET /v1/agents`, `GET
//! /v1/host-deployments`, `GET /v1/host-deployments/{id}`), as every page.

use super::auth::Session;
use super::layout::{badge, button_form, duration, page, time, tone};
use super::pages::error_page;
use crate::api::{ApiError, AppState};
use crate::hosts::{api as agents, deploy_api};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use cutover_api::agents::{AgentView, BundleRef};
use cutover_api::host_deployments::{
    HostDeploymentSummary, HostDeploymentView, HostEventStatus, HostTargetStatus, HostTargetView,
    ListHostDeploymentsQuery,
};
use cutover_api::wire_name;
use maud::{Markup, html};
use serde::Deserialize;

/// How many recent host deployments `/hosts` lists.
const RECENT: usize = 20;

pub(crate) async fn list(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let recent = deploy_api::list(
        State(st.clone()),
        Query(ListHostDeploymentsQuery {
            limit: Some(RECENT),
            ..ListHostDeploymentsQuery::default()
        }),
    )
    .await;
    match (agents::list(State(st)).await, recent) {
        (Ok(l), Ok(r)) => agents_page(&session, &l.0.agents, &r.0.host_deployments).into_response(),
        (Err(e), _) | (_, Err(e)) => error_page(e),
    }
}

/// A revision as people read it: the digest's first 12 hex digits.
fn short(r: &BundleRef) -> String {
    let hex = r.digest.strip_prefix("sha256:").unwrap_or(&r.digest);
    format!(
        "{} ({})",
        hex.get(..12).unwrap_or(hex),
        wire_name(&r.format)
    )
}

pub(crate) fn agents_page(
    session: &Session,
    list: &[AgentView],
    recent: &[HostDeploymentSummary],
) -> Markup {
    page(
        "Hosts",
        Some("agents"),
        session,
        html! {
            section aria-labelledby="agents" {
                h2 #agents { "Agents" }
                @if list.is_empty() {
                    p { "No agent has registered. Start one on a host: " code { "cutover agent --server URL --name NAME" } }
                } @else {
                    div.scroll { table {
                        caption.sr { "Registered host agents" }
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Zone" } th scope="col" { "Tags" }
                            th scope="col" { "Status" } th scope="col" { "Last seen" } th scope="col" { "Revision" }
                        } }
                        tbody { @for a in list { @let r = &a.registration; tr class=[(!a.online).then_some("failing")] {
                            th scope="row" { (r.name) }
                            td { (r.zone.as_deref().unwrap_or("—")) }
                            td { @for (k, v) in &r.tags { code { (k) "=" (v) } " " } }
                            td { (badge(if a.online { "Online" } else { "Offline" })) }
                            td { (time(a.last_seen_ms)) }
                            td { @if a.last_successful.is_empty() { "—" }
                                @for (group, rev) in &a.last_successful { div { (group) ": " code { (short(rev)) } } } }
                        } } }
                    } }
                }
            }
            section aria-labelledby="open" {
                h2 #open { "Host deployments" }
                @if recent.is_empty() {
                    p { "No host deployment yet: " code { "cutover deploy --application A --deployment-group G --revision DIR" } }
                } @else {
                    div.scroll { table {
                        caption.sr { "Recent host deployments, newest first" }
                        thead { tr {
                            th scope="col" { "Deployment" } th scope="col" { "Group" } th scope="col" { "Status" }
                            th scope="col" { "Hosts" } th scope="col" { "Revision" } th scope="col" { "Started" }
                        } }
                        tbody { @for d in recent { @let status = wire_name(&d.status); tr class=[(tone(&status) == "bad").then_some("failing")] {
                            th scope="row" { a href={ "/host-deployments/" (d.id) } { (d.id) } }
                            td { (d.application) " / " (d.deployment_group) }
                            td { (badge(&status)) @if let Some(r) = &d.reason { " " small { (r) } } }
                            td { (d.hosts) }
                            td { code { (d.source) } }
                            td { (time(d.created_at_ms)) }
                        } } }
                    } }
                }
                form.card method="get" action="/host-deployments" {
                    label for="hd-id" { "Host deployment id (as " code { "cutover deploy --application" } " printed it)" }
                    input #hd-id type="text" name="id" required autocomplete="off";
                    button type="submit" { "Open" }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct OpenQuery {
    #[serde(default)]
    id: String,
}

/// `GET /host-deployments?id=ID`: the form's way to a deployment's page.
pub(crate) async fn open(Query(q): Query<OpenQuery>) -> Response {
    let id = q.id.trim();
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return error_page(ApiError::bad_request(format!(
            "{id:?} is not a host deployment id"
        )));
    }
    Redirect::to(&format!("/host-deployments/{id}")).into_response()
}

pub(crate) async fn show(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    match deploy_api::get(State(st.clone()), Path(id)).await {
        Ok(v) => deployment_page(&session, &v.0, st.clock.now_ms()).into_response(),
        Err(e) => error_page(e),
    }
}

fn done(t: &HostTargetView) -> bool {
    matches!(
        t.status,
        HostTargetStatus::Succeeded | HostTargetStatus::Failed | HostTargetStatus::Skipped
    )
}

pub(crate) fn deployment_page(session: &Session, d: &HostDeploymentView, now: u64) -> Markup {
    let id = &d.id;
    let ended = d.targets.iter().filter(|t| done(t)).count();
    let total = d.targets.len();
    let stop = format!("/host-deployments/{id}/stop");
    page(
        &format!("Host deployment {id}"),
        Some(&format!("host-deployment/{id}")),
        session,
        html! {
            section aria-labelledby="state" {
                h2 #state { "State" }
                p { "Application " strong { (d.application) } " · group " strong { (d.deployment_group) } " · "
                    (badge(&wire_name(&d.status))) " · revision " code { (short(&d.revision)) }
                    " · " (d.config) " · started " (time(d.created_at_ms))
                    @if let Some(f) = d.finished_at_ms { " · finished " (time(f)) } }
                @if let Some(r) = &d.reason { p.outcome { (r) } }
                @if let Some(r) = &d.rollback_of { p { "Rolls back " a href={ "/host-deployments/" (r) } { (r) } } }
                @if let Some(r) = &d.rolled_back_by { p { "Rolled back by " a href={ "/host-deployments/" (r) } { (r) } } }
                p { label for="progress" { (ended) " of " (total) " hosts done" } " "
                    progress #progress max=(total.max(1)) value=(ended) {} }
                @if d.finished_at_ms.is_none() {
                    div.controls role="group" aria-label="Host deployment actions" {
                        (button_form(session, &stop, "Stop", "", &[("rollback", "false")]))
                        (button_form(session, &stop, "Stop and roll back", "danger", &[("rollback", "true")]))
                    }
                }
            }
            section aria-labelledby="hosts" {
                h2 #hosts { "Hosts" }
                @if d.targets.is_empty() { p { "No host matched the group." } }
                div.metrics { @for t in &d.targets { (target(t, now)) } }
            }
        },
    )
}

/// One host: its status and each lifecycle event with its scripts' output.
fn target(t: &HostTargetView, now: u64) -> Markup {
    html! {
        div.card aria-label={ "Host " (t.host) } {
            h3 { (t.host) " " (badge(&wire_name(&t.status)))
                @if let Some(z) = &t.zone { " " small { "zone " (z) } } }
            @if t.events.is_empty() { p { "Waiting for its turn." } }
            ol.lifecycle { @for e in &t.events {
                @let name = wire_name(&e.event);
                @let status = wire_name(&e.status);
                li class=(tone(&status)) {
                    strong { (name) } " " (badge(&status)) " " (time(e.started_at_ms)) " · "
                    @match e.ended_at_ms {
                        Some(end) => { "took " (duration(end.saturating_sub(e.started_at_ms))) }
                        None => { "running for " (duration(now.saturating_sub(e.started_at_ms))) }
                    }
                    @if !e.output.is_empty() || e.error.is_some() || e.command.is_some() {
                        details id={ "out-" (t.host) "-" (name) } open[e.status == HostEventStatus::Failed] {
                            summary { "Output of " (name) " on " (t.host) }
                            @if let Some(c) = &e.command { p { "Command " code { (c) } } }
                            @if let Some(err) = &e.error { p.error { (err) } }
                            @if !e.output.is_empty() { pre.output { (e.output) } }
                        }
                    }
                }
            } }
        }
    }
}
