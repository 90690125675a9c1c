//! Pipelines: list, describe, start, executions, approvals, stop, retry,
//! stage transitions, and the push webhook (`POST /v1/webhooks/{repository}`,
//! outside bearer authentication: it is verified by its own signature).

use super::{ApiError, ApiResult, AppState, views};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use cutover_api::pipelines::{
    ActionView, ApprovalRequest, ApprovalResponse, ExecutionEnvelope, ExecutionList,
    ExecutionSummary, ExecutionView, PipelineDescription, PipelineList, PipelineSummary,
    RefDeleted, RetryStageRequest, RetryStageResponse, StageView, StartExecutionRequest,
    StartExecutionResponse, StartedExecution, StopExecutionRequest, StopExecutionResponse,
    TransitionRequest, TransitionResponse, WebhookResponse,
};
use cutover_ci::webhook;
use cutover_pipeline::engine::{Execution, Input, PipelineState};
use cutover_pipeline::model::Pipeline;
use cutover_store::{ops, pipeline_ops, webhook_ops};

async fn definition(
    st: &AppState,
    name: &str,
) -> Result<(Pipeline, Option<PipelineState>), ApiError> {
    let owned = name.to_string();
    let row = st
        .store
        .call(move |c| pipeline_ops::pipeline(c, &owned))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pipeline {name:?}")))?;
    let p: Pipeline = serde_json::from_value(row.definition)
        .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    Ok((p, st.pipelines.state(name).await?))
}

/// An execution as the API shows it: stages in pipeline order.
fn execution_view(p: &Pipeline, e: &Execution) -> ExecutionView {
    let stages = p
        .stages
        .iter()
        .filter_map(|s| {
            let run = e.stages.get(&s.name)?;
            let actions = s
                .actions
                .iter()
                .filter_map(|a| {
                    let r = run.actions.get(&a.name)?;
                    Some(ActionView {
                        name: a.name.clone(),
                        status: r.status,
                        attempt: run.attempts.get(&a.name).copied().unwrap_or(1),
                        started_at: r.started_at,
                        message: r.message.clone(),
                    })
                })
                .collect();
            Some(StageView {
                name: s.name.clone(),
                status: run.status,
                message: run.message.clone(),
                actions,
            })
        })
        .collect();
    ExecutionView {
        id: e.id.clone(),
        status: e.status,
        kind: e.kind.clone(),
        trigger: e.trigger.clone(),
        started_at: e.started_at,
        updated_at: e.updated_at,
        source_revisions: e.source_revisions.clone(),
        variables: e.variables.clone(),
        output_variables: e.namespaces.clone(),
        message: e.message.clone(),
        stages,
    }
}

fn newest(state: &Option<PipelineState>) -> Vec<&Execution> {
    let mut list: Vec<&Execution> = state
        .as_ref()
        .map(|s| s.executions.values().collect())
        .unwrap_or_default();
    list.sort_by_key(|e| std::cmp::Reverse(e.seq));
    list
}

pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<PipelineList>> {
    let mut pipelines = Vec::new();
    for row in st.store.call(pipeline_ops::list_pipelines).await? {
        let (p, state) = definition(&st, &row.name).await?;
        let latest_execution = newest(&state).first().map(|e| ExecutionSummary {
            id: e.id.clone(),
            status: e.status,
            trigger: e.trigger.clone(),
            started_at: e.started_at,
        });
        pipelines.push(PipelineSummary {
            stages: p.stages.iter().map(|s| s.name.clone()).collect(),
            name: p.name,
            execution_mode: p.execution_mode,
            latest_execution,
            updated_at: row.updated_at,
        });
    }
    Ok(Json(PipelineList { pipelines }))
}

