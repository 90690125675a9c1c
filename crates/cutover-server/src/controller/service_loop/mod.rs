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
//!
//! This file holds the loop and one pass; [`targets`] decides the task sets
//! a service wants, [`tasks`] starts, stops and watches tasks, and
//! [`events`] handles what arrives between passes (exits, probe verdicts).

mod events;
mod targets;
mod tasks;

use super::Controller;
use crate::dataplane::config::green_set;
use crate::taskdef::RunPlan;
use cutover_core::Millis;
use cutover_core::health::{HealthTracker, ProbeResult};
use cutover_core::reconcile::{self, Action, Backoff, TaskSetTarget, TaskView};
use cutover_core::service::ServiceStatus;
use cutover_core::task::TaskState;
use cutover_runtime::{ExitInfo, Runtime};
use cutover_store::ops;
use events::{on_event, report_steady_state, schedule_probes};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use targets::targets;
use tasks::{new_task_row, placement_of, plan_for, start_task, stop_task, watch};
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
    /// Revision -> the pinned image its tasks run (`None`: not pinned), see
    /// [`crate::pins`]; only successful lookups are kept.
    pins: HashMap<String, Option<String>>,
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
        pins: HashMap::new(),
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
    let placement = placement_of(&svc);
    let now = ctl.clock.now_ms();

    // Watch exits, resume interrupted starts, signal drained stops.
    let mut deadline: Option<Millis> = None;
    for t in &tasks {
        match t.last_status {
            TaskState::Provisioning => start_task(ctl, st, &runtime, &placement, t.clone()).await?,
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
                    start_task(ctl, st, &runtime, &placement, row).await?;
                }
            }
        }
    }
    report_steady_state(ctl, st, &svc, &tasks, changed).await;
    Ok(PassOutcome::Continue(deadline))
}
