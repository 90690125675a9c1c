//! One service's reconcile loop.
//!
//! Each pass reads the declaration and the tasks from the store, asks the
//! pure [`cutover_core::reconcile`] what to change, persists the intent, and
//! only then calls the runtime. Passes run at least every
//! [`LOOP_INTERVAL`], at once when woken (an API change, a task exit, a
//! health verdict), and at the next health-probe or backoff deadline.
//!
//! Task exits are observed by one watcher per task (the runtime's `wait`),
//! so a killed task is replaced within milliseconds, not at the next tick.
//! Health probes run in their own tasks and report back over a channel, so a
//! slow probe never delays a pass.

use super::Controller;
use crate::dataplane::config::green_set;
use crate::taskdef::{RunPlan, run_plan};
use cutover_core::Millis;
use cutover_core::health::{HealthTracker, ProbeResult};
use cutover_core::reconcile::{self, Action, Backoff, TaskSetTarget, TaskView};
use cutover_core::service::ServiceStatus;
use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
use cutover_deploy::rolling::{self, RollingSpec, RollingView};
use cutover_runtime::{ExitInfo, ProbeOutcome, Runtime, TaskSpec};
use cutover_store::{ServiceRow, TaskRow, ops};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// The longest time between two passes of a service loop.
pub(crate) const LOOP_INTERVAL: Duration = Duration::from_secs(1);

enum LoopEvent {
    Exited {
        task_id: String,
        info: ExitInfo,
    },
    Probe {
        task_id: String,
        result: ProbeResult,
        at: Millis,
    },
}

struct LoopState {
    service: String,
    backoff: Backoff,
    watched: HashSet<String>,
    probing: HashSet<String>,
    trackers: HashMap<String, HealthTracker>,
    plans: HashMap<String, RunPlan>,
    /// Task set -> revision for sets not named after their revision.
    set_revisions: HashMap<String, String>,
    /// When each STOPPING task was last signalled.
    signalled: HashMap<String, Millis>,
    steady: bool,
    tx: mpsc::UnboundedSender<LoopEvent>,
}

pub(super) async fn run(
    ctl: Arc<Controller>,
    service: String,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut st = LoopState {
        service: service.clone(),
        backoff: Backoff::default(),
        watched: HashSet::new(),
        probing: HashSet::new(),
        trackers: HashMap::new(),
        plans: HashMap::new(),
        set_revisions: HashMap::new(),
        signalled: HashMap::new(),
        steady: false,
        tx,
    };
    let span = tracing::info_span!("service", name = %service);
    let _enter = span.enter();
    loop {
        let next = match pass(&ctl, &mut st).await {
            Ok(PassOutcome::Continue(deadline)) => deadline,
            Ok(PassOutcome::Finished) => return,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reconcile pass failed");
                None
            }
        };
        let sleep_for = next
            .map(|at| Duration::from_millis(at.saturating_sub(ctl.clock.now_ms())))
            .unwrap_or(LOOP_INTERVAL)
            .min(LOOP_INTERVAL);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep_for) => {}
            Some(ev) = rx.recv() => {
                if let Err(e) = on_event(&ctl, &mut st, ev).await {
                    tracing::error!(error = %format!("{e:#}"), "cannot record task event");
                }
                while let Ok(ev) = rx.try_recv() {
                    if let Err(e) = on_event(&ctl, &mut st, ev).await {
                        tracing::error!(error = %format!("{e:#}"), "cannot record task event");
                    }
                }
            }
        }
    }
}

enum PassOutcome {
    Continue(Option<Millis>),
    Finished,
}

fn runtime_for(ctl: &Controller, name: &str) -> anyhow::Result<Arc<dyn Runtime>> {
    ctl.runtimes()
        .get(name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("runtime {name:?} is not available on this server"))
}

