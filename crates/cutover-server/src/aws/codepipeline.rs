//! AWS CodePipeline over JSON 1.1, onto `/v1`'s pipeline handlers
//! (`api::pipelines`): the same executions, approvals, retries and
//! transitions, shown in CodePipeline's shapes. The pipeline declaration
//! Cutover stores is CodePipeline's own, so GetPipeline answers it as
//! applied.
//!
//! An approval waiting in GetPipelineState carries a token derived from the
//! pipeline, execution, stage, action and attempt; PutApprovalResult finds
//! the waiting approval by it, so a token from an older execution or
//! attempt approves nothing.

use axum::Json;
use axum::extract::{Path, State};
use cutover_api::pipelines::{
    ApprovalRequest, ExecutionView, PipelineDescription, RetryStageRequest, StartExecutionRequest,
    StopExecutionRequest, TransitionRequest,
};
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codepipeline::{self as cp, Operation, errors};
use cutover_pipeline::engine::{
    ActionStatus, ExecutionKind, ExecutionStatus, RetryMode, StageStatus,
};
use cutover_pipeline::model::Pipeline;
use sha2::{Digest, Sha256};

use super::ecs::at;
use super::wire::{self, Call, Reply, input, output};
use crate::api::ApiError;

/// Runs `op`.
pub(super) async fn call(call: &Call<'_>, op: Operation, body: &[u8]) -> Result<Reply, AwsError> {
    match op {
        Operation::ListPipelines => output(&list(call, input(body)?).await?),
        Operation::GetPipeline => output(&get(call, input(body)?).await?),
        Operation::GetPipelineState => output(&state(call, input(body)?).await?),
        Operation::StartPipelineExecution => output(&start(call, input(body)?).await?),
        Operation::GetPipelineExecution => output(&get_execution(call, input(body)?).await?),
        Operation::ListPipelineExecutions => output(&list_executions(call, input(body)?).await?),
        Operation::StopPipelineExecution => output(&stop(call, input(body)?).await?),
        Operation::PutApprovalResult => output(&approve(call, input(body)?).await?),
        Operation::RetryStageExecution => output(&retry(call, input(body)?).await?),
        Operation::EnableStageTransition => {
            let req: cp::EnableStageTransitionInput = input(body)?;
            transition(
                call,
                &req.pipeline_name,
                &req.stage_name,
                true,
                String::new(),
            )
            .await?;
            output(&serde_json::Map::new())
        }
        Operation::DisableStageTransition => {
            let req: cp::DisableStageTransitionInput = input(body)?;
            transition(call, &req.pipeline_name, &req.stage_name, false, req.reason).await?;
            output(&serde_json::Map::new())
        }
    }
}

/// A refusal of `/v1`'s operation: a 404 is the pipeline's (or
/// `not_found`), a 409 a conflict.
fn refused(e: ApiError, not_found: &str) -> AwsError {
    if e.status() == axum::http::StatusCode::CONFLICT {
        return AwsError::client(errors::CONFLICT_EXCEPTION, e.to_string());
    }
    wire::refused(e, not_found, errors::VALIDATION_EXCEPTION)
}

async fn describe(call: &Call<'_>, name: &str) -> Result<PipelineDescription, AwsError> {
    crate::api::pipelines::describe(State(call.st.clone()), Path(name.to_string()))
        .await
        .map(|j| j.0)
        .map_err(|e| refused(e, errors::PIPELINE_NOT_FOUND_EXCEPTION))
}

async fn executions(call: &Call<'_>, name: &str) -> Result<Vec<ExecutionView>, AwsError> {
    crate::api::pipelines::executions(State(call.st.clone()), Path(name.to_string()))
        .await
        .map(|j| j.0.executions)
        .map_err(|e| refused(e, errors::PIPELINE_NOT_FOUND_EXCEPTION))
}

fn pipeline_arn(call: &Call<'_>, name: &str) -> String {
    call.arn("codepipeline", name)
}

fn execution_status(s: ExecutionStatus) -> cp::PipelineExecutionStatus {
    match s {
        ExecutionStatus::InProgress => cp::PipelineExecutionStatus::InProgress,
        ExecutionStatus::Stopping => cp::PipelineExecutionStatus::Stopping,
        ExecutionStatus::Stopped => cp::PipelineExecutionStatus::Stopped,
        ExecutionStatus::Succeeded => cp::PipelineExecutionStatus::Succeeded,
        ExecutionStatus::Superseded => cp::PipelineExecutionStatus::Superseded,
        ExecutionStatus::Failed => cp::PipelineExecutionStatus::Failed,
    }
}

