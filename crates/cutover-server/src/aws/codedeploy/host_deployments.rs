//! CodeDeploy deployments of host applications (`computePlatform:
//! Server`): CreateDeployment with a GitHub revision (a commit of a stack
//! repository, read by `hosts::revisions`), GetDeployment, StopDeployment
//! and ListDeployments over the host deployment rows, and the deployment's
//! instance targets with their lifecycle events (`hosts::views`), so `aws
//! deploy wait deployment-successful` and `list-deployment-targets` follow
//! the very deployment `cutover deployments get` shows.

use cutover_api::host_deployments::{HostEventStatus, HostEventView, HostTargetStatus};
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codedeploy::{self as cd, errors};
use cutover_deploy::hosts::{EndReason, HostDeploymentStatus};
use cutover_store::host_deployments::{self as hd, HostDeploymentRow, StoredApplication};

use crate::aws::ecs::at;
use crate::aws::wire::{self, Call};
use crate::hosts::deployer::HostDeployError;
use crate::hosts::revisions::{self, RevisionError};
use crate::hosts::views;

/// The most bytes of a script's output in a lifecycle event's `logTail`
/// (as CodeDeploy).
const LOG_TAIL: usize = 4096;

fn invalid_revision(message: impl Into<String>) -> AwsError {
    AwsError::client(errors::INVALID_REVISION_EXCEPTION, message)
}

fn refused(e: RevisionError) -> AwsError {
    let message = e.to_string();
    match e {
        RevisionError::Deploy(HostDeployError::UnknownGroup { group, .. }) => {
            super::no_group(&group)
        }
        RevisionError::Deploy(HostDeployError::UnknownApplication(a)) => super::no_application(&a),
        RevisionError::Deploy(HostDeployError::UnknownConfig(_)) => {
            AwsError::client(errors::DEPLOYMENT_CONFIG_DOES_NOT_EXIST_EXCEPTION, message)
        }
        RevisionError::Deploy(HostDeployError::Busy { .. }) => {
            AwsError::client(errors::DEPLOYMENT_LIMIT_EXCEEDED_EXCEPTION, message)
        }
        RevisionError::Deploy(HostDeployError::NoReplacementHosts(_)) => {
            AwsError::client(errors::INVALID_TARGET_INSTANCES_EXCEPTION, message)
        }
        RevisionError::Deploy(HostDeployError::TrafficConfig { .. }) => AwsError::client(
            errors::INVALID_BLUE_GREEN_DEPLOYMENT_CONFIGURATION_EXCEPTION,
            message,
        ),
        RevisionError::Appspec(_, e) => invalid_revision(format!("{message}: {e}")),
        RevisionError::UnknownRepository(_)
        | RevisionError::WhichRepository(..)
        | RevisionError::BadRef(_)
        | RevisionError::Git(_)
        | RevisionError::NoAppspec => invalid_revision(message),
        RevisionError::Deploy(_) | RevisionError::Fleet(_) | RevisionError::Io(_) => {
            wire::internal(&message, "create the host deployment")
        }
    }
}

