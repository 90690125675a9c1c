//! Blue/green onto replacement hosts: install on the replacements, traffic
//! along the canary schedule (each step after the previous acknowledgement),
//! AfterAllowTraffic, the originals leave, the termination wait, their
//! application stops; an alarm after traffic moved flips it back in one
//! change; a crash at any point resumes what was in flight.

use std::collections::BTreeMap;

use cutover_deploy::config::TrafficRouting;
use cutover_deploy::hosts::bluegreen::{
    BlueGreenHostEffect as E, BlueGreenHostInput as I, HostBlueGreenSpec,
};
use cutover_deploy::hosts::{
    EndReason, HostBlueGreen, HostDeploymentStatus, HostEffect, HostInput, HostRollback, HostTarget,
};
use cutover_deploy::time::Millis;
use cutover_spec::HostEvent;
use cutover_spec::stack::applications::HostConfig;

const T0: Millis = 1_700_000_000_000;

fn target(name: &str, has_last_revision: bool) -> HostTarget {
    HostTarget {
        name: name.to_owned(),
        zone: None,
        healthy: true,
        has_last_revision,
    }
}

fn spec() -> HostBlueGreenSpec {
    HostBlueGreenSpec {
        replacements: vec![target("g1", false), target("g2", false)],
        originals: vec![target("b1", true), target("b2", true)],
        config: HostConfig::predefined("CodeDeployDefault.AllAtOnce").unwrap(),
        routing: TrafficRouting::Canary {
            percent: 10,
            interval_ms: 60_000,
        },
        termination_wait_ms: 300_000,
        stop_originals: true,
        rollback: HostRollback {
            on_failure: true,
            on_alarm: true,
            last_good_revision: true,
        },
    }
}

/// Answers every step at once with success, acknowledges traffic changes
/// at once, and jumps to each wait; stops after `limit` inputs.
struct Driver {
    d: HostBlueGreen,
    now: Millis,
    log: Vec<(Millis, E)>,
    runs: BTreeMap<String, HostEvent>,
    traffic: Option<u64>,
    wake: Option<Millis>,
    crash_every: bool,
}

impl Driver {
    fn new(spec: HostBlueGreenSpec, crash_every: bool) -> Driver {
        Driver {
            d: HostBlueGreen::new(spec),
            now: T0,
            log: Vec::new(),
            runs: BTreeMap::new(),
            traffic: None,
            wake: None,
            crash_every,
        }
    }

    fn input(&mut self, input: I) {
        let out = self.d.handle(input, self.now);
        self.take(out.clone());
        self.log.extend(out.into_iter().map(|e| (self.now, e)));
        if self.crash_every {
            let json = serde_json::to_string(&self.d).unwrap();
            self.d = serde_json::from_str(&json).unwrap();
            let mut runs = BTreeMap::new();
            let mut traffic = None;
            for e in self.d.resume() {
                match e {
                    E::Host(HostEffect::Run { host, step }) => {
                        runs.insert(host, step.event);
                    }
                    E::ShiftTraffic { request, .. } => traffic = Some(request),
                    _ => {}
                }
            }
            if !self.is_done() {
                assert_eq!(runs, self.runs, "resume re-issues the steps in flight");
                assert_eq!(traffic, self.traffic, "resume re-issues the traffic change");
            }
        }
    }

    fn is_done(&self) -> bool {
        self.log
            .iter()
            .any(|(_, e)| matches!(e, E::Host(HostEffect::Finished { .. })))
    }

    fn take(&mut self, out: Vec<E>) {
        for e in out {
            match e {
                E::Host(HostEffect::Run { host, step }) => {
                    self.runs.insert(host, step.event);
                }
                E::Host(HostEffect::Cancel { host }) => {
                    self.runs.remove(&host);
                }
                E::Host(HostEffect::WaitUntil(t)) => self.wake = Some(t),
                E::ShiftTraffic { request, .. } => self.traffic = Some(request),
                _ => {}
            }
        }
    }

    fn step(&mut self, alarm_at_percent: Option<u8>) -> bool {
        if self.is_done() {
            return false;
        }
        if let Some(request) = self.traffic.take() {
            self.now += 10;
            self.input(I::TrafficApplied { request });
            if alarm_at_percent.is_some_and(|p| self.d.replacement_percent() == p) {
                self.input(I::Host(HostInput::Alarm {
                    name: "errors".to_owned(),
                }));
            }
        } else if let Some((host, event)) = self.runs.pop_first() {
            self.now += 10;
            self.input(I::Host(HostInput::StepSucceeded { host, event }));
        } else if let Some(t) = self.wake.take() {
            self.now = self.now.max(t);
            self.input(I::Host(HostInput::Tick));
        } else {
            panic!("waits for nothing");
        }
        true
    }
}

