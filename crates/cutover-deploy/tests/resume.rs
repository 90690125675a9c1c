//! Crash-and-resume at every step: each scenario runs once without crashes,
//! then with a crash after every `handle` (effects executed or lost), then
//! with a single crash after the n-th `handle` for every n. After each crash
//! the state goes through serde JSON and `resume`; the deployment must end
//! the same way, with the same lifecycle and the same sequence of traffic
//! splits, and the harness checks the invariants on every effect.

mod common;

use common::{Crash, Sim};
use cutover_deploy::bluegreen::{BlueGreen, DeploymentStatus, EventStatus, HookOutcome, Input};
use cutover_deploy::config::{
    AutoRollback, BlueGreenSpec, HookSpec, LifecycleEvent, ReadyOption, ReadyTimeoutAction,
    TrafficRouting,
};
use cutover_deploy::time::Millis;

const T0: Millis = 1_700_000_000_000;
/// A crash may delay a step by the re-applied split's acknowledgement.
const TOLERANCE_MS: Millis = 50;

fn base(routing: TrafficRouting) -> BlueGreenSpec {
    let mut spec = BlueGreenSpec::new("d-9", routing);
    spec.has_test_listener = true;
    spec.termination_wait_ms = 1_000;
    for event in LifecycleEvent::ALL.into_iter().filter(|e| e.is_hook()) {
        spec.hooks.insert(event, HookSpec { timeout_ms: 60_000 });
    }
    spec
}

fn sim(spec: BlueGreenSpec) -> Sim {
    let mut sim = Sim::new(BlueGreen::new(spec, T0));
    sim.at(T0, Input::Start);
    sim
}

type Scenario = fn() -> Sim;

fn canary_success() -> Sim {
    sim(base(TrafficRouting::Canary {
        percent: 10,
        interval_ms: 2_000,
    }))
}

fn linear_with_in_progress_hook() -> Sim {
    let mut s = sim(base(TrafficRouting::Linear {
        percent: 25,
        interval_ms: 1_000,
    }));
    s.hooks = Box::new(|event, _, details| {
        let outcome = match (event, details) {
            (LifecycleEvent::BeforeAllowTraffic, None) => HookOutcome::InProgress {
                callback_delay_ms: Some(500),
                details: Some("1".into()),
            },
            (LifecycleEvent::BeforeAllowTraffic, Some("1")) => HookOutcome::InProgress {
                callback_delay_ms: Some(700),
                details: Some("2".into()),
            },
            _ => HookOutcome::Succeeded,
        };
        Some((100, outcome))
    });
    s
}

fn alarm_rollback_during_canary() -> Sim {
    let mut spec = base(TrafficRouting::Canary {
        percent: 10,
        interval_ms: 10_000,
    });
    spec.alarms = vec!["5xx".into()];
    spec.auto_rollback = AutoRollback {
        on_alarm: true,
        ..Default::default()
    };
    let mut s = sim(spec);
    // AllowTraffic starts at about T0 + 2.6 s.
    s.at(
        T0 + 6_000,
        Input::AlarmFired {
            alarm: "5xx".into(),
        },
    );
    s
}

fn alarm_without_rollback_during_canary() -> Sim {
    let mut spec = base(TrafficRouting::Canary {
        percent: 10,
        interval_ms: 10_000,
    });
    spec.alarms = vec!["5xx".into()];
    let mut s = sim(spec);
    s.at(
        T0 + 6_000,
        Input::AlarmFired {
            alarm: "5xx".into(),
        },
    );
    s
}

fn ready_continue() -> Sim {
    let mut spec = base(TrafficRouting::AllAtOnce);
    spec.ready = ReadyOption::Wait {
        timeout_ms: 30_000,
        on_timeout: ReadyTimeoutAction::StopDeployment,
    };
    let mut s = sim(spec);
    s.at(T0 + 10_000, Input::Continue);
    s
}

fn ready_timeout_stop() -> Sim {
    let mut spec = base(TrafficRouting::AllAtOnce);
    spec.ready = ReadyOption::Wait {
        timeout_ms: 5_000,
        on_timeout: ReadyTimeoutAction::StopDeployment,
    };
    sim(spec)
}

fn failure_after_promotion() -> Sim {
    let mut spec = base(TrafficRouting::Linear {
        percent: 50,
        interval_ms: 1_000,
    });
    spec.auto_rollback.on_failure = true;
    let mut s = sim(spec);
    s.hooks = Box::new(|event, _, _| {
        let outcome = if event == LifecycleEvent::AfterAllowTraffic {
            HookOutcome::Failed {
                reason: "e2e".into(),
            }
        } else {
            HookOutcome::Succeeded
        };
        Some((100, outcome))
    });
    s
}

fn hook_timeout() -> Sim {
    let mut s = sim(base(TrafficRouting::AllAtOnce));
    s.hooks = Box::new(|event, _, _| {
        (event != LifecycleEvent::AfterAllowTestTraffic).then_some((100, HookOutcome::Succeeded))
    });
    s
}

