//! CodeDeploy deployments: CreateDeployment reads the ECS appspec carried
//! inline (`AppSpecContent` or `String`, as the GitHub action and
//! CodePipeline send it) and runs `/v1`'s create; GetDeployment and
//! ListDeployments read the deployment rows; stop, continue and the hook
//! callback are `/v1`'s, so `aws deploy wait deployment-successful` follows
//! the very deployment `cutover deployments get` shows. Host applications'
//! deployments are `host_deployments`'; each call here hands them over.

use axum::Json;
use axum::extract::{Path, State};
use cutover_api::deployments::{
    CreateDeploymentRequest, FileBody, StopDeploymentRequest, TaskDefinitionSource,
};
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codedeploy::{self as cd, errors};
use cutover_deploy::bluegreen::{DeploymentStatus, HookOutcome};
use cutover_store::{DeploymentRow, ServiceRow, ops};
use sha2::{Digest, Sha256};

use super::{application_of, group_of, host_apps, host_deployments, host_groups, service_of};
use crate::aws::ecs::at;
use crate::aws::wire::{self, Call};

fn status(s: DeploymentStatus) -> cd::DeploymentStatus {
    match s {
        DeploymentStatus::Created => cd::DeploymentStatus::Created,
        DeploymentStatus::Queued => cd::DeploymentStatus::Queued,
        DeploymentStatus::InProgress => cd::DeploymentStatus::InProgress,
        DeploymentStatus::Baking => cd::DeploymentStatus::Baking,
        DeploymentStatus::Ready => cd::DeploymentStatus::Ready,
        DeploymentStatus::Succeeded => cd::DeploymentStatus::Succeeded,
        DeploymentStatus::Failed => cd::DeploymentStatus::Failed,
        DeploymentStatus::Stopped => cd::DeploymentStatus::Stopped,
    }
}

/// CodeDeploy's error code for how a deployment ended, read from its
/// recorded outcome.
fn error_code(d: &DeploymentRow) -> cd::ErrorCode {
    let why = d
        .outcome
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if d.status == DeploymentStatus::Stopped {
        cd::ErrorCode::ManualStop
    } else if why.contains("alarm") {
        cd::ErrorCode::AlarmActive
    } else if why.contains("hook") {
        cd::ErrorCode::HookExecutionFailure
    } else if why.contains("timed out") || why.contains("timeout") {
        cd::ErrorCode::Timeout
    } else {
        cd::ErrorCode::EcsUpdateError
    }
}

/// An overview with every count at zero (CodeDeploy sends them all).
pub(super) fn zero_overview() -> cd::DeploymentOverview {
    cd::DeploymentOverview {
        pending: Some(0),
        in_progress: Some(0),
        succeeded: Some(0),
        failed: Some(0),
        skipped: Some(0),
        ready: Some(0),
    }
}

/// The one ECS target of a deployment, counted in its state.
fn overview(s: DeploymentStatus) -> cd::DeploymentOverview {
    let mut o = zero_overview();
    let slot = match s {
        DeploymentStatus::Created | DeploymentStatus::Queued => &mut o.pending,
        DeploymentStatus::InProgress | DeploymentStatus::Baking => &mut o.in_progress,
        DeploymentStatus::Ready => &mut o.ready,
        DeploymentStatus::Succeeded => &mut o.succeeded,
        DeploymentStatus::Failed | DeploymentStatus::Stopped => &mut o.failed,
    };
    *slot = Some(1);
    o
}

fn info(d: &DeploymentRow, svc: Option<&ServiceRow>) -> cd::DeploymentInfo {
    let (app, group) = match svc {
        Some(s) => (application_of(s).to_string(), group_of(s).to_string()),
        None => (d.service.clone(), d.service.clone()),
    };
    let finished_badly = matches!(
        d.status,
        DeploymentStatus::Failed | DeploymentStatus::Stopped
    );
    cd::DeploymentInfo {
        application_name: Some(app),
        deployment_group_name: Some(group),
        deployment_config_name: Some(d.config.clone()),
        deployment_id: Some(d.id.clone()),
        status: Some(status(d.status)),
        error_information: finished_badly.then(|| cd::ErrorInformation {
            code: Some(error_code(d)),
            message: d.outcome.clone(),
        }),
        create_time: Some(at(d.created_at)),
        start_time: (d.status != DeploymentStatus::Queued).then(|| at(d.created_at)),
        complete_time: d.finished_at.map(at),
        deployment_overview: Some(overview(d.status)),
        creator: Some(if d.rollback_of.is_some() {
            cd::DeploymentCreator::CodeDeployRollback
        } else {
            cd::DeploymentCreator::User
        }),
        rollback_info: (d.rollback_of.is_some() || d.rolled_back_by.is_some()).then(|| {
            cd::RollbackInfo {
                rollback_deployment_id: d.rolled_back_by.clone(),
                rollback_triggering_deployment_id: d.rollback_of.clone(),
                rollback_message: d.outcome.clone(),
            }
        }),
        deployment_style: Some(cd::DeploymentStyle {
            deployment_type: Some(cd::DeploymentType::BlueGreen),
            deployment_option: Some(cd::DeploymentOption::WithTrafficControl),
        }),
        instance_termination_wait_time_started: Some(d.status == DeploymentStatus::Baking),
        compute_platform: Some(cd::ComputePlatform::Ecs),
        ..Default::default()
    }
}

