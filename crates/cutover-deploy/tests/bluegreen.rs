//! Scenario tests of the blue/green engine on simulated time: every traffic
//! configuration, hook outcomes, alarms, stop, continue, ready timeouts,
//! rollback and traffic failures. The simulated driver (tests/common) checks
//! the engine's invariants on every effect.

mod common;

use common::Sim;
use cutover_deploy::bluegreen::{
    BlueGreen, DeploymentStatus, Effect, EventStatus, HookOutcome, Input, TRAFFIC_ACK_TIMEOUT_MS,
};
use cutover_deploy::config::{
    AutoRollback, BlueGreenSpec, HookSpec, LifecycleEvent, PREDEFINED_NAMES, ReadyOption,
    ReadyTimeoutAction, TrafficRouting,
};
use cutover_deploy::schedule;
use cutover_deploy::time::{MINUTE_MS, Millis};

const T0: Millis = 1_700_000_000_000;

fn spec(routing: TrafficRouting) -> BlueGreenSpec {
    BlueGreenSpec::new("d-1", routing)
}

fn all_hooks(mut spec: BlueGreenSpec) -> BlueGreenSpec {
    for event in LifecycleEvent::ALL.into_iter().filter(|e| e.is_hook()) {
        spec.hooks.insert(event, HookSpec::default());
    }
    spec
}

fn started(spec: BlueGreenSpec) -> Sim {
    let mut sim = Sim::new(BlueGreen::new(spec, T0));
    sim.at(T0, Input::Start);
    sim
}

fn event_status(sim: &Sim, event: LifecycleEvent) -> EventStatus {
    sim.bg
        .lifecycle()
        .iter()
        .find(|r| r.event == event)
        .unwrap()
        .status
}

fn event_started(sim: &Sim, event: LifecycleEvent) -> Millis {
    sim.bg
        .lifecycle()
        .iter()
        .find(|r| r.event == event)
        .unwrap()
        .started_at
        .unwrap()
}

/// ApplyTraffic percents after `from`, with times.
fn applies_after(sim: &Sim, from: Millis) -> Vec<(Millis, u8, bool)> {
    sim.applies()
        .into_iter()
        .filter(|(t, _, _)| *t >= from)
        .collect()
}

#[test]
fn every_routing_shifts_on_its_planned_times() {
    let mut routings: Vec<_> = PREDEFINED_NAMES
        .iter()
        .map(|n| TrafficRouting::predefined(n).unwrap())
        .collect();
    routings.push(TrafficRouting::Canary {
        percent: 25,
        interval_ms: 7_000,
    });
    routings.push(TrafficRouting::Linear {
        percent: 30,
        interval_ms: 2_500,
    });
    routings.push(TrafficRouting::AllAtOnce);
    for routing in routings {
        let mut sim = started(spec(routing));
        sim.run();
        assert_eq!(sim.bg.status(), DeploymentStatus::Succeeded, "{routing:?}");
        let start = event_started(&sim, LifecycleEvent::AllowTraffic);
        let expected: Vec<_> = schedule::steps(&routing)
            .iter()
            .map(|s| (start + s.at_offset_ms, s.green_percent, false))
            .collect();
        assert_eq!(applies_after(&sim, start), expected, "{routing:?}");
        let done = sim
            .bg
            .lifecycle()
            .iter()
            .find(|r| r.event == LifecycleEvent::AllowTraffic);
        assert_eq!(
            done.unwrap().ended_at,
            Some(start + schedule::total_duration_ms(&routing) + sim.ack_delay)
        );
        assert_eq!(sim.count(|e| *e == Effect::TeardownBlue), 1);
        assert_eq!(sim.proxy, (100, false));
    }
}

#[test]
fn slow_acknowledgements_do_not_make_the_schedule_drift() {
    let routing = TrafficRouting::Linear {
        percent: 10,
        interval_ms: 1_000,
    };
    let mut sim = started(spec(routing));
    sim.ack_delay = 700;
    sim.run();
    let start = event_started(&sim, LifecycleEvent::AllowTraffic);
    let times: Vec<_> = applies_after(&sim, start)
        .iter()
        .map(|a| a.0 - start)
        .collect();
    assert_eq!(times, (0..10).map(|i| i * 1_000).collect::<Vec<_>>());
}

