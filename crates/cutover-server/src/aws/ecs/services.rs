//! ECS services. UpdateService is `/v1`'s scale and deploy (a new task
//! definition, or `forceNewDeployment`, is a Cutover deployment of the
//! service, rolling or refused for a blue/green service exactly as ECS
//! refuses it for a `CODE_DEPLOY` one); DeleteService is `/v1`'s delete.
//!
//! DescribeServices derives ECS's `deployments[]` from what runs: the
//! PRIMARY entry is the revision the service is moving to (an unfinished
//! deployment's target, else its current one) and each other revision that
//! still has live tasks, or that an unfinished deployment moves from, is an
//! ACTIVE entry. So `aws ecs wait services-stable` (one deployment, running
//! equal to desired) returns exactly when the rollout is over and the old
//! tasks are gone.

use axum::Json;
use axum::extract::{Path, State};
use cutover_api::deployments::{CreateDeploymentRequest, TaskDefinitionSource};
use cutover_api::services::{ScaleRequest, ServiceStatus};
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::ecs::{self, DeploymentRolloutState, errors};
use cutover_core::task::TaskState;
use cutover_deploy::bluegreen::DeploymentStatus;
use cutover_spec::stack::{Deployment, DeploymentType, ServiceSettings, is_service_name};
use cutover_store::{DeploymentRow, EventRow, ServiceRow, TaskRow, ops};

use super::taskdefs::{self, page};
use super::{at, cluster_arn, refused, service_arn, service_name, task_definition_arn};
use crate::aws::wire::{self, Call};

/// How many events DescribeServices answers per service.
const EVENTS: u32 = 20;

/// Everything DescribeServices shows of one service, read in one store call.
struct Observed {
    svc: ServiceRow,
    tasks: Vec<TaskRow>,
    /// Newest first.
    deployments: Vec<DeploymentRow>,
    events: Vec<EventRow>,
}

fn read(
    c: &rusqlite::Connection,
    name: &str,
) -> Result<Option<Observed>, cutover_store::StoreError> {
    let Some(svc) = ops::service(c, name)? else {
        return Ok(None);
    };
    Ok(Some(Observed {
        tasks: ops::list_tasks(c, Some(name), false, u32::MAX)?,
        deployments: ops::list_deployments(c, Some(name), 10)?,
        events: ops::events(c, &format!("service/{name}"), EVENTS)?,
        svc,
    }))
}

/// The revision a service is moving to, and the unfinished deployment
/// moving it, if any.
fn primary(o: &Observed) -> (&str, Option<&DeploymentRow>) {
    match o.deployments.iter().find(|d| d.finished_at.is_none()) {
        Some(d) => (&d.to_task_definition, Some(d)),
        None => (&o.svc.task_definition, None),
    }
}

fn rollout(d: Option<&DeploymentRow>) -> (DeploymentRolloutState, Option<String>) {
    match d.map(|d| (d.status, d.outcome.clone())) {
        None | Some((DeploymentStatus::Succeeded, _)) => (
            DeploymentRolloutState::Completed,
            Some("ECS deployment completed.".into()),
        ),
        Some((DeploymentStatus::Failed | DeploymentStatus::Stopped, why)) => {
            (DeploymentRolloutState::Failed, why)
        }
        Some(_) => (DeploymentRolloutState::InProgress, None),
    }
}

fn counts(tasks: &[TaskRow], td: Option<&str>) -> (i32, i32) {
    let of = |t: &&TaskRow| td.is_none_or(|td| t.task_definition == td);
    let running = tasks
        .iter()
        .filter(of)
        .filter(|t| t.last_status == TaskState::Running)
        .count();
    let pending = tasks
        .iter()
        .filter(of)
        .filter(|t| matches!(t.last_status, TaskState::Provisioning | TaskState::Pending))
        .count();
    (running as i32, pending as i32)
}

