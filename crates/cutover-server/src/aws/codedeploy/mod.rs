//! AWS CodeDeploy over JSON 1.1. For ECS: each blue/green service is an
//! application with one deployment group (both named after the service,
//! unless its stack sets `deployment.application` / `deploymentGroup`).
//! Deployments are `/v1`'s deployments (`api::deployments`): the same
//! create, stop, continue and hook callback, read back in CodeDeploy's
//! shape; configurations are the predefined ones, the stack's, and those
//! created here (`configs`). For hosts (Server): the stack's
//! `applications:` and those created here (`host_apps`, `host_groups`), on-premises
//! instances (`instances`) and host deployments (`host_deployments`).
//! An application name is either a host application or an ECS one.

mod configs;
mod deployments;
mod host_apps;
mod host_configs;
mod host_deployments;
mod host_groups;
mod instances;

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codedeploy::{self as cd, Operation, errors};
use cutover_store::{ServiceRow, ops};

use super::ecs::CLUSTER;
use super::wire::{self, Call, Reply, input, output};

/// Runs `op`.
pub(super) async fn call(call: &Call<'_>, op: Operation, body: &[u8]) -> Result<Reply, AwsError> {
    match op {
        Operation::GetApplication => output(&get_application(call, input(body)?).await?),
        Operation::ListApplications => output(&list_applications(call, input(body)?).await?),
        Operation::GetDeploymentGroup => output(&get_deployment_group(call, input(body)?).await?),
        Operation::ListDeploymentGroups => {
            output(&list_deployment_groups(call, input(body)?).await?)
        }
        Operation::CreateDeployment => output(&deployments::create(call, input(body)?).await?),
        Operation::GetDeployment => output(&deployments::get(call, input(body)?).await?),
        Operation::ListDeployments => output(&deployments::list(call, input(body)?).await?),
        Operation::StopDeployment => output(&deployments::stop(call, input(body)?).await?),
        Operation::ContinueDeployment => {
            deployments::continue_(call, input(body)?).await?;
            output(&serde_json::Map::new())
        }
        Operation::PutLifecycleEventHookExecutionStatus => {
            output(&deployments::hook_status(call, input(body)?).await?)
        }
        Operation::GetDeploymentConfig => output(&configs::get(call, input(body)?).await?),
        Operation::ListDeploymentConfigs => output(&configs::list(call, input(body)?).await?),
        Operation::CreateDeploymentConfig => output(&configs::create(call, input(body)?).await?),
        Operation::DeleteDeploymentConfig => {
            configs::delete(call, input(body)?).await?;
            output(&serde_json::Map::new())
        }
        Operation::CreateApplication => {
            output(&host_apps::create_application(call, input(body)?).await?)
        }
        Operation::CreateDeploymentGroup => {
            output(&host_groups::create_deployment_group(call, input(body)?).await?)
        }
        Operation::RegisterOnPremisesInstance => {
            instances::register(call, input(body)?).await?;
            output(&serde_json::Map::new())
        }
        Operation::DeregisterOnPremisesInstance => {
            instances::deregister(call, input(body)?).await?;
            output(&serde_json::Map::new())
        }
        Operation::GetOnPremisesInstance => output(&instances::get(call, input(body)?).await?),
        Operation::ListOnPremisesInstances => output(&instances::list(call, input(body)?).await?),
        Operation::BatchGetOnPremisesInstances => {
            output(&instances::batch_get(call, input(body)?).await?)
        }
        Operation::AddTagsToOnPremisesInstances => {
            instances::add_tags(call, input(body)?).await?;
            output(&serde_json::Map::new())
        }
        Operation::RemoveTagsFromOnPremisesInstances => {
            instances::remove_tags(call, input(body)?).await?;
            output(&serde_json::Map::new())
        }
        Operation::ListDeploymentTargets => {
            output(&host_deployments::list_targets(call, input(body)?).await?)
        }
        Operation::BatchGetDeploymentTargets => {
            output(&host_deployments::batch_get_targets(call, input(body)?).await?)
        }
    }
}

