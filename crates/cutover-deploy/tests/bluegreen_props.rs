//! Property test of the blue/green engine: random specs, hook behaviours,
//! proxy delays and failures, operator inputs and alarms at random times,
//! with and without crashes. The harness asserts the invariants on every
//! effect; here we check that every deployment finishes and that its end
//! state matches its outcome.

mod common;

use common::{Crash, Sim};
use cutover_deploy::bluegreen::{BlueGreen, DeploymentStatus, Effect, HookOutcome, Input};
use cutover_deploy::config::{
    AutoRollback, BlueGreenSpec, HookSpec, LifecycleEvent, ReadyOption, ReadyTimeoutAction,
    TrafficRouting,
};
use cutover_deploy::time::Millis;
use proptest::prelude::*;

const T0: Millis = 1_700_000_000_000;

#[derive(Debug, Clone, Copy)]
enum HookBehaviour {
    Succeed(Millis),
    Fail,
    InProgressThenSucceed,
    Silent,
}

#[derive(Debug, Clone)]
struct Scenario {
    routing: TrafficRouting,
    test_listener: bool,
    hooks: Vec<(LifecycleEvent, HookBehaviour)>,
    ready: ReadyOption,
    termination_wait_ms: Millis,
    rollback: AutoRollback,
    inputs: Vec<(Millis, Input)>,
    ack_delay: Millis,
    traffic_failures: u32,
    green_delay: Option<Millis>,
    crash: Crash,
}

fn routing() -> impl Strategy<Value = TrafficRouting> {
    prop_oneof![
        Just(TrafficRouting::AllAtOnce),
        (1u8..=99, 1u64..5_000).prop_map(|(percent, interval_ms)| TrafficRouting::Canary {
            percent,
            interval_ms
        }),
        (10u8..=99, 1u64..3_000).prop_map(|(percent, interval_ms)| TrafficRouting::Linear {
            percent,
            interval_ms
        }),
    ]
}