/// Refuses a per-deployment override Cutover does not honour yet.
fn refuse_overrides(req: &cd::CreateDeploymentInput) -> Result<(), AwsError> {
    let unsupported = [
        (
            req.file_exists_behavior
                .is_some_and(|b| b != cd::FileExistsBehavior::Disallow),
            errors::INVALID_FILE_EXISTS_BEHAVIOR_EXCEPTION,
            "fileExistsBehavior per deployment: write file_exists_behavior in the revision's appspec.yml (or the group's fileExistsBehavior in its stack file)",
        ),
        (
            req.ignore_application_stop_failures == Some(true),
            errors::INVALID_IGNORE_APPLICATION_STOP_FAILURES_VALUE_EXCEPTION,
            "ignoreApplicationStopFailures per deployment: set the group's ignoreApplicationStopFailures in its stack file",
        ),
        (
            req.target_instances.is_some(),
            errors::INVALID_TARGET_INSTANCES_EXCEPTION,
            "targetInstances: a deployment goes to the hosts the group's tags select",
        ),
        (
            req.auto_rollback_configuration.is_some(),
            errors::INVALID_AUTO_ROLLBACK_CONFIG_EXCEPTION,
            "autoRollbackConfiguration per deployment: the group's autoRollback applies",
        ),
        (
            req.update_outdated_instances_only == Some(true),
            errors::INVALID_UPDATE_OUTDATED_INSTANCES_ONLY_VALUE_EXCEPTION,
            "updateOutdatedInstancesOnly: hosts that join later are updated on their own (outdatedInstancesStrategy UPDATE)",
        ),
        (
            req.override_alarm_configuration.is_some(),
            errors::INVALID_ALARM_CONFIG_EXCEPTION,
            "overrideAlarmConfiguration: the group's alarms apply",
        ),
    ];
    match unsupported.into_iter().find(|(given, ..)| *given) {
        Some((_, code, message)) => Err(AwsError::client(code, message)),
        None => Ok(()),
    }
}

/// CreateDeployment to group `group` of host application `app`.
pub(super) async fn create(
    call: &Call<'_>,
    req: cd::CreateDeploymentInput,
    app: &StoredApplication,
    group: &str,
) -> Result<cd::CreateDeploymentOutput, AwsError> {
    super::host_groups::group(app, group)?;
    refuse_overrides(&req)?;
    let rev = req.revision.as_ref().ok_or_else(|| {
        AwsError::client(errors::REVISION_REQUIRED_EXCEPTION, "Revision is required")
    })?;
    let (repository, commit) = match rev.revision_type {
        Some(cd::RevisionLocationType::GitHub) => {
            let g = rev.git_hub_location.as_ref();
            let repo = g.and_then(|g| g.repository.as_deref());
            let commit = g.and_then(|g| g.commit_id.as_deref());
            match (repo, commit) {
                (Some(r), Some(c)) if !r.is_empty() && !c.is_empty() => (r, c),
                _ => {
                    return Err(invalid_revision(
                        "a GitHub revision needs gitHubLocation.repository and commitId",
                    ));
                }
            }
        }
        Some(cd::RevisionLocationType::S3) => {
            return Err(invalid_revision(
                "Cutover has no S3: deploy a GitHub revision (a commit of a stack repository), or upload the bundle with cutover deploy --revision FILE",
            ));
        }
        other => {
            return Err(invalid_revision(format!(
                "revisionType {}: a Server revision is a bundle with its files and scripts; Cutover reads GitHub revisions (a commit of a stack repository), and cutover deploy uploads bundles",
                other.map_or("(none)", |t| t.as_str())
            )));
        }
    };
    let repository = revisions::repository(call.st, Some(repository), repository)
        .await
        .map_err(refused)?;
    let target = revisions::Target {
        application: req.application_name.clone(),
        group: group.to_string(),
        config: req.deployment_config_name.clone(),
    };
    let id = revisions::deploy_git(call.st, target, &repository, commit)
        .await
        .map_err(refused)?;
    Ok(cd::CreateDeploymentOutput {
        deployment_id: Some(id),
    })
}

/// The host deployment `id`, if there is one.
pub(super) async fn load(call: &Call<'_>, id: &str) -> Result<Option<HostDeploymentRow>, AwsError> {
    let i = id.to_string();
    call.st
        .store
        .call(move |c| hd::host_deployment(c, &i))
        .await
        .map_err(wire::store)
}

fn status(s: HostDeploymentStatus) -> cd::DeploymentStatus {
    match s {
        HostDeploymentStatus::Created => cd::DeploymentStatus::Created,
        HostDeploymentStatus::InProgress => cd::DeploymentStatus::InProgress,
        HostDeploymentStatus::Succeeded => cd::DeploymentStatus::Succeeded,
        HostDeploymentStatus::Failed => cd::DeploymentStatus::Failed,
        HostDeploymentStatus::Stopped => cd::DeploymentStatus::Stopped,
    }
}

