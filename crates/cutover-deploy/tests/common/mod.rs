//! A simulated driver for the blue/green engine: a fake proxy, fake hooks and
//! fake green tasks answering on simulated time, with the engine's
//! invariants checked on every effect, and optional crash-and-resume after
//! every `handle`.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use cutover_deploy::bluegreen::{
    BlueGreen, DeploymentStatus, Effect, EventStatus, HookOutcome, Input,
};
use cutover_deploy::config::LifecycleEvent;
use cutover_deploy::config::{
    AutoRollback, BlueGreenSpec, HookSpec, ReadyOption, ReadyTimeoutAction, TrafficRouting,
};
use cutover_deploy::time::MINUTE_MS;
use cutover_deploy::time::Millis;

/// How a hook answers: `(delay, outcome)`, or `None` to never answer.
pub type HookFn =
    Box<dyn FnMut(LifecycleEvent, u32, Option<&str>) -> Option<(Millis, HookOutcome)>>;

/// What happens to a simulated crash's effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// No crashes.
    Never,
    /// Crash after every `handle`, after the effects were executed.
    AfterExecuting,
    /// Crash after every `handle`, before the effects were executed (the
    /// effects are lost; only `resume` can bring them back).
    BeforeExecuting,
    /// Crash only after the n-th `handle` (1-based), losing its effects.
    OnceBeforeExecuting(usize),
}

pub struct Sim {
    pub bg: BlueGreen,
    pub now: Millis,
    queue: BTreeMap<(Millis, u64), Input>,
    seq: u64,
    /// Every effect with the time it was issued.
    pub log: Vec<(Millis, Effect)>,
    /// The proxy's actual split: (prod green %, test on green).
    pub proxy: (u8, bool),
    proxy_last_id: u64,
    /// Applied splits in order, with the time the proxy applied them.
    pub proxy_history: Vec<(Millis, u8, bool)>,
    pub green_delay: Option<Millis>,
    pub ack_delay: Millis,
    /// How many upcoming traffic requests fail.
    pub traffic_failures: u32,
    /// Whether the proxy answers at all.
    pub proxy_silent: bool,
    pub hooks: HookFn,
    pub crash: Crash,
    handles: usize,
    green_ready_delivered: bool,
    last_apply: Option<(u64, u8, bool)>,
    green_removed: bool,
    inflight: BTreeMap<u64, (u8, bool)>,
}

impl Sim {
    pub fn new(bg: BlueGreen) -> Self {
        let now = bg.created_at();
        Self {
            bg,
            now,
            queue: BTreeMap::new(),
            seq: 0,
            log: Vec::new(),
            proxy: (0, false),
            proxy_last_id: 0,
            proxy_history: Vec::new(),
            green_delay: Some(2_000),
            ack_delay: 5,
            traffic_failures: 0,
            proxy_silent: false,
            hooks: Box::new(|_, _, _| Some((100, HookOutcome::Succeeded))),
            crash: Crash::Never,
            handles: 0,
            green_ready_delivered: false,
            last_apply: None,
            green_removed: false,
            inflight: BTreeMap::new(),
        }
    }

    /// Schedules an input at `at`.
    pub fn at(&mut self, at: Millis, input: Input) {
        self.seq += 1;
        self.queue.insert((at, self.seq), input);
    }

    /// Feeds one input now (as an operator would) and processes the effects.
    pub fn input(&mut self, input: Input) {
        self.deliver(input);
    }

    /// Runs until nothing is scheduled and the engine wants no wakeup, or
    /// until `until`.
    pub fn run_until(&mut self, until: Millis) {
        for _ in 0..100_000 {
            let queued = self.queue.keys().next().map(|k| k.0);
            let wake = self.bg.next_wakeup();
            let next = match (queued, wake) {
                (Some(q), Some(w)) => q.min(w),
                (q, w) => match q.or(w) {
                    Some(t) => t,
                    None => return,
                },
            };
            if next > until {
                return;
            }
            assert!(
                next >= self.now,
                "time went backwards: {next} < {}",
                self.now
            );
            self.now = next;
            let input = if queued == Some(next) {
                let key = *self.queue.keys().next().unwrap();
                self.queue.remove(&key).unwrap()
            } else {
                Input::Tick
            };
            self.deliver(input);
        }
        let tail: Vec<_> = self.log.iter().rev().take(12).collect();
        panic!(
            "simulation did not settle: now {} status {:?} queue {} tail {tail:#?}",
            self.now,
            self.bg.status(),
            self.queue.len()
        );
    }