async fn pass(ctl: &Arc<Controller>, st: &mut LoopState) -> anyhow::Result<PassOutcome> {
    let name = st.service.clone();
    // Everything a pass reads, in one store call (100 idle services make
    // 100 passes a second).
    let (svc, tasks, unfinished) = ctl
        .store
        .call(move |c| {
            Ok((
                ops::service(c, &name)?,
                ops::list_tasks(c, Some(&name), false, u32::MAX)?,
                ops::unfinished_deployments_of(c, &name)?,
            ))
        })
        .await?;
    let Some(svc) = svc else {
        // Deleted outright: stop whatever is left, then end the loop.
        if tasks.is_empty() {
            return Ok(PassOutcome::Finished);
        }
        for t in &tasks {
            stop_task(
                ctl,
                st,
                t,
                "ServiceSchedulerInitiated",
                "Service deleted",
                0,
            )
            .await?;
        }
        return Ok(PassOutcome::Continue(None));
    };
    if svc.status == ServiceStatus::Draining && tasks.is_empty() {
        let name = svc.name.clone();
        let deleted = ctl
            .store
            .call(move |c| ops::delete_drained_service(c, &name))
            .await?;
        if !deleted {
            // Made ACTIVE again (or given a task) since the read: go on.
            return Ok(PassOutcome::Continue(None));
        }
        ctl.event(
            &format!("service/{}", svc.name),
            "service deleted: all tasks stopped",
        )
        .await;
        return Ok(PassOutcome::Finished);
    }
    let runtime = runtime_for(ctl, &svc.runtime)?;
    let now = ctl.clock.now_ms();

    // Watch exits, resume interrupted starts, signal drained stops.
    let mut deadline: Option<Millis> = None;
    for t in &tasks {
        match t.last_status {
            TaskState::Provisioning => start_task(ctl, st, &runtime, t.clone()).await?,
            TaskState::Stopping => {
                watch(st, &runtime, &t.id);
                // A draining task is signalled once its drain ends; an
                // overdue one again (the signal is idempotent).
                let due = t.stopping_at.unwrap_or(0);
                let signalled = st.signalled.get(&t.id).copied();
                if (signalled.is_none() && now >= due)
                    || signalled.is_some_and(|at| now > at + 5_000)
                {
                    st.signalled.insert(t.id.clone(), now);
                    if let Err(e) = runtime.stop(&t.id).await {
                        // Signalled again after 5 s.
                        tracing::warn!(task = %t.id, error = %e, "cannot signal a stopping task");
                    }
                } else if signalled.is_none() {
                    deadline = Some(deadline.map_or(due, |d: Millis| d.min(due)));
                }
            }
            _ => watch(st, &runtime, &t.id),
        }
    }
    if let Some(p) = schedule_probes(ctl, st, &runtime, &tasks, now).await {
        deadline = Some(deadline.map_or(p, |d| d.min(p)));
    }

    let current_has_health = plan_for(ctl, st, &svc.task_definition)
        .await
        .map(|p| p.health.is_some())
        .unwrap_or(false);
    let deployment = unfinished
        .into_iter()
        .find(|d| d.kind() == cutover_deploy::DeploymentKind::BlueGreen);
    let mut targets = targets(&svc, &tasks, current_has_health, deployment.is_some());
    st.set_revisions.clear();
    if let Some(d) = deployment.as_ref().filter(|d| d.green_provisioned) {
        let set = green_set(&d.id);
        st.set_revisions
            .insert(set.clone(), d.to_task_definition.clone());
        targets.push(TaskSetTarget {
            task_set: set,
            desired: if svc.status == ServiceStatus::Draining {
                0
            } else {
                svc.desired_count
            },
        });
    }
    let drain_ms = svc
        .spec
        .load_balancer
        .as_ref()
        .map_or(0, |lb| lb.deregistration_delay_seconds * 1000);
    let views: Vec<TaskView> = tasks
        .iter()
        .map(|t| {
            Ok(TaskView {
                id: t.id.clone(),
                task_set: t.task_set.clone(),
                state: t.last_status,
                health: t.health_status,
                created_at: t.created_at,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let actions = reconcile::reconcile(&targets, &views, &st.backoff, now);
    if let Some(at) = reconcile::next_deadline(&targets, &views, &st.backoff, now) {
        deadline = Some(deadline.map_or(at, |d: Millis| d.min(at)));
    }
    let changed = !actions.is_empty();
    for action in actions {
        match action {
            Action::Stop { task_id, reason } => {
                if let Some(t) = tasks.iter().find(|t| t.id == task_id) {
                    if reason == reconcile::StopReason::Unhealthy {
                        st.backoff
                            .task_failed(now, now.saturating_sub(t.started_at.unwrap_or(now)));
                    }
                    let drain = if reason == reconcile::StopReason::Unhealthy {
                        0
                    } else {
                        drain_ms
                    };
                    stop_task(
                        ctl,
                        st,
                        t,
                        "ServiceSchedulerInitiated",
                        reason.message(),
                        drain,
                    )
                    .await?;
                }
            }
            Action::Start { task_set, count } => {
                let task_definition = st
                    .set_revisions
                    .get(&task_set)
                    .cloned()
                    .unwrap_or_else(|| task_set.clone());
                for _ in 0..count {
                    let row = new_task_row(&svc, &task_set, &task_definition, now);
                    let written = row.clone();
                    ctl.store
                        .call(move |c| ops::insert_task(c, &written))
                        .await?;
                    start_task(ctl, st, &runtime, row).await?;
                }
            }
        }
    }
    report_steady_state(ctl, st, &svc, &tasks, changed).await;
    Ok(PassOutcome::Continue(deadline))
}

/// The task sets a service wants: its current revision at the desired
/// count, plus older revisions kept until the current one is fully up, so
/// that changing the task definition never takes capacity away first.
/// (The deployment controllers replace this with blue/green and rolling
/// updates with their own limits.)
/// The task sets a service wants: its current revision at the desired
/// count and, during a rolling update, the older revisions at the counts the
/// ECS rolling planner allows (`minimumHealthyPercent` healthy tasks kept,
/// at most `maximumPercent` running or pending). Blue/green deployments add
/// their replacement set separately; sets retired by a promotion are not
/// kept.
fn targets(
    svc: &ServiceRow,
    tasks: &[TaskRow],
    has_health_check: bool,
    blue_green: bool,
) -> Vec<TaskSetTarget> {
    let desired = if svc.status == ServiceStatus::Draining {
        0
    } else {
        svc.desired_count
    };
    let primary = svc.task_definition.as_str();
    let active = |t: &&TaskRow| {
        t.desired_status == DesiredStatus::Running && t.last_status != TaskState::Stopped
    };
    let healthy = |t: &TaskRow, checked: bool| {
        t.last_status == TaskState::Running
            && if checked {
                t.health_status == HealthStatus::Healthy
            } else {
                t.health_status != HealthStatus::Unhealthy
            }
    };
    let new: Vec<&TaskRow> = tasks
        .iter()
        .filter(active)
        .filter(|t| t.task_set == primary)
        .collect();
    let old: Vec<&TaskRow> = tasks
        .iter()
        .filter(active)
        .filter(|t| {
            t.task_set != primary
                && !t.task_set.starts_with("retired-")
                && !t.task_set.starts_with("green-")
        })
        .collect();
    if old.is_empty() || desired == 0 || blue_green {
        return vec![TaskSetTarget {
            task_set: primary.to_string(),
            desired,
        }];
    }
    let new_healthy = new.iter().filter(|t| healthy(t, has_health_check)).count() as u32;
    let old_healthy = old.iter().filter(|t| healthy(t, false)).count() as u32;
    let deployment = &svc.spec.deployment;
    let spec = RollingSpec {
        desired,
        minimum_healthy_percent: deployment.minimum_healthy_percent.unwrap_or(100),
        maximum_percent: deployment.maximum_percent.unwrap_or(200),
        circuit_breaker: None,
        alarms: None,
    };
    let view = RollingView {
        old_running_healthy: old_healthy,
        old_other: old.len() as u32 - old_healthy,
        new_running_healthy: new_healthy,
        new_pending: new.len() as u32 - new_healthy,
        new_failed_launches: 0,
        alarms_firing: Vec::new(),
    };
    let decision = rolling::plan(&spec, &view);
    let mut out = vec![TaskSetTarget {
        task_set: primary.to_string(),
        desired: (new.len() as u32 + decision.start_new).min(desired),
    }];
    // Old tasks to stop come from the largest old set first.
    let mut old_sets: BTreeMap<&str, u32> = BTreeMap::new();
    for t in &old {
        *old_sets.entry(&t.task_set).or_default() += 1;
    }
    let mut sets: Vec<(&str, u32)> = old_sets.into_iter().collect();
    sets.sort_by_key(|(name, n)| (std::cmp::Reverse(*n), *name));
    let mut to_stop = decision.stop_old;
    for (set, count) in sets {
        let stop = to_stop.min(count);
        to_stop -= stop;
        out.push(TaskSetTarget {
            task_set: set.to_string(),
            desired: count - stop,
        });
    }
    out
}

fn new_task_row(svc: &ServiceRow, task_set: &str, task_definition: &str, now: Millis) -> TaskRow {
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

async fn plan_for(
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

async fn start_task(
    ctl: &Arc<Controller>,
    st: &mut LoopState,
    runtime: &Arc<dyn Runtime>,
    mut row: TaskRow,
) -> anyhow::Result<()> {
    let plan = plan_for(ctl, st, &row.task_definition).await?;
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
    };
    let now = ctl.clock.now_ms();
    match runtime.start(&spec).await {
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
async fn stop_task(
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

async fn forget_old_exits(ctl: &Arc<Controller>, service: &str) {
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

fn watch(st: &mut LoopState, runtime: &Arc<dyn Runtime>, task_id: &str) {
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

async fn schedule_probes(
    ctl: &Arc<Controller>,
    st: &mut LoopState,
    runtime: &Arc<dyn Runtime>,
    tasks: &[TaskRow],
    now: Millis,
) -> Option<Millis> {
    let mut deadline: Option<Millis> = None;
    let live: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    st.trackers.retain(|id, _| live.contains(id.as_str()));
    for t in tasks.iter().filter(|t| t.last_status == TaskState::Running) {
        let Ok(plan) = plan_for(ctl, st, &t.task_definition).await else {
            continue;
        };
        let Some((cmd, policy)) = plan.health else {
            continue;
        };
        let tracker = st
            .trackers
            .entry(t.id.clone())
            .or_insert_with(|| HealthTracker::new(policy, t.started_at.unwrap_or(now)));
        if st.probing.contains(&t.id) {
            continue;
        }
        if !tracker.due(now) {
            let at = tracker.next_probe_at();
            deadline = Some(deadline.map_or(at, |d| d.min(at)));
            continue;
        }
        st.probing.insert(t.id.clone());
        let rt = runtime.clone();
        let tx = st.tx.clone();
        let id = t.id.clone();
        let timeout = Duration::from_millis(policy.timeout_ms.max(1));
        let clock = ctl.clock.clone();
        tokio::spawn(async move {
            let result = match rt.health_probe(&id, &cmd, timeout).await {
                Ok(ProbeOutcome::Healthy) => ProbeResult::Pass,
                Ok(ProbeOutcome::TimedOut) => ProbeResult::TimedOut,
                Ok(ProbeOutcome::Unhealthy { .. }) | Err(_) => ProbeResult::Fail,
            };
            let _ = tx.send(LoopEvent::Probe {
                task_id: id,
                result,
                at: clock.now_ms(),
            });
        });
    }
    deadline
}

async fn on_event(ctl: &Arc<Controller>, st: &mut LoopState, ev: LoopEvent) -> anyhow::Result<()> {
    match ev {
        LoopEvent::Exited { task_id, info } => {
            st.watched.remove(&task_id);
            st.trackers.remove(&task_id);
            let Some(mut row) = ctl
                .store
                .call({
                    let id = task_id.clone();
                    move |c| ops::task(c, &id)
                })
                .await?
            else {
                return Ok(());
            };
            if row.last_status == TaskState::Stopped {
                return Ok(());
            }
            let now = ctl.clock.now_ms();
            let unexpected = row.desired_status == DesiredStatus::Running;
            row.set_status(TaskState::Stopped)?;
            row.exit_code = info.exit_code;
            row.stopped_at = Some(info.finished_at_unix_ms.max(row.created_at));
            if unexpected {
                st.backoff
                    .task_failed(now, now.saturating_sub(row.started_at.unwrap_or(now)));
                row.desired_status = DesiredStatus::Stopped;
                row.stop_code = Some("EssentialContainerExited".into());
                row.stopped_reason = Some(info.reason.clone());
            }
            let written = row.clone();
            ctl.store
                .call(move |c| ops::update_task_lifecycle(c, &written))
                .await?;
            st.signalled.remove(&row.id);
            ctl.changed.notify_one();
            forget_old_exits(ctl, &row.service).await;
            ctl.event(
                &format!("service/{}", row.service),
                &format!(
                    "task {} stopped (exit code {}): {}",
                    row.id,
                    info.exit_code.map_or("none".to_string(), |c| c.to_string()),
                    row.stopped_reason.as_deref().unwrap_or(&info.reason)
                ),
            )
            .await;
            st.steady = false;
        }
        LoopEvent::Probe {
            task_id,
            result,
            at,
        } => {
            st.probing.remove(&task_id);
            let Some(tracker) = st.trackers.get_mut(&task_id) else {
                return Ok(());
            };
            if let Some(tr) = tracker.record(at, result) {
                let Some(mut row) = ctl
                    .store
                    .call({
                        let id = task_id.clone();
                        move |c| ops::task(c, &id)
                    })
                    .await?
                else {
                    return Ok(());
                };
                if row.last_status == TaskState::Stopped {
                    return Ok(());
                }
                row.health_status = tr.to;
                let written = row.clone();
                ctl.store
                    .call(move |c| ops::update_task_lifecycle(c, &written))
                    .await?;
                ctl.changed.notify_one();
                if tr.to == HealthStatus::Healthy {
                    st.backoff.task_succeeded();
                }
                ctl.event(
                    &format!("service/{}", row.service),
                    &format!("task {} is {}", row.id, tr.to),
                )
                .await;
            }
        }
    }
    Ok(())
}

async fn report_steady_state(
    ctl: &Controller,
    st: &mut LoopState,
    svc: &ServiceRow,
    tasks: &[TaskRow],
    changed: bool,
) {
    let steady = !changed
        && svc.status == ServiceStatus::Active
        && tasks.iter().all(|t| {
            t.task_set == svc.task_definition
                && t.last_status == TaskState::Running
                && t.health_status != HealthStatus::Unhealthy
        })
        && tasks.len() as u32 == svc.desired_count;
    if steady && !st.steady {
        ctl.event(
            &format!("service/{}", svc.name),
            &format!("service {} has reached a steady state", svc.name),
        )
        .await;
    }
    st.steady = steady;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(min: u32, max: u32, desired: u32) -> ServiceRow {
        ServiceRow {
            name: "web".into(),
            task_definition: "web:2".into(),
            desired_count: desired,
            runtime: "process".into(),
            spec: serde_json::from_value(json!({"deployment": {"type": "ROLLING", "minimumHealthyPercent": min, "maximumPercent": max}}))
                .unwrap(),
            status: ServiceStatus::Active,
            lb_group: "a".into(),
            generation: 2,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn task(id: &str, set: &str, status: &str, health: &str) -> TaskRow {
        TaskRow {
            id: id.into(),
            service: "web".into(),
            task_set: set.into(),
            task_definition: set.into(),
            runtime: "process".into(),
            last_status: status.parse().unwrap(),
            desired_status: DesiredStatus::Running,
            health_status: health.parse().unwrap(),
            endpoint: None,
            handle: None,
            stop_code: None,
            stopped_reason: None,
            exit_code: None,
            created_at: 0,
            started_at: None,
            stopping_at: None,
            stopped_at: None,
        }
    }

    fn desired_of(t: &[TaskSetTarget], set: &str) -> u32 {
        t.iter()
            .find(|x| x.task_set == set)
            .map_or(0, |x| x.desired)
    }

    #[test]
    fn min_100_max_200_starts_all_new_before_stopping_any_old() {
        let tasks: Vec<_> = (0..4)
            .map(|i| task(&format!("o{i}"), "web:1", "RUNNING", "HEALTHY"))
            .collect();
        let t = targets(&svc(100, 200, 4), &tasks, true, false);
        assert_eq!(desired_of(&t, "web:2"), 4);
        assert_eq!(desired_of(&t, "web:1"), 4);
    }

    #[test]
    fn min_50_max_100_stops_half_first_then_replaces() {
        let tasks: Vec<_> = (0..4)
            .map(|i| task(&format!("o{i}"), "web:1", "RUNNING", "HEALTHY"))
            .collect();
        let t = targets(&svc(50, 100, 4), &tasks, true, false);
        assert_eq!(desired_of(&t, "web:1"), 2, "{t:?}");
        assert_eq!(
            desired_of(&t, "web:2"),
            0,
            "a start waits until the stops made room: {t:?}"
        );
        let mut tasks: Vec<_> = (0..2)
            .map(|i| task(&format!("o{i}"), "web:1", "RUNNING", "HEALTHY"))
            .collect();
        let t = targets(&svc(50, 100, 4), &tasks, true, false);
        assert_eq!(desired_of(&t, "web:2"), 2, "{t:?}");
        tasks.push(task("n0", "web:2", "RUNNING", "HEALTHY"));
        tasks.push(task("n1", "web:2", "RUNNING", "HEALTHY"));
        let t = targets(&svc(50, 100, 4), &tasks, true, false);
        assert_eq!(desired_of(&t, "web:1"), 0, "{t:?}");
    }

    #[test]
    fn retired_and_replacement_sets_are_never_kept_by_the_rolling_rule() {
        let tasks = vec![
            task("r", "retired-d1", "RUNNING", "HEALTHY"),
            task("n", "web:2", "RUNNING", "HEALTHY"),
        ];
        let t = targets(&svc(100, 200, 1), &tasks, true, false);
        assert_eq!(t.len(), 1);
        assert_eq!(desired_of(&t, "web:2"), 1);
    }
}
