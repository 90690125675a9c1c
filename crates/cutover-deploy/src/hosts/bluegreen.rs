//! Blue/green onto replacement hosts, as CodeDeploy does it with manually
//! provisioned instances (Cutover cannot launch machines).
//!
//! | phase | what happens | waits for |
//! |---|---|---|
//! | Install | the revision on the replacement hosts, up to `BeforeAllowTraffic`, in waves under the configuration's rules (an in-place [`HostDeployment`]) | its end |
//! | Traffic | the replacement hosts' share of traffic walks the canary/linear schedule ([`crate::schedule`]) | each step's time and the acknowledgement of the previous one |
//! | AfterAllowTraffic | on every replacement host | every host's result |
//! | BlockOriginals | `BeforeBlockTraffic`, `BlockTraffic`, `AfterBlockTraffic` on every original host | every host's result |
//! | Baking | the termination wait | its end |
//! | StopOriginals | `ApplicationStop` (their revision) on every original host, unless kept alive | every host's result (a failure is recorded, not fatal) |
//! | Ending | traffic flipped back to the originals in one change (a failure or alarm after traffic moved, with rollback) | its acknowledgement |
//!
//! An alarm or a stop ends it as Stopped; a failure as Failed. Before any
//! traffic moved nothing needs undoing (the originals still serve).

use cutover_spec::HostEvent;
use cutover_spec::stack::applications::HostConfig;
use serde::{Deserialize, Serialize};

use super::inplace::HostDeployment;
use super::lifecycle::{self, Action, Revision, Step};
use super::types::{
    EndReason, HostDeploymentStatus, HostEffect, HostInput, HostRollback, HostRun, HostState,
    HostTarget, HostsSpec,
};
use crate::config::TrafficRouting;
use crate::schedule;
use crate::time::Millis;

/// What a blue/green host deployment is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBlueGreenSpec {
    /// Hosts that receive the revision and the traffic.
    pub replacements: Vec<HostTarget>,
    /// Hosts that serve now and leave.
    pub originals: Vec<HostTarget>,
    /// Rules for installing on the replacement hosts.
    pub config: HostConfig,
    /// How traffic moves to the replacement hosts.
    pub routing: TrafficRouting,
    /// Wait between the originals leaving and their application stopping.
    pub termination_wait_ms: Millis,
    /// Stop the originals' application after the wait (else keep them alive).
    pub stop_originals: bool,
    /// When traffic flips back to the originals.
    pub rollback: HostRollback,
}

/// Inputs: the in-place ones, and the data plane's acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlueGreenHostInput {
    /// A host result, an alarm, a stop, time.
    Host(HostInput),
    /// The data plane applied the traffic change `request`.
    TrafficApplied {
        /// The request id of [`BlueGreenHostEffect::ShiftTraffic`].
        request: u64,
    },
}

/// Effects: the in-place ones, and traffic changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlueGreenHostEffect {
    /// A host step, a cancel, a wait, the end.
    Host(HostEffect),
    /// Send `replacement_percent` of the traffic to the replacement hosts
    /// (the rest to the originals); acknowledge with `TrafficApplied`.
    ShiftTraffic {
        /// Strictly increasing per deployment.
        request: u64,
        /// Absolute share, 0..=100.
        replacement_percent: u8,
    },
}

/// Which hosts a batch phase acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Stage {
    AfterTraffic,
    BlockOriginals,
    StopOriginals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    Created,
    Install(Box<HostDeployment>),
    Traffic {
        started_at: Millis,
        next_step: usize,
    },
    Batch {
        stage: Stage,
        hosts: Vec<HostRun>,
    },
    Baking {
        until: Millis,
    },
    Ending,
    Done,
}

/// A blue/green host deployment. Pure: time comes in as `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBlueGreen {
    spec: HostBlueGreenSpec,
    phase: Phase,
    status: HostDeploymentStatus,
    reason: Option<EndReason>,
    /// The last traffic request and whether it was acknowledged.
    request: u64,
    acked: bool,
    /// Share of traffic on the replacement hosts, as last requested.
    replacement_percent: u8,
    /// The replacement hosts the revision was installed on (those that
    /// receive traffic), once the install ended.
    #[serde(default)]
    installed: Vec<String>,
    final_effects: Vec<BlueGreenHostEffect>,
}

