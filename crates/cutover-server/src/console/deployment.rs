//! A deployment's page: the lifecycle as a timeline, the traffic split over
//! time, each lifecycle hook with its status, duration and output, its
//! target groups' request rate, 5xx and latency, its alarms,
//! its events, and the Stop / Stop and roll back /
//! Continue / Roll back buttons.

use super::auth::Session;
use super::layout::{badge, button_form, duration, page, time, tone, traffic_bar};
use super::pages::error_page;
use crate::api::{ApiError, AppState, alarms, deployments};
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use cutover_api::deployments::{Deployment, LifecycleRecord};
use cutover_api::wire_name;
use cutover_deploy::bluegreen::{DeploymentStatus, EventStatus};
use maud::{Markup, html};

async fn markup(st: &AppState, session: &Session, id: String) -> Result<Markup, ApiError> {
    let d = deployments::get(State(st.clone()), Path(id.clone()))
        .await?
        .0
        .deployment;
    let now = st.clock.now_ms();
    let metrics = super::metrics::section(st, &d, now).await;
    let alarm_states = alarms::list(State(st.clone())).await?.0.alarms;
    let watched: Vec<_> = d
        .blue_green
        .iter()
        .flat_map(|b| &b.alarms)
        .map(|name| (name, alarm_states.iter().find(|a| &a.name == name)))
        .collect();
    Ok(page(
        &format!("Deployment {id}"),
        Some(&format!("deployment/{id}")),
        session,
        html! {
            section aria-labelledby="state" {
                h2 #state { "State" }
                p { a href={ "/services/" (d.service) } { "Service " (d.service) } " · "
                    (badge(&wire_name(&d.status))) " · " code { (d.from_task_definition) } " → "
                    code { (d.to_task_definition) } " · started " (time(d.created_at)) " by " (d.started_by)
                    @if let Some(f) = d.finished_at { " · finished " (time(f)) } }
                @if let Some(o) = &d.outcome { p.outcome { (o) } }
                (traffic_bar(replacement_share(&d)))
                (controls(session, &d))
            }
            section aria-labelledby="traffic" {
                h2 #traffic { "Traffic over time" }
                (chart(&d, now))
            }
            (metrics)
            @if let Some(bg) = &d.blue_green {
                (lifecycle(&d, &bg.lifecycle, now))
            }
            section aria-labelledby="alarms" {
                h2 #alarms { "Alarms" }
                @if watched.is_empty() { p { "This deployment watches no alarm." } }
                ul { @for (name, a) in &watched { li {
                    (name) " " @if let Some(a) = a { (badge(&wire_name(&a.state))) " " (a.reason) } @else { "(not found)" }
                } } }
            }
            section aria-labelledby="events" {
                h2 #events { "Events" }
                ol.timeline { @for e in d.events.iter().flatten() { li { (time(e.at)) " " (e.message) } } }
            }
        },
    ))
}

/// The lifecycle as an ordered list: each event (and the hook it runs)
/// with its status, how long it took, and its output in a `<details>`:
/// the record's message (a failed hook's exit code and the tail of its
/// output, or how it succeeded) and the deployment's events about it
/// (each invocation, its attempt and execution id). A failed event's
/// output is open.
fn lifecycle(d: &Deployment, records: &[LifecycleRecord], now: u64) -> Markup {
    html! {
        section aria-labelledby="lifecycle" {
            h2 #lifecycle { "Lifecycle and hooks" }
            ol.lifecycle {
                @for r in records {
                    @let name = wire_name(&r.event);
                    @let status = wire_name(&r.status);
                    @let (colon, space) = (format!("{name}:"), format!("{name} "));
                    @let about: Vec<_> = d.events.iter().flatten()
                        .filter(|e| e.message.starts_with(&colon) || e.message.starts_with(&space))
                        .collect();
                    li class=(tone(&status)) {
                        strong { (name) } " " (badge(&status))
                        @if let Some(t) = r.started_at {
                            " " (time(t)) " · "
                            @match r.ended_at {
                                Some(end) => { "took " (duration(end.saturating_sub(t))) }
                                None => { "running for " (duration(now.saturating_sub(t))) }
                            }
                        }
                        @if r.message.is_some() || !about.is_empty() {
                            details.hook id={ "hook-" (name) } open[r.status == EventStatus::Failed] {
                                summary { "Output of " (name) }
                                @if let Some(m) = &r.message { pre.output { (m) } }
                                @if !about.is_empty() {
                                    ol.timeline { @for e in &about { li { (time(e.at)) " " (e.message) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The actions that apply in the deployment's state.
fn controls(session: &Session, d: &Deployment) -> Markup {
    let id = &d.id;
    let running = d.finished_at.is_none();
    let stop = format!("/deployments/{id}/stop");
    html! {
        div.controls role="group" aria-label="Deployment actions" {
            @if running {
                (button_form(session, &stop, "Stop", "", &[("rollback", "false")]))
                (button_form(session, &stop, "Stop and roll back", "danger", &[("rollback", "true")]))
                (button_form(session, &format!("/deployments/{id}/continue"), "Continue", "", &[]))
            }
            (button_form(session, &format!("/services/{}/rollback", d.service), "Roll back", "danger", &[]))
        }
    }
}

/// The share of production on the replacement as people read it: once the
/// deployment succeeded the replacement serves everything, though the row's
/// `prodGreenPercent` is back to 0 (the replacement became the live set).
fn replacement_share(d: &Deployment) -> u8 {
    if d.status == DeploymentStatus::Succeeded {
        100
    } else {
        d.prod_green_percent
    }
}

/// The production split over time as an SVG step line: the server draws
/// what it knows (0% at the start, the current split until now); the script
/// adds every change the event stream brings and keeps the line growing.
fn chart(d: &Deployment, now: u64) -> Markup {
    let end = d.finished_at.unwrap_or(now).max(d.updated_at);
    let share = replacement_share(d);
    let samples = [(d.created_at, 0u8), (d.updated_at, share), (end, share)];
    let json = serde_json::to_string(&samples).unwrap_or_default();
    let (t0, t1) = (d.created_at, end.max(d.created_at + 1));
    let x = |t: u64| (t.saturating_sub(t0) as f64 / (t1 - t0) as f64) * 600.0;
    let y = |p: u8| 100.0 - f64::from(p);
    let mut points = String::new();
    let mut last = None;
    for (t, p) in samples {
        if let Some(prev) = last {
            points.push_str(&format!("{:.1},{:.1} ", x(t), y(prev)));
        }
        points.push_str(&format!("{:.1},{:.1} ", x(t), y(p)));
        last = Some(p);
    }
    html! {
        figure.chart data-samples=(json) data-percent=(share)
            data-running=[d.finished_at.is_none().then_some("true")] {
            div.plot {
                span.axis.top { "100%" } span.axis.mid { "50%" } span.axis.bottom { "0%" }
                svg viewBox="0 0 600 100" preserveAspectRatio="none" role="img"
                    aria-label={ "Replacement share of production traffic: now " (share) "%" } {
                    line.grid x1="0" y1="50" x2="600" y2="50" vector-effect="non-scaling-stroke" {}
                    polyline points=(points) fill="none" stroke="currentColor" stroke-width="3"
                        vector-effect="non-scaling-stroke" {}
                }
            }
            figcaption { "Share of production traffic on the replacement since the start: now "
                span.now { (share) "%" } }
        }
    }
}

pub(crate) async fn show(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    match markup(&st, &session, id).await {
        Ok(m) => m.into_response(),
        Err(e) => error_page(e),
    }
}
