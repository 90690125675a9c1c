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
//! force. Green's readiness checks and its promotion are in
//! `driver/green.rs`; rolling updates are watched by `rolling.rs`.

use super::Deployer;
use super::hooks::{self, HookContext};
use super::spec::{self, HookTarget};
use cutover_deploy::alarm::AlarmState;
use cutover_deploy::bluegreen::{DeploymentStatus, EventStatus, HookOutcome};
use cutover_deploy::{BlueGreen, DeploymentEngine, Effect, Input, LifecycleEvent};
use cutover_store::{DeploymentRow, ops};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

mod green;

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
    let appspec_hooks = dep
        .store
        .call(move |c| ops::events(c, &subject, 1))
        .await?
        .first()
        .map(|e| spec::recorded_appspec_hooks(&e.message))
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
        super::record_event(
            &self.dep.store,
            self.dep.clock.now_ms(),
            &self.row.id,
            message,
        )
        .await;
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
        let mut ctx = HookContext {
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
            aws: None,
        };
        let owner = format!("hook:{}:{execution_id}", self.row.id);
        let is_command = matches!(target, super::spec::HookTarget::Command(_));
        if is_command {
            // A key of the hook's own, valid as long as the hook may run.
            match self
                .dep
                .aws
                .env_for(&owner, self.dep.clock.now_ms(), timeout_ms + 60_000, None)
                .await
            {
                Ok(env) => ctx.aws = Some(env),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot issue an access key to a hook command")
                }
            }
        }
        self.event(&format!(
            "{event}: invoking hook (attempt {attempt}, execution {execution_id})"
        ))
        .await;
        let tx = self.tx.clone();
        let aws = self.dep.aws.clone();
        tokio::spawn(async move {
            let outcome = hooks::invoke(&target, &ctx).await;
            if is_command {
                aws.revoke(&owner).await;
            }
            if let Some(outcome) = outcome {
                let _ = tx.send(Input::HookResult {
                    execution_id: ctx.execution_id.clone(),
                    outcome,
                });
            }
        });
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
