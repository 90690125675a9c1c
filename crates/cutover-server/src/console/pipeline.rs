//! A pipeline's page: the stage graph of its latest execution with live
//! action status, waiting approvals (Approve / Reject with a comment),
//! Retry stage, Stop, Start with variables, variables and artifacts, each
//! build action's log (streaming while it runs: the script tails `GET
//! /v1/builds/{id}/logs?offset=N`), and the execution history.

use super::auth::Session;
use super::layout::{badge, button_form, csrf, page, time, tone};
use super::pages::error_page;
use crate::api::{ApiError, AppState, builds, pipelines};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use cutover_api::builds::{Build, BuildStatus};
use cutover_api::pipelines::ExecutionView;
use cutover_api::query::BuildListQuery;
use cutover_api::wire_name;
use cutover_pipeline::engine::{ActionStatus, ExecutionStatus, StageStatus};
use cutover_pipeline::model::Pipeline;
use maud::{Markup, html};
use std::collections::HashMap;

pub(crate) async fn show(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    match markup(&st, &session, name).await {
        Ok(m) => m.into_response(),
        Err(e) => error_page(e),
    }
}

fn is_approval(p: &Pipeline, stage: &str, action: &str) -> bool {
    p.stages
        .iter()
        .filter(|s| s.name == stage)
        .flat_map(|s| &s.actions)
        .any(|a| a.name == action && a.action_type_id.category == "Approval")
}

async fn markup(st: &AppState, session: &Session, name: String) -> Result<Markup, ApiError> {
    let desc = pipelines::describe(State(st.clone()), Path(name.clone()))
        .await?
        .0;
    let executions = pipelines::executions(State(st.clone()), Path(name.clone()))
        .await?
        .0
        .executions;
    // The builds of this pipeline's action attempts, by their key.
    let q = BuildListQuery {
        project: None,
        limit: BUILDS_READ,
    };
    let builds: HashMap<String, Build> = builds::list(State(st.clone()), Query(q))
        .await?
        .0
        .builds
        .into_iter()
        .filter_map(|b| Some((b.action_key.clone()?, b)))
        .collect();
    let p = &desc.pipeline;
    let base = format!("/pipelines/{name}");
    Ok(page(
        &format!("Pipeline {name}"),
        Some(&format!("pipeline/{name}")),
        session,
        html! {
            @if let Some(e) = &desc.latest_execution {
                section aria-labelledby="latest" {
                    h2 #latest { "Execution " code { (e.id) } " " (badge(&wire_name(&e.status))) }
                    p { "Started " (time(e.started_at)) " by " (e.trigger)
                        @if let Some(m) = &e.message { " · " (m) } }
                    @if e.status == ExecutionStatus::InProgress {
                        (button_form(session, &format!("{base}/executions/{}/stop", e.id), "Stop", "", &[]))
                    }
                    (graph(session, p, &base, e, &builds))
                    (values(e))
                }
            } @else {
                p { "No execution yet." }
            }
            section aria-labelledby="start" {
                h2 #start { "Start" }
                form.card method="post" action={ (base) "/executions" } {
                    (csrf(session))
                    label for="variables" { "Variables, one NAME=VALUE a line" }
                    textarea #variables name="variables" rows="3" {
                        @for v in &p.variables { (v.name) "=" (v.default_value.as_deref().unwrap_or("")) "\n" }
                    }
                    button type="submit" { "Start execution" }
                }
            }
            section aria-labelledby="executions" {
                h2 #executions { "Executions" }
                ol.timeline { @for e in &executions { li {
                    code { (e.id) } " " (badge(&wire_name(&e.status))) " " (time(e.started_at)) " · " (e.trigger)
                } } }
            }
            section aria-labelledby="events" {
                h2 #events { "Events" }
                ol.timeline { @for e in &desc.events { li { (time(e.at)) " " (e.message) } } }
            }
        },
    ))
}

