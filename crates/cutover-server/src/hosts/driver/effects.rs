//! The effects of a host deployment that leave the process: a step sent
//! to an agent or pushed to the data plane, a blue/green traffic change,
//! and the rollback deployment.

use std::collections::BTreeSet;
use std::time::Duration;

use cutover_api::agents::AgentCommand;
use cutover_deploy::bluegreen;
use cutover_deploy::hosts::HostInput;
use cutover_deploy::hosts::bluegreen::BlueGreenHostInput;
use cutover_deploy::hosts::lifecycle::{Action, Revision, Step};
use cutover_store::host_deployments::{self as hd, HostDeploymentRow};

use super::{Driver, command_id};
use crate::dataplane::SharedDataPlane;
use crate::dataplane::hosts::host_group_name;
use crate::hosts::deployer::NewHostDeployment;
use crate::hosts::fleet::FleetError;

impl Driver {
    /// The rollback deployment of this one's group's last good revision to
    /// `hosts`, or `None` when there is none to roll back to.
    pub(super) async fn rollback_row(
        &self,
        hosts: Vec<String>,
    ) -> anyhow::Result<Option<HostDeploymentRow>> {
        let (app, group) = (
            self.row.application.clone(),
            self.row.deployment_group.clone(),
        );
        let Some((_, revision, source)) = self
            .dep
            .store
            .call(move |c| hd::last_good_revision(c, &app, &group))
            .await?
        else {
            return Ok(None);
        };
        let config = self.row.body.plan.config();
        let instances = self.dep.fleet.instances().await?;
        let only: BTreeSet<String> = hosts.into_iter().collect();
        let new = NewHostDeployment {
            application: self.row.application.clone(),
            group: self.row.deployment_group.clone(),
            revision,
            source,
            config: None,
            started_by: None,
        };
        let mut row = self
            .dep
            .new_row(
                &new,
                &self.group,
                &instances,
                config,
                self.row.body.config.clone(),
                Some(&only),
                Some(self.row.id.clone()),
            )
            .await?;
        row.created_at = self.dep.clock.now_ms();
        Ok(Some(row))
    }