/// The blue/green services: each one deployment group.
async fn groups(call: &Call<'_>) -> Result<Vec<ServiceRow>, AwsError> {
    let all = call
        .st
        .store
        .call(ops::list_services)
        .await
        .map_err(wire::store)?;
    Ok(all.into_iter().filter(|s| s.spec.is_blue_green()).collect())
}

fn application_of(s: &ServiceRow) -> &str {
    s.spec.deployment.application_name(&s.name)
}

fn group_of(s: &ServiceRow) -> &str {
    s.spec.deployment.deployment_group_name(&s.name)
}

/// The service that is deployment group `group` of application `app`.
pub(crate) async fn service_of(
    call: &Call<'_>,
    app: &str,
    group: &str,
) -> Result<ServiceRow, AwsError> {
    let all = groups(call).await?;
    if !all.iter().any(|s| application_of(s) == app) {
        return Err(no_application(app));
    }
    all.into_iter()
        .find(|s| application_of(s) == app && group_of(s) == group)
        .ok_or_else(|| no_group(group))
}

fn no_group(group: &str) -> AwsError {
    AwsError::client(
        errors::DEPLOYMENT_GROUP_DOES_NOT_EXIST_EXCEPTION,
        format!("No Deployment Group found for name: {group}"),
    )
}

fn no_application(app: &str) -> AwsError {
    AwsError::client(
        errors::APPLICATION_DOES_NOT_EXIST_EXCEPTION,
        format!("No application found for name: {app}"),
    )
}

