//! The in-place host deployment: hosts in waves under the minimum healthy
//! hosts rule, zone by zone with a monitor time between zones, each host
//! walking its lifecycle one step at a time (see [`super::lifecycle`]).
//! [`HostDeployment`] is a serde value; see the module documentation of
//! [`super`] for the driving contract and the state table.

use std::collections::BTreeSet;

use cutover_spec::HostEvent;
use serde::{Deserialize, Serialize};

use super::lifecycle::{self, Step};
use super::rules::{self, Limits};
use super::types::{
    EndReason, HostDeploymentStatus, HostEffect, HostInput, HostRun, HostState, HostTarget,
    HostsSpec,
};
use crate::time::{Millis, SECOND_MS};

/// An in-place host deployment. Pure: time comes in as `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDeployment {
    spec: HostsSpec,
    status: HostDeploymentStatus,
    reason: Option<EndReason>,
    hosts: Vec<HostRun>,
    zones: Vec<String>,
    zone: usize,
    monitor_until: Option<Millis>,
    zone_done_at: Vec<Option<Millis>>,
    final_effects: Vec<HostEffect>,
}

impl HostDeployment {
    /// A deployment of `spec`, waiting for `Start`.
    pub fn new(spec: HostsSpec) -> HostDeployment {
        let load_balanced = spec.load_balanced;
        HostDeployment::with_steps(spec, |h| {
            lifecycle::in_place(load_balanced, h.has_last_revision)
        })
    }

    /// A deployment whose hosts walk `steps(host)` (blue/green installs
    /// replacement hosts with it).
    pub(crate) fn with_steps(
        spec: HostsSpec,
        steps: impl Fn(&HostTarget) -> Vec<Step>,
    ) -> HostDeployment {
        let zonal = spec.config.zonal.is_some();
        let key = |h: &HostTarget| {
            if zonal {
                h.zone.clone().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let zones: Vec<String> = spec
            .hosts
            .iter()
            .map(key)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let hosts = spec
            .hosts
            .iter()
            .map(|h| HostRun {
                name: h.name.clone(),
                zone: zones.iter().position(|z| *z == key(h)).unwrap_or(0),
                healthy_at_start: h.healthy,
                steps: steps(h),
                state: HostState::Pending,
                started_at: None,
            })
            .collect();
        HostDeployment {
            zone_done_at: vec![None; zones.len()],
            spec,
            status: HostDeploymentStatus::Created,
            reason: None,
            hosts,
            zones,
            zone: 0,
            monitor_until: None,
            final_effects: Vec::new(),
        }
    }

    /// What it was asked to do.
    pub fn spec(&self) -> &HostsSpec {
        &self.spec
    }

    /// The status.
    pub fn status(&self) -> HostDeploymentStatus {
        self.status
    }

    /// Why it ended, unless it succeeded or runs.
    pub fn reason(&self) -> Option<&EndReason> {
        self.reason.as_ref()
    }

    /// Every host and its progress.
    pub fn hosts(&self) -> &[HostRun] {
        &self.hosts
    }

    /// The zones in the order they are deployed (one unnamed zone when the
    /// configuration is not zonal; hosts without a zone form the zone `""`).
    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    /// When each zone finished.
    pub fn zone_done_at(&self) -> &[Option<Millis>] {
        &self.zone_done_at
    }

    /// Whether it ended.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self.status,
            HostDeploymentStatus::Created | HostDeploymentStatus::InProgress
        )
    }

    /// When the driver must feed `Tick`, if it waits for time.
    pub fn next_wakeup(&self) -> Option<Millis> {
        self.monitor_until.filter(|_| !self.is_terminal())
    }

    /// The limits for the whole deployment, `None` if the rule leaves
    /// nothing to deploy.
    pub fn limits(&self) -> Option<Limits> {
        rules::limits(&self.spec.config.rule, self.hosts.len())
    }

    /// Hosts in service now.
    pub fn in_service(&self) -> usize {
        self.hosts.iter().filter(|h| h.in_service()).count()
    }

    /// What was in flight, again, after a crash: the current step of every
    /// running host and the wait; on an ended deployment its last effects.
    pub fn resume(&self) -> Vec<HostEffect> {
        if self.is_terminal() {
            return self.final_effects.clone();
        }
        let mut out: Vec<HostEffect> = self
            .hosts
            .iter()
            .filter_map(|h| match h.state {
                HostState::Running { step } => Some(HostEffect::Run {
                    host: h.name.clone(),
                    step: h.steps[step],
                }),
                _ => None,
            })
            .collect();
        out.extend(self.next_wakeup().map(HostEffect::WaitUntil));
        out
    }

