//! The console's form posts: each checks the CSRF token, calls the `/v1`
//! handler of the same action with its typed request, and answers
//! `303 See Other` back to the page (or an error page).

use super::auth::{Session, csrf_refusal};
use super::pages::error_page;
use crate::api::{ApiError, AppState, deployments, pipelines};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use cutover_api::deployments::StopDeploymentRequest;
use cutover_api::host_deployments::StopHostDeploymentQuery;
use cutover_api::pipelines::{
    ApprovalRequest, RetryStageRequest, StartExecutionRequest, StopExecutionRequest,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Runs an action after the CSRF check; `Ok` is where to go next.
async fn act<F>(session: &Session, csrf: &str, f: F) -> Response
where
    F: Future<Output = Result<String, ApiError>>,
{
    if let Some(refused) = csrf_refusal(session, csrf) {
        return refused;
    }
    match f.await {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct StopForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rollback: bool,
}

pub(crate) async fn stop(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(f): Form<StopForm>,
) -> Response {
    act(&session, &f.csrf, async {
        let req = StopDeploymentRequest {
            rollback: Some(f.rollback),
        };
        let _ = deployments::stop(State(st), Path(id.clone()), Some(Json(req))).await?;
        Ok(format!("/deployments/{id}"))
    })
    .await
}

/// Stop, or Stop and roll back, a host deployment.
pub(crate) async fn stop_host_deployment(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(f): Form<StopForm>,
) -> Response {
    act(&session, &f.csrf, async {
        let q = StopHostDeploymentQuery {
            rollback: f.rollback,
        };
        let _ = crate::hosts::deploy_api::stop(State(st), Path(id.clone()), Query(q)).await?;
        Ok(format!("/host-deployments/{id}"))
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn continue_(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    act(&session, &f.csrf, async {
        let _ = deployments::continue_(State(st), Path(id.clone())).await?;
        Ok(format!("/deployments/{id}"))
    })
    .await
}

pub(crate) async fn rollback(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    act(&session, &f.csrf, async {
        let (_, Json(env)) = deployments::rollback_service(State(st), Path(name)).await?;
        Ok(format!("/deployments/{}", env.deployment.id))
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct ApprovalForm {
    #[serde(default)]
    csrf: String,
    execution: Option<String>,
    stage: String,
    action: String,
    /// `approve` or `reject` (the button pressed).
    decision: Decision,
    #[serde(default)]
    summary: String,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Decision {
    Approve,
    Reject,
}

pub(crate) async fn approve(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(f): Form<ApprovalForm>,
) -> Response {
    act(&session, &f.csrf, async {
        let req = ApprovalRequest {
            execution: f.execution.clone(),
            stage: f.stage.clone(),
            action: f.action.clone(),
            approved: matches!(f.decision, Decision::Approve),
            summary: f.summary.clone(),
            by: Some("console".into()),
        };
        let _ = pipelines::approve(State(st), Path(name.clone()), Json(req)).await?;
        Ok(format!("/pipelines/{name}"))
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct RetryForm {
    #[serde(default)]
    csrf: String,
    stage: String,
}

pub(crate) async fn retry(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path((name, id)): Path<(String, String)>,
    Form(f): Form<RetryForm>,
) -> Response {
    act(&session, &f.csrf, async {
        let req = RetryStageRequest {
            stage: f.stage.clone(),
            mode: cutover_pipeline::engine::RetryMode::FailedActions,
        };
        let _ = pipelines::retry(State(st), Path((name.clone(), id)), Json(req)).await?;
        Ok(format!("/pipelines/{name}"))
    })
    .await
}

pub(crate) async fn stop_execution(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path((name, id)): Path<(String, String)>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    act(&session, &f.csrf, async {
        let req = StopExecutionRequest {
            abandon: false,
            reason: Some("stopped from the console".into()),
        };
        let _ = pipelines::stop(State(st), Path((name.clone(), id)), Json(req)).await?;
        Ok(format!("/pipelines/{name}"))
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    variables: String,
}

/// `NAME=VALUE` lines (blank lines skipped) as a map, or the line that is not one.
fn variables(text: &str) -> Result<BTreeMap<String, String>, ApiError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(ApiError::bad_request(format!(
                "variable line {l:?} is not NAME=VALUE"
            ))),
        })
        .collect()
}

pub(crate) async fn start(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(f): Form<StartForm>,
) -> Response {
    act(&session, &f.csrf, async {
        let req = StartExecutionRequest {
            variables: variables(&f.variables)?,
            source_revisions: BTreeMap::new(),
            trigger: Some("console".into()),
        };
        let _ = pipelines::start(State(st), Path(name.clone()), Json(req)).await?;
        Ok(format!("/pipelines/{name}"))
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn variable_lines() {
        let v = super::variables("A=1\n\n B = x=y \n").unwrap();
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], " x=y");
        assert!(super::variables("nope").is_err());
        assert!(super::variables("=1").is_err());
    }
}