fn error_code(r: &EndReason) -> cd::ErrorCode {
    match r {
        EndReason::NoHosts => cd::ErrorCode::NoInstances,
        EndReason::HealthConstraintsInvalid => cd::ErrorCode::HealthConstraintsInvalid,
        EndReason::HealthConstraints | EndReason::TooFewSucceeded => {
            cd::ErrorCode::HealthConstraints
        }
        EndReason::Alarm(_) => cd::ErrorCode::AlarmActive,
        EndReason::StopRequested => cd::ErrorCode::ManualStop,
    }
}

/// The revision of `source` as CodeDeploy shows it: `git:REPO@COMMIT`
/// is a GitHub revision; a bundle has no CodeDeploy form.
fn revision_of(source: &str) -> Option<cd::RevisionLocation> {
    let (repo, commit) = revisions::split_git(source.strip_prefix("git:")?);
    Some(cd::RevisionLocation {
        revision_type: Some(cd::RevisionLocationType::GitHub),
        git_hub_location: Some(cd::GitHubLocation {
            repository: repo.map(str::to_string),
            commit_id: Some(commit.to_string()),
        }),
        ..Default::default()
    })
}

/// GetDeployment's answer for a host deployment.
pub(super) fn info(row: &HostDeploymentRow) -> cd::DeploymentInfo {
    let mut o = super::deployments::zero_overview();
    for t in views::targets(row) {
        let slot = match t.status {
            HostTargetStatus::Pending => &mut o.pending,
            HostTargetStatus::InProgress => &mut o.in_progress,
            HostTargetStatus::Succeeded => &mut o.succeeded,
            HostTargetStatus::Failed => &mut o.failed,
            HostTargetStatus::Skipped => &mut o.skipped,
        };
        *slot = Some(slot.unwrap_or(0) + 1);
    }
    let reason = row.body.plan.reason();
    cd::DeploymentInfo {
        application_name: Some(row.application.clone()),
        deployment_group_name: Some(row.deployment_group.clone()),
        deployment_config_name: Some(row.body.config.clone()),
        deployment_id: Some(row.id.clone()),
        revision: revision_of(&row.body.source),
        status: Some(status(row.status)),
        error_information: reason.map(|r| cd::ErrorInformation {
            code: Some(error_code(r)),
            message: Some(format!("{r:?}")),
        }),
        create_time: Some(at(row.created_at)),
        start_time: (row.status != HostDeploymentStatus::Created).then(|| at(row.created_at)),
        complete_time: row.finished_at.map(at),
        deployment_overview: Some(o),
        description: Some(row.body.source.clone()),
        creator: Some(if row.body.rollback_of.is_some() {
            cd::DeploymentCreator::CodeDeployRollback
        } else {
            cd::DeploymentCreator::User
        }),
        rollback_info: (row.body.rollback_of.is_some() || row.body.rolled_back_by.is_some()).then(
            || cd::RollbackInfo {
                rollback_deployment_id: row.body.rolled_back_by.clone(),
                rollback_triggering_deployment_id: row.body.rollback_of.clone(),
                rollback_message: reason.map(|r| format!("{r:?}")),
            },
        ),
        deployment_style: Some(match row.body.plan.in_place() {
            // Blue/green always moves traffic in the data plane.
            None => cd::DeploymentStyle {
                deployment_type: Some(cd::DeploymentType::BlueGreen),
                deployment_option: Some(cd::DeploymentOption::WithTrafficControl),
            },
            Some(plan) => cd::DeploymentStyle {
                deployment_type: Some(cd::DeploymentType::InPlace),
                deployment_option: Some(if plan.spec().load_balanced {
                    cd::DeploymentOption::WithTrafficControl
                } else {
                    cd::DeploymentOption::WithoutTrafficControl
                }),
            },
        }),
        compute_platform: Some(cd::ComputePlatform::Server),
        ..Default::default()
    }
}

