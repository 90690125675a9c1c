//! Blue/green traffic on simulated time: the exact ApplyTraffic sequence of
//! every routing, no drift, waiting for acknowledgements, the test
//! listener, proxy failures and green failures. The simulated driver
//! (tests/common) checks the engine's invariants on every effect.

mod common;

use common::*;
use cutover_deploy::bluegreen::{
    BlueGreen, DeploymentStatus, Effect, EventStatus, Input, TRAFFIC_ACK_TIMEOUT_MS,
    TRAFFIC_MAX_ATTEMPTS, traffic_retry_pause,
};
use cutover_deploy::config::{AutoRollback, LifecycleEvent, PREDEFINED_NAMES, TrafficRouting};
use cutover_deploy::schedule;
use cutover_deploy::time::Millis;

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

/// A linear 50%-per-second deployment rolling back on failure, run until
/// 50% is on green (its 100% step is due next); and when AllowTraffic began.
fn half_on_green() -> (Sim, Millis) {
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
    (sim, start)
}

#[test]
fn repeated_traffic_failures_fail_and_roll_back() {
    let (mut sim, start) = half_on_green();
    sim.traffic_failures = TRAFFIC_MAX_ATTEMPTS + 1;
    sim.run();
    let applies = applies_after(&sim, start);
    let percents: Vec<_> = applies.iter().map(|a| a.1).collect();
    // 50 ok; 100 fails 4 times; the flip back fails once and is retried.
    assert_eq!(percents, vec![50, 100, 100, 100, 100, 0, 0]);
    // Each failed attempt waits before the next: 1 s, then doubling (the
    // simulated proxy answers its failures within a few milliseconds).
    let gaps: Vec<_> = applies.windows(2).map(|w| w[1].0 - w[0].0).collect();
    for (gap, pause) in gaps[1..4].iter().zip([1_000, 2_000, 4_000]) {
        assert!((pause..pause + 50).contains(gap), "{gaps:?}");
    }
    assert!(
        (1_000..1_050).contains(&gaps[5]),
        "the flip back waits too: {gaps:?}"
    );
    let (status, rollback, reason) = sim.finished().unwrap();
    assert_eq!((status, rollback), (DeploymentStatus::Failed, true));
    assert_eq!(
        reason.as_deref(),
        Some("traffic change to 100% on green failed 4 times: proxy busy")
    );
    assert_eq!(sim.proxy, (0, false));
}

#[test]
fn retry_pauses_double_up_to_their_cap() {
    let pauses: Vec<_> = (1..=6).map(traffic_retry_pause).collect();
    assert_eq!(pauses, vec![1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    assert_eq!(traffic_retry_pause(u32::MAX), 8_000);
}

/// A flip back to blue that keeps failing is retried without end, but
/// paced: not a busy loop against a data plane that is away.
#[test]
fn a_failing_flip_back_is_retried_at_a_bounded_pace() {
    // 50% is on green; from here every traffic change fails.
    let (mut sim, start) = half_on_green();
    sim.traffic_failures = 1_000;
    sim.run_until(start + 120_000);
    assert!(!sim.bg.is_terminal());
    let flips: Vec<_> = applies_after(&sim, start)
        .into_iter()
        .filter(|a| a.1 == 0)
        .collect();
    // The flip back waits 1, 2, 4, then 8 s between attempts (plus the
    // simulated proxy's few milliseconds): 17 in the 110 s left.
    let gaps: Vec<_> = flips.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert_eq!(flips.len(), 17, "{gaps:?}");
    for (i, gap) in gaps.iter().enumerate() {
        let pause = traffic_retry_pause(i as u32 + 1);
        assert!((pause..pause + 50).contains(gap), "{gaps:?}");
    }
    sim.traffic_failures = 0;
    sim.run();
    assert!(sim.bg.is_terminal());
    assert!(sim.green_removed());
    assert_eq!(sim.proxy, (0, false));
}

#[test]
fn a_silent_proxy_times_out_and_is_treated_as_possibly_applied() {
    let mut s = spec(TrafficRouting::AllAtOnce);
    s.auto_rollback.on_failure = true;
    let mut sim = started(s);
    sim.run_until(T0 + 1_999);
    sim.proxy_silent = true;
    let pauses: u64 = (1..TRAFFIC_MAX_ATTEMPTS).map(traffic_retry_pause).sum();
    sim.run_until(T0 + 2_000 + u64::from(TRAFFIC_MAX_ATTEMPTS) * TRAFFIC_ACK_TIMEOUT_MS + pauses);
    assert_eq!(
        sim.applies().iter().map(|a| a.1).collect::<Vec<_>>(),
        vec![100, 100, 100, 100, 0]
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