fn stage_status(s: StageStatus) -> cp::StageExecutionStatus {
    match s {
        StageStatus::InProgress => cp::StageExecutionStatus::InProgress,
        StageStatus::Succeeded => cp::StageExecutionStatus::Succeeded,
        StageStatus::Failed => cp::StageExecutionStatus::Failed,
        StageStatus::Stopped => cp::StageExecutionStatus::Stopped,
        StageStatus::Skipped => cp::StageExecutionStatus::Skipped,
    }
}

fn action_status(s: ActionStatus) -> cp::ActionExecutionStatus {
    match s {
        ActionStatus::InProgress => cp::ActionExecutionStatus::InProgress,
        ActionStatus::Succeeded => cp::ActionExecutionStatus::Succeeded,
        ActionStatus::Failed => cp::ActionExecutionStatus::Failed,
        ActionStatus::Abandoned => cp::ActionExecutionStatus::Abandoned,
    }
}

/// The token of one attempt of an approval.
fn token(pipeline: &str, execution: &str, stage: &str, action: &str, attempt: u32) -> String {
    let h = hex::encode(Sha256::digest(
        format!("{pipeline}\n{execution}\n{stage}\n{action}\n{attempt}").as_bytes(),
    ));
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn is_approval(p: &Pipeline, stage: &str, action: &str) -> bool {
    p.stages
        .iter()
        .find(|s| s.name == stage)
        .and_then(|s| s.actions.iter().find(|a| a.name == action))
        .is_some_and(|a| a.action_type_id.category == "Approval")
}

async fn list(
    call: &Call<'_>,
    req: cp::ListPipelinesInput,
) -> Result<cp::ListPipelinesOutput, AwsError> {
    let all = crate::api::pipelines::list(State(call.st.clone()))
        .await
        .map_err(|e| refused(e, errors::PIPELINE_NOT_FOUND_EXCEPTION))?
        .0
        .pipelines;
    let names: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
    let (names, next) = wire::next_token_page(names, req.next_token.as_deref(), req.max_results)?;
    Ok(cp::ListPipelinesOutput {
        pipelines: Some(
            all.iter()
                .filter(|p| names.contains(&p.name))
                .map(|p| cp::PipelineSummary {
                    name: Some(p.name.clone()),
                    version: Some(1),
                    pipeline_type: Some(cp::PipelineType::V2),
                    updated: Some(at(p.updated_at)),
                    ..Default::default()
                })
                .collect(),
        ),
        next_token: next,
    })
}

async fn get(
    call: &Call<'_>,
    req: cp::GetPipelineInput,
) -> Result<cp::GetPipelineOutput, AwsError> {
    let d = describe(call, &req.name).await?;
    let declaration = serde_json::to_value(&d.pipeline)
        .and_then(serde_json::from_value::<cp::PipelineDeclaration>)
        .map_err(|e| wire::internal(&e, "show a stored pipeline as CodePipeline's declaration"))?;
    Ok(cp::GetPipelineOutput {
        pipeline: Some(declaration),
        metadata: Some(cp::PipelineMetadata {
            pipeline_arn: Some(pipeline_arn(call, &req.name)),
            ..Default::default()
        }),
    })
}

async fn state(
    call: &Call<'_>,
    req: cp::GetPipelineStateInput,
) -> Result<cp::GetPipelineStateOutput, AwsError> {
    let d = describe(call, &req.name).await?;
    let runs = executions(call, &req.name).await?;
    let stage_states = d
        .pipeline
        .stages
        .iter()
        .map(|stage| {
            // The newest execution that reached this stage.
            let latest = runs.iter().find_map(|e| {
                e.stages
                    .iter()
                    .find(|s| s.name == stage.name)
                    .map(|s| (e, s))
            });
            let transition = d.transitions.get(&stage.name);
            cp::StageState {
                stage_name: Some(stage.name.clone()),
                inbound_transition_state: Some(cp::TransitionState {
                    enabled: Some(transition.is_none_or(|t| t.enabled)),
                    disabled_reason: transition.filter(|t| !t.enabled).map(|t| t.reason.clone()),
                    ..Default::default()
                }),
                latest_execution: latest.map(|(e, s)| cp::StageExecution {
                    pipeline_execution_id: Some(e.id.clone()),
                    status: Some(stage_status(s.status)),
                    type_: None,
                }),
                action_states: Some(
                    stage
                        .actions
                        .iter()
                        .map(|a| cp::ActionState {
                            action_name: Some(a.name.clone()),
                            latest_execution: latest.and_then(|(e, s)| {
                                let run = s.actions.iter().find(|r| r.name == a.name)?;
                                let waiting = run.status == ActionStatus::InProgress
                                    && a.action_type_id.category == "Approval";
                                Some(cp::ActionExecution {
                                    action_execution_id: Some(format!(
                                        "{}-{}-{}-{}",
                                        e.id, stage.name, a.name, run.attempt
                                    )),
                                    status: Some(action_status(run.status)),
                                    summary: run.message.clone(),
                                    last_status_change: Some(at(run.started_at)),
                                    token: waiting.then(|| {
                                        token(&req.name, &e.id, &stage.name, &a.name, run.attempt)
                                    }),
                                    ..Default::default()
                                })
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }
        })
        .collect();
    Ok(cp::GetPipelineStateOutput {
        pipeline_name: Some(req.name),
        pipeline_version: Some(1),
        stage_states: Some(stage_states),
        created: None,
        updated: None,
    })
}

async fn start(
    call: &Call<'_>,
    req: cp::StartPipelineExecutionInput,
) -> Result<cp::StartPipelineExecutionOutput, AwsError> {
    let variables = req
        .variables
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.name, v.value))
        .collect();
    let source_revisions: std::collections::BTreeMap<String, String> = req
        .source_revisions
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.action_name, r.revision_value))
        .collect();
    may_choose_revisions(
        call.st.aws.keys.is_issued(&call.caller.access_key_id),
        &source_revisions,
    )?;
    let started = crate::api::pipelines::start(
        State(call.st.clone()),
        Path(req.name),
        Json(StartExecutionRequest {
            variables,
            source_revisions,
            trigger: Some(format!(
                "codepipeline:StartPipelineExecution ({})",
                call.caller.access_key_id
            )),
        }),
    )
    .await
    .map_err(|e| refused(e, errors::PIPELINE_NOT_FOUND_EXCEPTION))?;
    Ok(cp::StartPipelineExecutionOutput {
        pipeline_execution_id: Some(started.1.0.execution_id),
    })
}

fn execution_type(kind: &ExecutionKind) -> cp::ExecutionType {
    match kind {
        ExecutionKind::Standard => cp::ExecutionType::Standard,
        ExecutionKind::Rollback { .. } => cp::ExecutionType::Rollback,
    }
}

async fn get_execution(
    call: &Call<'_>,
    req: cp::GetPipelineExecutionInput,
) -> Result<cp::GetPipelineExecutionOutput, AwsError> {
    let e = crate::api::pipelines::execution(
        State(call.st.clone()),
        Path((req.pipeline_name.clone(), req.pipeline_execution_id.clone())),
    )
    .await
    .map_err(|e| refused(e, errors::PIPELINE_EXECUTION_NOT_FOUND_EXCEPTION))?
    .0
    .execution;
    Ok(cp::GetPipelineExecutionOutput {
        pipeline_execution: Some(cp::PipelineExecution {
            pipeline_name: Some(req.pipeline_name),
            pipeline_version: Some(1),
            pipeline_execution_id: Some(e.id.clone()),
            status: Some(execution_status(e.status)),
            status_summary: e.message.clone(),
            variables: Some(
                e.variables
                    .iter()
                    .map(|(k, v)| cp::ResolvedPipelineVariable {
                        name: Some(k.clone()),
                        resolved_value: Some(v.clone()),
                    })
                    .collect(),
            ),
            execution_type: Some(execution_type(&e.kind)),
            ..Default::default()
        }),
    })
}

async fn list_executions(
    call: &Call<'_>,
    req: cp::ListPipelineExecutionsInput,
) -> Result<cp::ListPipelineExecutionsOutput, AwsError> {
    let runs = executions(call, &req.pipeline_name).await?;
    let ids = runs.iter().map(|e| e.id.clone()).collect();
    let (ids, next) = wire::next_token_page(ids, req.next_token.as_deref(), req.max_results)?;
    Ok(cp::ListPipelineExecutionsOutput {
        pipeline_execution_summaries: Some(
            runs.iter()
                .filter(|e| ids.contains(&e.id))
                .map(|e| cp::PipelineExecutionSummary {
                    pipeline_execution_id: Some(e.id.clone()),
                    status: Some(execution_status(e.status)),
                    status_summary: e.message.clone(),
                    start_time: Some(at(e.started_at)),
                    last_update_time: Some(at(e.updated_at)),
                    execution_type: Some(execution_type(&e.kind)),
                    ..Default::default()
                })
                .collect(),
        ),
        next_token: next,
    })
}

async fn stop(
    call: &Call<'_>,
    req: cp::StopPipelineExecutionInput,
) -> Result<cp::StopPipelineExecutionOutput, AwsError> {
    let runs = executions(call, &req.pipeline_name).await?;
    let e = runs
        .iter()
        .find(|e| e.id == req.pipeline_execution_id)
        .ok_or_else(|| {
            AwsError::client(
                errors::PIPELINE_EXECUTION_NOT_FOUND_EXCEPTION,
                format!("Pipeline execution {} not found", req.pipeline_execution_id),
            )
        })?;
    match e.status {
        ExecutionStatus::InProgress => {}
        ExecutionStatus::Stopping => {
            return Err(AwsError::client(
                errors::DUPLICATED_STOP_REQUEST_EXCEPTION,
                "The execution is already stopping",
            ));
        }
        _ => {
            return Err(AwsError::client(
                errors::PIPELINE_EXECUTION_NOT_STOPPABLE_EXCEPTION,
                "Only an execution in progress can be stopped",
            ));
        }
    }
    let _stopping = crate::api::pipelines::stop(
        State(call.st.clone()),
        Path((req.pipeline_name, req.pipeline_execution_id.clone())),
        Json(StopExecutionRequest {
            abandon: req.abandon.unwrap_or(false),
            reason: req.reason,
        }),
    )
    .await
    .map_err(|e| refused(e, errors::PIPELINE_EXECUTION_NOT_FOUND_EXCEPTION))?;
    Ok(cp::StopPipelineExecutionOutput {
        pipeline_execution_id: Some(req.pipeline_execution_id),
    })
}

async fn approve(
    call: &Call<'_>,
    req: cp::PutApprovalResultInput,
) -> Result<cp::PutApprovalResultOutput, AwsError> {
    let d = describe(call, &req.pipeline_name).await?;
    if !d.pipeline.stages.iter().any(|s| s.name == req.stage_name) {
        return Err(AwsError::client(
            errors::STAGE_NOT_FOUND_EXCEPTION,
            format!(
                "Stage {} not found in pipeline {}",
                req.stage_name, req.pipeline_name
            ),
        ));
    }
    if !is_approval(&d.pipeline, &req.stage_name, &req.action_name) {
        return Err(AwsError::client(
            errors::ACTION_NOT_FOUND_EXCEPTION,
            format!(
                "Approval action {} not found in stage {}",
                req.action_name, req.stage_name
            ),
        ));
    }
    let runs = executions(call, &req.pipeline_name).await?;
    let mut waiting_any = false;
    let mut found = None;
    for e in &runs {
        let Some(run) = e
            .stages
            .iter()
            .find(|s| s.name == req.stage_name)
            .and_then(|s| s.actions.iter().find(|a| a.name == req.action_name))
        else {
            continue;
        };
        let t = token(
            &req.pipeline_name,
            &e.id,
            &req.stage_name,
            &req.action_name,
            run.attempt,
        );
        if t == req.token {
            found = Some((e.id.clone(), run.status));
            break;
        }
        waiting_any |= run.status == ActionStatus::InProgress;
    }
    let execution = match found {
        Some((id, ActionStatus::InProgress)) => id,
        Some(_) => {
            return Err(AwsError::client(
                errors::APPROVAL_ALREADY_COMPLETED_EXCEPTION,
                "The approval action has already been completed",
            ));
        }
        None => {
            return Err(AwsError::client(
                errors::INVALID_APPROVAL_TOKEN_EXCEPTION,
                if waiting_any {
                    "The token does not match the approval waiting: read it again with GetPipelineState"
                } else {
                    "No approval is waiting for this token"
                },
            ));
        }
    };
    let _approved = crate::api::pipelines::approve(
        State(call.st.clone()),
        Path(req.pipeline_name),
        Json(ApprovalRequest {
            execution: Some(execution),
            stage: req.stage_name,
            action: req.action_name,
            approved: req.result.status == cp::ApprovalStatus::Approved,
            summary: req.result.summary,
            by: Some(super::caller_arn(call.st, call.caller)),
        }),
    )
    .await
    .map_err(|e| refused(e, errors::ACTION_NOT_FOUND_EXCEPTION))?;
    Ok(cp::PutApprovalResultOutput {
        approved_at: Some(at(call.st.clock.now_ms())),
    })
}

async fn retry(
    call: &Call<'_>,
    req: cp::RetryStageExecutionInput,
) -> Result<cp::RetryStageExecutionOutput, AwsError> {
    let _retried = crate::api::pipelines::retry(
        State(call.st.clone()),
        Path((req.pipeline_name, req.pipeline_execution_id.clone())),
        Json(RetryStageRequest {
            stage: req.stage_name,
            mode: match req.retry_mode {
                cp::StageRetryMode::FailedActions => RetryMode::FailedActions,
                cp::StageRetryMode::AllActions => RetryMode::AllActions,
            },
        }),
    )
    .await
    .map_err(|e| {
        if e.status() == axum::http::StatusCode::CONFLICT {
            AwsError::client(errors::STAGE_NOT_RETRYABLE_EXCEPTION, e.to_string())
        } else {
            refused(e, errors::PIPELINE_EXECUTION_NOT_FOUND_EXCEPTION)
        }
    })?;
    Ok(cp::RetryStageExecutionOutput {
        pipeline_execution_id: Some(req.pipeline_execution_id),
    })
}

async fn transition(
    call: &Call<'_>,
    pipeline: &str,
    stage: &str,
    enabled: bool,
    reason: String,
) -> Result<(), AwsError> {
    let d = describe(call, pipeline).await?;
    if !d.pipeline.stages.iter().any(|s| s.name == stage) {
        return Err(AwsError::client(
            errors::STAGE_NOT_FOUND_EXCEPTION,
            format!("Stage {stage} not found in pipeline {pipeline}"),
        ));
    }
    let _set = crate::api::pipelines::transition(
        State(call.st.clone()),
        Path((pipeline.to_string(), stage.to_string())),
        Json(TransitionRequest { enabled, reason }),
    )
    .await
    .map_err(|e| refused(e, errors::STAGE_NOT_FOUND_EXCEPTION))?;
    Ok(())
}

/// A build's or a hook's key (`issued`) may start a pipeline, but not
/// choose the commit it builds: a later privileged build (the engine's
/// socket) would otherwise run a buildspec from any commit the mirror holds
/// (another branch, a fork's pull request).
fn may_choose_revisions(
    issued: bool,
    source_revisions: &std::collections::BTreeMap<String, String>,
) -> Result<(), AwsError> {
    if issued && !source_revisions.is_empty() {
        return Err(AwsError::client(
            "AccessDeniedException",
            "sourceRevisions cannot be given with a build's or a hook's credentials: start the pipeline at its branch head, or with an operator's key".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{may_choose_revisions, token};

    #[test]
    fn builds_and_hooks_cannot_choose_the_commit_a_pipeline_builds() {
        let none = std::collections::BTreeMap::new();
        let chosen = [("Source".to_string(), "refs/pull/7/head".to_string())].into();
        assert!(may_choose_revisions(false, &chosen).is_ok());
        assert!(may_choose_revisions(true, &none).is_ok());
        let e = may_choose_revisions(true, &chosen).unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
    }

    #[test]
    fn approval_tokens_differ_per_execution_and_attempt() {
        let a = token("p", "e1", "Approve", "Manual", 1);
        assert_eq!(a.len(), 36);
        assert_eq!(a, token("p", "e1", "Approve", "Manual", 1));
        assert_ne!(a, token("p", "e1", "Approve", "Manual", 2));
        assert_ne!(a, token("p", "e2", "Approve", "Manual", 1));
    }
}