    pub(super) async fn run_step(&mut self, host: String, step: Step) -> anyhow::Result<()> {
        match step.action {
            Action::LeaveTargetGroups | Action::ReturnToTargetGroups => {
                let leave = step.action == Action::LeaveTargetGroups;
                let body = &mut self.row.body;
                let changed = if leave {
                    body.allowed.remove(&host) | body.blocked.insert(host.clone())
                } else {
                    body.blocked.remove(&host) | body.allowed.insert(host.clone())
                };
                if changed {
                    self.persist().await?;
                }
                let delay = if leave {
                    Duration::from_secs(
                        self.group
                            .all_load_balancers()
                            .map(|lb| lb.deregistration_delay_seconds)
                            .max()
                            .unwrap_or(0),
                    )
                } else {
                    Duration::ZERO
                };
                let (dp, tx, id) = (
                    self.dep.dataplane.clone(),
                    self.traffic_tx.clone(),
                    self.id().to_string(),
                );
                tokio::spawn(async move {
                    let input = match sync_paced(&dp, &id).await {
                        Ok(()) => {
                            tokio::time::sleep(delay).await;
                            HostInput::StepSucceeded {
                                host,
                                event: step.event,
                            }
                        }
                        Err(e) => {
                            tracing::warn!(deployment = %id, error = %e, "data plane refused a traffic step");
                            HostInput::StepFailed {
                                host,
                                event: step.event,
                            }
                        }
                    };
                    let _ = tx.send(input.into());
                });
            }
            Action::Agent | Action::Scripts(_) => {
                let revision = match step.action {
                    Action::Scripts(Revision::LastSuccessful) => {
                        self.row.body.previous.get(&host).cloned()
                    }
                    _ => Some(self.row.body.revision.clone()),
                };
                let cid = command_id(&self.row.id, &host, step.event);
                let command = AgentCommand {
                    id: cid.clone(),
                    deployment_id: self.row.id.clone(),
                    application: self.row.application.clone(),
                    deployment_group: self.row.deployment_group.clone(),
                    deployment_group_id: self.row.body.deployment_group_id.clone(),
                    event: step.event,
                    revision,
                    file_exists_behavior: self.row.body.file_exists_behavior,
                };
                match self.dep.fleet.dispatch(&host, command).await {
                    Ok(()) => {
                        self.inflight.insert(host, (step.event, cid));
                    }
                    Err(FleetError::UnknownHost(_)) => {
                        self.queue.push_back(HostInput::AgentLost { host }.into())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

/// How long a traffic change waits for the replacement hosts' health
/// checks before it moves traffic anyway (the data plane skips a target
/// group with no healthy target).
const GREEN_HEALTH_WAIT: Duration = Duration::from_secs(60);

impl Driver {
    /// Moves `percent` of the traffic to the replacement hosts: the plan
    /// already holds the share (persisted), the data plane derives its
    /// weights from it. Before moving traffic to them, waits until their
    /// target groups report them healthy; back to the originals (0), the
    /// originals that left return first. Acknowledged as `TrafficApplied`.
    pub(super) async fn shift_traffic(&mut self, request: u64, percent: u8) -> anyhow::Result<()> {
        if percent == 0 && !self.row.body.blocked.is_empty() {
            self.row.body.blocked.clear();
            self.persist().await?;
        }
        let groups: Vec<String> = if percent > 0 {
            (0..self.group.all_load_balancers().count())
                .map(|n| {
                    let name =
                        host_group_name(&self.row.application, &self.row.deployment_group, n);
                    format!("{name}-green")
                })
                .collect()
        } else {
            Vec::new()
        };
        let expected = self.row.body.plan.blue_green().map_or(0, |bg| {
            let targets = &self.row.body.targets;
            bg.installed()
                .iter()
                .filter(|h| targets.contains_key(*h))
                .count()
        });
        let (dp, tx, id, shutdown) = (
            self.dep.dataplane.clone(),
            self.traffic_tx.clone(),
            self.id().to_string(),
            self.dep.shutdown.clone(),
        );
        tokio::spawn(async move {
            wait_healthy(&dp, &groups, expected).await;
            loop {
                match dp.sync().await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(deployment = %id, error = %e, "data plane refused a traffic change; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
            tracing::info!(deployment = %id, percent, "traffic on the replacement hosts");
            let _ = tx.send(BlueGreenHostInput::TrafficApplied { request });
        });
        Ok(())
    }
}

/// Syncs the data plane for a host's traffic step; a refusal is tried again
/// at the pace of blue/green traffic changes (1, 2, then 4 s), so a node's
/// data plane that is away for a moment does not fail the host's step.
async fn sync_paced(
    dp: &SharedDataPlane,
    deployment: &str,
) -> Result<(), crate::dataplane::DataPlaneError> {
    let mut attempt = 1;
    loop {
        match dp.sync().await {
            Ok(_) => return Ok(()),
            Err(e) if attempt < bluegreen::TRAFFIC_MAX_ATTEMPTS => {
                let pause = bluegreen::traffic_retry_pause(attempt);
                tracing::warn!(%deployment, error = %e, attempt, pause_ms = pause, "data plane refused a traffic step; trying again");
                tokio::time::sleep(Duration::from_millis(pause)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits (at most [`GREEN_HEALTH_WAIT`]) until each of `groups` reports
/// `expected` healthy targets.
async fn wait_healthy(dp: &SharedDataPlane, groups: &[String], expected: usize) {
    if groups.is_empty() || expected == 0 {
        return;
    }
    let deadline = tokio::time::Instant::now() + GREEN_HEALTH_WAIT;
    loop {
        if let Ok(report) = dp.health().await
            && groups.iter().all(|g| {
                report
                    .group(g)
                    .is_some_and(|h| h.healthy_host_count >= expected)
            })
        {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(groups = ?groups, "replacement hosts not healthy in time; moving traffic anyway");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{DataPlane, DataPlaneError};
    use cutover_proxy::api::{HealthReport, StatusReport};
    use cutover_proxy::metrics::MetricsFeed;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A data plane whose first `refusals` syncs fail.
    struct Refusing {
        refusals: u32,
        syncs: AtomicU32,
    }

    #[async_trait::async_trait]
    impl DataPlane for Refusing {
        async fn sync(&self) -> Result<u64, DataPlaneError> {
            let n = self.syncs.fetch_add(1, Ordering::SeqCst);
            if n < self.refusals {
                return Err(DataPlaneError::Derive("node away".into()));
            }
            Ok(u64::from(n))
        }
        async fn health(&self) -> Result<HealthReport, DataPlaneError> {
            Err(DataPlaneError::Derive("unused".into()))
        }
        async fn status(&self) -> Result<StatusReport, DataPlaneError> {
            Err(DataPlaneError::Derive("unused".into()))
        }
        async fn metrics_feed(&self, _: u64) -> Result<MetricsFeed, DataPlaneError> {
            Err(DataPlaneError::Derive("unused".into()))
        }
        fn admin(&self) -> String {
            "refusing".into()
        }
    }

    async fn paced(refusals: u32) -> (bool, u32, Duration) {
        let dp = Arc::new(Refusing {
            refusals,
            syncs: AtomicU32::new(0),
        });
        let shared: SharedDataPlane = dp.clone();
        let started = tokio::time::Instant::now();
        let ok = sync_paced(&shared, "d-1").await.is_ok();
        (ok, dp.syncs.load(Ordering::SeqCst), started.elapsed())
    }

    /// A data plane away for a moment does not fail a host's traffic step;
    /// one away for good fails it after the blue/green number of attempts.
    #[tokio::test(start_paused = true)]
    async fn a_refused_traffic_step_is_tried_again_at_a_pace_then_fails() {
        assert_eq!(paced(0).await, (true, 1, Duration::ZERO));
        assert_eq!(paced(2).await, (true, 3, Duration::from_secs(3)));
        let attempts = bluegreen::TRAFFIC_MAX_ATTEMPTS;
        assert_eq!(
            paced(attempts).await,
            (false, attempts, Duration::from_secs(7))
        );
    }
}
