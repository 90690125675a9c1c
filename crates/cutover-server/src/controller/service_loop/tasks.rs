//! Starting, stopping and watching one service's tasks: each writes the
//! intent to the store before it calls the runtime.

use super::{LoopEvent, LoopState, runtime_for};
use crate::controller::Controller;
use crate::taskdef::{RunPlan, run_plan};
use cutover_core::Millis;
use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
use cutover_runtime::{Placement, Runtime, TaskSpec};
use cutover_store::{ServiceRow, TaskRow, ops};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A new PROVISIONING task of `task_set` (written before it is started).
pub(super) fn new_task_row(
    svc: &ServiceRow,
    task_set: &str,
    task_definition: &str,
    now: Millis,
) -> TaskRow {
    TaskRow {
        id: uuid::Uuid::new_v4().simple().to_string(),
        service: svc.name.clone(),
        task_set: task_set.to_string(),
        task_definition: task_definition.to_string(),
        runtime: svc.runtime.clone(),
        last_status: TaskState::Provisioning,
        desired_status: DesiredStatus::Running,
        health_status: HealthStatus::Unknown,
        endpoint: None,
        handle: None,
        stop_code: None,
        stopped_reason: None,
        exit_code: None,
        created_at: now,
        started_at: None,
        stopping_at: None,
        stopped_at: None,
    }
}

/// How to run a task definition revision (read once per loop, then cached).
pub(super) async fn plan_for(
    ctl: &Controller,
    st: &mut LoopState,
    task_definition: &str,
) -> anyhow::Result<RunPlan> {
    if let Some(p) = st.plans.get(task_definition) {
        return Ok(p.clone());
    }
    let (family, rev) = task_definition
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("bad task definition name {task_definition:?}"))?;
    let rev: u32 = rev.parse()?;
    let family = family.to_string();
    let row = ctl
        .store
        .call(move |c| ops::task_definition(c, &family, Some(rev)))
        .await?
        .ok_or_else(|| anyhow::anyhow!("task definition {task_definition} not found"))?;
    let plan = run_plan(&row.body).map_err(|e| anyhow::anyhow!("{task_definition}: {e}"))?;
    st.plans.insert(task_definition.to_string(), plan.clone());
    Ok(plan)
}

/// The placement a service's settings ask for; what cannot be mapped was
/// refused at apply, so anything left is only logged.
pub(super) fn placement_of(svc: &ServiceRow) -> Placement {
    let (placement, errors) = cutover_spec::stack::placement::node_placement(
        &svc.spec.placement_constraints,
        &svc.spec.placement_strategy,
        &cutover_spec::doc::Path::root(),
    );
    for (path, error) in errors {
        tracing::warn!(service = %svc.name, %path, %error, "placement ignored");
    }
    placement
}

/// The pinned image a task of `row`'s revision runs (recorded by the
/// revision's deployment, else by this first task), `None` when its image is
/// not pinned, or why it cannot be resolved (a `CannotPullContainerError`).
async fn pinned_image(
    ctl: &Controller,
    st: &mut LoopState,
    row: &TaskRow,
) -> Result<Option<String>, String> {
    if let Some(p) = st.pins.get(&row.task_definition) {
        return Ok(p.clone());
    }
    let pin = crate::pins::pinned_for_task(ctl, &row.service, &row.runtime, &row.task_definition)
        .await
        .map_err(|e| match e {
            crate::pins::PinError::Resolve(e) => e.to_string(),
            other => format!("CannotPullContainerError: {other}"),
        })?
        .map(|p| p.reference);
    st.pins.insert(row.task_definition.clone(), pin.clone());
    Ok(pin)
}