/// ECS's view of one service.
fn shape(call: &Call<'_>, o: &Observed) -> ecs::Service {
    let svc = &o.svc;
    let (primary_td, moving) = primary(o);
    let deployment_of = |td: &str| o.deployments.iter().find(|d| d.to_task_definition == td);
    let entry = |td: &str, status: &str, desired: u32| {
        let row = deployment_of(td);
        let (running, pending) = counts(&o.tasks, Some(td));
        let (state, reason) = if status == "PRIMARY" {
            rollout(row)
        } else {
            (DeploymentRolloutState::Completed, None)
        };
        ecs::Deployment {
            id: Some(match row {
                Some(d) => format!("ecs-svc/{}", d.id),
                None => format!("ecs-svc/{}/{td}", svc.name),
            }),
            status: Some(status.into()),
            task_definition: Some(task_definition_arn(call, td)),
            desired_count: Some(desired as i32),
            running_count: Some(running),
            pending_count: Some(pending),
            failed_tasks: Some(0),
            created_at: Some(at(row.map_or(svc.created_at, |d| d.created_at))),
            updated_at: Some(at(row.map_or(svc.updated_at, |d| d.updated_at))),
            rollout_state: Some(state),
            rollout_state_reason: reason,
            ..Default::default()
        }
    };
    let mut deployments = vec![entry(primary_td, "PRIMARY", svc.desired_count)];
    let mut others: Vec<&str> = o
        .tasks
        .iter()
        .map(|t| t.task_definition.as_str())
        .chain(moving.map(|d| d.from_task_definition.as_str()))
        .filter(|td| *td != primary_td && !td.is_empty())
        .collect();
    others.sort_unstable();
    others.dedup();
    deployments.extend(others.into_iter().map(|td| entry(td, "ACTIVE", 0)));
    let (running, pending) = counts(&o.tasks, None);
    let settings = &svc.spec;
    ecs::Service {
        service_arn: Some(service_arn(call, &svc.name)),
        service_name: Some(svc.name.clone()),
        cluster_arn: Some(cluster_arn(call)),
        load_balancers: Some(load_balancers(call, svc)),
        status: Some(
            match svc.status {
                ServiceStatus::Active => "ACTIVE",
                ServiceStatus::Draining => "DRAINING",
            }
            .into(),
        ),
        desired_count: Some(svc.desired_count as i32),
        running_count: Some(running),
        pending_count: Some(pending),
        task_definition: Some(task_definition_arn(call, primary_td)),
        deployment_configuration: Some(ecs::DeploymentConfiguration {
            maximum_percent: settings.deployment.maximum_percent.map(|p| p as i32),
            minimum_healthy_percent: settings
                .deployment
                .minimum_healthy_percent
                .map(|p| p as i32),
            ..Default::default()
        }),
        deployments: Some(deployments),
        events: Some(
            o.events
                .iter()
                .map(|e| ecs::ServiceEvent {
                    id: Some(e.id.to_string()),
                    created_at: Some(at(e.at)),
                    message: Some(format!("(service {}) {}", svc.name, e.message)),
                })
                .collect(),
        ),
        created_at: Some(at(svc.created_at)),
        scheduling_strategy: Some(ecs::SchedulingStrategy::Replica),
        deployment_controller: Some(ecs::DeploymentController {
            type_: if settings.is_blue_green() {
                ecs::DeploymentControllerType::CodeDeploy
            } else {
                ecs::DeploymentControllerType::Ecs
            },
        }),
        ..Default::default()
    }
}

/// The service's load balancer as ECS names it: the live target group.
fn load_balancers(call: &Call<'_>, svc: &ServiceRow) -> Vec<ecs::LoadBalancer> {
    svc.spec
        .load_balancer
        .iter()
        .map(|lb| ecs::LoadBalancer {
            target_group_arn: Some(call.arn(
                "elasticloadbalancing",
                &format!("targetgroup/{}-{}/cutover", svc.name, svc.lb_group),
            )),
            container_name: Some(lb.container_name.clone()),
            container_port: Some(lb.container_port as i32),
            ..Default::default()
        })
        .collect()
}

/// The service as ECS shows it now.
async fn current(call: &Call<'_>, name: &str) -> Result<ecs::Service, AwsError> {
    let n = name.to_string();
    let o = call
        .st
        .store
        .call(move |c| read(c, &n))
        .await
        .map_err(wire::store)?
        .ok_or_else(|| not_found(name))?;
    Ok(shape(call, &o))
}

