//! Ending a blue/green deployment: alarms, stop with and without rollback,
//! the Ready wait, the termination wait, manual rollback and failures after
//! promotion.

mod common;

use common::*;
use cutover_deploy::bluegreen::{
    BlueGreen, DeploymentStatus, Effect, EventStatus, HookOutcome, Input,
};
use cutover_deploy::config::{
    AutoRollback, HookSpec, LifecycleEvent, ReadyTimeoutAction, TrafficRouting,
};
use cutover_deploy::time::MINUTE_MS;

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
