//! Store rows as the API's types (`cutover_api`). Rows carry typed
//! statuses already (the store refuses a stored value outside its enum,
//! naming it), so this is a change of shape, never a guess.

use super::ApiResult;
use cutover_api::alarms::Alarm;
use cutover_api::builds::Build;
use cutover_api::deployments::{BlueGreenView, Deployment, LifecycleRecord, Traffic};
use cutover_api::services::{Event, Service};
use cutover_api::task_definitions::TaskDefinition;
use cutover_api::tasks::Task;
use cutover_store::image_pins::ImagePinRow;
use cutover_store::{
    AlarmRow, BuildRow, DeploymentRow, EventRow, ServiceRow, TaskDefinitionRow, TaskRow, ops,
};

/// Image pins by (service, revision): what [`pin_task`] and
/// [`pin_deployment`] show.
pub(crate) type Pins = std::collections::HashMap<(String, String), ImagePinRow>;

/// The image pins of `service`, or of every service.
pub(crate) async fn pins(st: &super::AppState, service: Option<&str>) -> ApiResult<Pins> {
    let service = service.map(str::to_string);
    let rows = st
        .store
        .call(move |c| cutover_store::image_pins::list(c, service.as_deref()))
        .await?;
    Ok(rows
        .into_iter()
        .map(|p| ((p.service.clone(), p.task_definition.clone()), p))
        .collect())
}

/// Shows the pinned image a task runs (a revision's pin never changes, so
/// it is the one the task was started with).
pub(crate) fn pin_task(t: &mut Task, pins: &Pins) {
    if let Some(p) = pins.get(&(t.service.clone(), t.task_definition.clone())) {
        t.image = Some(p.reference.clone());
        t.image_digest = Some(p.digest.clone());
    }
}

/// Shows the pinned image of the revision a deployment deploys.
pub(crate) fn pin_deployment(d: &mut Deployment, pins: &Pins) {
    if let Some(p) = pins.get(&(d.service.clone(), d.to_task_definition.clone())) {
        d.image = Some(p.reference.clone());
        d.image_digest = Some(p.digest.clone());
    }
}

/// A service with counts of its tasks (events and tasks left out).
pub(crate) fn service(svc: &ServiceRow, counts: ops::TaskCounts) -> ApiResult<Service> {
    Ok(Service {
        name: svc.name.clone(),
        status: svc.status,
        task_definition: svc.task_definition.clone(),
        desired_count: svc.desired_count,
        running_count: counts.running,
        pending_count: counts.pending,
        healthy_count: counts.healthy,
        runtime: svc.runtime.clone(),
        generation: svc.generation,
        created_at: svc.created_at,
        updated_at: svc.updated_at,
        spec: svc.spec.clone(),
        events: None,
        tasks: None,
    })
}

/// A task.
pub(crate) fn task(t: TaskRow) -> Task {
    Task {
        id: t.id,
        service: t.service,
        task_set: t.task_set,
        task_definition: t.task_definition,
        runtime: t.runtime,
        last_status: t.last_status,
        desired_status: t.desired_status,
        health_status: t.health_status,
        image: None,
        image_digest: None,
        endpoint: t.endpoint,
        handle: t.handle,
        stop_code: t.stop_code,
        stopped_reason: t.stopped_reason,
        exit_code: t.exit_code,
        created_at: t.created_at,
        started_at: t.started_at,
        stopping_at: t.stopping_at,
        stopped_at: t.stopped_at,
    }
}

/// Tasks.
pub(crate) fn tasks(rows: Vec<TaskRow>) -> Vec<Task> {
    rows.into_iter().map(task).collect()
}

/// Events.
pub(crate) fn events(rows: Vec<EventRow>) -> Vec<Event> {
    rows.into_iter()
        .map(|e| Event {
            id: e.id,
            at: e.at,
            subject: e.subject,
            message: e.message,
        })
        .collect()
}

/// A task definition revision, with its body or not.
pub(crate) fn task_definition(row: &TaskDefinitionRow, with_body: bool) -> TaskDefinition {
    TaskDefinition {
        name: row.name(),
        family: row.family.clone(),
        revision: row.revision,
        registered_at: row.registered_at,
        digest: row.digest.clone(),
        body: with_body.then(|| row.body.clone()),
    }
}

/// A deployment: the row, and its lifecycle and traffic from the engine
/// state when it is a blue/green one (events left out).
pub(crate) fn deployment(d: &DeploymentRow) -> ApiResult<Deployment> {
    let blue_green = d.engine.blue_green().map(|bg| {
        let t = bg.traffic();
        BlueGreenView {
            lifecycle: bg
                .lifecycle()
                .iter()
                .map(|r| LifecycleRecord {
                    event: r.event,
                    status: r.status,
                    started_at: r.started_at,
                    ended_at: r.ended_at,
                    message: r.message.clone(),
                })
                .collect(),
            traffic: Traffic {
                prod_green_percent: t.prod_green_percent,
                test_on_green: t.test_on_green,
                pending_percent: t.pending.as_ref().map(|p| p.prod_green_percent),
            },
            alarms: bg.spec().alarms.clone(),
            routing: bg.spec().routing,
            next_wakeup: bg.next_wakeup(),
        }
    });
    Ok(Deployment {
        id: d.id.clone(),
        service: d.service.clone(),
        kind: d.kind(),
        status: d.status,
        from_task_definition: d.from_task_definition.clone(),
        to_task_definition: d.to_task_definition.clone(),
        image: None,
        image_digest: None,
        config: d.config.clone(),
        green_provisioned: d.green_provisioned,
        prod_green_percent: d.prod_green_percent,
        test_on_green: d.test_on_green,
        started_by: d.started_by.clone(),
        rollback_of: d.rollback_of.clone(),
        rolled_back_by: d.rolled_back_by.clone(),
        outcome: d.outcome.clone(),
        created_at: d.created_at,
        updated_at: d.updated_at,
        finished_at: d.finished_at,
        blue_green,
        events: None,
    })
}

/// An alarm.
pub(crate) fn alarm(a: AlarmRow) -> ApiResult<Alarm> {
    Ok(Alarm {
        state: a.state,
        name: a.name,
        spec: a.spec.declared().ok().cloned(),
        reason: a.reason,
        updated_at: a.updated_at,
    })
}

/// A build with its duration.
pub(crate) fn build(b: BuildRow) -> Build {
    Build {
        status: b.status,
        duration_ms: b.finished_at.map(|f| f.saturating_sub(b.started_at)),
        id: b.id,
        project: b.project,
        number: b.number,
        initiator: b.initiator,
        action_key: b.action_key,
        source: b.source,
        work_dir: b.work_dir,
        detail: b.detail,
        message: b.message,
        started_at: b.started_at,
        finished_at: b.finished_at,
    }
}