fn no_deployment(id: &str) -> AwsError {
    AwsError::client(
        errors::DEPLOYMENT_DOES_NOT_EXIST_EXCEPTION,
        format!("The deployment {id} could not be found."),
    )
}

fn invalid_revision(message: impl Into<String>) -> AwsError {
    AwsError::client(errors::INVALID_REVISION_EXCEPTION, message)
}

/// The appspec text a revision carries inline, its sha256 checked.
fn appspec_text(rev: &cd::RevisionLocation) -> Result<&str, AwsError> {
    let (content, sha) = match rev.revision_type {
        Some(cd::RevisionLocationType::AppSpecContent) => rev
            .app_spec_content
            .as_ref()
            .map(|a| (a.content.as_deref(), a.sha256.as_deref())),
        Some(cd::RevisionLocationType::String) => rev
            .string
            .as_ref()
            .map(|s| (s.content.as_deref(), s.sha256.as_deref())),
        other => {
            return Err(invalid_revision(format!(
                "revisionType {}: Cutover reads ECS appspecs carried inline (AppSpecContent or String)",
                other.map_or("(none)", |t| t.as_str())
            )));
        }
    }
    .unwrap_or((None, None));
    let content = content.ok_or_else(|| invalid_revision("the revision carries no content"))?;
    if let Some(sha) = sha
        && !sha.eq_ignore_ascii_case(&hex::encode(Sha256::digest(content.as_bytes())))
    {
        return Err(invalid_revision(
            "the revision's sha256 does not match its content",
        ));
    }
    Ok(content)
}

pub(super) async fn create(
    call: &Call<'_>,
    req: cd::CreateDeploymentInput,
) -> Result<cd::CreateDeploymentOutput, AwsError> {
    let group = req.deployment_group_name.as_deref().ok_or_else(|| {
        AwsError::client(
            errors::DEPLOYMENT_GROUP_NAME_REQUIRED_EXCEPTION,
            "Deployment Group name is required",
        )
    })?;
    if let Some(app) = host_apps::application(call, &req.application_name).await? {
        let group = group.to_string();
        return host_deployments::create(call, req, &app, &group).await;
    }
    let svc = service_of(call, &req.application_name, group).await?;
    let rev = req.revision.as_ref().ok_or_else(|| {
        AwsError::client(errors::REVISION_REQUIRED_EXCEPTION, "Revision is required")
    })?;
    let content = appspec_text(rev)?;
    let file = format!(
        "appspec of CreateDeployment({}/{group})",
        req.application_name
    );
    let parsed = cutover_spec::appspec::parse_appspec(&file, content)
        .map_err(|e| invalid_revision(e.to_string()))?;
    let td_text = &parsed.value.target_service().properties.task_definition;
    let td = crate::aws::ecs::resolve_active(call, td_text)
        .await
        .map_err(|e| {
            invalid_revision(format!("{file}: TaskDefinition {td_text}: {}", e.message))
        })?;
    let created = crate::api::deployments::create(
        State(call.st.clone()),
        Json(CreateDeploymentRequest {
            service: svc.name.clone(),
            task_definition: Some(TaskDefinitionSource::Name(td.name())),
            appspec: Some(FileBody {
                file,
                content: content.to_string(),
            }),
            deployment_config: req.deployment_config_name.clone(),
            images: Default::default(),
            env: Default::default(),
            started_by: format!(
                "codedeploy:CreateDeployment ({})",
                call.caller.access_key_id
            ),
        }),
    )
    .await
    .map_err(|e| {
        wire::refused(
            e,
            errors::DEPLOYMENT_GROUP_DOES_NOT_EXIST_EXCEPTION,
            errors::INVALID_REVISION_EXCEPTION,
        )
    })?;
    Ok(cd::CreateDeploymentOutput {
        deployment_id: Some(created.1.0.deployment.id),
    })
}