    /// Feeds one input at `now`; returns what to do (after persisting).
    pub fn handle(&mut self, input: HostInput, now: Millis) -> Vec<HostEffect> {
        let mut out = Vec::new();
        match input {
            HostInput::Start if self.status == HostDeploymentStatus::Created => {
                self.status = HostDeploymentStatus::InProgress;
                match self.limits() {
                    Some(_) => self.pump(now, &mut out),
                    None if self.hosts.is_empty() => self.end(
                        HostDeploymentStatus::Failed,
                        EndReason::NoHosts,
                        false,
                        &mut out,
                    ),
                    None => self.end(
                        HostDeploymentStatus::Failed,
                        EndReason::HealthConstraintsInvalid,
                        false,
                        &mut out,
                    ),
                }
            }
            HostInput::Start => {}
            HostInput::StepSucceeded { host, event } => {
                if let Some((i, step)) = self.running_at(&host, event) {
                    self.advance(i, step, &mut out);
                    self.pump(now, &mut out);
                }
            }
            HostInput::StepFailed { host, event } => {
                if let Some((i, step)) = self.running_at(&host, event) {
                    if event == HostEvent::ApplicationStop
                        && self.spec.ignore_application_stop_failures
                    {
                        self.advance(i, step, &mut out);
                    } else {
                        self.hosts[i].state = HostState::Failed { event };
                    }
                    self.pump(now, &mut out);
                }
            }
            HostInput::AgentLost { host } => {
                if self.status != HostDeploymentStatus::InProgress {
                    return out;
                }
                if let Some(h) = self.hosts.iter_mut().find(|h| h.name == host) {
                    h.state = match h.state {
                        HostState::Running { step } => HostState::Lost {
                            event: Some(h.steps[step].event),
                        },
                        HostState::Pending => HostState::Lost { event: None },
                        other => other,
                    };
                    self.pump(now, &mut out);
                }
            }
            HostInput::Alarm { name } => {
                if self.status == HostDeploymentStatus::InProgress {
                    let rollback = self.spec.rollback.on_alarm;
                    self.end(
                        HostDeploymentStatus::Stopped,
                        EndReason::Alarm(name),
                        rollback,
                        &mut out,
                    );
                }
            }
            HostInput::Stop { rollback } => {
                if !self.is_terminal() {
                    self.end(
                        HostDeploymentStatus::Stopped,
                        EndReason::StopRequested,
                        rollback,
                        &mut out,
                    );
                }
            }
            HostInput::Tick => self.pump(now, &mut out),
        }
        out
    }

    /// The host named `host` if it is running `event` now (a late or
    /// repeated result matches nothing and is ignored).
    fn running_at(&self, host: &str, event: HostEvent) -> Option<(usize, usize)> {
        if self.status != HostDeploymentStatus::InProgress {
            return None;
        }
        self.hosts
            .iter()
            .enumerate()
            .find_map(|(i, h)| match h.state {
                HostState::Running { step } if h.name == host && h.steps[step].event == event => {
                    Some((i, step))
                }
                _ => None,
            })
    }

    /// The step `step` of host `i` succeeded: the next one, or done.
    fn advance(&mut self, i: usize, step: usize, out: &mut Vec<HostEffect>) {
        let h = &mut self.hosts[i];
        if step + 1 < h.steps.len() {
            h.state = HostState::Running { step: step + 1 };
            out.push(HostEffect::Run {
                host: h.name.clone(),
                step: h.steps[step + 1],
            });
        } else {
            h.state = HostState::Succeeded;
        }
    }

    fn count(&self, zone: Option<usize>, f: impl Fn(&HostRun) -> bool) -> usize {
        self.hosts
            .iter()
            .filter(|h| zone.is_none_or(|z| h.zone == z) && f(h))
            .count()
    }