#[test]
fn a_step_waits_for_the_previous_acknowledgement() {
    let routing = TrafficRouting::Linear {
        percent: 50,
        interval_ms: 1_000,
    };
    let mut sim = started(spec(routing));
    sim.ack_delay = 2_500;
    sim.run();
    let start = event_started(&sim, LifecycleEvent::AllowTraffic);
    // 50% at 0 is acknowledged at 2500: 100% goes out then, not at 1000.
    assert_eq!(
        applies_after(&sim, start),
        vec![(start, 50, false), (start + 2_500, 100, false)]
    );
    assert_eq!(sim.bg.status(), DeploymentStatus::Succeeded);
}

#[test]
fn test_listener_moves_first_and_stays_on_green() {
    let mut s = spec(TrafficRouting::ecs_canary_10_percent_5_minutes());
    s.has_test_listener = true;
    let mut sim = started(s);
    sim.run();
    let percents: Vec<_> = sim.applies().iter().map(|a| (a.1, a.2)).collect();
    assert_eq!(percents, vec![(0, true), (10, true), (100, true)]);
    assert_eq!(
        event_status(&sim, LifecycleEvent::AllowTestTraffic),
        EventStatus::Succeeded
    );

    let mut sim = started(spec(TrafficRouting::AllAtOnce));
    sim.run();
    assert_eq!(
        event_status(&sim, LifecycleEvent::AllowTestTraffic),
        EventStatus::Skipped
    );
}

#[test]
fn successful_hooks_run_once_each_in_order() {
    let mut sim = started(all_hooks(spec(TrafficRouting::AllAtOnce)));
    sim.run();
    let invoked: Vec<_> = sim
        .log
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::InvokeHook {
                event,
                execution_id,
                attempt,
                details,
            } => Some((*event, execution_id.clone(), *attempt, details.clone())),
            _ => None,
        })
        .collect();
    let expected: Vec<_> = LifecycleEvent::ALL
        .into_iter()
        .filter(|e| e.is_hook())
        .map(|e| (e, format!("d-1:{e}:1"), 1, None))
        .collect();
    assert_eq!(invoked, expected);
    assert!(
        sim.bg
            .lifecycle()
            .iter()
            .all(|r| matches!(r.status, EventStatus::Succeeded | EventStatus::Skipped))
    );
    let outcome = sim.bg.outcome().unwrap();
    assert_eq!(
        (outcome.status, outcome.rollback, outcome.reason.clone()),
        (DeploymentStatus::Succeeded, false, None)
    );
    assert!(sim.bg.is_terminal());
}

#[test]
fn hook_failure_before_install_creates_nothing() {
    let mut sim = started(all_hooks(spec(TrafficRouting::AllAtOnce)));
    sim.hooks = Box::new(|_, _, _| {
        Some((
            50,
            HookOutcome::Failed {
                reason: "db down".into(),
            },
        ))
    });
    sim.run();
    let reason = "BeforeInstall hook failed: db down".to_string();
    assert_eq!(
        sim.finished(),
        Some((DeploymentStatus::Failed, false, Some(reason.clone())))
    );
    let record = &sim.bg.lifecycle()[0];
    assert_eq!(
        (record.status, record.message.clone()),
        (EventStatus::Failed, Some(reason))
    );
    assert_eq!(record.ended_at, Some(T0 + 50));
    assert_eq!(
        sim.count(|e| matches!(e, Effect::ProvisionGreen | Effect::TeardownGreen)),
        0
    );
}

#[test]
fn hook_failure_after_install_removes_green() {
    let mut sim = started(all_hooks(spec(TrafficRouting::AllAtOnce)));
    sim.hooks = Box::new(|event, _, _| {
        let outcome = if event == LifecycleEvent::AfterInstall {
            HookOutcome::Failed {
                reason: "smoke test".into(),
            }
        } else {
            HookOutcome::Succeeded
        };
        Some((50, outcome))
    });
    sim.run();
    assert_eq!(sim.bg.status(), DeploymentStatus::Failed);
    assert_eq!(sim.applies(), vec![]);
    assert_eq!(sim.count(|e| *e == Effect::TeardownGreen), 1);
    assert_eq!(
        event_status(&sim, LifecycleEvent::AfterInstall),
        EventStatus::Failed
    );
    assert_eq!(
        event_status(&sim, LifecycleEvent::AllowTraffic),
        EventStatus::Pending
    );
}