/// A stable id for a name (CodeDeploy hands out uuids; these are derived
/// from the installation and the name, so they do not change).
fn id_of(call: &Call<'_>, kind: &str, name: &str) -> String {
    let digest = cutover_store::ops::digest(&serde_json::json!([call.account(), kind, name]));
    let h = digest.as_str();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

async fn get_application(
    call: &Call<'_>,
    req: cd::GetApplicationInput,
) -> Result<cd::GetApplicationOutput, AwsError> {
    if host_apps::application(call, &req.application_name)
        .await?
        .is_some()
    {
        return Ok(cd::GetApplicationOutput {
            application: Some(host_apps::application_info(call, &req.application_name)),
        });
    }
    let all = groups(call).await?;
    let first = all
        .iter()
        .filter(|s| application_of(s) == req.application_name)
        .min_by_key(|s| s.created_at)
        .ok_or_else(|| no_application(&req.application_name))?;
    Ok(cd::GetApplicationOutput {
        application: Some(cd::ApplicationInfo {
            application_id: Some(id_of(call, "application", &req.application_name)),
            application_name: Some(req.application_name.clone()),
            create_time: Some(super::ecs::at(first.created_at)),
            linked_to_git_hub: Some(false),
            compute_platform: Some(cd::ComputePlatform::Ecs),
            ..Default::default()
        }),
    })
}

async fn list_applications(
    call: &Call<'_>,
    req: cd::ListApplicationsInput,
) -> Result<cd::ListApplicationsOutput, AwsError> {
    let mut names: Vec<String> = groups(call)
        .await?
        .iter()
        .map(|s| application_of(s).to_string())
        .chain(host_apps::names(call).await?)
        .collect();
    names.sort();
    names.dedup();
    let (page, next) = wire::next_token_page(names, req.next_token.as_deref(), None)?;
    Ok(cd::ListApplicationsOutput {
        applications: Some(page),
        next_token: next,
    })
}

async fn list_deployment_groups(
    call: &Call<'_>,
    req: cd::ListDeploymentGroupsInput,
) -> Result<cd::ListDeploymentGroupsOutput, AwsError> {
    let mut names: Vec<String> = match host_apps::application(call, &req.application_name).await? {
        // A host application may have no group yet.
        Some(app) => app.application.deployment_groups.into_keys().collect(),
        None => {
            let all = groups(call).await?;
            let names: Vec<String> = all
                .iter()
                .filter(|s| application_of(s) == req.application_name)
                .map(|s| group_of(s).to_string())
                .collect();
            if names.is_empty() {
                return Err(no_application(&req.application_name));
            }
            names
        }
    };
    names.sort();
    let (page, next) = wire::next_token_page(names, req.next_token.as_deref(), None)?;
    Ok(cd::ListDeploymentGroupsOutput {
        application_name: Some(req.application_name),
        deployment_groups: Some(page),
        next_token: next,
    })
}

async fn get_deployment_group(
    call: &Call<'_>,
    req: cd::GetDeploymentGroupInput,
) -> Result<cd::GetDeploymentGroupOutput, AwsError> {
    if let Some(app) = host_apps::application(call, &req.application_name).await? {
        let dg = host_groups::group(&app, &req.deployment_group_name)?;
        return Ok(cd::GetDeploymentGroupOutput {
            deployment_group_info: Some(host_groups::group_info(
                &req.application_name,
                &req.deployment_group_name,
                dg,
            )),
        });
    }
    let svc = service_of(call, &req.application_name, &req.deployment_group_name).await?;
    let d = &svc.spec.deployment;
    let minutes = |secs: u64| secs.div_ceil(60) as i32;
    let ready = d
        .deployment_ready
        .as_ref()
        .map(|r| cd::DeploymentReadyOption {
            action_on_timeout: Some(match r.action {
                cutover_spec::stack::ReadyAction::ContinueDeployment => {
                    cd::DeploymentReadyAction::ContinueDeployment
                }
                cutover_spec::stack::ReadyAction::StopDeployment => {
                    cd::DeploymentReadyAction::StopDeployment
                }
            }),
            wait_time_in_minutes: r
                .wait_seconds
                .or(r.wait_minutes.map(|m| m * 60))
                .map(minutes),
        });
    let rollback_events: Vec<cd::AutoRollbackEvent> = d
        .auto_rollback
        .iter()
        .map(|e| match e {
            cutover_spec::stack::RollbackEvent::DeploymentFailure => {
                cd::AutoRollbackEvent::DeploymentFailure
            }
            cutover_spec::stack::RollbackEvent::DeploymentStopOnAlarm => {
                cd::AutoRollbackEvent::DeploymentStopOnAlarm
            }
            cutover_spec::stack::RollbackEvent::DeploymentStopOnRequest => {
                cd::AutoRollbackEvent::DeploymentStopOnRequest
            }
        })
        .collect();
    Ok(cd::GetDeploymentGroupOutput {
        deployment_group_info: Some(cd::DeploymentGroupInfo {
            application_name: Some(req.application_name.clone()),
            deployment_group_id: Some(id_of(
                call,
                "deployment-group",
                &format!("{}/{}", req.application_name, req.deployment_group_name),
            )),
            deployment_group_name: Some(req.deployment_group_name.clone()),
            deployment_config_name: Some(d.config_name().to_string()),
            compute_platform: Some(cd::ComputePlatform::Ecs),
            deployment_style: Some(cd::DeploymentStyle {
                deployment_type: Some(cd::DeploymentType::BlueGreen),
                deployment_option: Some(cd::DeploymentOption::WithTrafficControl),
            }),
            ecs_services: Some(vec![cd::ECSService {
                service_name: Some(svc.name.clone()),
                cluster_name: Some(CLUSTER.into()),
            }]),
            blue_green_deployment_configuration: Some(cd::BlueGreenDeploymentConfiguration {
                terminate_blue_instances_on_deployment_success: Some(
                    cd::BlueInstanceTerminationOption {
                        action: Some(cd::InstanceAction::Terminate),
                        termination_wait_time_in_minutes: Some(minutes(
                            d.termination_wait().as_secs(),
                        )),
                    },
                ),
                deployment_ready_option: ready,
                green_fleet_provisioning_option: None,
            }),
            auto_rollback_configuration: Some(cd::AutoRollbackConfiguration {
                enabled: Some(!rollback_events.is_empty()),
                events: Some(rollback_events),
            }),
            alarm_configuration: Some(cd::AlarmConfiguration {
                enabled: Some(!d.alarms.is_empty()),
                ignore_poll_alarm_failure: Some(false),
                alarms: Some(
                    d.alarms
                        .iter()
                        .map(|a| cd::Alarm {
                            name: Some(a.clone()),
                        })
                        .collect(),
                ),
            }),
            ..Default::default()
        }),
    })
}