fn shifts(log: &[(Millis, E)]) -> Vec<(Millis, u8)> {
    log.iter()
        .filter_map(|(t, e)| match e {
            E::ShiftTraffic {
                replacement_percent,
                ..
            } => Some((t - T0, *replacement_percent)),
            _ => None,
        })
        .collect()
}

fn runs_of(log: &[(Millis, E)], host: &str) -> Vec<HostEvent> {
    log.iter()
        .filter_map(|(_, e)| match e {
            E::Host(HostEffect::Run { host: h, step }) if h == host => Some(step.event),
            _ => None,
        })
        .collect()
}

#[test]
fn replacement_hosts_take_the_traffic_and_the_originals_stop() {
    for crash_every in [false, true] {
        let mut d = Driver::new(spec(), crash_every);
        d.input(I::Host(HostInput::Start));
        while d.step(None) {}
        assert_eq!(d.d.status(), HostDeploymentStatus::Succeeded);
        let g1 = runs_of(&d.log, "g1");
        assert_eq!(g1.first(), Some(&HostEvent::DownloadBundle));
        assert_eq!(
            &g1[g1.len() - 2..],
            [HostEvent::BeforeAllowTraffic, HostEvent::AfterAllowTraffic]
        );
        // Installing takes 2 hosts x 7 steps (DownloadBundle to
        // BeforeAllowTraffic: no ApplicationStop on a first deployment),
        // answered 10 ms apart.
        let installed = 2 * 7 * 10;
        assert_eq!(shifts(&d.log), [(installed, 10), (installed + 60_000, 100)]);
        assert_eq!(
            runs_of(&d.log, "b1"),
            [
                HostEvent::BeforeBlockTraffic,
                HostEvent::BlockTraffic,
                HostEvent::AfterBlockTraffic,
                HostEvent::ApplicationStop
            ]
        );
        // The originals' application stops after the termination wait.
        let stop_at = d
            .log
            .iter()
            .find_map(|(t, e)| match e {
                E::Host(HostEffect::Run { step, .. })
                    if step.event == HostEvent::ApplicationStop =>
                {
                    Some(*t)
                }
                _ => None,
            })
            .unwrap();
        let blocked_at = d
            .log
            .iter()
            .filter_map(|(t, e)| match e {
                E::Host(HostEffect::Run { step, .. })
                    if step.event == HostEvent::AfterBlockTraffic =>
                {
                    Some(*t)
                }
                _ => None,
            })
            .max()
            .unwrap();
        assert!(stop_at >= blocked_at + 300_000);
    }
}

#[test]
fn an_alarm_after_traffic_moved_flips_it_back_in_one_change() {
    let mut d = Driver::new(spec(), false);
    d.input(I::Host(HostInput::Start));
    while d.step(Some(10)) {}
    assert_eq!(d.d.status(), HostDeploymentStatus::Stopped);
    assert_eq!(d.d.reason(), Some(&EndReason::Alarm("errors".to_owned())));
    let installed = 2 * 7 * 10;
    assert_eq!(shifts(&d.log), [(installed, 10), (installed + 10, 0)]);
    // It ends only once the flip back is acknowledged.
    let finished = d
        .log
        .iter()
        .position(|(_, e)| matches!(e, E::Host(HostEffect::Finished { .. })));
    let flip = d
        .log
        .iter()
        .rposition(|(_, e)| matches!(e, E::ShiftTraffic { .. }));
    assert!(finished > flip);
    assert!(
        runs_of(&d.log, "b1").is_empty(),
        "the originals were never touched"
    );
}

#[test]
fn a_failed_install_ends_before_any_traffic_moves() {
    let mut d = HostBlueGreen::new(spec());
    let out = d.handle(I::Host(HostInput::Start), T0);
    assert_eq!(out.len(), 2);
    let out = d.handle(
        I::Host(HostInput::StepFailed {
            host: "g1".to_owned(),
            event: HostEvent::DownloadBundle,
        }),
        T0 + 1,
    );
    let out2 = d.handle(
        I::Host(HostInput::StepFailed {
            host: "g2".to_owned(),
            event: HostEvent::DownloadBundle,
        }),
        T0 + 2,
    );
    assert!(
        out.iter()
            .chain(&out2)
            .all(|e| !matches!(e, E::ShiftTraffic { .. }))
    );
    assert_eq!(d.status(), HostDeploymentStatus::Failed);
    assert_eq!(d.reason(), Some(&EndReason::TooFewSucceeded));
}