async fn load(call: &Call<'_>, id: &str) -> Result<(DeploymentRow, Option<ServiceRow>), AwsError> {
    let i = id.to_string();
    call.st
        .store
        .call(move |c| match ops::deployment(c, &i)? {
            Some(d) => {
                let svc = ops::service(c, &d.service)?;
                Ok(Some((d, svc)))
            }
            None => Ok(None),
        })
        .await
        .map_err(wire::store)?
        .ok_or_else(|| no_deployment(id))
}

pub(super) async fn get(
    call: &Call<'_>,
    req: cd::GetDeploymentInput,
) -> Result<cd::GetDeploymentOutput, AwsError> {
    if let Some(row) = host_deployments::load(call, &req.deployment_id).await? {
        return Ok(cd::GetDeploymentOutput {
            deployment_info: Some(host_deployments::info(&row)),
        });
    }
    let (d, svc) = load(call, &req.deployment_id).await?;
    Ok(cd::GetDeploymentOutput {
        deployment_info: Some(info(&d, svc.as_ref())),
    })
}

pub(super) async fn list(
    call: &Call<'_>,
    req: cd::ListDeploymentsInput,
) -> Result<cd::ListDeploymentsOutput, AwsError> {
    // Host deployments, and whether ECS ones are listed (of one service,
    // or of all).
    let mut hosts = Vec::new();
    let mut ecs = true;
    let wanted = match (&req.application_name, &req.deployment_group_name) {
        (Some(app), Some(group)) => match host_apps::application(call, app).await? {
            Some(stored) => {
                host_groups::group(&stored, group)?;
                hosts = host_deployments::list(call, Some((app.clone(), group.clone()))).await?;
                ecs = false;
                None
            }
            None => Some(service_of(call, app, group).await?.name),
        },
        (None, Some(_)) => {
            return Err(AwsError::client(
                errors::APPLICATION_NAME_REQUIRED_EXCEPTION,
                "The application name must be specified with the deployment group name",
            ));
        }
        (Some(app), None) => {
            return Err(AwsError::client(
                errors::DEPLOYMENT_GROUP_NAME_REQUIRED_EXCEPTION,
                format!("A deployment group name of application {app} is required"),
            ));
        }
        (None, None) => {
            hosts = host_deployments::list(call, None).await?;
            None
        }
    };
    let rows = if ecs {
        call.st
            .store
            .call(move |c| ops::list_deployments(c, wanted.as_deref(), 10_000))
            .await
            .map_err(wire::store)?
    } else {
        Vec::new()
    };
    let range = req.create_time_range.as_ref();
    let mut ids: Vec<(u64, String)> = rows
        .iter()
        .filter(|d| {
            req.include_only_statuses
                .as_ref()
                .is_none_or(|s| s.is_empty() || s.contains(&status(d.status)))
        })
        .filter(|d| {
            let t = at(d.created_at);
            range.is_none_or(|r| r.start.is_none_or(|s| t >= s) && r.end.is_none_or(|e| t <= e))
        })
        .map(|d| (d.created_at, d.id.clone()))
        .chain(
            hosts
                .iter()
                .filter(|h| host_deployments::listed(h, &req))
                .map(|h| (h.created_at, h.id.clone())),
        )
        .collect();
    ids.sort_by(|a, b| b.cmp(a));
    let ids = ids.into_iter().map(|(_, id)| id).collect();
    let (ids, next) = wire::next_token_page(ids, req.next_token.as_deref(), None)?;
    Ok(cd::ListDeploymentsOutput {
        deployments: Some(ids),
        next_token: next,
    })
}

/// A refusal of stop or continue, in CodeDeploy's vocabulary.
fn refused(e: crate::api::ApiError, conflict: &str) -> AwsError {
    if e.status() == axum::http::StatusCode::CONFLICT {
        return AwsError::client(conflict, e.to_string());
    }
    wire::refused(
        e,
        errors::DEPLOYMENT_DOES_NOT_EXIST_EXCEPTION,
        errors::INVALID_DEPLOYMENT_ID_EXCEPTION,
    )
}

