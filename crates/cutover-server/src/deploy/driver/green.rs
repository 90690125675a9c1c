//! The blue/green driver's view of the replacement ("green") tasks: whether
//! they are up (running, healthy by their own check and in the proxy), and
//! their promotion to the service's live task set.

use super::Driver;
use crate::dataplane::config::{green_set, group_name, other_group};
use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
use cutover_deploy::Input;
use cutover_store::ops;

/// Replacement tasks that may fail before the deployment gives up on green.
const GREEN_FAILURE_LIMIT: usize = 3;

impl Driver {
    /// Whether the replacement tasks are up: running, healthy by their
    /// container health check (if any) and healthy in the proxy.
    pub(super) async fn check_green(&mut self) -> anyhow::Result<Option<Input>> {
        let name = self.row.service.clone();
        let Some(svc) = self.dep.store.call(move |c| ops::service(c, &name)).await? else {
            return Ok(Some(Input::GreenFailed {
                reason: "the service was deleted".into(),
            }));
        };
        let set = green_set(&self.row.id);
        let name = svc.name.clone();
        let tasks: Vec<_> = self
            .dep
            .store
            .call(move |c| ops::list_tasks(c, Some(&name), true, 10_000))
            .await?
            .into_iter()
            .filter(|t| t.task_set == set)
            .collect();
        let failed: Vec<_> = tasks
            .iter()
            .filter(|t| {
                t.last_status == TaskState::Stopped
                    && t.stop_code.as_deref() != Some("ServiceSchedulerInitiated")
            })
            .collect();
        let unhealthy_stops = tasks
            .iter()
            .filter(|t| {
                t.stopped_reason
                    .as_deref()
                    .is_some_and(|r| r.contains("health checks"))
            })
            .count();
        if failed.len() + unhealthy_stops >= GREEN_FAILURE_LIMIT {
            let last = failed
                .first()
                .and_then(|t| t.stopped_reason.clone())
                .unwrap_or_else(|| "failed container health checks".into());
            return Ok(Some(Input::GreenFailed {
                reason: format!(
                    "{} replacement tasks failed; last: {last}",
                    failed.len() + unhealthy_stops
                ),
            }));
        }
        let to = self.row.to_task_definition.clone();
        let has_check = self
            .dep
            .store
            .call(move |c| {
                let (family, rev) = to.rsplit_once(':').unwrap_or(("", "0"));
                ops::task_definition(c, family, rev.parse().ok())
            })
            .await?
            .and_then(|td| crate::taskdef::run_plan(&td.body).ok())
            .is_some_and(|p| p.health.is_some());
        let ready: Vec<&str> = tasks
            .iter()
            .filter(|t| {
                t.last_status == TaskState::Running
                    && t.desired_status == DesiredStatus::Running
                    && (t.health_status == HealthStatus::Healthy
                        || (!has_check && t.health_status == HealthStatus::Unknown))
            })
            .filter_map(|t| t.endpoint.as_deref())
            .collect();
        if (ready.len() as u32) < svc.desired_count {
            return Ok(None);
        }
        if svc.desired_count == 0 {
            return Ok(Some(Input::GreenReady));
        }
        // The proxy must see them healthy too before any weight moves. A
        // data-plane hiccup means "not yet": the next tick asks again.
        if let Err(e) = self.dep.dataplane.sync().await {
            tracing::warn!(error = %format!("{e:#}"), "data plane not synced yet");
            return Ok(None);
        }
        let group = group_name(&svc.name, other_group(&svc.lb_group));
        let report = match self.dep.dataplane.health().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "data plane health not available yet");
                return Ok(None);
            }
        };
        let healthy_in_proxy = report
            .target_groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| {
                ready.iter().all(|addr| {
                    g.targets.iter().any(|t| {
                        t.address == *addr && t.state == cutover_proxy::health::TargetState::Healthy
                    })
                })
            })
            .unwrap_or(false);
        if healthy_in_proxy {
            self.event(&format!(
                "Install: {} replacement tasks healthy in target group {group}",
                ready.len()
            ))
            .await;
            return Ok(Some(Input::GreenReady));
        }
        Ok(None)
    }

    /// The replacement becomes the service: its tasks join the live task
    /// set, the original tasks are retired, the live target group flips.
    pub(super) async fn promote(&mut self) -> anyhow::Result<()> {
        let id = self.row.id.clone();
        let to = self.row.to_task_definition.clone();
        let now = self.dep.clock.now_ms();
        self.row.green_provisioned = false;
        self.row.prod_green_percent = 0;
        self.row.test_on_green = false;
        self.row.engine = self.engine.clone().into();
        let row = self.row.clone();
        self.dep
            .store
            .transact(move |c| {
                let Some(mut svc) = ops::service(c, &row.service)? else {
                    return Ok(());
                };
                let green = green_set(&id);
                // promote clears green_provisioned in this same transaction, so
                // a stored false means it already ran (a resumed teardown).
                let already = !ops::deployment(c, &id)?.is_some_and(|d| d.green_provisioned);
                if !already {
                    // Only the task set column: the service loop owns the rest
                    // of each row and may be writing it from an older read.
                    ops::relabel_task_set(
                        c,
                        &svc.name,
                        &svc.task_definition,
                        &format!("retired-{id}"),
                    )?;
                    ops::relabel_task_set(c, &svc.name, &green, &to)?;
                    svc.task_definition = to.clone();
                    svc.lb_group = other_group(&svc.lb_group).to_string();
                    svc.generation += 1;
                    svc.updated_at = now;
                    ops::put_service(c, &svc)?;
                }
                ops::put_deployment(c, &row)?;
                ops::add_event(
                    c,
                    now,
                    &format!("service/{}", svc.name),
                    &format!("deployment {id}: now running {to}"),
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }
}
