//! A simulated driver for the in-place host planner: agents answer each
//! step from a fixed table, in host order, one at a time; time advances a
//! fixed amount per answer and jumps to each wait. It checks the planner's
//! invariants on every effect, from its own model of the hosts (not the
//! planner's accounting), and can crash the planner at any input: the
//! state goes through JSON and `resume()` must re-issue exactly what was in
//! flight.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};

use cutover_deploy::hosts::lifecycle;
use cutover_deploy::hosts::rules;
use cutover_deploy::hosts::{HostDeployment, HostEffect, HostInput, HostsSpec};
use cutover_deploy::time::Millis;
use cutover_spec::HostEvent;

pub const T0: Millis = 1_700_000_000_000;
/// Time an agent takes per step.
pub const STEP_MS: Millis = 100;

/// How a host's deployment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every step succeeds.
    Ok,
    /// The step with this index (modulo the host's step count) fails.
    FailAt(usize),
    /// The agent is lost at this step index.
    LostAt(usize),
}

pub struct Sim {
    pub d: HostDeployment,
    pub spec: HostsSpec,
    pub now: Millis,
    pub outcomes: Vec<Outcome>,
    /// Host name -> the step index it runs, for hosts in flight.
    in_flight: BTreeMap<String, usize>,
    /// Host name -> the last step index that succeeded.
    done: BTreeMap<String, usize>,
    wakeup: Option<Millis>,
    /// Every effect, with the time it was returned.
    pub log: Vec<(Millis, HostEffect)>,
    /// Hosts started (first step issued), in order, with the time.
    pub started: Vec<(String, Millis)>,
    /// Hosts whose every step succeeded.
    pub succeeded: BTreeSet<String>,
    /// When each zone (by name) had its last host finish.
    zone_last_end: BTreeMap<String, Millis>,
    inputs: usize,
    /// Crash after this many inputs.
    pub crash_at: Option<usize>,
    pub alarm_at: Option<usize>,
}

impl Sim {
    pub fn new(spec: HostsSpec, outcomes: Vec<Outcome>) -> Sim {
        Sim {
            d: HostDeployment::new(spec.clone()),
            spec,
            now: T0,
            outcomes,
            in_flight: BTreeMap::new(),
            done: BTreeMap::new(),
            wakeup: None,
            log: Vec::new(),
            started: Vec::new(),
            succeeded: BTreeSet::new(),
            zone_last_end: BTreeMap::new(),
            inputs: 0,
            crash_at: None,
            alarm_at: None,
        }
    }

    fn index(&self, host: &str) -> usize {
        self.spec.hosts.iter().position(|h| h.name == host).unwrap()
    }

    fn steps(&self, i: usize) -> Vec<lifecycle::Step> {
        let h = &self.spec.hosts[i];
        lifecycle::in_place(self.spec.load_balanced, h.has_last_revision)
    }

    fn zone_of(&self, i: usize) -> String {
        if self.spec.config.zonal.is_some() {
            self.spec.hosts[i].zone.clone().unwrap_or_default()
        } else {
            String::new()
        }
    }

    /// Hosts in service by the simulator's own account.
    fn in_service(&self) -> usize {
        let started: BTreeSet<&str> = self.started.iter().map(|(h, _)| h.as_str()).collect();
        self.spec
            .hosts
            .iter()
            .filter(|h| {
                self.succeeded.contains(&h.name)
                    || (h.healthy && !started.contains(h.name.as_str()))
            })
            .count()
    }

    fn input(&mut self, input: HostInput) {
        self.inputs += 1;
        let effects = self.d.handle(input, self.now);
        self.apply(effects);
        if self.crash_at == Some(self.inputs) && !self.d.is_terminal() {
            self.crash();
        }
    }

    /// The state goes through JSON; `resume` re-issues exactly what was in flight.
    pub fn crash(&mut self) {
        let json = serde_json::to_string(&self.d).unwrap();
        self.d = serde_json::from_str(&json).unwrap();
        let resumed = self.d.resume();
        let mut runs = BTreeMap::new();
        let mut wake = None;
        for e in &resumed {
            match e {
                HostEffect::Run { host, step } => {
                    let i = self.index(host);
                    let at = self.steps(i).iter().position(|s| s == step).unwrap();
                    runs.insert(host.clone(), at);
                }
                HostEffect::WaitUntil(t) => wake = Some(*t),
                other => panic!("resume of a running deployment re-issued {other:?}"),
            }
        }
        assert_eq!(
            runs, self.in_flight,
            "resume re-issues exactly what was in flight"
        );
        assert_eq!(wake, self.wakeup, "resume re-issues the wait");
    }

    fn apply(&mut self, effects: Vec<HostEffect>) {
        for e in effects {
            self.check(&e);
            self.log.push((self.now, e.clone()));
            match e {
                HostEffect::Run { host, step } => {
                    let i = self.index(&host);
                    let at = self.steps(i).iter().position(|s| *s == step).unwrap();
                    if at == 0 {
                        self.started.push((host.clone(), self.now));
                    }
                    self.in_flight.insert(host, at);
                }
                HostEffect::Cancel { host } => {
                    self.in_flight.remove(&host);
                }
                HostEffect::WaitUntil(t) => self.wakeup = Some(t),
                HostEffect::RollBack { .. } | HostEffect::Finished { .. } => {}
            }
        }
    }

