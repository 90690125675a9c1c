//! Blue/green lifecycle hooks: success, failure, timeout, IN_PROGRESS with
//! callback delay and details, and late results of old executions.

mod common;

use common::*;
use cutover_deploy::bluegreen::{DeploymentStatus, Effect, EventStatus, HookOutcome, Input};
use cutover_deploy::config::{HookSpec, LifecycleEvent, TrafficRouting};
use cutover_deploy::time::MINUTE_MS;

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