pub(super) async fn stop(
    call: &Call<'_>,
    req: cd::StopDeploymentInput,
) -> Result<cd::StopDeploymentOutput, AwsError> {
    if let Some(row) = host_deployments::load(call, &req.deployment_id).await? {
        return host_deployments::stop(call, &row, req.auto_rollback_enabled == Some(true));
    }
    let (d, _) = load(call, &req.deployment_id).await?;
    if d.status.is_final() {
        return Err(AwsError::client(
            errors::DEPLOYMENT_ALREADY_COMPLETED_EXCEPTION,
            format!("Deployment {} has already completed.", d.id),
        ));
    }
    let _stopping = crate::api::deployments::stop(
        State(call.st.clone()),
        Path(req.deployment_id.clone()),
        Some(Json(StopDeploymentRequest {
            rollback: req.auto_rollback_enabled,
        })),
    )
    .await
    .map_err(|e| refused(e, errors::DEPLOYMENT_ALREADY_COMPLETED_EXCEPTION))?;
    Ok(cd::StopDeploymentOutput {
        status: Some(cd::StopStatus::Pending),
        status_message: Some(if req.auto_rollback_enabled == Some(true) {
            "Stopping the deployment and rolling production back to the original task set".into()
        } else {
            "Stopping the deployment".into()
        }),
    })
}

pub(super) async fn continue_(
    call: &Call<'_>,
    req: cd::ContinueDeploymentInput,
) -> Result<(), AwsError> {
    let id = req.deployment_id.ok_or_else(|| {
        AwsError::client(
            errors::DEPLOYMENT_ID_REQUIRED_EXCEPTION,
            "Deployment id is required",
        )
    })?;
    let (d, _) = load(call, &id).await?;
    let waiting = match req
        .deployment_wait_type
        .unwrap_or(cd::DeploymentWaitType::ReadyWait)
    {
        cd::DeploymentWaitType::ReadyWait => DeploymentStatus::Ready,
        cd::DeploymentWaitType::TerminationWait => DeploymentStatus::Baking,
    };
    if d.status != waiting {
        return Err(AwsError::client(
            errors::DEPLOYMENT_IS_NOT_IN_READY_STATE_EXCEPTION,
            format!(
                "Deployment {id} is {} and not waiting for {}",
                status(d.status).as_str(),
                req.deployment_wait_type
                    .unwrap_or(cd::DeploymentWaitType::ReadyWait)
                    .as_str()
            ),
        ));
    }
    let _continued = crate::api::deployments::continue_(State(call.st.clone()), Path(id))
        .await
        .map_err(|e| refused(e, errors::DEPLOYMENT_IS_NOT_IN_READY_STATE_EXCEPTION))?;
    Ok(())
}

pub(super) async fn hook_status(
    call: &Call<'_>,
    req: cd::PutLifecycleEventHookExecutionStatusInput,
) -> Result<cd::PutLifecycleEventHookExecutionStatusOutput, AwsError> {
    let id = req.deployment_id.ok_or_else(|| {
        AwsError::client(
            errors::DEPLOYMENT_ID_REQUIRED_EXCEPTION,
            "Deployment id is required",
        )
    })?;
    let execution = req.lifecycle_event_hook_execution_id.ok_or_else(|| {
        AwsError::client(
            errors::INVALID_LIFECYCLE_EVENT_HOOK_EXECUTION_ID_EXCEPTION,
            "lifecycleEventHookExecutionId is required",
        )
    })?;
    let outcome = match req.status {
        Some(cd::LifecycleEventStatus::Succeeded) => HookOutcome::Succeeded,
        Some(cd::LifecycleEventStatus::Failed) => HookOutcome::Failed {
            reason: format!("hook execution {execution} reported Failed"),
        },
        other => {
            return Err(AwsError::client(
                errors::INVALID_LIFECYCLE_EVENT_HOOK_EXECUTION_STATUS_EXCEPTION,
                format!(
                    "status must be Succeeded or Failed, found {}",
                    other.map_or("(none)", |s| s.as_str())
                ),
            ));
        }
    };
    call.st
        .deployer
        .hook_status(&id, &execution, outcome)
        .map_err(|e| {
            refused(
                crate::api::ApiError::from(e),
                errors::LIFECYCLE_EVENT_ALREADY_COMPLETED_EXCEPTION,
            )
        })?;
    Ok(cd::PutLifecycleEventHookExecutionStatusOutput {
        lifecycle_event_hook_execution_id: Some(execution),
    })
}