fn manual_rollback_in_baking() -> Sim {
    let mut spec = base(TrafficRouting::AllAtOnce);
    spec.termination_wait_ms = 60_000;
    let mut s = sim(spec);
    s.at(T0 + 20_000, Input::Rollback);
    s
}

const SCENARIOS: [(&str, Scenario); 9] = [
    ("canary_success", canary_success),
    ("linear_with_in_progress_hook", linear_with_in_progress_hook),
    ("alarm_rollback_during_canary", alarm_rollback_during_canary),
    (
        "alarm_without_rollback_during_canary",
        alarm_without_rollback_during_canary,
    ),
    ("ready_continue", ready_continue),
    ("ready_timeout_stop", ready_timeout_stop),
    ("failure_after_promotion", failure_after_promotion),
    ("hook_timeout", hook_timeout),
    ("manual_rollback_in_baking", manual_rollback_in_baking),
];

/// What must not change across crashes.
#[derive(Debug, PartialEq)]
struct Summary {
    outcome: Option<(DeploymentStatus, bool, Option<String>)>,
    lifecycle: Vec<(LifecycleEvent, EventStatus, Option<String>)>,
    splits: Vec<(u8, bool)>,
    green_removed: bool,
    blue_removed: bool,
}

fn summary(sim: &Sim) -> Summary {
    let mut splits: Vec<(u8, bool)> = Vec::new();
    for &(_, green, test) in &sim.proxy_history {
        if splits.last() != Some(&(green, test)) {
            splits.push((green, test));
        }
    }
    Summary {
        outcome: sim
            .bg
            .outcome()
            .map(|o| (o.status, o.rollback, o.reason.clone())),
        lifecycle: sim
            .bg
            .lifecycle()
            .iter()
            .map(|r| (r.event, r.status, r.message.clone()))
            .collect(),
        splits,
        green_removed: sim.green_removed(),
        blue_removed: sim.count(|e| *e == cutover_deploy::Effect::TeardownBlue) > 0,
    }
}

fn times(sim: &Sim) -> Vec<Option<Millis>> {
    let mut out: Vec<_> = sim
        .bg
        .lifecycle()
        .iter()
        .flat_map(|r| [r.started_at, r.ended_at])
        .collect();
    out.push(sim.bg.outcome().map(|o| o.finished_at));
    out
}

fn assert_same(name: &str, mode: Crash, baseline: &Sim, run: &Sim) {
    assert!(run.bg.is_terminal(), "{name} {mode:?}: did not finish");
    assert_eq!(summary(run), summary(baseline), "{name} {mode:?}");
    for (a, b) in times(baseline).into_iter().zip(times(run)) {
        match (a, b) {
            (Some(a), Some(b)) => {
                assert!(
                    b >= a && b - a <= TOLERANCE_MS,
                    "{name} {mode:?}: time {b} vs {a}"
                )
            }
            (a, b) => assert_eq!(a.is_some(), b.is_some(), "{name} {mode:?}"),
        }
    }
}

#[test]
fn every_scenario_survives_a_crash_at_every_step() {
    for (name, scenario) in SCENARIOS {
        let mut baseline = scenario();
        baseline.run();
        assert!(baseline.bg.is_terminal(), "{name}: baseline did not finish");
        let steps = baseline.handles();
        let mut modes = vec![Crash::AfterExecuting, Crash::BeforeExecuting];
        modes.extend((1..=steps).map(Crash::OnceBeforeExecuting));
        for mode in modes {
            let mut run = scenario();
            run.crash = mode;
            run.run();
            assert_same(name, mode, &baseline, &run);
        }
    }
}

#[test]
fn baselines_end_as_designed() {
    let expect = [
        ("canary_success", DeploymentStatus::Succeeded, false),
        (
            "linear_with_in_progress_hook",
            DeploymentStatus::Succeeded,
            false,
        ),
        (
            "alarm_rollback_during_canary",
            DeploymentStatus::Stopped,
            true,
        ),
        (
            "alarm_without_rollback_during_canary",
            DeploymentStatus::Stopped,
            false,
        ),
        ("ready_continue", DeploymentStatus::Succeeded, false),
        ("ready_timeout_stop", DeploymentStatus::Stopped, false),
        ("failure_after_promotion", DeploymentStatus::Failed, true),
        ("hook_timeout", DeploymentStatus::Failed, false),
        ("manual_rollback_in_baking", DeploymentStatus::Stopped, true),
    ];
    for ((name, scenario), (expected_name, status, rollback)) in SCENARIOS.into_iter().zip(expect) {
        assert_eq!(name, expected_name);
        let mut sim = scenario();
        sim.run();
        let outcome = sim
            .bg
            .outcome()
            .unwrap_or_else(|| panic!("{name}: no outcome"));
        assert_eq!(
            (outcome.status, outcome.rollback),
            (status, rollback),
            "{name}"
        );
    }
    // The alarm scenarios really fire during the canary.
    let mut sim = alarm_rollback_during_canary();
    sim.run();
    let splits = summary(&sim).splits;
    assert_eq!(splits, vec![(0, true), (10, true), (0, false)]);
}
