//! The driver of one host deployment: feeds `cutover-deploy`'s
//! [`HostPlan`] (in place or blue/green) its inputs, persists its state,
//! then executes its effects over the [`super::fleet::Fleet`] and the data
//! plane.
//!
//! Loop: wait for the fleet's `changed` (a result arrived, a host came or
//! went), an operator's stop, a traffic step's end, the planner's next
//! wake-up, or the poll interval; then read the results of the commands in
//! flight, the agents' last polls (a host silent for longer than
//! `agent_lost_after` is `AgentLost`) and the group's alarms (the alarm
//! loop's states, from the store). The inputs read together are handled
//! together, then one store transaction carries the planner state, the
//! per-host event records and the hosts that succeeded (their last
//! successful revision) *before* any effect runs; so a crash re-issues at most the step in flight, which the
//! fleet and the agents ignore by command id.
//!
//! Effects: a scripted or agent step is one [`AgentCommand`] with id
//! `{deployment}/{host}/{event}/1`; `BlockTraffic` and `AllowTraffic` are
//! data-plane syncs (the blocked hosts are stored with the deployment and
//! the data plane's configuration is derived from them), acknowledged by
//! the proxy, then for `BlockTraffic` the group's deregistration delay;
//! `RollBack` creates the rollback deployment once, in the transaction that
//! records it on this one (`rolled_back_by`); a blue/green `ShiftTraffic`
//! is a data-plane sync of the share the plan now holds (after the
//! replacement hosts passed their health checks when traffic moves to
//! them), acknowledged as `TrafficApplied`; those are in
//! `driver/effects.rs`.
//!
//! A host's revision is recorded (`host_revisions`) when it succeeds in
//! place, or, blue/green, when the deployment succeeds: then the
//! replacement hosts that got the revision are recorded and the original
//! hosts forgotten (they serve no longer).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cutover_api::agents::CommandStatus;
use cutover_api::host_deployments::{HostEventStatus, HostEventView};
use cutover_deploy::alarm::AlarmState;
use cutover_deploy::hosts::bluegreen::{BlueGreenHostEffect, BlueGreenHostInput};
use cutover_deploy::hosts::lifecycle::{Action, Step};
use cutover_deploy::hosts::{HostDeploymentStatus, HostEffect, HostInput, HostPlan, HostState};
use cutover_spec::HostEvent;
use cutover_spec::stack::applications::DeploymentGroup;
use cutover_store::host_deployments::{self as hd, HostDeploymentRow};
use cutover_store::ops;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::deployer::HostDeployer;

mod effects;