    pub fn run(&mut self) {
        self.run_until(Millis::MAX);
    }

    fn deliver(&mut self, input: Input) {
        match &input {
            Input::GreenReady => self.green_ready_delivered = true,
            Input::TrafficApplied { request_id } => {
                if let Some((green, test)) = self.inflight.remove(request_id) {
                    if *request_id > self.proxy_last_id {
                        self.proxy_last_id = *request_id;
                        self.proxy = (green, test);
                        self.proxy_history.push((self.now, green, test));
                    }
                    // An acknowledgement of an earlier request for the same
                    // split confirms the latest one.
                    if self
                        .last_apply
                        .is_some_and(|(id, g, t)| *request_id <= id && (g, t) == (green, test))
                    {
                        self.last_apply = None;
                    }
                }
            }
            Input::TrafficFailed { request_id, .. }
                if self.last_apply.is_some_and(|(id, _, _)| id == *request_id) =>
            {
                self.last_apply = None;
            }
            _ => {}
        }
        let mut effects = self.bg.handle(self.now, input);
        self.handles += 1;
        let crash = match self.crash {
            Crash::Never => None,
            Crash::AfterExecuting => Some(false),
            Crash::BeforeExecuting => Some(true),
            Crash::OnceBeforeExecuting(n) => (n == self.handles).then_some(true),
        };
        if let Some(lose_effects) = crash {
            let json = serde_json::to_string(&self.bg).unwrap();
            let mut restored: BlueGreen = serde_json::from_str(&json).unwrap();
            assert_eq!(
                restored, self.bg,
                "state does not survive a serde round trip"
            );
            if lose_effects {
                effects.clear();
            } else {
                self.execute(effects);
                effects = Vec::new();
            }
            effects.extend(restored.resume(self.now));
            self.bg = restored;
        }
        self.execute(effects);
    }

    fn execute(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            self.check(&effect);
            self.log.push((self.now, effect.clone()));
            match effect {
                Effect::ProvisionGreen => match self.green_delay {
                    Some(d) => self.at(self.now + d, Input::GreenReady),
                    None => self.at(
                        self.now + 10,
                        Input::GreenFailed {
                            reason: "exit 1".into(),
                        },
                    ),
                },
                Effect::InvokeHook {
                    event,
                    execution_id,
                    attempt,
                    details,
                } => {
                    if let Some((delay, outcome)) = (self.hooks)(event, attempt, details.as_deref())
                    {
                        self.at(
                            self.now + delay,
                            Input::HookResult {
                                execution_id,
                                outcome,
                            },
                        );
                    }
                }
                Effect::ApplyTraffic {
                    request_id,
                    prod_green_percent,
                    test_on_green,
                } => {
                    self.last_apply = Some((request_id, prod_green_percent, test_on_green));
                    if self.proxy_silent {
                        continue;
                    }
                    let at = self.now + self.ack_delay;
                    if self.traffic_failures > 0 {
                        self.traffic_failures -= 1;
                        self.at(
                            at,
                            Input::TrafficFailed {
                                request_id,
                                reason: "proxy busy".into(),
                            },
                        );
                    } else {
                        // The proxy applies the split when it acknowledges.
                        self.inflight
                            .insert(request_id, (prod_green_percent, test_on_green));
                        self.at(at, Input::TrafficApplied { request_id });
                    }
                }
                Effect::TeardownGreen => self.green_removed = true,
                Effect::TeardownBlue | Effect::Finished { .. } | Effect::Event { .. } => {}
            }
        }
    }
}

impl Sim {
    /// The engine's invariants, checked before each effect is executed.
    fn check(&mut self, effect: &Effect) {
        match *effect {
            Effect::ApplyTraffic {
                request_id,
                prod_green_percent,
                test_on_green,
            } => {
                if prod_green_percent > 0 || test_on_green {
                    assert!(
                        self.green_ready_delivered,
                        "traffic to green before GreenReady"
                    );
                    assert!(!self.green_removed, "traffic to a removed green");
                }
                if let Some((prev_id, prev_green, _)) = self.last_apply {
                    assert!(request_id > prev_id, "request ids must increase");
                    assert!(
                        prod_green_percent <= prev_green,
                        "shift to {prod_green_percent}% before {prev_green}% (request {prev_id}) was acknowledged"
                    );
                }
                let last = self.log.iter().rev().find_map(|(_, e)| match e {
                    Effect::ApplyTraffic { request_id, .. } => Some(*request_id),
                    _ => None,
                });
                if let Some(last) = last {
                    assert!(request_id > last, "request ids must strictly increase");
                }
            }
            Effect::TeardownGreen => {
                assert_eq!(
                    self.proxy,
                    (0, false),
                    "green removed while it carries traffic"
                );
                assert_eq!(
                    self.bg.traffic().pending,
                    None,
                    "green removed with a change in flight"
                );
            }
            Effect::TeardownBlue => {
                assert_eq!(
                    self.proxy.0, 100,
                    "blue removed before all traffic is on green"
                );
                assert_eq!(self.bg.traffic().prod_green_percent, 100);
            }
            _ => {}
        }
    }