fn hook_behaviour() -> impl Strategy<Value = HookBehaviour> {
    prop_oneof![
        6 => (0u64..2_000).prop_map(HookBehaviour::Succeed),
        1 => Just(HookBehaviour::Fail),
        1 => Just(HookBehaviour::InProgressThenSucceed),
        1 => Just(HookBehaviour::Silent),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        Just(Input::AlarmFired {
            alarm: "5xx".into()
        }),
        Just(Input::AlarmFired {
            alarm: "unwatched".into()
        }),
        prop::option::of(any::<bool>()).prop_map(|rollback| Input::Stop { rollback }),
        Just(Input::Continue),
        Just(Input::Rollback),
        Just(Input::GreenFailed {
            reason: "crashed".into()
        }),
        Just(Input::Tick),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let hooks = prop::collection::vec(
        (
            prop::sample::select(vec![
                LifecycleEvent::BeforeInstall,
                LifecycleEvent::AfterInstall,
                LifecycleEvent::AfterAllowTestTraffic,
                LifecycleEvent::BeforeAllowTraffic,
                LifecycleEvent::AfterAllowTraffic,
            ]),
            hook_behaviour(),
        ),
        0..4,
    );
    let ready = prop_oneof![
        Just(ReadyOption::Immediately),
        (0u64..10_000, any::<bool>()).prop_map(|(timeout_ms, go)| ReadyOption::Wait {
            timeout_ms,
            on_timeout: if go {
                ReadyTimeoutAction::ContinueDeployment
            } else {
                ReadyTimeoutAction::StopDeployment
            },
        }),
    ];
    let rollback = (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(on_failure, on_alarm, on_request)| AutoRollback {
            on_failure,
            on_alarm,
            on_request,
        },
    );
    let crash = prop_oneof![
        4 => Just(Crash::Never),
        1 => Just(Crash::AfterExecuting),
        1 => Just(Crash::BeforeExecuting),
        2 => (1usize..40).prop_map(Crash::OnceBeforeExecuting),
    ];
    (
        (
            routing(),
            any::<bool>(),
            hooks,
            ready,
            0u64..5_000,
            rollback,
        ),
        (
            prop::collection::vec((0u64..40_000, input()), 0..4),
            1u64..2_000,
            0u32..5,
            prop::option::weighted(0.9, 0u64..5_000),
            crash,
        ),
    )
        .prop_map(
            |(
                (routing, test_listener, hooks, ready, termination_wait_ms, rollback),
                (inputs, ack_delay, traffic_failures, green_delay, crash),
            )| Scenario {
                routing,
                test_listener,
                hooks,
                ready,
                termination_wait_ms,
                rollback,
                inputs,
                ack_delay,
                traffic_failures,
                green_delay,
                crash,
            },
        )
}

fn run(s: &Scenario) -> Sim {
    let mut spec = BlueGreenSpec::new("d-p", s.routing);
    spec.has_test_listener = s.test_listener;
    spec.ready = s.ready;
    spec.termination_wait_ms = s.termination_wait_ms;
    spec.auto_rollback = s.rollback;
    spec.alarms = vec!["5xx".into()];
    for (event, _) in &s.hooks {
        spec.hooks.insert(*event, HookSpec { timeout_ms: 60_000 });
    }
    let behaviours = s.hooks.clone();
    let mut sim = Sim::new(BlueGreen::new(spec, T0));
    sim.ack_delay = s.ack_delay;
    sim.traffic_failures = s.traffic_failures;
    sim.green_delay = s.green_delay;
    sim.crash = s.crash;
    sim.hooks = Box::new(move |event, _, details| {
        let behaviour = behaviours
            .iter()
            .rev()
            .find(|(e, _)| *e == event)
            .map(|(_, b)| *b)?;
        match behaviour {
            HookBehaviour::Succeed(delay) => Some((delay, HookOutcome::Succeeded)),
            HookBehaviour::Fail => Some((
                10,
                HookOutcome::Failed {
                    reason: "no".into(),
                },
            )),
            HookBehaviour::InProgressThenSucceed => Some(match details {
                None => (
                    10,
                    HookOutcome::InProgress {
                        callback_delay_ms: Some(300),
                        details: Some("x".into()),
                    },
                ),
                Some(_) => (10, HookOutcome::Succeeded),
            }),
            HookBehaviour::Silent => None,
        }
    });
    sim.at(T0, Input::Start);
    for (offset, input) in &s.inputs {
        sim.at(T0 + offset, input.clone());
    }
    sim.run();
    sim
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_deployment_finishes_consistently(s in scenario()) {
        let sim = run(&s);
        prop_assert!(sim.bg.is_terminal(), "not finished: {:?}", sim.bg.status());
        let outcome = sim.bg.outcome().unwrap().clone();
        prop_assert_eq!(outcome.status, sim.bg.status());
        let blue_removed = sim.count(|e| *e == Effect::TeardownBlue) > 0;
        let provisioned = sim.count(|e| *e == Effect::ProvisionGreen) > 0;
        match outcome.status {
            DeploymentStatus::Succeeded => {
                prop_assert_eq!(sim.proxy.0, 100);
                prop_assert!(blue_removed && !sim.green_removed());
            }
            DeploymentStatus::Failed | DeploymentStatus::Stopped => {
                prop_assert!(!blue_removed);
                if outcome.rollback {
                    prop_assert_eq!(sim.proxy, (0, false));
                }
                if sim.proxy.0 > 0 {
                    // Left where it stopped: green still serves.
                    prop_assert!(!outcome.rollback && !sim.green_removed());
                }
                // Green may only stay when production traffic was (possibly)
                // sent to it: a change was requested, acknowledged or not.
                let prod_requested = sim.applies().iter().any(|a| a.1 > 0);
                if provisioned && !prod_requested {
                    prop_assert!(sim.green_removed(), "green left behind without traffic");
                }
            }
            other => prop_assert!(false, "not a final status: {other:?}"),
        }
        if s.crash == Crash::Never {
            prop_assert_eq!(sim.count(|e| matches!(e, Effect::Finished { .. })), 1);
        }
    }
}