/// Starts a task and records it RUNNING, or STOPPED if it cannot start.
pub(super) async fn start_task(
    ctl: &Arc<Controller>,
    st: &mut LoopState,
    runtime: &Arc<dyn Runtime>,
    placement: &Placement,
    mut row: TaskRow,
) -> anyhow::Result<()> {
    let mut plan = plan_for(ctl, st, &row.task_definition).await?;
    let pinned = pinned_image(ctl, st, &row).await;
    if let Ok(Some(reference)) = &pinned {
        plan.container.image = Some(reference.clone());
    }
    let spec = TaskSpec {
        task_id: row.id.clone(),
        service: row.service.clone(),
        task_definition: row.task_definition.clone(),
        container: plan.container.clone(),
        labels: BTreeMap::from([
            ("cutover.service".to_string(), row.service.clone()),
            ("cutover.task".to_string(), row.id.clone()),
            (
                "cutover.task-definition".to_string(),
                row.task_definition.clone(),
            ),
        ]),
        placement: placement.clone(),
    };
    let now = ctl.clock.now_ms();
    let started = match pinned {
        Ok(_) => runtime.start(&spec).await,
        Err(message) => Err(cutover_runtime::RuntimeError::CannotStart {
            task_id: row.id.clone(),
            message,
        }),
    };
    match started {
        Ok(handle) => {
            row.set_status(TaskState::Running)?;
            row.endpoint = handle.endpoint.map(|e| e.to_string());
            row.started_at = Some(handle.started_at_unix_ms.max(row.created_at));
            row.handle = Some(handle);
            let written = row.clone();
            ctl.store
                .call(move |c| ops::update_task_lifecycle(c, &written))
                .await?;
            ctl.changed.notify_one();
            ctl.event(
                &format!("service/{}", row.service),
                &format!(
                    "started task {} ({}) on {}",
                    row.id,
                    row.task_definition,
                    row.endpoint.as_deref().unwrap_or("no endpoint")
                ),
            )
            .await;
            watch(st, runtime, &row.id);
        }
        Err(e) => {
            st.backoff.task_failed(now, 0);
            row.set_status(TaskState::Stopped)?;
            row.desired_status = DesiredStatus::Stopped;
            row.stop_code = Some("TaskFailedToStart".into());
            row.stopped_reason = Some(match &e {
                cutover_runtime::RuntimeError::CannotStart { message, .. }
                    if message.starts_with("Cannot") =>
                {
                    message.clone()
                }
                other => format!("CannotStartContainerError: {other}"),
            });
            row.stopped_at = Some(now);
            let written = row.clone();
            ctl.store
                .call(move |c| ops::update_task_lifecycle(c, &written))
                .await?;
            ctl.event(
                &format!("service/{}", row.service),
                &format!("task {} failed to start: {e}", row.id),
            )
            .await;
        }
    }
    Ok(())
}

/// Marks a task STOPPING (it leaves the load balancer at once) and signals
/// it after `drain_ms`, the target group's deregistration delay, so its
/// in-flight requests finish first.
pub(super) async fn stop_task(
    ctl: &Arc<Controller>,
    st: &mut LoopState,
    t: &TaskRow,
    code: &str,
    reason: &str,
    drain_ms: Millis,
) -> anyhow::Result<()> {
    if t.desired_status == DesiredStatus::Stopped && t.last_status == TaskState::Stopping {
        return Ok(());
    }
    let now = ctl.clock.now_ms();
    let mut row = t.clone();
    row.desired_status = DesiredStatus::Stopped;
    row.set_status(TaskState::Stopping)?;
    row.stopping_at = Some(now + drain_ms);
    row.stop_code = Some(code.into());
    row.stopped_reason = Some(reason.into());
    let written = row.clone();
    ctl.store
        .call(move |c| ops::update_task_lifecycle(c, &written))
        .await?;
    ctl.changed.notify_one();
    if drain_ms > 0 {
        ctl.event(
            &format!("service/{}", row.service),
            &format!(
                "draining task {} for {drain_ms} ms, then stopping it: {reason}",
                row.id
            ),
        )
        .await;
        return Ok(());
    }
    ctl.event(
        &format!("service/{}", row.service),
        &format!("stopping task {}: {reason}", row.id),
    )
    .await;
    st.signalled.insert(row.id.clone(), now);
    let runtime = runtime_for(ctl, &row.runtime)?;
    runtime.stop(&row.id).await?;
    Ok(())
}

/// Exited tasks this many per service stay in their runtime (so their logs
/// can still be read); older ones are removed, so a crash-looping service
/// does not pile up exited containers or task directories.
const KEEP_EXITED: usize = 5;

/// Removes the remains of exited tasks beyond the last [`KEEP_EXITED`].
pub(super) async fn forget_old_exits(ctl: &Arc<Controller>, service: &str) {
    let service = service.to_string();
    let Ok(tasks) = ctl
        .store
        .call(move |c| ops::list_tasks(c, Some(&service), true, 1_000))
        .await
    else {
        return;
    };
    let old: Vec<(String, String)> = tasks
        .into_iter()
        .filter(|t| t.last_status == TaskState::Stopped)
        .skip(KEEP_EXITED)
        // Older ones were removed at earlier exits.
        .take(KEEP_EXITED)
        .map(|t| (t.id, t.runtime))
        .collect();
    let runtimes = ctl.runtimes().clone();
    tokio::spawn(async move {
        for (id, runtime) in old {
            if let Some(rt) = runtimes.get(&runtime)
                && let Err(e) = rt.remove(&id).await
            {
                tracing::warn!(task = %id, error = %e, "cannot remove a stopped task's remains");
            }
        }
    });
}

/// Watches a task's exit once (its watcher reports it as a [`LoopEvent`]).
pub(super) fn watch(st: &mut LoopState, runtime: &Arc<dyn Runtime>, task_id: &str) {
    if !st.watched.insert(task_id.to_string()) {
        return;
    }
    let rt = runtime.clone();
    let tx = st.tx.clone();
    let id = task_id.to_string();
    tokio::spawn(async move {
        match rt.wait(&id).await {
            Ok(info) => {
                let _ = tx.send(LoopEvent::Exited { task_id: id, info });
            }
            Err(e) => tracing::warn!(task = %id, error = %e, "cannot watch task"),
        }
    });
}
