//! What a service loop learns between passes: health probes it schedules,
//! their verdicts and task exits (recorded in the store), and the one
//! "steady state" event per settling.

use super::tasks::{forget_old_exits, plan_for};
use super::{LoopEvent, LoopState};
use crate::controller::Controller;
use crate::taskdef::HealthPlan;
use cutover_core::Millis;
use cutover_core::health::{HealthTracker, ProbeResult};
use cutover_core::service::ServiceStatus;
use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
use cutover_runtime::{ProbeOutcome, Runtime};
use cutover_store::{ServiceRow, TaskRow, ops};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Starts the health probes that are due; returns when the next one is.
pub(super) async fn schedule_probes(
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
        // A check ECS would never run (neither CMD nor CMD-SHELL) is not
        // probed: the task's health stays unknown, as on ECS.
        let Some(HealthPlan {
            command: Some(cmd),
            policy,
        }) = plan.health
        else {
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
                Ok(ProbeOutcome::Pending) => ProbeResult::Pending,
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

/// Records a task exit or a probe verdict that changes a task's health.
pub(super) async fn on_event(
    ctl: &Arc<Controller>,
    st: &mut LoopState,
    ev: LoopEvent,
) -> anyhow::Result<()> {
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

/// Records "steady state" once each time the service settles.
pub(super) async fn report_steady_state(
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