    /// The next host of the current zone that may start now: unhealthy
    /// hosts first (they take nothing out of service), then in group order.
    fn next_startable(&self, limits: &Limits) -> Option<usize> {
        let zone = self.zone;
        let running = |h: &HostRun| matches!(h.state, HostState::Running { .. });
        if self.count(None, running) >= limits.concurrency {
            return None;
        }
        let zone_size = self.count(Some(zone), |_| true);
        let per_zone = self
            .spec
            .config
            .zonal
            .as_ref()
            .and_then(|z| z.minimum_healthy_hosts_per_zone.as_ref());
        let zone_keep = rules::zone_keep(per_zone, zone_size);
        if self.count(Some(zone), running) >= (zone_size - zone_keep).max(1) {
            return None;
        }
        let healthy = self.in_service();
        let zone_healthy = self.count(Some(zone), HostRun::in_service);
        // An unhealthy host takes nothing out of service: it may always go.
        let fits = |h: &HostRun| {
            !h.healthy_at_start || (healthy > limits.keep_healthy && zone_healthy > zone_keep)
        };
        let pending = |h: &&HostRun| h.zone == zone && h.state == HostState::Pending;
        let order = self
            .hosts
            .iter()
            .filter(pending)
            .filter(|h| !h.healthy_at_start)
            .chain(
                self.hosts
                    .iter()
                    .filter(pending)
                    .filter(|h| h.healthy_at_start),
            );
        // An unhealthy host fits whenever any host does, so the first
        // pending host that fits is the first in this order.
        let first = order.into_iter().find(|h| fits(h))?;
        self.hosts.iter().position(|h| h.name == first.name)
    }

    /// Starts what may start, finishes zones, ends the deployment.
    fn pump(&mut self, now: Millis, out: &mut Vec<HostEffect>) {
        let Some(limits) = self.limits() else {
            return;
        };
        while self.status == HostDeploymentStatus::InProgress {
            if let Some(until) = self.monitor_until {
                if now < until {
                    out.push(HostEffect::WaitUntil(until));
                    return;
                }
                self.monitor_until = None;
                self.zone += 1;
                continue;
            }
            let succeeded = self.count(None, |h| h.state == HostState::Succeeded);
            let open = self.count(None, |h| {
                matches!(h.state, HostState::Pending | HostState::Running { .. })
            });
            if succeeded + open < limits.must_succeed {
                let rollback = self.spec.rollback.on_failure;
                self.end(
                    HostDeploymentStatus::Failed,
                    EndReason::TooFewSucceeded,
                    rollback,
                    out,
                );
                return;
            }
            while let Some(i) = self.next_startable(&limits) {
                let h = &mut self.hosts[i];
                h.state = HostState::Running { step: 0 };
                h.started_at = Some(now);
                out.push(HostEffect::Run {
                    host: h.name.clone(),
                    step: h.steps[0],
                });
            }
            let zone = Some(self.zone);
            if self.count(zone, |h| matches!(h.state, HostState::Running { .. })) > 0 {
                return;
            }
            if self.count(zone, |h| h.state == HostState::Pending) > 0 {
                let rollback = self.spec.rollback.on_failure;
                self.end(
                    HostDeploymentStatus::Failed,
                    EndReason::HealthConstraints,
                    rollback,
                    out,
                );
                return;
            }
            self.zone_done_at[self.zone] = Some(now);
            if self.zone + 1 >= self.zones.len() {
                // Enough succeeded: the check above passed with nothing open.
                self.end(HostDeploymentStatus::Succeeded, None, false, out);
                return;
            }
            let wait = self.spec.config.zonal.map_or(0, |z| {
                let secs = if self.zone == 0 {
                    z.first_zone_monitor_duration_in_seconds
                        .unwrap_or(z.monitor_duration_in_seconds)
                } else {
                    z.monitor_duration_in_seconds
                };
                secs.saturating_mul(SECOND_MS)
            });
            if wait == 0 {
                self.zone += 1;
            } else {
                self.monitor_until = Some(now.saturating_add(wait));
            }
        }
    }

    /// Ends the deployment: running hosts are cancelled, pending ones
    /// skipped, and the hosts that got the revision rolled back if asked.
    fn end(
        &mut self,
        status: HostDeploymentStatus,
        reason: impl Into<Option<EndReason>>,
        rollback: bool,
        out: &mut Vec<HostEffect>,
    ) {
        let reason = reason.into();
        let mut effects = Vec::new();
        for h in &mut self.hosts {
            match h.state {
                HostState::Running { step } => {
                    h.state = HostState::Stopped {
                        event: h.steps[step].event,
                    };
                    effects.push(HostEffect::Cancel {
                        host: h.name.clone(),
                    });
                }
                HostState::Pending => h.state = HostState::Skipped,
                _ => {}
            }
        }
        if rollback && self.spec.rollback.last_good_revision {
            let hosts: Vec<String> = self
                .hosts
                .iter()
                .filter(|h| h.started_at.is_some())
                .map(|h| h.name.clone())
                .collect();
            if !hosts.is_empty() {
                effects.push(HostEffect::RollBack { hosts });
            }
        }
        effects.push(HostEffect::Finished {
            status,
            reason: reason.clone(),
        });
        self.status = status;
        self.reason = reason;
        self.monitor_until = None;
        self.final_effects = effects.clone();
        out.extend(effects);
    }
}