    /// Invariants on every effect.
    fn check(&self, e: &HostEffect) {
        let HostEffect::Run { host, step } = e else {
            return;
        };
        let i = self.index(host);
        let steps = self.steps(i);
        let at = steps
            .iter()
            .position(|s| s == step)
            .expect("a step of the host");
        if at > 0 {
            assert_eq!(
                self.done.get(host),
                Some(&(at - 1)),
                "{host}: step {at} follows step {}",
                at - 1
            );
            assert!(
                !self.in_flight.contains_key(host),
                "{host}: two steps at once"
            );
            return;
        }
        // A host starts at most once per deployment.
        assert!(
            !self.started.iter().any(|(h, _)| h == host),
            "{host} deployed twice"
        );
        let limits = rules::limits(&self.spec.config.rule, self.spec.hosts.len()).unwrap();
        // Never fewer healthy hosts in service than the minimum: taking a
        // healthy host out leaves at least the minimum.
        if self.spec.hosts[i].healthy {
            assert!(
                self.in_service() > limits.keep_healthy,
                "{host} started with {} in service, minimum {}",
                self.in_service(),
                limits.keep_healthy
            );
        }
        assert!(
            self.in_flight.len() < limits.concurrency,
            "concurrency exceeded"
        );
        // Zones in order, each after the previous one's monitor time.
        let zone = self.zone_of(i);
        for (j, other) in self.spec.hosts.iter().enumerate() {
            let z = self.zone_of(j);
            if z < zone {
                assert!(
                    !self.in_flight.contains_key(&other.name),
                    "{host} of zone {zone} started while {} of zone {z} runs",
                    other.name
                );
                assert!(
                    self.started.iter().any(|(h, _)| *h == other.name),
                    "{host} of zone {zone} started before {} of zone {z}",
                    other.name
                );
            }
        }
        if let Some(zonal) = self.spec.config.zonal
            && let Some(prev) = self
                .zone_last_end
                .iter()
                .filter(|(z, _)| **z < zone)
                .map(|(_, t)| *t)
                .max()
        {
            let zones: BTreeSet<String> = (0..self.spec.hosts.len())
                .map(|j| self.zone_of(j))
                .collect();
            let first = zones.iter().next().cloned().unwrap_or_default();
            let prev_zone = zones.iter().rfind(|z| **z < zone).unwrap();
            let wait = if *prev_zone == first {
                zonal
                    .first_zone_monitor_duration_in_seconds
                    .unwrap_or(zonal.monitor_duration_in_seconds)
            } else {
                zonal.monitor_duration_in_seconds
            } * 1000;
            assert!(
                self.now >= prev + wait,
                "{host} of zone {zone} started at {} before the monitor time ({wait} ms) after {prev}",
                self.now
            );
        }
    }

    /// Runs to the end.
    pub fn run(&mut self) {
        self.input(HostInput::Start);
        let mut guard = 0;
        while !self.d.is_terminal() {
            guard += 1;
            assert!(guard < 10_000, "no progress");
            if self.alarm_at == Some(self.inputs) {
                self.alarm_at = None;
                self.input(HostInput::Alarm {
                    name: "errors".to_owned(),
                });
                continue;
            }
            if let Some((host, at)) = self.in_flight.iter().next().map(|(h, a)| (h.clone(), *a)) {
                self.now += STEP_MS;
                let i = self.index(&host);
                let steps = self.steps(i);
                let event: HostEvent = steps[at].event;
                let input = match self.outcomes[i] {
                    Outcome::FailAt(k) if k % steps.len() == at => {
                        self.in_flight.remove(&host);
                        // An ignored failure (ApplicationStop) moves on.
                        self.done.insert(host.clone(), at);
                        self.note_end(i);
                        HostInput::StepFailed { host, event }
                    }
                    Outcome::LostAt(k) if k % steps.len() == at => {
                        self.in_flight.remove(&host);
                        self.note_end(i);
                        HostInput::AgentLost { host }
                    }
                    _ => {
                        // The next step, if any, is in flight when the planner issues it.
                        self.in_flight.remove(&host);
                        self.done.insert(host.clone(), at);
                        if at + 1 == steps.len() {
                            self.succeeded.insert(host.clone());
                            self.note_end(i);
                        }
                        HostInput::StepSucceeded { host, event }
                    }
                };
                self.input(input);
            } else if let Some(t) = self.wakeup.take() {
                self.now = self.now.max(t);
                self.input(HostInput::Tick);
            } else {
                panic!("the planner waits for nothing: {:?}", self.d);
            }
        }
    }

    fn note_end(&mut self, i: usize) {
        let z = self.zone_of(i);
        self.zone_last_end.insert(z, self.now);
    }

    /// The final effects (RollBack, Finished) of the run.
    pub fn finished(&self) -> Vec<HostEffect> {
        self.log
            .iter()
            .map(|(_, e)| e.clone())
            .filter(|e| matches!(e, HostEffect::RollBack { .. } | HostEffect::Finished { .. }))
            .collect()
    }
}
