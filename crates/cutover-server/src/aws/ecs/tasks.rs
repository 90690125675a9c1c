//! ECS tasks and the one cluster: ListTasks, DescribeTasks,
//! DescribeClusters, read from the same task rows `/v1/tasks` shows.

use cutover_aws::arn;
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::ecs::{self, errors};
use cutover_store::image_pins::{self, ImagePinRow};
use cutover_store::{TaskRow, ops};

use super::taskdefs::page;
use super::{CLUSTER, at, cluster_arn, service_name, task_definition_arn};
use crate::aws::wire::{self, Call};

fn task_arn(call: &Call<'_>, id: &str) -> String {
    call.arn("ecs", &format!("task/{CLUSTER}/{id}"))
}

fn shape(call: &Call<'_>, t: &TaskRow, pin: Option<&ImagePinRow>) -> ecs::Task {
    // The essential container, as ECS shows it: the image as the task
    // definition writes it and the digest it was pinned to.
    let containers = pin.map(|p| {
        vec![ecs::Container {
            task_arn: Some(task_arn(call, &t.id)),
            name: Some(p.container.clone()),
            image: Some(p.image.clone()),
            image_digest: Some(p.digest.clone()),
            last_status: Some(t.last_status.as_str().into()),
            exit_code: t.exit_code,
            ..Default::default()
        }]
    });
    ecs::Task {
        containers,
        task_arn: Some(task_arn(call, &t.id)),
        cluster_arn: Some(cluster_arn(call)),
        task_definition_arn: Some(task_definition_arn(call, &t.task_definition)),
        group: Some(format!("service:{}", t.service)),
        started_by: Some(format!("ecs-svc/{}", t.service)),
        last_status: Some(t.last_status.as_str().into()),
        desired_status: Some(t.desired_status.as_str().into()),
        health_status: serde_json::from_value(t.health_status.as_str().into()).ok(),
        created_at: Some(at(t.created_at)),
        started_at: t.started_at.map(at),
        stopping_at: t.stopping_at.map(at),
        stopped_at: t.stopped_at.map(at),
        stopped_reason: t.stopped_reason.clone(),
        stop_code: t
            .stop_code
            .as_deref()
            .and_then(|c| serde_json::from_value(c.into()).ok()),
        ..Default::default()
    }
}

pub(super) async fn list(
    call: &Call<'_>,
    req: ecs::ListTasksRequest,
) -> Result<ecs::ListTasksResponse, AwsError> {
    let service = req.service_name.as_deref().map(service_name).transpose()?;
    let stopped = req.desired_status == Some(ecs::DesiredStatus::Stopped);
    let svc = service.clone();
    let rows = call
        .st
        .store
        .call(move |c| ops::list_tasks(c, svc.as_deref(), stopped, 1000))
        .await
        .map_err(wire::store)?;
    let arns = rows
        .iter()
        .filter(|t| {
            if stopped {
                t.desired_status == cutover_core::task::DesiredStatus::Stopped
            } else {
                t.desired_status == cutover_core::task::DesiredStatus::Running
            }
        })
        .filter(|t| {
            req.family.as_deref().is_none_or(|f| {
                t.task_definition
                    .rsplit_once(':')
                    .is_some_and(|(family, _)| family == f)
            })
        })
        .filter(|t| {
            req.started_by
                .as_deref()
                .is_none_or(|s| s == format!("ecs-svc/{}", t.service))
        })
        .map(|t| task_arn(call, &t.id))
        .collect();
    let (arns, next) = page(arns, req.next_token.as_deref(), req.max_results)?;
    Ok(ecs::ListTasksResponse {
        task_arns: Some(arns),
        next_token: next,
    })
}

pub(super) async fn describe(
    call: &Call<'_>,
    req: ecs::DescribeTasksRequest,
) -> Result<ecs::DescribeTasksResponse, AwsError> {
    if req.tasks.is_empty() || req.tasks.len() > 100 {
        return Err(AwsError::client(
            errors::INVALID_PARAMETER_EXCEPTION,
            "tasks can have between 1 and 100 items.",
        ));
    }
    let ids = req
        .tasks
        .iter()
        .map(|t| {
            arn::name_or_arn(t, "ecs", "task")
                .map(str::to_string)
                .map_err(|e| AwsError::client(errors::INVALID_PARAMETER_EXCEPTION, e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let found = {
        let ids = ids.clone();
        call.st
            .store
            .call(move |c| {
                let pins = image_pins::list(c, None)?;
                let tasks = ids
                    .iter()
                    .map(|id| {
                        Ok(ops::task(c, id)?.map(|t| {
                            let pin = pins.iter().find(|p| {
                                p.service == t.service && p.task_definition == t.task_definition
                            });
                            (t.clone(), pin.cloned())
                        }))
                    })
                    .collect::<Result<Vec<_>, cutover_store::StoreError>>()?;
                Ok(tasks)
            })
            .await
            .map_err(wire::store)?
    };
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for (id, t) in ids.iter().zip(found) {
        match t {
            Some((t, pin)) => tasks.push(shape(call, &t, pin.as_ref())),
            None => failures.push(ecs::Failure {
                arn: Some(task_arn(call, id)),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(ecs::DescribeTasksResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

pub(super) async fn describe_clusters(
    call: &Call<'_>,
    req: ecs::DescribeClustersRequest,
) -> Result<ecs::DescribeClustersResponse, AwsError> {
    // The per-service counts `/v1/services` shows, in one query: no task
    // rows are read.
    let (services, counts) = call
        .st
        .store
        .call(|c| Ok((ops::list_services(c)?, ops::task_counts(c)?)))
        .await
        .map_err(wire::store)?;
    let (running, pending) = counts
        .values()
        .fold((0, 0), |(r, p), n| (r + n.running, p + n.pending));
    let cluster = ecs::Cluster {
        cluster_arn: Some(cluster_arn(call)),
        cluster_name: Some(CLUSTER.into()),
        status: Some("ACTIVE".into()),
        registered_container_instances_count: Some(0),
        running_tasks_count: Some(running as i32),
        pending_tasks_count: Some(pending as i32),
        active_services_count: Some(services.len() as i32),
        ..Default::default()
    };
    // Every name (or none) is the one cluster.
    let n = req.clusters.as_ref().map_or(1, |c| c.len().max(1));
    Ok(ecs::DescribeClustersResponse {
        clusters: Some(vec![cluster; n]),
        failures: Some(Vec::new()),
    })
}