/// The stages left to right (top to bottom on a phone), each with its
/// actions, an approval form where one waits, and Retry stage where one
/// failed.
fn graph(
    session: &Session,
    p: &Pipeline,
    base: &str,
    e: &ExecutionView,
    builds: &HashMap<String, Build>,
) -> Markup {
    html! {
        ol.stages aria-label="Stages" {
            @for s in &e.stages {
                li class={ "stage " (tone(&wire_name(&s.status))) } {
                    h3 { (s.name) " " (badge(&wire_name(&s.status))) }
                    @if let Some(m) = &s.message { p.output { (m) } }
                    ul.actions { @for a in &s.actions { li {
                        (a.name) " " (badge(&wire_name(&a.status)))
                        @if a.attempt > 1 { " attempt " (a.attempt) }
                        @if let Some(m) = &a.message { pre.output { (m) } }
                        @if let Some(b) = builds.get(&cutover_ci::attempt_key(&p.name, &e.id, &s.name, &a.name, a.attempt)) {
                            (build_log(&a.name, b))
                        }
                        @if a.status == ActionStatus::InProgress && is_approval(p, &s.name, &a.name) {
                            form.card method="post" action={ (base) "/approvals" } {
                                (csrf(session))
                                input type="hidden" name="execution" value=(e.id);
                                input type="hidden" name="stage" value=(s.name);
                                input type="hidden" name="action" value=(a.name);
                                label for={ "c-" (s.name) "-" (a.name) } { "Comment" }
                                textarea id={ "c-" (s.name) "-" (a.name) } name="summary" rows="2" {}
                                button type="submit" name="decision" value="approve" { "Approve" }
                                button.danger type="submit" name="decision" value="reject" { "Reject" }
                            }
                        }
                    } } }
                    @if matches!(s.status, StageStatus::Failed | StageStatus::Stopped) {
                        (button_form(session, &format!("{base}/executions/{}/retry", e.id), "Retry stage", "", &[("stage", &s.name)]))
                    }
                }
            }
        }
    }
}

/// The most recent builds looked at for the latest execution's actions.
const BUILDS_READ: u32 = 200;

/// A build action's log: open and following while the build runs.
fn build_log(action: &str, b: &Build) -> Markup {
    let url = format!("/v1/builds/{}/logs", b.id);
    html! {
        details.build id={ "log-" (b.id) } open[b.status == BuildStatus::InProgress] {
            summary { "Build log of " (action) " (" code { (b.id) } ", " (b.status.as_str()) ")" }
            pre.logs data-build-log=(url) tabindex="0" aria-label={ "Build log of " (action) } {
                "The log streams here with JavaScript on; " a href=(url) { "read it as JSON" } "."
            }
        }
    }
}

/// Variables, output variables and source revisions of an execution.
fn values(e: &ExecutionView) -> Markup {
    html! {
        details { summary { "Variables and artifacts" }
            dl {
                @for (k, v) in &e.variables { dt { "variables." (k) } dd { code { (v) } } }
                @for (ns, vars) in &e.output_variables { @for (k, v) in vars {
                    dt { (ns) "." (k) } dd { code { (v) } } } }
                @for (artifact, rev) in &e.source_revisions { dt { "artifact " (artifact) } dd { code { (rev) } } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cutover_api::builds::{Build, BuildStatus};

    fn build(status: BuildStatus) -> Build {
        Build {
            id: "app:7".into(),
            project: "app".into(),
            number: 7,
            status,
            initiator: "codepipeline/app".into(),
            action_key: Some(cutover_ci::attempt_key("app", "e1", "Build", "Build", 1)),
            source: None,
            work_dir: "/tmp/w".into(),
            detail: serde_json::Value::Null,
            message: None,
            started_at: 1,
            finished_at: None,
            duration_ms: None,
        }
    }

    #[test]
    fn a_running_build_s_log_is_open_and_tailed_from_its_log_endpoint() {
        let html = super::build_log("Build", &build(BuildStatus::InProgress)).into_string();
        assert!(
            html.contains(r#"data-build-log="/v1/builds/app:7/logs""#),
            "{html}"
        );
        assert!(
            html.contains("<details class=\"build\" id=\"log-app:7\" open>"),
            "{html}"
        );
        assert!(
            html.contains(r#"aria-label="Build log of Build""#),
            "{html}"
        );
        let done = super::build_log("Build", &build(BuildStatus::Succeeded)).into_string();
        assert!(!done.contains(" open>"), "{done}");
        assert!(done.contains("SUCCEEDED"), "{done}");
    }
}
