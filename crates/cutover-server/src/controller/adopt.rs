//! Adoption after a (re)start of the control plane.
//!
//! The rule, for every runtime:
//! - a task the store knows as not STOPPED and the runtime reports running
//!   is adopted as it is (same process, same endpoint): never restarted;
//! - a task the store knows but the runtime reports exited or gone is
//!   recorded STOPPED with what the runtime knows of its exit; the service
//!   loop then replaces it;
//! - a task the runtime runs but the store does not know (or knows as
//!   STOPPED) is an orphan, for example from a data directory that was
//!   restored from an older backup: it is stopped and removed, and the
//!   removal is recorded as an event, so nothing runs that Cutover does not
//!   account for.

use super::Runtimes;
use cutover_clock::Clock;
use cutover_core::task::{DesiredStatus, TaskState};
use cutover_runtime::TaskStatus;
use cutover_store::{Store, ops};
use std::collections::HashSet;
use std::sync::Arc;

pub(super) async fn adopt(
    store: &Arc<Store>,
    clock: &dyn Clock,
    runtimes: &Runtimes,
) -> anyhow::Result<()> {
    let known = store
        .call(|c| ops::list_tasks(c, None, false, u32::MAX))
        .await?;
    let mut live_ids = HashSet::new();
    for task in &known {
        live_ids.insert(task.id.clone());
        let Some(rt) = runtimes.get(&task.runtime) else {
            tracing::warn!(task = %task.id, runtime = %task.runtime, "task of an unavailable runtime left as it is");
            continue;
        };
        let now = clock.now_ms();
        let mut row = task.clone();
        let status = match rt.status(&task.id).await {
            Ok(s) => s,
            Err(e) => {
                // One runtime's trouble must not keep the server (and the
                // other runtimes' services) down: leave the task as it is.
                tracing::warn!(task = %task.id, runtime = %task.runtime, error = %e, "cannot check task at start; left as it is");
                continue;
            }
        };
        match status {
            TaskStatus::Running(handle) => {
                row.endpoint = handle.endpoint.map(|e| e.to_string());
                row.handle = Some(handle.clone());
                if row.last_status != TaskState::Stopping {
                    row.set_status(TaskState::Running)?;
                }
                row.started_at = row.started_at.or(Some(handle.started_at_unix_ms));
                let (written, pid) = (row.clone(), handle.pid);
                store
                    .call(move |c| {
                        ops::update_task_lifecycle(c, &written)?;
                        ops::add_event(
                            c,
                            now,
                            &format!("service/{}", written.service),
                            &format!("adopted running task {} (pid {pid:?})", written.id),
                        )
                    })
                    .await?;
            }
            TaskStatus::Exited(info) => {
                row.set_status(TaskState::Stopped)?;
                row.exit_code = info.exit_code;
                row.stopped_at = Some(info.finished_at_unix_ms.max(row.created_at));
                if row.desired_status == DesiredStatus::Running {
                    row.stop_code = Some("EssentialContainerExited".into());
                    row.stopped_reason = Some(info.reason.clone());
                }
                row.desired_status = DesiredStatus::Stopped;
                let written = row.clone();
                store
                    .call(move |c| ops::update_task_lifecycle(c, &written))
                    .await?;
                if let Err(e) = rt.remove(&row.id).await {
                    tracing::warn!(task = %row.id, error = %e, "cannot remove an exited task's remains");
                }
            }
            TaskStatus::Gone => {
                // Recorded but never started (crash between the store write
                // and the runtime call): the loop starts it again under the
                // same id if it is PROVISIONING, else it is lost.
                if row.last_status != TaskState::Provisioning {
                    row.set_status(TaskState::Stopped)?;
                    row.stopped_at = Some(now);
                    row.desired_status = DesiredStatus::Stopped;
                    row.stop_code
                        .get_or_insert_with(|| "TaskFailedToStart".into());
                    row.stopped_reason.get_or_insert_with(|| {
                        "task was not found by its runtime after a control-plane restart".into()
                    });
                    let written = row.clone();
                    store
                        .call(move |c| ops::update_task_lifecycle(c, &written))
                        .await?;
                }
            }
        }
    }
    for (name, rt) in runtimes {
        let handles = match rt.list().await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(runtime = %name, error = %e, "cannot list the runtime's tasks at start; orphans are not checked");
                continue;
            }
        };
        for handle in handles {
            if live_ids.contains(&handle.task_id) {
                continue;
            }
            if let Ok(TaskStatus::Running(_)) = rt.status(&handle.task_id).await {
                tracing::warn!(task = %handle.task_id, runtime = %name, "stopping orphan task unknown to the store");
                let (at, message) = (
                    clock.now_ms(),
                    format!(
                        "stopped orphan task {} of runtime {name}: not in the state store",
                        handle.task_id
                    ),
                );
                store
                    .call(move |c| ops::add_event(c, at, "controller", &message))
                    .await?;
                if let Err(e) = rt.stop(&handle.task_id).await {
                    tracing::warn!(task = %handle.task_id, error = %e, "cannot stop an unknown task");
                }
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(60),
                    rt.wait(&handle.task_id),
                )
                .await;
            }
            if let Err(e) = rt.remove(&handle.task_id).await {
                tracing::warn!(task = %handle.task_id, error = %e, "cannot remove an unknown task");
            }
        }
    }
    Ok(())
}