fn host(e: HostEffect) -> BlueGreenHostEffect {
    BlueGreenHostEffect::Host(e)
}

impl HostBlueGreen {
    /// A deployment of `spec`, waiting for `Start`.
    pub fn new(spec: HostBlueGreenSpec) -> HostBlueGreen {
        HostBlueGreen {
            spec,
            phase: Phase::Created,
            status: HostDeploymentStatus::Created,
            reason: None,
            request: 0,
            acked: true,
            replacement_percent: 0,
            installed: Vec::new(),
            final_effects: Vec::new(),
        }
    }

    /// The status.
    pub fn status(&self) -> HostDeploymentStatus {
        self.status
    }

    /// Why it ended, unless it succeeded or runs.
    pub fn reason(&self) -> Option<&EndReason> {
        self.reason.as_ref()
    }

    /// What it was asked to do.
    pub fn spec(&self) -> &HostBlueGreenSpec {
        &self.spec
    }

    /// The replacement hosts that got the revision and receive traffic
    /// (empty until the install ended).
    pub fn installed(&self) -> &[String] {
        &self.installed
    }

    /// Whether it ended.
    pub fn is_terminal(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Share of traffic last requested for the replacement hosts.
    pub fn replacement_percent(&self) -> u8 {
        self.replacement_percent
    }

    /// When the driver must feed a `Tick`.
    pub fn next_wakeup(&self) -> Option<Millis> {
        match &self.phase {
            Phase::Install(d) => d.next_wakeup(),
            Phase::Traffic {
                started_at,
                next_step,
            } => schedule::steps(&self.spec.routing)
                .get(*next_step)
                .map(|s| started_at + s.at_offset_ms),
            Phase::Baking { until } => Some(*until),
            _ => None,
        }
    }

    /// What was in flight, again, after a crash.
    pub fn resume(&self) -> Vec<BlueGreenHostEffect> {
        let mut out = Vec::new();
        match &self.phase {
            Phase::Done => return self.final_effects.clone(),
            Phase::Install(d) => out.extend(d.resume().into_iter().map(host)),
            Phase::Batch { hosts, .. } => out.extend(running(hosts).map(host)),
            _ => {}
        }
        if !self.acked {
            out.push(self.shift_effect());
        }
        out.extend(self.next_wakeup().map(|t| host(HostEffect::WaitUntil(t))));
        out
    }

    fn shift_effect(&self) -> BlueGreenHostEffect {
        BlueGreenHostEffect::ShiftTraffic {
            request: self.request,
            replacement_percent: self.replacement_percent,
        }
    }

    fn shift(&mut self, percent: u8, out: &mut Vec<BlueGreenHostEffect>) {
        self.request += 1;
        self.acked = false;
        self.replacement_percent = percent;
        out.push(self.shift_effect());
    }

    /// Feeds one input at `now`; returns what to do (after persisting).
    pub fn handle(&mut self, input: BlueGreenHostInput, now: Millis) -> Vec<BlueGreenHostEffect> {
        let mut out = Vec::new();
        match input {
            BlueGreenHostInput::TrafficApplied { request } => {
                if request == self.request {
                    self.acked = true;
                }
            }
            BlueGreenHostInput::Host(HostInput::Start) => {
                if self.phase == Phase::Created {
                    self.status = HostDeploymentStatus::InProgress;
                    let spec = HostsSpec {
                        hosts: self.spec.replacements.clone(),
                        config: self.spec.config,
                        load_balanced: false,
                        ignore_application_stop_failures: true,
                        rollback: HostRollback::default(),
                    };
                    let mut d = HostDeployment::with_steps(spec, |h| {
                        lifecycle::replacement_install(h.has_last_revision)
                    });
                    out.extend(d.handle(HostInput::Start, now).into_iter().map(host));
                    self.phase = Phase::Install(Box::new(d));
                }
            }
            BlueGreenHostInput::Host(HostInput::Alarm { name }) => {
                if !self.ended() {
                    let rollback = self.spec.rollback.on_alarm;
                    let reason = EndReason::Alarm(name);
                    self.end(HostDeploymentStatus::Stopped, reason, rollback, &mut out);
                }
            }
            BlueGreenHostInput::Host(HostInput::Stop { rollback }) => {
                if !self.ended() {
                    let reason = EndReason::StopRequested;
                    self.end(HostDeploymentStatus::Stopped, reason, rollback, &mut out);
                }
            }
            BlueGreenHostInput::Host(input) => self.host_input(input, now, &mut out),
        }
        self.pump(now, &mut out);
        out
    }

    fn ended(&self) -> bool {
        matches!(self.phase, Phase::Ending | Phase::Done)
    }

    fn host_input(&mut self, input: HostInput, now: Millis, out: &mut Vec<BlueGreenHostEffect>) {
        match &mut self.phase {
            Phase::Install(d) => {
                let effects = d.handle(input, now);
                // The inner deployment's end is this one's next phase, not
                // an end to report.
                out.extend(
                    effects
                        .into_iter()
                        .filter(|e| !matches!(e, HostEffect::Finished { .. }))
                        .map(host),
                );
            }
            Phase::Batch { hosts, stage } => {
                let stage = *stage;
                let (name, event, ok) = match input {
                    HostInput::StepSucceeded { host, event } => (host, Some(event), true),
                    HostInput::StepFailed { host, event } => (host, Some(event), false),
                    HostInput::AgentLost { host } => (host, None, false),
                    _ => return,
                };
                let Some(h) = hosts.iter_mut().find(|h| h.name == name) else {
                    return;
                };
                let HostState::Running { step } = h.state else {
                    return;
                };
                let current = h.steps[step].event;
                if event.is_some_and(|e| e != current) {
                    return;
                }
                if ok || stage == Stage::StopOriginals {
                    // Stopping an original that is already out of traffic
                    // cannot fail the deployment; its result is recorded.
                    if ok && step + 1 < h.steps.len() {
                        h.state = HostState::Running { step: step + 1 };
                        out.push(host(HostEffect::Run {
                            host: h.name.clone(),
                            step: h.steps[step + 1],
                        }));
                    } else if ok {
                        h.state = HostState::Succeeded;
                    } else {
                        h.state = HostState::Failed { event: current };
                    }
                } else {
                    h.state = match event {
                        Some(event) => HostState::Failed { event },
                        None => HostState::Lost {
                            event: Some(current),
                        },
                    };
                    let rollback = self.spec.rollback.on_failure;
                    let reason = EndReason::TooFewSucceeded;
                    self.end(HostDeploymentStatus::Failed, reason, rollback, out);
                }
            }
            _ => {}
        }
    }

    /// Moves through the phases as far as `now` and the results allow.
    fn pump(&mut self, now: Millis, out: &mut Vec<BlueGreenHostEffect>) {
        loop {
            match &mut self.phase {
                Phase::Install(d) => match d.status() {
                    HostDeploymentStatus::Succeeded => {
                        self.installed = d
                            .hosts()
                            .iter()
                            .filter(|h| h.state == HostState::Succeeded)
                            .map(|h| h.name.clone())
                            .collect();
                        self.phase = Phase::Traffic {
                            started_at: now,
                            next_step: 0,
                        };
                    }
                    HostDeploymentStatus::Failed | HostDeploymentStatus::Stopped => {
                        let reason = d.reason().cloned().unwrap_or(EndReason::TooFewSucceeded);
                        self.end(HostDeploymentStatus::Failed, reason, false, out);
                    }
                    _ => return,
                },
                Phase::Traffic {
                    started_at,
                    next_step,
                } => {
                    let steps = schedule::steps(&self.spec.routing);
                    if !self.acked {
                        return;
                    }
                    match steps.get(*next_step) {
                        Some(s) if now >= *started_at + s.at_offset_ms => {
                            *next_step += 1;
                            self.shift(s.green_percent, out);
                            return;
                        }
                        Some(s) => {
                            let at = *started_at + s.at_offset_ms;
                            out.push(host(HostEffect::WaitUntil(at)));
                            return;
                        }
                        None => {
                            let steps = |_: &HostTarget| lifecycle::replacement_after_traffic();
                            self.batch(Stage::AfterTraffic, steps, out);
                        }
                    }
                }
                Phase::Batch { hosts, stage } => {
                    if hosts
                        .iter()
                        .any(|h| matches!(h.state, HostState::Running { .. }))
                    {
                        return;
                    }
                    let stage = *stage;
                    match stage {
                        Stage::AfterTraffic => self.batch(
                            Stage::BlockOriginals,
                            |h| lifecycle::original_block(h.has_last_revision),
                            out,
                        ),
                        Stage::BlockOriginals => {
                            let until = now.saturating_add(self.spec.termination_wait_ms);
                            self.phase = Phase::Baking { until };
                        }
                        Stage::StopOriginals => {
                            self.end(HostDeploymentStatus::Succeeded, None, false, out)
                        }
                    }
                }
                Phase::Baking { until } => {
                    if now < *until {
                        out.push(host(HostEffect::WaitUntil(*until)));
                        return;
                    }
                    let stop = Step {
                        event: HostEvent::ApplicationStop,
                        action: Action::Scripts(Revision::LastSuccessful),
                    };
                    let keep = !self.spec.stop_originals;
                    self.batch(
                        Stage::StopOriginals,
                        |h| {
                            if keep || !h.has_last_revision {
                                Vec::new()
                            } else {
                                vec![stop]
                            }
                        },
                        out,
                    );
                }
                Phase::Ending => {
                    if self.acked {
                        let (status, reason) = (self.status, self.reason.clone());
                        self.finish(status, reason, out);
                    }
                    return;
                }
                Phase::Created | Phase::Done => return,
            }
        }
    }

    /// Starts a batch phase: every host at once (hosts with no steps are done).
    fn batch(
        &mut self,
        stage: Stage,
        steps: impl Fn(&HostTarget) -> Vec<Step>,
        out: &mut Vec<BlueGreenHostEffect>,
    ) {
        let installed = &self.installed;
        let targets: Vec<&HostTarget> = match stage {
            Stage::AfterTraffic => self
                .spec
                .replacements
                .iter()
                .filter(|t| installed.contains(&t.name))
                .collect(),
            Stage::BlockOriginals | Stage::StopOriginals => self.spec.originals.iter().collect(),
        };
        let hosts: Vec<HostRun> = targets
            .into_iter()
            .map(|t| {
                let steps = steps(t);
                HostRun {
                    name: t.name.clone(),
                    zone: 0,
                    healthy_at_start: t.healthy,
                    state: if steps.is_empty() {
                        HostState::Succeeded
                    } else {
                        HostState::Running { step: 0 }
                    },
                    started_at: None,
                    steps,
                }
            })
            .collect();
        out.extend(running(&hosts).map(host));
        self.phase = Phase::Batch { stage, hosts };
    }

    /// Ends: cancels what runs; flips traffic back first if it may be on
    /// the replacement hosts and a rollback is asked.
    fn end(
        &mut self,
        status: HostDeploymentStatus,
        reason: impl Into<Option<EndReason>>,
        rollback: bool,
        out: &mut Vec<BlueGreenHostEffect>,
    ) {
        let reason = reason.into();
        let mut cancels = Vec::new();
        match &mut self.phase {
            Phase::Install(d) if !d.is_terminal() => {
                cancels.extend(
                    d.handle(HostInput::Stop { rollback: false }, 0)
                        .into_iter()
                        .filter(|e| matches!(e, HostEffect::Cancel { .. })),
                );
            }
            Phase::Batch { hosts, .. } => {
                for h in hosts.iter_mut() {
                    if let HostState::Running { step } = h.state {
                        h.state = HostState::Stopped {
                            event: h.steps[step].event,
                        };
                        cancels.push(HostEffect::Cancel {
                            host: h.name.clone(),
                        });
                    }
                }
            }
            _ => {}
        }
        out.extend(cancels.into_iter().map(host));
        self.status = status;
        self.reason = reason.clone();
        if rollback && self.request > 0 {
            self.shift(0, out);
            self.phase = Phase::Ending;
        } else {
            self.finish(status, reason, out);
        }
    }

    fn finish(
        &mut self,
        status: HostDeploymentStatus,
        reason: Option<EndReason>,
        out: &mut Vec<BlueGreenHostEffect>,
    ) {
        let effects = vec![host(HostEffect::Finished { status, reason })];
        self.phase = Phase::Done;
        self.final_effects = effects.clone();
        out.extend(effects);
    }
}

/// The current step of every running host.
fn running(hosts: &[HostRun]) -> impl Iterator<Item = HostEffect> + '_ {
    hosts.iter().filter_map(|h| match h.state {
        HostState::Running { step } => Some(HostEffect::Run {
            host: h.name.clone(),
            step: h.steps[step],
        }),
        _ => None,
    })
}