#[test]
fn hook_timeout_fails_the_event() {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.hooks.insert(
        LifecycleEvent::AfterInstall,
        HookSpec {
            timeout_ms: 10 * MINUTE_MS,
        },
    );
    let mut sim = started(s);
    sim.hooks = Box::new(|_, _, _| None);
    sim.run();
    let start = event_started(&sim, LifecycleEvent::AfterInstall);
    let record = sim
        .bg
        .lifecycle()
        .iter()
        .find(|r| r.event == LifecycleEvent::AfterInstall)
        .unwrap();
    assert_eq!(record.status, EventStatus::Failed);
    assert_eq!(record.ended_at, Some(start + 10 * MINUTE_MS));
    assert_eq!(
        record.message.as_deref(),
        Some("AfterInstall hook timed out after 600s")
    );
    assert_eq!(sim.bg.status(), DeploymentStatus::Failed);
    assert_eq!(sim.count(|e| *e == Effect::TeardownGreen), 1);
}

#[test]
fn in_progress_hooks_are_invoked_again_with_their_details() {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.hooks
        .insert(LifecycleEvent::BeforeAllowTraffic, HookSpec::default());
    let mut sim = started(s);
    sim.hooks = Box::new(|_, _, details| {
        let outcome = match details {
            None => HookOutcome::InProgress {
                callback_delay_ms: Some(5_000),
                details: Some("a".into()),
            },
            Some("a") => HookOutcome::InProgress {
                callback_delay_ms: None,
                details: Some("b".into()),
            },
            Some(_) => HookOutcome::Succeeded,
        };
        Some((100, outcome))
    });
    sim.run();
    let calls: Vec<_> = sim
        .log
        .iter()
        .filter_map(|(t, e)| match e {
            Effect::InvokeHook {
                execution_id,
                attempt,
                details,
                ..
            } => Some((*t, execution_id.clone(), *attempt, details.clone())),
            _ => None,
        })
        .collect();
    let t = event_started(&sim, LifecycleEvent::BeforeAllowTraffic);
    assert_eq!(
        calls,
        vec![
            (t, "d-1:BeforeAllowTraffic:1".into(), 1, None),
            (
                t + 5_100,
                "d-1:BeforeAllowTraffic:2".into(),
                2,
                Some("a".into())
            ),
            (
                t + 5_100 + 30_100,
                "d-1:BeforeAllowTraffic:3".into(),
                3,
                Some("b".into())
            ),
        ]
    );
    assert_eq!(sim.bg.status(), DeploymentStatus::Succeeded);
}

#[test]
fn in_progress_forever_hits_the_timeout() {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.hooks.insert(
        LifecycleEvent::AfterInstall,
        HookSpec { timeout_ms: 60_000 },
    );
    let mut sim = started(s);
    sim.hooks = Box::new(|_, _, _| {
        Some((
            10,
            HookOutcome::InProgress {
                callback_delay_ms: Some(25_000),
                details: None,
            },
        ))
    });
    sim.run();
    let start = event_started(&sim, LifecycleEvent::AfterInstall);
    assert_eq!(sim.count(|e| matches!(e, Effect::InvokeHook { .. })), 3);
    let outcome = sim.bg.outcome().unwrap();
    assert_eq!(outcome.status, DeploymentStatus::Failed);
    assert_eq!(outcome.finished_at, start + 60_000);
}

#[test]
fn a_late_result_of_an_old_execution_is_ignored() {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.hooks
        .insert(LifecycleEvent::AfterInstall, HookSpec::default());
    let mut sim = started(s);
    sim.hooks = Box::new(|_, attempt, _| {
        let outcome = if attempt == 1 {
            HookOutcome::InProgress {
                callback_delay_ms: Some(1_000),
                details: None,
            }
        } else {
            HookOutcome::Succeeded
        };
        Some((10, outcome))
    });
    sim.run_until(T0 + 2_000 + 10);
    let old = "d-1:AfterInstall:1".to_string();
    let before = sim.bg.clone();
    sim.input(Input::HookResult {
        execution_id: old.clone(),
        outcome: HookOutcome::Failed {
            reason: "late".into(),
        },
    });
    assert_eq!(sim.bg, before, "a stale result changed the state");
    sim.run();
    assert_eq!(sim.bg.status(), DeploymentStatus::Succeeded);
    // After the event, results for any of its executions are ignored too.
    let before = sim.bg.clone();
    let effects = sim.bg.handle(
        sim.now,
        Input::HookResult {
            execution_id: old,
            outcome: HookOutcome::Succeeded,
        },
    );
    assert_eq!((effects, &sim.bg), (vec![], &before));
}

