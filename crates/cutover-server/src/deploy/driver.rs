//! The driver of one blue/green deployment: feeds the pure engine its
//! inputs, persists its state, then executes its effects.
//!
//! Loop: wait for an input (operator command, hook result, alarm) or the
//! engine's next wake-up; while green is installing, look every 200 ms
//! whether its tasks are running, healthy and healthy in the proxy too.
//! Every `handle` is followed by a store write of the engine state *before*
//! any effect runs. Traffic changes are pushed to the data plane and
//! acknowledged with its configuration version before the engine hears
//! `TrafficApplied`, so a step never starts before the previous one is in
//! force.

use super::Deployer;
use super::hooks::{self, HookContext};
use super::spec::{self, HookTarget};
use crate::dataplane::config::{green_set, group_name, other_group};
use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
use cutover_deploy::alarm::AlarmState;
use cutover_deploy::bluegreen::{DeploymentStatus, EventStatus, HookOutcome};
use cutover_deploy::{BlueGreen, DeploymentEngine, Effect, Input, LifecycleEvent};
use cutover_spec::stack::RollbackEvent;
use cutover_store::{DeploymentRow, ops};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Replacement tasks that may fail before the deployment gives up on green.
const GREEN_FAILURE_LIMIT: usize = 3;

struct Driver {
    dep: Arc<Deployer>,
    row: DeploymentRow,
    engine: BlueGreen,
    hooks: BTreeMap<LifecycleEvent, HookTarget>,
    queue: VecDeque<Input>,
    tx: mpsc::UnboundedSender<Input>,
}