/// StopDeployment of host deployment `row`.
pub(super) fn stop(
    call: &Call<'_>,
    row: &HostDeploymentRow,
    rollback: bool,
) -> Result<cd::StopDeploymentOutput, AwsError> {
    if row.finished_at.is_some() || !call.st.host_deployer.is_running(&row.id) {
        return Err(AwsError::client(
            errors::DEPLOYMENT_ALREADY_COMPLETED_EXCEPTION,
            format!("Deployment {} has already completed.", row.id),
        ));
    }
    call.st.host_deployer.stop(&row.id, rollback).map_err(|e| {
        AwsError::client(
            errors::DEPLOYMENT_ALREADY_COMPLETED_EXCEPTION,
            e.to_string(),
        )
    })?;
    Ok(cd::StopDeploymentOutput {
        status: Some(cd::StopStatus::Pending),
        status_message: Some(if rollback {
            "Stopping the deployment and rolling its hosts back to the last good revision".into()
        } else {
            "Stopping the deployment".into()
        }),
    })
}

/// The ids of a group's host deployments, newest first (all groups' when
/// `group` is `None`).
pub(super) async fn list(
    call: &Call<'_>,
    group: Option<(String, String)>,
) -> Result<Vec<HostDeploymentRow>, AwsError> {
    call.st
        .store
        .call(move |c| match &group {
            Some((a, g)) => hd::group_host_deployments(c, a, g),
            None => hd::all_host_deployments(c),
        })
        .await
        .map_err(wire::store)
}

/// Whether `row` passes ListDeployments' status and time filters.
pub(super) fn listed(row: &HostDeploymentRow, req: &cd::ListDeploymentsInput) -> bool {
    let t = at(row.created_at);
    req.include_only_statuses
        .as_ref()
        .is_none_or(|s| s.is_empty() || s.contains(&status(row.status)))
        && req
            .create_time_range
            .as_ref()
            .is_none_or(|r| r.start.is_none_or(|s| t >= s) && r.end.is_none_or(|e| t <= e))
}

fn no_deployment(id: &str) -> AwsError {
    AwsError::client(
        errors::DEPLOYMENT_DOES_NOT_EXIST_EXCEPTION,
        format!("The deployment {id} could not be found."),
    )
}

fn target_status(s: HostTargetStatus) -> cd::TargetStatus {
    match s {
        HostTargetStatus::Pending => cd::TargetStatus::Pending,
        HostTargetStatus::InProgress => cd::TargetStatus::InProgress,
        HostTargetStatus::Succeeded => cd::TargetStatus::Succeeded,
        HostTargetStatus::Failed => cd::TargetStatus::Failed,
        HostTargetStatus::Skipped => cd::TargetStatus::Skipped,
    }
}

fn lifecycle_event(e: &HostEventView) -> cd::LifecycleEvent {
    let (status, code) = match e.status {
        HostEventStatus::InProgress => (cd::LifecycleEventStatus::InProgress, None),
        HostEventStatus::Succeeded => (
            cd::LifecycleEventStatus::Succeeded,
            Some(cd::LifecycleErrorCode::Success),
        ),
        HostEventStatus::Skipped => (cd::LifecycleEventStatus::Skipped, None),
        HostEventStatus::Failed => (
            cd::LifecycleEventStatus::Failed,
            Some(
                if e.error.as_deref().is_some_and(|m| m.contains("timed out")) {
                    cd::LifecycleErrorCode::ScriptTimedOut
                } else {
                    cd::LifecycleErrorCode::ScriptFailed
                },
            ),
        ),
    };
    let tail_from = e.output.len().saturating_sub(LOG_TAIL);
    let tail_from = (tail_from..=e.output.len())
        .find(|i| e.output.is_char_boundary(*i))
        .unwrap_or(e.output.len());
    cd::LifecycleEvent {
        lifecycle_event_name: Some(e.event.as_str().to_string()),
        diagnostics: code.map(|code| cd::Diagnostics {
            error_code: Some(code),
            script_name: None,
            message: e.error.clone().or_else(|| Some("Succeeded".into())),
            log_tail: Some(e.output[tail_from..].to_string()),
        }),
        start_time: Some(at(e.started_at_ms)),
        end_time: e.ended_at_ms.map(at),
        status: Some(status),
    }
}

