//! The watcher of a rolling update: follows the service until it runs only
//! the new revision, healthy, or the update fails (circuit breaker, alarm,
//! 10 minutes), then records the outcome and any rollback.

use super::Deployer;
use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
use cutover_deploy::alarm::AlarmState;
use cutover_deploy::bluegreen::DeploymentStatus;
use cutover_spec::stack::RollbackEvent;
use cutover_store::ops;
use std::sync::Arc;
use std::time::Duration;

/// Follows a rolling update until the service runs only the new revision,
/// healthy, at its desired count; fails it if new tasks keep failing (the
/// circuit breaker: half the desired count, at least 3) or after 10 minutes.
pub(super) async fn watch_rolling(dep: Arc<Deployer>, id: String) {
    if let Some(service) = follow_rolling(&dep, &id).await {
        // A blue/green deployment queued behind this one may start now.
        dep.start_next(&service).await;
    }
}

/// Returns the service once the rolling update has finished (or `None` on
/// shutdown).
async fn follow_rolling(dep: &Arc<Deployer>, id: &str) -> Option<String> {
    loop {
        tokio::select! {
            _ = dep.shutdown.cancelled() => return None,
            _ = dep.fired.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let did = id.to_string();
        let Ok(Some(mut row)) = dep.store.call(move |c| ops::deployment(c, &did)).await else {
            return None;
        };
        if row.finished_at.is_some() {
            // Finished elsewhere (superseded by a newer rolling update).
            return Some(row.service);
        }
        let started = row.created_at;
        let name = row.service.clone();
        let Ok(Some(svc)) = dep.store.call(move |c| ops::service(c, &name)).await else {
            // The service was deleted: the update ends with it.
            let now = dep.clock.now_ms();
            row.status = DeploymentStatus::Stopped;
            row.outcome = Some("the service was deleted".into());
            row.finished_at = Some(now);
            let service = row.service.clone();
            let _ = dep.store.call(move |c| ops::put_deployment(c, &row)).await;
            return Some(service);
        };
        let name = svc.name.clone();
        let Ok(tasks) = dep
            .store
            .call(move |c| ops::list_tasks(c, Some(&name), true, 10_000))
            .await
        else {
            continue;
        };
        let live: Vec<_> = tasks
            .iter()
            .filter(|t| {
                t.last_status != TaskState::Stopped && t.desired_status == DesiredStatus::Running
            })
            .collect();
        let done = live.len() as u32 == svc.desired_count
            && live.iter().all(|t| {
                t.task_set == row.to_task_definition
                    && t.last_status == TaskState::Running
                    && t.health_status != HealthStatus::Unhealthy
            })
            && !tasks.iter().any(|t| t.last_status == TaskState::Stopping);
        let failures = tasks
            .iter()
            .filter(|t| {
                t.task_set == row.to_task_definition
                    && t.created_at >= row.created_at
                    && t.last_status == TaskState::Stopped
                    && t.stop_code.as_deref() != Some("ServiceSchedulerInitiated")
            })
            .count() as u32;
        let threshold = svc.desired_count.div_ceil(2).clamp(3, 200);
        // ECS deployment alarms: one of the service's alarms in ALARM while
        // the update runs fails it (and rolls back when asked to).
        let watched: Vec<&str> = svc
            .spec
            .deployment
            .alarms
            .iter()
            .map(String::as_str)
            .collect();
        // An alarm that entered ALARM since the update began counts even if
        // it is OK again by now (heard in memory); after a restart, the
        // stored state of one still in ALARM does.
        let firing = if watched.is_empty() {
            None
        } else if let Some(alarm) = dep.fired_since(&watched, row.created_at) {
            Some(alarm)
        } else {
            dep.store
                .call(ops::list_alarms)
                .await
                .ok()
                .and_then(|all| {
                    all.into_iter().find(|a| {
                        watched.contains(&a.name.as_str())
                            && a.state == AlarmState::Alarm
                            && a.updated_at >= row.created_at
                    })
                })
                .map(|a| a.name)
        };
        let (status, outcome) = if let Some(alarm) = &firing {
            (DeploymentStatus::Stopped, format!("alarm {alarm} fired"))
        } else if done {
            (
                DeploymentStatus::Succeeded,
                format!(
                    "service runs {} tasks of {}",
                    svc.desired_count, row.to_task_definition
                ),
            )
        } else if failures >= threshold {
            (
                DeploymentStatus::Failed,
                format!("circuit breaker: {failures} new tasks failed to start or stay healthy"),
            )
        } else if dep.clock.now_ms() - started > 10 * 60 * 1000 {
            (
                DeploymentStatus::Failed,
                "the service did not become stable within 10 minutes".to_string(),
            )
        } else {
            continue;
        };
        let now = dep.clock.now_ms();
        row.status = status;
        row.outcome = Some(outcome.clone());
        row.finished_at = Some(now);
        let auto_rollback =
            |event: RollbackEvent| svc.spec.deployment.auto_rollback.contains(&event);
        let rollback = match status {
            DeploymentStatus::Failed => {
                svc.spec
                    .deployment
                    .circuit_breaker
                    .as_ref()
                    .is_some_and(|c| c.rollback)
                    || auto_rollback(RollbackEvent::DeploymentFailure)
            }
            DeploymentStatus::Stopped => auto_rollback(RollbackEvent::DeploymentStopOnAlarm),
            _ => false,
        };
        let did = id.to_string();
        let written = dep
            .store
            .transact(move |c| {
                let id = did;
                // Ended meanwhile (superseded by a newer rolling update):
                // that outcome stands.
                if ops::deployment(c, &id)?.is_none_or(|d| d.finished_at.is_some()) {
                    return Ok(());
                }
                ops::put_deployment(c, &row)?;
                // Re-read inside the transaction: a scale in the meantime stays,
                // and a newer deployment's revision is never rolled over.
                if rollback
                    && let Some(mut s) = ops::service(c, &row.service)?
                    && s.task_definition == row.to_task_definition
                {
                    s.task_definition = row.from_task_definition.clone();
                    s.generation += 1;
                    s.updated_at = now;
                    ops::put_service(c, &s)?;
                }
                ops::add_event(
                    c,
                    now,
                    &format!("deployment/{id}"),
                    &format!(
                        "rolling update {}: {outcome}{}",
                        status.as_str().to_lowercase(),
                        if rollback { "; rolling back" } else { "" }
                    ),
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = written {
            // Not ended in the store: judge again at the next check.
            tracing::warn!(deployment = %id, error = %e, "cannot record the end of a rolling update");
            continue;
        }
        dep.controller.wake(&svc.name);
        return Some(svc.name.clone());
    }
}