/// Drives deployment `id` until it finishes (returns its service) or the
/// server shuts down (returns `None`; the next start resumes it).
pub(super) async fn run(
    dep: Arc<Deployer>,
    id: String,
    mut rx: mpsc::UnboundedReceiver<Input>,
    resume: bool,
) -> Option<String> {
    let span = tracing::info_span!("deployment", id = %id);
    let mut resume = resume;
    loop {
        match drive(dep.clone(), &id, &mut rx, resume)
            .instrument(span.clone())
            .await
        {
            Ok(service) => return service,
            Err(e) => {
                // A passing fault (the data plane restarting, a busy store):
                // the state is persisted, so resume from it shortly.
                tracing::error!(deployment = %id, error = %format!("{e:#}"), "deployment driver failed; resuming in 1 s");
                resume = true;
                tokio::select! {
                    _ = dep.shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn drive(
    dep: Arc<Deployer>,
    id: &str,
    rx: &mut mpsc::UnboundedReceiver<Input>,
    resume: bool,
) -> anyhow::Result<Option<String>> {
    let did = id.to_string();
    let mut row = dep
        .store
        .call(move |c| ops::deployment(c, &did))
        .await?
        .ok_or_else(|| anyhow::anyhow!("deployment {id} vanished"))?;
    let engine: BlueGreen = row
        .engine
        .blue_green()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("deployment {id} is a {} one", row.kind()))?;
    let name = row.service.clone();
    let svc = dep
        .store
        .call(move |c| ops::service(c, &name))
        .await?
        .ok_or_else(|| anyhow::anyhow!("service {} vanished", row.service))?;
    let subject = format!("deployment/{id}/appspec-hooks");
    let appspec_hooks: BTreeMap<String, String> = dep
        .store
        .call(move |c| ops::events(c, &subject, 1))
        .await?
        .first()
        .and_then(|e| serde_json::from_str(&e.message).ok())
        .unwrap_or_default();
    let (_, hooks) = spec::blue_green(id, &svc.spec, engine.spec().routing, &appspec_hooks)?;
    if !resume {
        // A queued deployment starts from whatever runs now.
        row.from_task_definition = svc.task_definition.clone();
    }
    let (tx, _) = mpsc::unbounded_channel();
    let mut d = Driver {
        dep: dep.clone(),
        row,
        engine,
        hooks,
        queue: VecDeque::new(),
        tx,
    };
    // Hook results come back through the same inbox as operator input.
    let (hook_tx, mut hook_rx) = mpsc::unbounded_channel();
    d.tx = hook_tx;
    let now = dep.clock.now_ms();
    // The alarm intent is not only in memory: an alarm of the spec that the
    // store says is in ALARM stops the deployment at start and on resume.
    for alarm in dep.store.call(ops::list_alarms).await? {
        if alarm.state == AlarmState::Alarm && d.engine.spec().alarms.contains(&alarm.name) {
            d.queue.push_back(Input::AlarmFired { alarm: alarm.name });
        }
    }
    let effects = if resume {
        // The proxy keeps its last configuration; make sure it carries what
        // the store says before the engine goes on.
        if let Err(e) = d.dep.dataplane.sync().await {
            // The data plane's own 1 s sync tries again.
            tracing::warn!(deployment = %d.row.id, error = %e, "data plane sync on resume failed");
        }
        d.engine.resume(now)
    } else {
        d.engine.handle(now, Input::Start)
    };
    d.commit(effects).await?;
    loop {
        if d.engine.is_terminal() {
            return Ok(Some(d.row.service.clone()));
        }
        if let Some(input) = d.queue.pop_front() {
            let effects = d.engine.handle(dep.clock.now_ms(), input);
            d.commit(effects).await?;
            continue;
        }
        let now = dep.clock.now_ms();
        let installing = d.installing();
        let mut deadline = now + 1_000;
        if let Some(w) = d.engine.next_wakeup() {
            deadline = deadline.min(w);
        }
        if installing {
            deadline = deadline.min(now + 200);
        }
        let sleep = Duration::from_millis(deadline.saturating_sub(now));
        let input = tokio::select! {
            _ = dep.shutdown.cancelled() => return Ok(None),
            Some(input) = rx.recv() => input,
            Some(input) = hook_rx.recv() => input,
            _ = tokio::time::sleep(sleep) => {
                match if installing { d.check_green().await? } else { None } {
                    Some(input) => input,
                    None => Input::Tick,
                }
            }
        };
        let effects = d.engine.handle(dep.clock.now_ms(), input);
        d.commit(effects).await?;
    }
}

impl Driver {
    fn installing(&self) -> bool {
        self.engine
            .lifecycle()
            .iter()
            .any(|r| r.event == LifecycleEvent::Install && r.status == EventStatus::InProgress)
    }

    /// Pushes the store's view to the data plane after a teardown; a
    /// failure is logged and the data plane's own 1 s sync tries again.
    async fn sync_dataplane(&self) {
        if let Err(e) = self.dep.dataplane.sync().await {
            tracing::warn!(deployment = %self.row.id, error = %e, "data plane sync failed");
        }
    }

    async fn persist(&mut self) -> anyhow::Result<()> {
        self.row.engine = self.engine.clone().into();
        self.row.status = self.engine.status();
        self.row.updated_at = self.dep.clock.now_ms();
        let row = self.row.clone();
        self.dep
            .store
            .call(move |c| ops::put_deployment(c, &row))
            .await?;
        Ok(())
    }

    async fn event(&self, message: &str) {
        let id = &self.row.id;
        let (at, subject, line) = (
            self.dep.clock.now_ms(),
            format!("deployment/{id}"),
            message.to_string(),
        );
        if let Err(e) = self
            .dep
            .store
            .call(move |c| ops::add_event(c, at, &subject, &line))
            .await
        {
            tracing::warn!(error = %e, "cannot record deployment event");
        }
        tracing::info!(deployment = %id, "{message}");
    }

    /// Persists the engine state, then executes the effects in order.
    ///
    /// One transaction carries the engine state, the history lines the
    /// engine produced and the intents of its effects (the traffic split to
    /// push, green to provision), so a step costs one disk sync before it
    /// acts, not one per line.
    async fn commit(&mut self, effects: Vec<Effect>) -> anyhow::Result<()> {
        let mut lines = Vec::new();
        let mut rest = Vec::new();
        for effect in effects {
            match effect {
                Effect::Event { message } => lines.push(message),
                Effect::ApplyTraffic {
                    prod_green_percent,
                    test_on_green,
                    ..
                } => {
                    self.row.prod_green_percent = prod_green_percent;
                    self.row.test_on_green = test_on_green;
                    rest.push(effect);
                }
                Effect::ProvisionGreen => {
                    self.row.green_provisioned = true;
                    rest.push(effect);
                }
                other => rest.push(other),
            }
        }
        self.row.engine = self.engine.clone().into();
        self.row.status = self.engine.status();
        self.row.updated_at = self.dep.clock.now_ms();
        let (row, subject, now) = (
            self.row.clone(),
            format!("deployment/{}", self.row.id),
            self.dep.clock.now_ms(),
        );
        let written = lines.clone();
        self.dep
            .store
            .transact(move |c| {
                ops::put_deployment(c, &row)?;
                for line in &written {
                    ops::add_event(c, now, &subject, line)?;
                }
                Ok(())
            })
            .await?;
        for line in &lines {
            tracing::info!(deployment = %self.row.id, "{line}");
        }
        for effect in rest {
            self.execute(effect).await?;
        }
        Ok(())
    }

    async fn execute(&mut self, effect: Effect) -> anyhow::Result<()> {
        match effect {
            Effect::ProvisionGreen => {
                // green_provisioned was stored with the engine state.
                self.event(&format!(
                    "Install: starting replacement tasks of {}",
                    self.row.to_task_definition
                ))
                .await;
                self.dep.controller.wake(&self.row.service);
            }
            Effect::InvokeHook {
                event,
                execution_id,
                attempt,
                details,
            } => {
                self.invoke_hook(event, execution_id, attempt, details)
                    .await?
            }
            Effect::ApplyTraffic {
                request_id,
                prod_green_percent,
                test_on_green,
            } => {
                // The split was stored with the engine state (see commit).
                let started = tokio::time::Instant::now();
                match self.dep.dataplane.sync().await {
                    Ok(version) => {
                        self.event(&format!(
                            "traffic: production {}% replacement / {}% original, test listener on {} (data plane version {version}, {} ms)",
                            prod_green_percent,
                            100 - prod_green_percent,
                            if test_on_green { "replacement" } else { "original" },
                            started.elapsed().as_millis()
                        )).await;
                        self.queue.push_back(Input::TrafficApplied { request_id });
                    }
                    Err(e) => self.queue.push_back(Input::TrafficFailed {
                        request_id,
                        reason: format!("{e:#}"),
                    }),
                }
            }
            Effect::TeardownGreen => {
                self.row.green_provisioned = false;
                self.row.prod_green_percent = 0;
                self.row.test_on_green = false;
                self.persist().await?;
                self.sync_dataplane().await;
                self.event("replacement tasks deregistered and stopping")
                    .await;
                self.dep.controller.wake(&self.row.service);
            }
            Effect::TeardownBlue => {
                self.promote().await?;
                self.sync_dataplane().await;
                self.event(&format!(
                    "original tasks of {} deregistered and stopping; {} is now the service's revision",
                    self.row.from_task_definition, self.row.to_task_definition
                )).await;
                self.dep.controller.wake(&self.row.service);
            }
            Effect::Finished {
                status,
                rollback,
                reason,
            } => self.finish(status, rollback, reason).await?,
            Effect::Event { message } => self.event(&message).await,
        }
        Ok(())
    }

    async fn invoke_hook(
        &mut self,
        event: LifecycleEvent,
        execution_id: String,
        attempt: u32,
        details: Option<String>,
    ) -> anyhow::Result<()> {
        let Some(target) = self.hooks.get(&event).cloned() else {
            self.queue.push_back(Input::HookResult {
                execution_id,
                outcome: HookOutcome::Succeeded,
            });
            return Ok(());
        };
        let name = self.row.service.clone();
        let svc = self.dep.store.call(move |c| ops::service(c, &name)).await?;
        let lb = svc.as_ref().and_then(|s| s.spec.load_balancer.clone());
        let timeout_ms = self
            .engine
            .spec()
            .hooks
            .get(&event)
            .map_or(3_600_000, |h| h.timeout_ms);
        let ctx = HookContext {
            deployment_id: self.row.id.clone(),
            service: self.row.service.clone(),
            event: event.to_string(),
            execution_id: execution_id.clone(),
            details,
            prod_url: lb.as_ref().map(|l| format!("http://{}", l.listener)),
            test_url: lb
                .as_ref()
                .and_then(|l| l.test_listener)
                .map(|a| format!("http://{a}")),
            timeout: Duration::from_millis(timeout_ms),
        };
        self.event(&format!(
            "{event}: invoking hook (attempt {attempt}, execution {execution_id})"
        ))
        .await;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if let Some(outcome) = hooks::invoke(&target, &ctx).await {
                let _ = tx.send(Input::HookResult {
                    execution_id: ctx.execution_id.clone(),
                    outcome,
                });
            }
        });
        Ok(())
    }

    /// Whether the replacement tasks are up: running, healthy by their
    /// container health check (if any) and healthy in the proxy.
    async fn check_green(&mut self) -> anyhow::Result<Option<Input>> {
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
    async fn promote(&mut self) -> anyhow::Result<()> {
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

    async fn finish(
        &mut self,
        status: DeploymentStatus,
        rollback: bool,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        let now = self.dep.clock.now_ms();
        self.row.finished_at = Some(now);
        self.row.outcome = reason.clone();
        self.row.engine = self.engine.clone().into();
        self.row.status = status;
        let summary = format!(
            "deployment {} {}{}{}",
            self.row.id,
            status.as_str().to_lowercase(),
            if rollback {
                ", production traffic rolled back to the original tasks"
            } else {
                ""
            },
            reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        let mut rollback_row = None;
        if rollback {
            let rid = format!("d-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            self.row.rolled_back_by = Some(rid.clone());
            let mut r = DeploymentRow::new(
                &rid,
                &self.row.service,
                DeploymentEngine::Rollback,
                DeploymentStatus::Succeeded,
                &self.row.to_task_definition,
                &self.row.from_task_definition,
                "atomic flip to the original task set",
                &format!("auto-rollback of {}", self.row.id),
                now,
            );
            r.rollback_of = Some(self.row.id.clone());
            r.outcome = reason.clone();
            r.finished_at = Some(now);
            rollback_row = Some(r);
        }
        let (row, line) = (self.row.clone(), summary.clone());
        self.dep
            .store
            .transact(move |c| {
                ops::put_deployment(c, &row)?;
                if let Some(r) = &rollback_row {
                    ops::put_deployment(c, r)?;
                }
                ops::add_event(c, now, &format!("deployment/{}", row.id), &line)?;
                ops::add_event(c, now, &format!("service/{}", row.service), &line)
            })
            .await?;
        tracing::info!(deployment = %self.row.id, "{summary}");
        self.dep.controller.wake(&self.row.service);
        Ok(())
    }
}

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