/// ListDeploymentTargets of a host deployment: its hosts' names.
pub(super) async fn list_targets(
    call: &Call<'_>,
    req: cd::ListDeploymentTargetsInput,
) -> Result<cd::ListDeploymentTargetsOutput, AwsError> {
    let row = load(call, &req.deployment_id)
        .await?
        .ok_or_else(|| no_deployment(&req.deployment_id))?;
    let mut wanted_status: Option<Vec<String>> = None;
    for (name, values) in req.target_filters.iter().flatten() {
        match name.as_str() {
            "TargetStatus" => wanted_status = Some(values.clone()),
            // In-place deployments have no Blue/Green labels: every host
            // is in the original fleet.
            "ServerInstanceLabel" if values.iter().all(|v| v == "Blue") => {}
            "ServerInstanceLabel" => return Ok(Default::default()),
            other => {
                return Err(AwsError::client(
                    errors::INVALID_TARGET_FILTER_NAME_EXCEPTION,
                    format!("target filter {other:?}: use TargetStatus or ServerInstanceLabel"),
                ));
            }
        }
    }
    let ids = views::targets(&row)
        .into_iter()
        .filter(|t| {
            wanted_status
                .as_ref()
                .is_none_or(|w| w.iter().any(|s| s == target_status(t.status).as_str()))
        })
        .map(|t| t.host)
        .collect();
    let (ids, next) = wire::next_token_page(ids, req.next_token.as_deref(), None)?;
    Ok(cd::ListDeploymentTargetsOutput {
        target_ids: Some(ids),
        next_token: next,
    })
}

/// BatchGetDeploymentTargets of a host deployment: each host with its
/// lifecycle events.
pub(super) async fn batch_get_targets(
    call: &Call<'_>,
    req: cd::BatchGetDeploymentTargetsInput,
) -> Result<cd::BatchGetDeploymentTargetsOutput, AwsError> {
    if req.target_ids.len() > 25 {
        return Err(AwsError::client(
            errors::DEPLOYMENT_TARGET_LIST_SIZE_EXCEEDED_EXCEPTION,
            "at most 25 target ids",
        ));
    }
    let row = load(call, &req.deployment_id)
        .await?
        .ok_or_else(|| no_deployment(&req.deployment_id))?;
    let targets = views::targets(&row);
    let mut out = Vec::new();
    for id in &req.target_ids {
        let t = targets.iter().find(|t| &t.host == id).ok_or_else(|| {
            AwsError::client(
                errors::DEPLOYMENT_TARGET_DOES_NOT_EXIST_EXCEPTION,
                format!(
                    "Deployment target {id:?} is not part of deployment {}",
                    row.id
                ),
            )
        })?;
        let last = t
            .events
            .iter()
            .map(|e| e.ended_at_ms.unwrap_or(e.started_at_ms))
            .max()
            .unwrap_or(row.created_at);
        out.push(cd::DeploymentTarget {
            deployment_target_type: Some(cd::DeploymentTargetType::InstanceTarget),
            instance_target: Some(cd::InstanceTarget {
                deployment_id: Some(row.id.clone()),
                target_id: Some(t.host.clone()),
                target_arn: Some(call.st.fleet.instance_arn(&t.host)),
                status: Some(target_status(t.status)),
                last_updated_at: Some(at(last)),
                lifecycle_events: Some(t.events.iter().map(lifecycle_event).collect()),
                instance_label: Some(cd::TargetLabel::Blue),
            }),
            ..Default::default()
        });
    }
    Ok(cd::BatchGetDeploymentTargetsOutput {
        deployment_targets: Some(out),
    })
}