pub(crate) async fn describe(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelineDescription>> {
    let (p, state) = definition(&st, &name).await?;
    let latest = newest(&state).first().map(|e| execution_view(&p, e));
    let transitions = state
        .as_ref()
        .map(|s| s.transitions.clone())
        .unwrap_or_default();
    let subject = format!("pipeline/{name}");
    let events = st.store.call(move |c| ops::events(c, &subject, 50)).await?;
    Ok(Json(PipelineDescription {
        pipeline: p,
        transitions,
        latest_execution: latest,
        events: views::events(events),
    }))
}

pub(crate) async fn start(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Json(req): Json<StartExecutionRequest>,
) -> ApiResult<(StatusCode, Json<StartExecutionResponse>)> {
    let id = st
        .pipelines
        .start_execution(
            &name,
            req.trigger.unwrap_or_else(|| "manual".into()),
            req.variables,
            req.source_revisions,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(StartExecutionResponse { execution_id: id }),
    ))
}

pub(crate) async fn executions(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ExecutionList>> {
    let (p, state) = definition(&st, &name).await?;
    let executions = newest(&state)
        .iter()
        .map(|e| execution_view(&p, e))
        .collect();
    Ok(Json(ExecutionList { executions }))
}

pub(crate) async fn execution(
    State(st): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<ExecutionEnvelope>> {
    let (p, state) = definition(&st, &name).await?;
    let e = state
        .as_ref()
        .and_then(|s| s.executions.get(&id))
        .ok_or_else(|| ApiError::not_found(format!("execution {id:?} of pipeline {name:?}")))?;
    Ok(Json(ExecutionEnvelope {
        execution: execution_view(&p, e),
    }))
}

pub(crate) async fn stop(
    State(st): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    Json(req): Json<StopExecutionRequest>,
) -> ApiResult<Json<StopExecutionResponse>> {
    st.pipelines
        .send(
            &name,
            Input::Stop {
                execution: id.clone(),
                abandon: req.abandon,
                reason: req
                    .reason
                    .unwrap_or_else(|| "stopped through the API".into()),
            },
        )
        .await?;
    Ok(Json(StopExecutionResponse {
        execution_id: id,
        stopping: true,
    }))
}

pub(crate) async fn retry(
    State(st): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    Json(req): Json<RetryStageRequest>,
) -> ApiResult<Json<RetryStageResponse>> {
    st.pipelines
        .send(
            &name,
            Input::RetryStage {
                execution: id.clone(),
                stage: req.stage,
                mode: req.mode,
            },
        )
        .await?;
    Ok(Json(RetryStageResponse {
        execution_id: id,
        retried: true,
    }))
}

pub(crate) async fn approve(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Json(req): Json<ApprovalRequest>,
) -> ApiResult<Json<ApprovalResponse>> {
    let execution = match req.execution {
        Some(e) => e,
        None => {
            let (_, state) = definition(&st, &name).await?;
            newest(&state)
                .into_iter()
                .find(|e| {
                    e.stages.get(&req.stage).is_some_and(|s| {
                        s.actions.get(&req.action).is_some_and(|a| {
                            a.status == cutover_pipeline::engine::ActionStatus::InProgress
                        })
                    })
                })
                .map(|e| e.id.clone())
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "approval {:?} waiting in stage {:?} of pipeline {name:?}",
                        req.action, req.stage
                    ))
                })?
        }
    };
    st.pipelines
        .send(
            &name,
            Input::ApprovalResult {
                execution: execution.clone(),
                stage: req.stage,
                action: req.action,
                approved: req.approved,
                summary: req.summary,
                by: req.by.unwrap_or_else(|| "api".into()),
            },
        )
        .await?;
    Ok(Json(ApprovalResponse {
        execution_id: execution,
        approved: req.approved,
    }))
}

pub(crate) async fn transition(
    State(st): State<AppState>,
    Path((name, stage)): Path<(String, String)>,
    Json(req): Json<TransitionRequest>,
) -> ApiResult<Json<TransitionResponse>> {
    st.pipelines
        .send(
            &name,
            Input::SetTransition {
                stage: stage.clone(),
                enabled: req.enabled,
                reason: req.reason,
            },
        )
        .await?;
    Ok(Json(TransitionResponse {
        stage,
        enabled: req.enabled,
    }))
}