/// Drives deployment `id` until it ends or the server shuts down (the next
/// start resumes it). A passing fault is logged and retried from the
/// stored state.
pub(super) async fn run(
    dep: Arc<HostDeployer>,
    id: &str,
    mut rx: mpsc::UnboundedReceiver<HostInput>,
    resume: bool,
) {
    let span = tracing::info_span!("host_deployment", id = %id);
    let mut resume = resume;
    loop {
        match drive(dep.clone(), id, &mut rx, resume)
            .instrument(span.clone())
            .await
        {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(deployment = %id, error = %format!("{e:#}"), "host deployment driver failed; resuming in 1 s");
                resume = true;
                tokio::select! {
                    _ = dep.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

struct Driver {
    dep: Arc<HostDeployer>,
    row: HostDeploymentRow,
    group: DeploymentGroup,
    /// Commands sent and not answered: host -> (event, command id).
    inflight: BTreeMap<String, (HostEvent, String)>,
    /// Alarms already fed (each stops the deployment once).
    alarms_fed: BTreeSet<String>,
    queue: VecDeque<BlueGreenHostInput>,
    traffic_tx: mpsc::UnboundedSender<BlueGreenHostInput>,
}

/// The command id of `event` on `host` (attempt 1: a re-sent step keeps its id).
pub(crate) fn command_id(deployment: &str, host: &str, event: HostEvent) -> String {
    format!("{deployment}/{host}/{event}/1")
}

async fn drive(
    dep: Arc<HostDeployer>,
    id: &str,
    rx: &mut mpsc::UnboundedReceiver<HostInput>,
    resume: bool,
) -> anyhow::Result<()> {
    let did = id.to_string();
    let row = dep
        .store
        .call(move |c| hd::host_deployment(c, &did))
        .await?
        .ok_or_else(|| anyhow::anyhow!("host deployment {id} vanished"))?;
    let app = row.application.clone();
    let group = dep
        .store
        .call(move |c| hd::application(c, &app))
        .await?
        .and_then(|a| {
            a.application
                .deployment_groups
                .get(&row.deployment_group)
                .cloned()
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "deployment group {}/{} is no longer applied",
                row.application,
                row.deployment_group
            )
        })?;
    let (traffic_tx, mut traffic_rx) = mpsc::unbounded_channel();
    let mut d = Driver {
        dep: dep.clone(),
        row,
        group,
        inflight: BTreeMap::new(),
        alarms_fed: BTreeSet::new(),
        queue: VecDeque::new(),
        traffic_tx,
    };
    let now = dep.clock.now_ms();
    let effects = if resume && d.row.body.plan.status() != HostDeploymentStatus::Created {
        if let Err(e) = dep.dataplane.sync().await {
            tracing::warn!(deployment = %id, error = %e, "data plane sync on resume failed");
        }
        d.row.body.plan.resume()
    } else {
        if d.row.body.plan.blue_green().is_some()
            && let Err(e) = dep.dataplane.sync().await
        {
            // The replacement hosts' target groups exist from the start, so
            // their health checks run during the install; a later sync adds
            // them otherwise.
            tracing::warn!(deployment = %id, error = %e, "data plane sync at start failed");
        }
        d.row.body.plan.handle(HostInput::Start.into(), now)
    };
    d.commit(effects).await?;
    let changed = dep.fleet.changed();
    loop {
        if d.row.finished_at.is_some() {
            return Ok(());
        }
        if !d.queue.is_empty() {
            let inputs: Vec<BlueGreenHostInput> = d.queue.drain(..).collect();
            d.feed(inputs).await?;
            continue;
        }
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let inputs = d.observe().await?;
        if !inputs.is_empty() {
            d.queue.extend(inputs);
            continue;
        }
        let now = dep.clock.now_ms();
        let mut deadline = now + dep.settings.poll.as_millis() as u64;
        if let Some(w) = d.row.body.plan.next_wakeup() {
            deadline = deadline.min(w);
        }
        let sleep = Duration::from_millis(deadline.saturating_sub(now));
        tokio::select! {
            _ = dep.shutdown.cancelled() => return Ok(()),
            Some(input) = rx.recv() => d.queue.push_back(input.into()),
            Some(input) = traffic_rx.recv() => d.queue.push_back(input),
            _ = &mut notified => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

impl Driver {
    fn id(&self) -> &str {
        &self.row.id
    }

    /// What happened since the last look: results of the commands in
    /// flight, lost agents, alarms, and a wake-up that is due.
    async fn observe(&mut self) -> anyhow::Result<Vec<BlueGreenHostInput>> {
        let mut inputs = Vec::new();
        let now = self.dep.clock.now_ms();
        let inflight: Vec<(String, HostEvent, String)> = self
            .inflight
            .iter()
            .map(|(h, (e, c))| (h.clone(), *e, c.clone()))
            .collect();
        for (host, event, cid) in &inflight {
            let Some(result) = self.dep.fleet.result(cid).await? else {
                continue;
            };
            self.inflight.remove(host);
            let ok = result.status == CommandStatus::Succeeded;
            self.record(host, *event, |v| {
                v.status = if ok {
                    HostEventStatus::Succeeded
                } else {
                    HostEventStatus::Failed
                };
                v.output = result.output.clone();
                v.error = result
                    .error
                    .clone()
                    .or_else(|| (!ok).then(|| format!("the agent reported {:?}", result.status)));
                v.ended_at_ms = Some(now);
            });
            inputs.push(
                if ok {
                    HostInput::StepSucceeded {
                        host: host.clone(),
                        event: *event,
                    }
                } else {
                    HostInput::StepFailed {
                        host: host.clone(),
                        event: *event,
                    }
                }
                .into(),
            );
        }
        if !self.inflight.is_empty() {
            let instances = self.dep.fleet.instances().await?;
            let lost_after = self.dep.settings.agent_lost_after.as_millis() as u64;
            let lost: Vec<(String, HostEvent)> = self
                .inflight
                .iter()
                .filter(|(h, _)| {
                    instances
                        .iter()
                        .find(|i| &i.registration.name == *h)
                        .is_none_or(|i| now.saturating_sub(i.last_seen_ms) >= lost_after)
                })
                .map(|(h, (e, _))| (h.clone(), *e))
                .collect();
            for (host, event) in lost {
                self.inflight.remove(&host);
                self.record(&host, event, |v| {
                    v.status = HostEventStatus::Failed;
                    v.error = Some("the host's agent stopped polling".to_string());
                    v.ended_at_ms = Some(now);
                });
                inputs.push(HostInput::AgentLost { host }.into());
            }
        }
        // A rollback is not stopped by the alarm that caused it (nor any
        // other): it restores the last good revision.
        if !self.group.alarms.is_empty() && self.row.body.rollback_of.is_none() {
            for alarm in self.dep.store.call(ops::list_alarms).await? {
                if alarm.state == AlarmState::Alarm
                    && self.group.alarms.contains(&alarm.name)
                    && self.alarms_fed.insert(alarm.name.clone())
                {
                    inputs.push(HostInput::Alarm { name: alarm.name }.into());
                }
            }
        }
        if self.row.body.plan.next_wakeup().is_some_and(|w| w <= now) {
            inputs.push(HostInput::Tick.into());
        }
        Ok(inputs)
    }

    /// Updates the record of `host`'s `event` (the newest one).
    fn record(&mut self, host: &str, event: HostEvent, f: impl FnOnce(&mut HostEventView)) {
        if let Some(v) = self
            .row
            .body
            .events
            .get_mut(host)
            .and_then(|evs| evs.iter_mut().rev().find(|v| v.event == event))
        {
            f(v);
        }
    }

    /// Feeds `inputs` to the plan, then commits all their effects at once:
    /// one store transaction however many results arrived together (a
    /// wave of a hundred hosts is not a hundred fsyncs per step).
    async fn feed(&mut self, inputs: Vec<BlueGreenHostInput>) -> anyhow::Result<()> {
        let now = self.dep.clock.now_ms();
        let mut effects = Vec::new();
        for input in inputs {
            self.note(&input, now).await;
            effects.extend(self.row.body.plan.handle(input, now));
        }
        self.commit(effects).await
    }

    /// What the records say of `input` before the plan sees it.
    async fn note(&mut self, input: &BlueGreenHostInput, now: u64) {
        match input {
            BlueGreenHostInput::Host(HostInput::Stop { .. }) => self.event("stop requested").await,
            // The data plane's steps (the agents' are recorded with their
            // results as they are read).
            BlueGreenHostInput::Host(
                i @ (HostInput::StepSucceeded { host, event }
                | HostInput::StepFailed { host, event }),
            ) => {
                let ok = matches!(i, HostInput::StepSucceeded { .. });
                self.record(host, *event, |v| {
                    if v.status == HostEventStatus::InProgress {
                        v.status = if ok {
                            HostEventStatus::Succeeded
                        } else {
                            v.error = Some("the data plane refused the change".to_string());
                            HostEventStatus::Failed
                        };
                        v.ended_at_ms = Some(now);
                    }
                });
            }
            _ => {}
        }
    }

    async fn event(&self, message: &str) {
        let at = self.dep.clock.now_ms();
        crate::deploy::record_event(&self.dep.store, at, &self.row.id, message).await;
    }

    /// Persists the planner state with what `effects` intend, then executes
    /// them.
    async fn commit(&mut self, effects: Vec<BlueGreenHostEffect>) -> anyhow::Result<()> {
        let now = self.dep.clock.now_ms();
        // The records of the steps about to run, written before they run.
        for e in &effects {
            let BlueGreenHostEffect::Host(e) = e else {
                continue;
            };
            match e {
                HostEffect::Run { host, step } => {
                    let command =
                        is_agent_step(step).then(|| command_id(&self.row.id, host, step.event));
                    let evs = self.row.body.events.entry(host.clone()).or_default();
                    let known = evs.last().is_some_and(|v| {
                        v.event == step.event && v.status == HostEventStatus::InProgress
                    });
                    if !known {
                        evs.push(HostEventView {
                            event: step.event,
                            status: HostEventStatus::InProgress,
                            command,
                            output: String::new(),
                            error: None,
                            started_at_ms: now,
                            ended_at_ms: None,
                        });
                    }
                }
                HostEffect::Cancel { host } => {
                    if let Some(evs) = self.row.body.events.get_mut(host) {
                        for v in evs
                            .iter_mut()
                            .filter(|v| v.status == HostEventStatus::InProgress)
                        {
                            v.status = HostEventStatus::Skipped;
                            v.ended_at_ms = Some(now);
                        }
                    }
                }
                HostEffect::Finished { .. } => self.row.finished_at = Some(now),
                _ => {}
            }
        }
        let rollback = match effects.iter().find_map(|e| match e {
            BlueGreenHostEffect::Host(HostEffect::RollBack { hosts }) => Some(hosts.clone()),
            _ => None,
        }) {
            Some(hosts) if self.row.body.rolled_back_by.is_none() => {
                self.rollback_row(hosts).await?
            }
            _ => None,
        };
        if let Some(r) = &rollback {
            self.row.body.rolled_back_by = Some(r.id.clone());
        }
        self.row.status = self.row.body.plan.status();
        self.row.updated_at = now;
        let (succeeded, retired) = settled(&self.row.body.plan);
        let (row, r2) = (self.row.clone(), rollback.clone());
        self.dep
            .store
            .transact(move |c| {
                hd::put_host_deployment(c, &row)?;
                for h in &retired {
                    hd::remove_host_revision(c, &row.application, &row.deployment_group, h)?;
                }
                let done = hd::host_revisions(c, &row.application, &row.deployment_group)?;
                for h in &succeeded {
                    if done.get(h) != Some(&row.body.revision) {
                        let rev = hd::HostRevision {
                            host: h.clone(),
                            revision: row.body.revision.clone(),
                            target: row.body.targets.get(h).cloned(),
                        };
                        hd::put_host_revision(
                            c,
                            &row.application,
                            &row.deployment_group,
                            &rev,
                            &row.id,
                            now,
                        )?;
                        // What `cutover agents describe` shows per group.
                        cutover_store::agents::set_last_successful(
                            c,
                            h,
                            &row.deployment_group,
                            &row.body.revision,
                        )?;
                    }
                }
                if let Some(r) = &r2 {
                    hd::put_host_deployment(c, r)?;
                    ops::add_event(
                        c,
                        now,
                        &format!("deployment/{}", row.id),
                        &format!(
                            "automatic rollback: deployment {} redeploys {}",
                            r.id, r.body.source
                        ),
                    )?;
                }
                Ok(())
            })
            .await?;
        if let Some(r) = rollback {
            self.dep.spawn(r.id, false);
        }
        for effect in effects {
            self.execute(effect).await?;
        }
        Ok(())
    }

    async fn execute(&mut self, effect: BlueGreenHostEffect) -> anyhow::Result<()> {
        let effect = match effect {
            BlueGreenHostEffect::Host(e) => e,
            BlueGreenHostEffect::ShiftTraffic {
                request,
                replacement_percent,
            } => return self.shift_traffic(request, replacement_percent).await,
        };
        match effect {
            HostEffect::Run { host, step } => self.run_step(host, step).await?,
            HostEffect::Cancel { host } => {
                if let Some((_, cid)) = self.inflight.remove(&host)
                    && let Err(e) = self.dep.fleet.cancel(&host, &cid).await
                {
                    tracing::warn!(deployment = %self.row.id, host = %host, error = %e, "cannot cancel");
                }
            }
            HostEffect::WaitUntil(_) | HostEffect::RollBack { .. } => {}
            HostEffect::Finished { status, reason } => {
                // Hosts still out of their target groups stay out (they
                // may run a broken revision) until a later deployment of
                // the group, such as the rollback, returns them.
                self.event(&format!(
                    "host deployment {} {:?}{}",
                    self.row.id,
                    status,
                    reason.map(|r| format!(": {r:?}")).unwrap_or_default()
                ))
                .await;
            }
        }
        Ok(())
    }

    async fn persist(&mut self) -> anyhow::Result<()> {
        self.row.updated_at = self.dep.clock.now_ms();
        let row = self.row.clone();
        self.dep
            .store
            .call(move |c| hd::put_host_deployment(c, &row))
            .await?;
        Ok(())
    }
}

/// The hosts whose revision `plan` settled: those that got it, and those
/// that no longer serve the group (a blue/green deployment's originals).
fn settled(plan: &HostPlan) -> (Vec<String>, Vec<String>) {
    match plan {
        HostPlan::InPlace(d) => (
            d.hosts()
                .iter()
                .filter(|h| h.state == HostState::Succeeded)
                .map(|h| h.name.clone())
                .collect(),
            Vec::new(),
        ),
        HostPlan::BlueGreen { blue_green: bg } => {
            if bg.status() != HostDeploymentStatus::Succeeded {
                return (Vec::new(), Vec::new());
            }
            let originals = bg.spec().originals.iter().map(|h| h.name.clone());
            (bg.installed().to_vec(), originals.collect())
        }
    }
}

/// Whether the agent performs `step` (the others are the data plane's).
fn is_agent_step(step: &Step) -> bool {
    matches!(step.action, Action::Agent | Action::Scripts(_))
}