fn canary_with(rollback: AutoRollback) -> BlueGreenSpec {
    let mut s = spec(TrafficRouting::ecs_canary_10_percent_5_minutes());
    s.alarms = vec!["5xx".into(), "latency".into()];
    s.auto_rollback = rollback;
    s.termination_wait_ms = 10 * MINUTE_MS;
    s
}

/// Sends `input` `offset` ms after AllowTraffic started.
fn during_traffic(sim: &mut Sim, offset: Millis, input: Input) -> Millis {
    sim.run_until(T0 + 2_000);
    let start = event_started(sim, LifecycleEvent::AllowTraffic);
    sim.at(start + offset, input);
    start + offset
}

#[test]
fn alarm_during_canary_rolls_back_in_one_change() {
    let mut sim = started(canary_with(AutoRollback {
        on_alarm: true,
        ..Default::default()
    }));
    let at = during_traffic(
        &mut sim,
        60_000,
        Input::AlarmFired {
            alarm: "5xx".into(),
        },
    );
    sim.run();
    assert_eq!(applies_after(&sim, at), vec![(at, 0, false)]);
    let teardown_at = sim
        .log
        .iter()
        .find(|(_, e)| *e == Effect::TeardownGreen)
        .unwrap()
        .0;
    assert_eq!(teardown_at, at + sim.ack_delay);
    assert_eq!(
        sim.finished(),
        Some((
            DeploymentStatus::Stopped,
            true,
            Some("alarm 5xx fired".into())
        ))
    );
    assert_eq!(sim.count(|e| *e == Effect::TeardownBlue), 0);
    assert_eq!(
        event_status(&sim, LifecycleEvent::AllowTraffic),
        EventStatus::Failed
    );
    assert_eq!(sim.proxy, (0, false));
}

#[test]
fn alarm_without_rollback_leaves_traffic_where_it_is() {
    let mut sim = started(canary_with(AutoRollback::default()));
    let at = during_traffic(
        &mut sim,
        60_000,
        Input::AlarmFired {
            alarm: "latency".into(),
        },
    );
    sim.run();
    assert_eq!(applies_after(&sim, at), vec![]);
    assert_eq!(
        sim.finished(),
        Some((
            DeploymentStatus::Stopped,
            false,
            Some("alarm latency fired".into())
        ))
    );
    assert_eq!(
        sim.count(|e| matches!(e, Effect::TeardownGreen | Effect::TeardownBlue)),
        0
    );
    assert_eq!(sim.proxy, (10, false));
    assert_eq!(sim.bg.traffic().prod_green_percent, 10);
}

#[test]
fn alarm_while_a_step_is_unacknowledged_supersedes_it() {
    let mut sim = started(canary_with(AutoRollback {
        on_alarm: true,
        ..Default::default()
    }));
    sim.ack_delay = 1_000;
    let at = during_traffic(
        &mut sim,
        300_500,
        Input::AlarmFired {
            alarm: "5xx".into(),
        },
    );
    sim.run();
    let start = event_started(&sim, LifecycleEvent::AllowTraffic);
    let percents: Vec<_> = applies_after(&sim, start)
        .iter()
        .map(|a| (a.0, a.1))
        .collect();
    assert_eq!(percents, vec![(start, 10), (start + 300_000, 100), (at, 0)]);
    assert_eq!(sim.bg.outcome().unwrap().status, DeploymentStatus::Stopped);
    assert_eq!(sim.proxy, (0, false));
    assert!(sim.green_removed());
}

#[test]
fn alarm_during_baking_rolls_back_from_full_traffic() {
    let mut sim = started(canary_with(AutoRollback {
        on_alarm: true,
        ..Default::default()
    }));
    sim.run_until(T0 + 2_000);
    let start = event_started(&sim, LifecycleEvent::AllowTraffic);
    let at = start + 300_000 + 60_000;
    sim.at(
        at,
        Input::AlarmFired {
            alarm: "5xx".into(),
        },
    );
    sim.run();
    assert_eq!(applies_after(&sim, at), vec![(at, 0, false)]);
    assert_eq!(sim.finished().unwrap().0, DeploymentStatus::Stopped);
    assert_eq!(sim.count(|e| *e == Effect::TeardownBlue), 0);
    assert_eq!(sim.count(|e| *e == Effect::TeardownGreen), 1);
}