fn not_found(name: &str) -> AwsError {
    AwsError::client(
        errors::SERVICE_NOT_FOUND_EXCEPTION,
        format!("Service not found: {name}"),
    )
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::client(errors::INVALID_PARAMETER_EXCEPTION, message)
}

pub(super) async fn describe(
    call: &Call<'_>,
    req: ecs::DescribeServicesRequest,
) -> Result<ecs::DescribeServicesResponse, AwsError> {
    if req.services.is_empty() || req.services.len() > 10 {
        return Err(invalid("services can have between 1 and 10 items."));
    }
    let names = req
        .services
        .iter()
        .map(|s| service_name(s))
        .collect::<Result<Vec<_>, _>>()?;
    let found = {
        let names = names.clone();
        call.st
            .store
            .call(move |c| {
                names
                    .iter()
                    .map(|n| read(c, n))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(wire::store)?
    };
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for (name, o) in names.iter().zip(found) {
        match o {
            Some(o) => services.push(shape(call, &o)),
            None => failures.push(ecs::Failure {
                arn: Some(service_arn(call, name)),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(ecs::DescribeServicesResponse {
        services: Some(services),
        failures: Some(failures),
    })
}

pub(super) async fn list(
    call: &Call<'_>,
    req: ecs::ListServicesRequest,
) -> Result<ecs::ListServicesResponse, AwsError> {
    let rows = call
        .st
        .store
        .call(ops::list_services)
        .await
        .map_err(wire::store)?;
    let arns = rows.iter().map(|s| service_arn(call, &s.name)).collect();
    let (arns, next) = page(
        arns,
        req.next_token.as_deref(),
        req.max_results.or(Some(10)),
    )?;
    Ok(ecs::ListServicesResponse {
        service_arns: Some(arns),
        next_token: next,
    })
}

pub(super) async fn update(
    call: &Call<'_>,
    req: ecs::UpdateServiceRequest,
) -> Result<ecs::UpdateServiceResponse, AwsError> {
    let name = service_name(&req.service)?;
    let n = name.clone();
    let svc = call
        .st
        .store
        .call(move |c| ops::service(c, &n))
        .await
        .map_err(wire::store)?
        .ok_or_else(|| not_found(&name))?;
    if svc.status != ServiceStatus::Active {
        return Err(AwsError::client(
            errors::SERVICE_NOT_ACTIVE_EXCEPTION,
            "Service was not ACTIVE.",
        ));
    }
    if req.load_balancers.is_some() || req.deployment_controller.is_some() {
        return Err(invalid(
            "Cutover changes a service's load balancer and deployment controller through its stack file (cutover apply), not UpdateService",
        ));
    }
    let new_td = match &req.task_definition {
        Some(text) => Some(taskdefs::resolve_active(call, text).await?.name()),
        None => None,
    };
    let force = req.force_new_deployment.unwrap_or(false);
    let redeploy = force || new_td.as_ref().is_some_and(|td| *td != svc.task_definition);
    if redeploy && svc.spec.is_blue_green() {
        return Err(invalid(if force {
            "Unable to force a new deployment on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment."
        } else {
            "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment."
        }));
    }
    if let Some(count) = req.desired_count {
        let count = u32::try_from(count).map_err(|_| invalid("desiredCount must be at least 0"))?;
        if count != svc.desired_count {
            let _scaled = crate::api::services::scale(
                State(call.st.clone()),
                Path(name.clone()),
                Json(ScaleRequest {
                    desired_count: count,
                }),
            )
            .await
            .map_err(|e| refused(e, errors::SERVICE_NOT_FOUND_EXCEPTION))?;
        }
    }
    if redeploy {
        let _created = crate::api::deployments::create(
            State(call.st.clone()),
            Json(CreateDeploymentRequest {
                service: name.clone(),
                task_definition: new_td.map(TaskDefinitionSource::Name),
                appspec: None,
                deployment_config: None,
                images: Default::default(),
                env: Default::default(),
                started_by: format!("ecs:UpdateService ({})", call.caller.access_key_id),
            }),
        )
        .await
        .map_err(|e| refused(e, errors::SERVICE_NOT_FOUND_EXCEPTION))?;
    }
    Ok(ecs::UpdateServiceResponse {
        service: Some(current(call, &name).await?),
    })
}

pub(super) async fn create(
    call: &Call<'_>,
    req: ecs::CreateServiceRequest,
) -> Result<ecs::CreateServiceResponse, AwsError> {
    let name = req.service_name.clone();
    if !is_service_name(&name) {
        return Err(invalid(format!(
            "serviceName {name:?}: Cutover's service names are [a-z0-9][a-z0-9-]{{0,62}}"
        )));
    }
    if req.load_balancers.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(invalid(
            "a load-balanced service needs a listener address: declare it in a stack file (loadBalancer.listener) and run cutover apply; CreateService creates services without a load balancer",
        ));
    }
    if req
        .deployment_controller
        .as_ref()
        .is_some_and(|c| c.type_ != ecs::DeploymentControllerType::Ecs)
    {
        return Err(invalid(
            "only the ECS (rolling) deployment controller is available without a load balancer",
        ));
    }
    let Some(td) = &req.task_definition else {
        return Err(invalid("taskDefinition is required"));
    };
    let td = taskdefs::resolve_active(call, td).await?.name();
    let desired = u32::try_from(req.desired_count.unwrap_or(1))
        .ok()
        .filter(|d| *d <= 1000)
        .ok_or_else(|| invalid("desiredCount must be between 0 and 1000"))?;
    let config = req.deployment_configuration.unwrap_or_default();
    let percent = |p: Option<i32>| p.and_then(|p| u32::try_from(p).ok());
    let runtime = req
        .tags
        .iter()
        .flatten()
        .find(|t| t.key.as_deref() == Some("cutover:runtime"))
        .and_then(|t| t.value.clone())
        .unwrap_or_else(|| "process".into());
    if !call.st.controller.runtimes().contains_key(&runtime) {
        return Err(invalid(format!(
            "tag cutover:runtime names {runtime:?}, which this server does not run"
        )));
    }
    let now = call.st.clock.now_ms();
    let row = ServiceRow {
        name: name.clone(),
        task_definition: td,
        desired_count: desired,
        runtime,
        spec: ServiceSettings {
            load_balancer: None,
            deployment: Deployment {
                kind: DeploymentType::Rolling,
                minimum_healthy_percent: percent(config.minimum_healthy_percent),
                maximum_percent: percent(config.maximum_percent),
                ..Deployment::default()
            },
            ..ServiceSettings::default()
        },
        status: ServiceStatus::Active,
        lb_group: "a".into(),
        generation: 1,
        created_at: now,
        updated_at: now,
    };
    let n = name.clone();
    call.st
        .store
        .transact(move |c| {
            if ops::service(c, &n)?.is_some() {
                return Err(cutover_store::StoreError::Conflict(
                    "Creation of service was not idempotent.".into(),
                ));
            }
            ops::put_service(c, &row)?;
            ops::add_event(
                c,
                now,
                &format!("service/{n}"),
                "created by ecs:CreateService",
            )?;
            Ok(())
        })
        .await
        .map_err(|e| match e {
            cutover_store::StoreError::Conflict(m) => invalid(m),
            e => wire::store(e),
        })?;
    call.st.controller.wake(&name);
    Ok(ecs::CreateServiceResponse {
        service: Some(current(call, &name).await?),
    })
}

pub(super) async fn delete(
    call: &Call<'_>,
    req: ecs::DeleteServiceRequest,
) -> Result<ecs::DeleteServiceResponse, AwsError> {
    let name = service_name(&req.service)?;
    let before = current(call, &name).await?;
    if !req.force.unwrap_or(false) && before.desired_count.unwrap_or(0) > 0 {
        return Err(invalid(
            "The service cannot be stopped while it is scaled above 0.",
        ));
    }
    let _deleted = crate::api::services::delete(State(call.st.clone()), Path(name.clone()))
        .await
        .map_err(|e| refused(e, errors::SERVICE_NOT_FOUND_EXCEPTION))?;
    Ok(ecs::DeleteServiceResponse {
        service: Some(current(call, &name).await.unwrap_or(before)),
    })
}