    /// The effects issued so far, without history lines.
    pub fn effects(&self) -> Vec<(Millis, Effect)> {
        self.log
            .iter()
            .filter(|(_, e)| !matches!(e, Effect::Event { .. }))
            .cloned()
            .collect()
    }

    /// `(time, prod %, test)` of every ApplyTraffic issued.
    pub fn applies(&self) -> Vec<(Millis, u8, bool)> {
        self.log
            .iter()
            .filter_map(|(t, e)| match e {
                Effect::ApplyTraffic {
                    prod_green_percent,
                    test_on_green,
                    ..
                } => Some((*t, *prod_green_percent, *test_on_green)),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, pred: impl Fn(&Effect) -> bool) -> usize {
        self.log.iter().filter(|(_, e)| pred(e)).count()
    }

    pub fn finished(&self) -> Option<(DeploymentStatus, bool, Option<String>)> {
        self.log.iter().find_map(|(_, e)| match e {
            Effect::Finished {
                status,
                rollback,
                reason,
            } => Some((*status, *rollback, reason.clone())),
            _ => None,
        })
    }

    /// How many times `handle` ran.
    pub fn handles(&self) -> usize {
        self.handles
    }

    pub fn green_removed(&self) -> bool {
        self.green_removed
    }
}

// ----- scenario helpers ---------------------------------------------

pub const T0: Millis = 1_700_000_000_000;

pub fn spec(routing: TrafficRouting) -> BlueGreenSpec {
    BlueGreenSpec::new("d-1", routing)
}

pub fn all_hooks(mut spec: BlueGreenSpec) -> BlueGreenSpec {
    for event in LifecycleEvent::ALL.into_iter().filter(|e| e.is_hook()) {
        spec.hooks.insert(event, HookSpec::default());
    }
    spec
}

pub fn started(spec: BlueGreenSpec) -> Sim {
    let mut sim = Sim::new(BlueGreen::new(spec, T0));
    sim.at(T0, Input::Start);
    sim
}

pub fn event_status(sim: &Sim, event: LifecycleEvent) -> EventStatus {
    sim.bg
        .lifecycle()
        .iter()
        .find(|r| r.event == event)
        .unwrap()
        .status
}

pub fn event_started(sim: &Sim, event: LifecycleEvent) -> Millis {
    sim.bg
        .lifecycle()
        .iter()
        .find(|r| r.event == event)
        .unwrap()
        .started_at
        .unwrap()
}

/// ApplyTraffic percents after `from`, with times.
pub fn applies_after(sim: &Sim, from: Millis) -> Vec<(Millis, u8, bool)> {
    sim.applies()
        .into_iter()
        .filter(|(t, _, _)| *t >= from)
        .collect()
}

pub fn canary_with(rollback: AutoRollback) -> BlueGreenSpec {
    let mut s = spec(TrafficRouting::ecs_canary_10_percent_5_minutes());
    s.alarms = vec!["5xx".into(), "latency".into()];
    s.auto_rollback = rollback;
    s.termination_wait_ms = 10 * MINUTE_MS;
    s
}

/// Sends `input` `offset` ms after AllowTraffic started.
pub fn during_traffic(sim: &mut Sim, offset: Millis, input: Input) -> Millis {
    sim.run_until(T0 + 2_000);
    let start = event_started(sim, LifecycleEvent::AllowTraffic);
    sim.at(start + offset, input);
    start + offset
}

pub fn ready_spec(on_timeout: ReadyTimeoutAction) -> BlueGreenSpec {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.has_test_listener = true;
    s.ready = ReadyOption::Wait {
        timeout_ms: 60 * MINUTE_MS,
        on_timeout,
    };
    s
}