/// The one answer to a webhook that cannot be verified, whatever the
/// reason (unknown repository, no secret, no or a bad signature), so that
/// it does not tell which repositories exist.
fn unverified() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "the webhook could not be verified".to_string(),
    )
}

/// `POST /v1/webhooks/{repository}`: a push from GitHub, GitLab or Gitea.
///
/// Refused with the same 401 for an unknown repository, one without a
/// secret, and a missing or bad signature (the work done is the same: an
/// unknown repository is checked against a dummy secret). A verified push
/// with ids that are not commit ids is refused (400). A delivery id seen
/// before is acknowledged (200, `"duplicate": true`) and starts nothing.
pub(crate) async fn webhook(
    State(st): State<AppState>,
    Path(repository): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<WebhookResponse>)> {
    let owned = repository.clone();
    let spec = st
        .store
        .call(move |c| pipeline_ops::repository(c, &owned))
        .await?
        .map(|row| row.spec);
    let secret = spec
        .as_ref()
        .and_then(|s| s.webhook_secret(|v| std::env::var(v).ok()));
    let (Some(spec), Some(secret)) = (spec, secret) else {
        let why = webhook::verify_unknown(&headers, &body);
        tracing::warn!(repository, reason = %why, "webhook refused: unknown repository or no webhook secret");
        return Err(unverified());
    };
    let forge = webhook::verify(&headers, &body, &secret).map_err(|e| {
        tracing::warn!(repository, reason = %e, "webhook refused");
        unverified()
    })?;
    let event = headers
        .get("x-github-event")
        .or_else(|| headers.get("x-gitea-event"))
        .or_else(|| headers.get("x-gitlab-event"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("push");
    if !matches!(event, "push" | "Push Hook" | "Tag Push Hook") {
        // A ping, or an event Cutover does not act on (pull requests, issues).
        return Ok((
            StatusCode::OK,
            Json(WebhookResponse::Ignored {
                forge: forge.to_string(),
                ignored: event.to_string(),
            }),
        ));
    }
    let push = webhook::parse_push(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if push.after.is_none() {
        // The ref was deleted: nothing to build.
        return Ok((
            StatusCode::OK,
            Json(WebhookResponse::Deleted(RefDeleted {
                forge: forge.to_string(),
                executions: Vec::new(),
            })),
        ));
    }
    let delivery = webhook::delivery_id(&headers);
    if let Some(id) = &delivery
        && !{
            let (repository, id, now) = (repository.clone(), id.clone(), st.clock.now_ms());
            st.store
                .call(move |c| webhook_ops::record_delivery(c, &repository, &id, now))
                .await?
        }
    {
        tracing::info!(repository, forge, delivery = %id, "webhook delivery already seen: ignored");
        return Ok((
            StatusCode::OK,
            Json(WebhookResponse::Duplicate {
                forge: forge.to_string(),
                delivery: id.clone(),
                duplicate: true,
                message: "this delivery was already received; nothing started".into(),
                executions: Vec::new(),
            }),
        ));
    }
    let outcome = match st.pipelines.webhook_push(&repository, &spec, push).await {
        Ok(o) => o,
        Err(e) => {
            if let Some(id) = delivery {
                // Not acted on: a redelivery may try again.
                let repository = repository.clone();
                let _ = st
                    .store
                    .call(move |c| webhook_ops::forget_delivery(c, &repository, &id))
                    .await;
            }
            return Err(e.into());
        }
    };
    let started: Vec<StartedExecution> = outcome
        .started
        .into_iter()
        .map(|(pipeline, execution_id)| StartedExecution {
            pipeline,
            execution_id,
        })
        .collect();
    tracing::info!(
        repository,
        forge,
        commit = outcome.commit.as_deref().unwrap_or("-"),
        started = started.len(),
        "webhook push"
    );
    let status = if started.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(WebhookResponse::Pushed {
            forge: forge.to_string(),
            delivery,
            commit: outcome.commit,
            executions: started,
            message: outcome.note,
        }),
    ))
}