#[test]
fn alarm_before_traffic_moves_just_removes_green() {
    let mut s = canary_with(AutoRollback {
        on_alarm: true,
        ..Default::default()
    });
    s.hooks
        .insert(LifecycleEvent::AfterInstall, HookSpec::default());
    let mut sim = started(s);
    sim.hooks = Box::new(|_, _, _| Some((60_000, HookOutcome::Succeeded)));
    sim.at(
        T0 + 30_000,
        Input::AlarmFired {
            alarm: "unrelated".into(),
        },
    );
    sim.at(
        T0 + 40_000,
        Input::AlarmFired {
            alarm: "5xx".into(),
        },
    );
    sim.run();
    assert_eq!(sim.applies(), vec![]);
    assert_eq!(sim.count(|e| *e == Effect::TeardownGreen), 1);
    assert_eq!(sim.bg.outcome().unwrap().finished_at, T0 + 40_000);
    assert_eq!(
        event_status(&sim, LifecycleEvent::AfterInstall),
        EventStatus::Failed
    );
}

#[test]
fn stop_with_and_without_rollback() {
    let linear = TrafficRouting::Linear {
        percent: 10,
        interval_ms: 1_000,
    };
    // With rollback: one flip back, then green is removed.
    let mut sim = started(spec(linear));
    let at = during_traffic(
        &mut sim,
        2_500,
        Input::Stop {
            rollback: Some(true),
        },
    );
    sim.run();
    assert_eq!(applies_after(&sim, at), vec![(at, 0, false)]);
    assert_eq!(
        sim.finished(),
        Some((
            DeploymentStatus::Stopped,
            true,
            Some("stopped by request".into())
        ))
    );
    // Without: green keeps 30%.
    let mut sim = started(spec(linear));
    during_traffic(
        &mut sim,
        2_500,
        Input::Stop {
            rollback: Some(false),
        },
    );
    sim.run();
    assert_eq!(sim.proxy, (30, false));
    assert!(!sim.finished().unwrap().1);
    // Unspecified: DEPLOYMENT_STOP_ON_REQUEST decides.
    let mut s = spec(linear);
    s.auto_rollback.on_request = true;
    let mut sim = started(s);
    during_traffic(&mut sim, 2_500, Input::Stop { rollback: None });
    sim.run();
    assert_eq!(sim.proxy, (0, false));
    assert!(sim.finished().unwrap().1);
}

#[test]
fn stop_before_start_and_when_queued() {
    let mut sim = Sim::new(BlueGreen::new(spec(TrafficRouting::AllAtOnce), T0));
    sim.input(Input::Enqueue);
    assert_eq!(sim.bg.status(), DeploymentStatus::Queued);
    sim.input(Input::Stop { rollback: None });
    assert_eq!(
        sim.effects(),
        vec![(
            T0,
            Effect::Finished {
                status: DeploymentStatus::Stopped,
                rollback: false,
                reason: Some("stopped by request".into()),
            }
        )]
    );
    assert!(sim.bg.is_terminal());
    assert_eq!(sim.bg.next_wakeup(), None);
}

fn ready_spec(on_timeout: ReadyTimeoutAction) -> BlueGreenSpec {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.has_test_listener = true;
    s.ready = ReadyOption::Wait {
        timeout_ms: 60 * MINUTE_MS,
        on_timeout,
    };
    s
}

#[test]
fn continue_from_ready_reroutes() {
    let mut sim = started(ready_spec(ReadyTimeoutAction::StopDeployment));
    sim.run_until(T0 + 10_000);
    assert_eq!(sim.bg.status(), DeploymentStatus::Ready);
    assert!(sim.bg.traffic().test_on_green);
    assert_eq!(
        sim.bg.next_wakeup(),
        Some(event_started(&sim, LifecycleEvent::AfterAllowTestTraffic) + 60 * MINUTE_MS)
    );
    sim.at(T0 + 20_000, Input::Continue);
    sim.run();
    assert_eq!(
        applies_after(&sim, T0 + 20_000),
        vec![(T0 + 20_000, 100, true)]
    );
    assert_eq!(sim.bg.status(), DeploymentStatus::Succeeded);
}

#[test]
fn ready_timeout_continues_or_stops() {
    let mut sim = started(ready_spec(ReadyTimeoutAction::ContinueDeployment));
    sim.run();
    let ready_at = event_started(&sim, LifecycleEvent::AfterAllowTestTraffic);
    assert_eq!(
        event_started(&sim, LifecycleEvent::BeforeAllowTraffic),
        ready_at + 60 * MINUTE_MS
    );
    assert_eq!(sim.bg.status(), DeploymentStatus::Succeeded);

    let mut sim = started(ready_spec(ReadyTimeoutAction::StopDeployment));
    sim.run();
    let deadline = ready_at + 60 * MINUTE_MS;
    // The test listener goes back to blue in one change, then green goes.
    assert_eq!(applies_after(&sim, deadline), vec![(deadline, 0, false)]);
    assert_eq!(
        sim.finished(),
        Some((
            DeploymentStatus::Stopped,
            false,
            Some("no continue within 3600s".into())
        ))
    );
    assert!(sim.green_removed());
    assert_eq!(
        event_status(&sim, LifecycleEvent::AllowTraffic),
        EventStatus::Pending
    );
}

#[test]
fn continue_during_baking_ends_the_wait() {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.termination_wait_ms = 60 * MINUTE_MS;
    let mut sim = started(s);
    sim.run_until(T0 + 10_000);
    assert_eq!(sim.bg.status(), DeploymentStatus::Baking);
    sim.at(T0 + 20_000, Input::Continue);
    sim.run();
    let blue_at = sim
        .log
        .iter()
        .find(|(_, e)| *e == Effect::TeardownBlue)
        .unwrap()
        .0;
    assert_eq!(blue_at, T0 + 20_000);
    assert_eq!(sim.bg.status(), DeploymentStatus::Succeeded);
}

#[test]
fn baking_ends_after_the_termination_wait() {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.termination_wait_ms = 5 * MINUTE_MS;
    let mut sim = started(s);
    sim.run();
    let after = sim.bg.lifecycle().last().unwrap().ended_at.unwrap();
    let blue_at = sim
        .log
        .iter()
        .find(|(_, e)| *e == Effect::TeardownBlue)
        .unwrap()
        .0;
    assert_eq!(blue_at, after + 5 * MINUTE_MS);
}

#[test]
fn manual_rollback_during_baking_is_one_flip() {
    let mut s = spec(TrafficRouting::ecs_linear_10_percent_every_1_minutes());
    s.termination_wait_ms = 60 * MINUTE_MS;
    s.has_test_listener = true;
    let mut sim = started(s);
    sim.run_until(T0 + 20 * MINUTE_MS);
    assert_eq!(sim.bg.status(), DeploymentStatus::Baking);
    let at = sim.now + 1;
    sim.at(at, Input::Rollback);
    sim.run();
    assert_eq!(applies_after(&sim, at), vec![(at, 0, false)]);
    assert_eq!(
        sim.finished(),
        Some((
            DeploymentStatus::Stopped,
            true,
            Some("rolled back by request".into())
        ))
    );
    assert_eq!(sim.count(|e| *e == Effect::TeardownBlue), 0);
    // A second rollback after the end is refused with a history line.
    let effects = sim.bg.handle(sim.now, Input::Rollback);
    assert!(matches!(effects.as_slice(), [Effect::Event { .. }]));
}

#[test]
fn failure_after_promotion_rolls_back() {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.hooks
        .insert(LifecycleEvent::AfterAllowTraffic, HookSpec::default());
    s.auto_rollback.on_failure = true;
    let mut sim = started(s);
    sim.hooks = Box::new(|_, _, _| {
        Some((
            100,
            HookOutcome::Failed {
                reason: "e2e".into(),
            },
        ))
    });
    sim.run();
    let percents: Vec<_> = sim.applies().iter().map(|a| a.1).collect();
    assert_eq!(percents, vec![100, 0]);
    assert_eq!(
        sim.finished().unwrap(),
        (
            DeploymentStatus::Failed,
            true,
            Some("AfterAllowTraffic hook failed: e2e".into())
        )
    );
}

#[test]
fn green_failure_and_install_timeout() {
    let mut sim = started(spec(TrafficRouting::AllAtOnce));
    sim.green_delay = None;
    sim.run();
    assert_eq!(sim.bg.status(), DeploymentStatus::Failed);
    assert_eq!(
        event_status(&sim, LifecycleEvent::Install),
        EventStatus::Failed
    );
    assert_eq!(sim.count(|e| *e == Effect::TeardownGreen), 1);

    let mut s = spec(TrafficRouting::AllAtOnce);
    s.install_timeout_ms = 30_000;
    let mut sim = started(s);
    sim.green_delay = Some(60_000);
    sim.run();
    let outcome = sim.bg.outcome().unwrap();
    assert_eq!(
        outcome.reason.as_deref(),
        Some("green tasks did not become healthy within 30s")
    );
    assert_eq!(outcome.finished_at, T0 + 30_000);
}

#[test]
fn green_failing_during_canary_is_a_deployment_failure() {
    let mut sim = started(canary_with(AutoRollback {
        on_failure: true,
        ..Default::default()
    }));
    let at = during_traffic(
        &mut sim,
        1_000,
        Input::GreenFailed {
            reason: "oom".into(),
        },
    );
    sim.run();
    assert_eq!(applies_after(&sim, at), vec![(at, 0, false)]);
    assert_eq!(sim.finished().unwrap().0, DeploymentStatus::Failed);
}

#[test]
fn transient_traffic_failures_are_retried() {
    let mut sim = started(spec(TrafficRouting::AllAtOnce));
    sim.traffic_failures = 2;
    sim.run();
    assert_eq!(sim.bg.status(), DeploymentStatus::Succeeded);
    assert_eq!(sim.applies().len(), 3);
}

#[test]
fn repeated_traffic_failures_fail_and_roll_back() {
    let mut s = canary_with(AutoRollback {
        on_failure: true,
        ..Default::default()
    });
    s.routing = TrafficRouting::Linear {
        percent: 50,
        interval_ms: 1_000,
    };
    let mut sim = started(s);
    sim.run_until(T0 + 2_000);
    let start = event_started(&sim, LifecycleEvent::AllowTraffic);
    sim.run_until(start + 999);
    sim.traffic_failures = 4;
    sim.run();
    let percents: Vec<_> = applies_after(&sim, start).iter().map(|a| a.1).collect();
    // 50 ok; 100 fails 3 times; the flip back fails once and is retried.
    assert_eq!(percents, vec![50, 100, 100, 100, 0, 0]);
    let (status, rollback, reason) = sim.finished().unwrap();
    assert_eq!((status, rollback), (DeploymentStatus::Failed, true));
    assert_eq!(
        reason.as_deref(),
        Some("traffic change to 100% on green failed 3 times: proxy busy")
    );
    assert_eq!(sim.proxy, (0, false));
}

#[test]
fn a_silent_proxy_times_out_and_is_treated_as_possibly_applied() {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.auto_rollback.on_failure = true;
    let mut sim = started(s);
    sim.run_until(T0 + 1_999);
    sim.proxy_silent = true;
    sim.run_until(T0 + 2_000 + 3 * TRAFFIC_ACK_TIMEOUT_MS);
    assert_eq!(
        sim.applies().iter().map(|a| a.1).collect::<Vec<_>>(),
        vec![100, 100, 100, 0]
    );
    assert_eq!(sim.bg.status(), DeploymentStatus::Failed);
    // The unacknowledged change may have happened: flip back before removing green.
    assert!(!sim.bg.is_terminal());
    assert_eq!(sim.applies().last().map(|a| a.1), Some(0));
    sim.proxy_silent = false;
    sim.run();
    assert!(sim.bg.is_terminal());
    assert!(sim.green_removed());
}

#[test]
fn inputs_in_the_wrong_state_change_nothing() {
    let mut bg = BlueGreen::new(spec(TrafficRouting::AllAtOnce), T0);
    let before = bg.clone();
    for input in [
        Input::Tick,
        Input::GreenReady,
        Input::TrafficApplied { request_id: 1 },
        Input::AlarmFired { alarm: "x".into() },
    ] {
        assert_eq!(bg.handle(T0, input), vec![]);
    }
    assert_eq!(bg, before);
    assert_eq!(bg.next_wakeup(), None);
    assert!(matches!(
        bg.handle(T0, Input::Continue).as_slice(),
        [Effect::Event { .. }]
    ));
}
