//! The in-place host planner in scenarios from the issue: OneAtATime behind
//! a load balancer, a failing ValidateService with auto-rollback, zones with
//! monitor times, a lost agent, the configurations' rules, alarms and stops.

mod hosts_sim;

use cutover_deploy::hosts::lifecycle::Action;
use cutover_deploy::hosts::{
    EndReason, HostDeploymentStatus, HostEffect, HostInput, HostRollback, HostState, HostTarget,
    HostsSpec,
};
use cutover_spec::HostEvent;
use cutover_spec::stack::applications::{
    HostConfig, HostsRule, MinimumHealthyHosts, MinimumHealthyHostsType, ZonalConfig,
};
use hosts_sim::{Outcome, STEP_MS, Sim, T0};

fn host(name: &str, zone: &str) -> HostTarget {
    HostTarget {
        name: name.to_owned(),
        zone: Some(zone.to_owned()),
        healthy: true,
        has_last_revision: true,
    }
}

fn spec(config: &str, n: usize) -> HostsSpec {
    HostsSpec {
        hosts: (1..=n).map(|i| host(&format!("h{i}"), "a")).collect(),
        config: HostConfig::predefined(config).unwrap(),
        load_balanced: true,
        ignore_application_stop_failures: false,
        rollback: HostRollback {
            on_failure: true,
            on_alarm: true,
            last_good_revision: true,
        },
    }
}

fn events_of<'a>(sim: &'a Sim, name: &'a str) -> impl Iterator<Item = HostEvent> + 'a {
    sim.log.iter().filter_map(move |(_, e)| match e {
        HostEffect::Run { host, step } if host == name => Some(step.event),
        _ => None,
    })
}

#[test]
fn one_at_a_time_behind_a_load_balancer() {
    let mut sim = Sim::new(
        spec("CodeDeployDefault.OneAtATime", 3),
        vec![Outcome::Ok; 3],
    );
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Succeeded);
    // One host at a time, in order, each through its whole lifecycle.
    let order: Vec<&str> = sim.started.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(order, ["h1", "h2", "h3"]);
    let h2: Vec<HostEvent> = events_of(&sim, "h2").collect();
    assert_eq!(h2.len(), 13);
    // Each host leaves its target groups before ApplicationStop and
    // returns after ValidateService.
    let pos = |e| h2.iter().position(|x| *x == e).unwrap();
    assert!(pos(HostEvent::BlockTraffic) < pos(HostEvent::ApplicationStop));
    assert!(pos(HostEvent::AllowTraffic) > pos(HostEvent::ValidateService));
    let leave = sim.log.iter().find_map(|(_, e)| match e {
        HostEffect::Run { step, .. } if step.event == HostEvent::BlockTraffic => Some(step.action),
        _ => None,
    });
    assert_eq!(leave, Some(Action::LeaveTargetGroups));
    // h2 starts only after h1 finished.
    assert_eq!(sim.started[1].1, T0 + 13 * STEP_MS);
    assert_eq!(
        sim.finished(),
        [HostEffect::Finished {
            status: HostDeploymentStatus::Succeeded,
            reason: None
        }]
    );
}

#[test]
fn a_failed_validate_service_stops_and_rolls_back() {
    let validate = 9; // BeforeBlockTraffic..ValidateService: index 9 behind a load balancer
    let mut sim = Sim::new(
        spec("CodeDeployDefault.OneAtATime", 3),
        vec![Outcome::Ok, Outcome::FailAt(validate), Outcome::Ok],
    );
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Failed);
    assert_eq!(sim.d.reason(), Some(&EndReason::HealthConstraints));
    let states: Vec<HostState> = sim.d.hosts().iter().map(|h| h.state).collect();
    assert_eq!(
        states,
        [
            HostState::Succeeded,
            HostState::Failed {
                event: HostEvent::ValidateService
            },
            HostState::Skipped
        ]
    );
    assert_eq!(
        sim.finished(),
        [
            HostEffect::RollBack {
                hosts: vec!["h1".to_owned(), "h2".to_owned()]
            },
            HostEffect::Finished {
                status: HostDeploymentStatus::Failed,
                reason: Some(EndReason::HealthConstraints)
            }
        ]
    );
}

#[test]
fn one_at_a_time_tolerates_a_failure_of_the_last_host_only() {
    let mut sim = Sim::new(
        spec("CodeDeployDefault.OneAtATime", 3),
        vec![Outcome::Ok, Outcome::Ok, Outcome::FailAt(4)],
    );
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Succeeded);
}

#[test]
fn zones_one_after_another_with_monitor_times() {
    let mut s = spec("CodeDeployDefault.AllAtOnce", 0);
    s.load_balanced = false;
    s.hosts = vec![
        host("c1", "c"),
        host("a1", "a"),
        host("b1", "b"),
        host("a2", "a"),
    ];
    s.config.zonal = Some(ZonalConfig {
        first_zone_monitor_duration_in_seconds: Some(60),
        monitor_duration_in_seconds: 30,
        minimum_healthy_hosts_per_zone: None,
    });
    let mut sim = Sim::new(s, vec![Outcome::Ok; 4]);
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Succeeded);
    let starts: Vec<(&str, u64)> = sim
        .started
        .iter()
        .map(|(h, t)| (h.as_str(), t - T0))
        .collect();
    let a_done = 7 * STEP_MS * 2; // two hosts at once, 7 steps, answered one at a time
    assert_eq!(
        starts,
        [
            ("a1", 0),
            ("a2", 0),
            ("b1", a_done + 60_000),
            ("c1", a_done + 60_000 + 7 * STEP_MS + 30_000)
        ]
    );
    assert!(
        sim.log
            .iter()
            .any(|(_, e)| *e == HostEffect::WaitUntil(T0 + a_done + 60_000))
    );
}

#[test]
fn a_lost_agent_fails_its_host_by_the_rules() {
    // HalfAtATime over 4: two at a time, two must succeed.
    let mut s = spec("CodeDeployDefault.HalfAtATime", 4);
    s.load_balanced = false;
    let mut sim = Sim::new(
        s.clone(),
        vec![Outcome::LostAt(3), Outcome::Ok, Outcome::Ok, Outcome::Ok],
    );
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Succeeded);
    assert_eq!(
        sim.d.hosts()[0].state,
        HostState::Lost {
            event: Some(HostEvent::Install)
        }
    );
    // The first wave (two hosts) lost: the other two are the minimum left
    // in service, so neither may be taken out.
    let lost = Outcome::LostAt(1);
    let mut sim = Sim::new(s, vec![lost, lost, lost, Outcome::Ok]);
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Failed);
    assert_eq!(sim.d.reason(), Some(&EndReason::HealthConstraints));
    // All at once, three of four lost: one success is enough.
    let mut all = spec("CodeDeployDefault.AllAtOnce", 4);
    all.load_balanced = false;
    let mut sim = Sim::new(all.clone(), vec![lost, lost, lost, Outcome::Ok]);
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Succeeded);
    let mut sim = Sim::new(all, vec![lost; 4]);
    sim.run();
    assert_eq!(sim.d.reason(), Some(&EndReason::TooFewSucceeded));
}

#[test]
fn custom_minimums() {
    let custom = |kind, value| HostConfig {
        rule: HostsRule::Minimum(MinimumHealthyHosts { kind, value }),
        zonal: None,
    };
    let mut s = spec("CodeDeployDefault.AllAtOnce", 9);
    s.config = custom(MinimumHealthyHostsType::HostCount, 6);
    let mut sim = Sim::new(s.clone(), vec![Outcome::Ok; 9]);
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Succeeded);
    // Three at a time.
    let first_wave = sim.started.iter().filter(|(_, t)| *t == T0).count();
    assert_eq!(first_wave, 3);
    // A minimum of every host leaves nothing to deploy.
    s.config = custom(MinimumHealthyHostsType::HostCount, 9);
    let mut sim = Sim::new(s, vec![Outcome::Ok; 9]);
    sim.run();
    assert_eq!(sim.d.reason(), Some(&EndReason::HealthConstraintsInvalid));
    assert!(sim.started.is_empty());
}

#[test]
fn unhealthy_hosts_go_first() {
    let mut s = spec("CodeDeployDefault.OneAtATime", 3);
    s.hosts[2].healthy = false;
    let mut sim = Sim::new(s, vec![Outcome::Ok; 3]);
    sim.run();
    let order: Vec<&str> = sim.started.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(order, ["h3", "h1", "h2"]);
}

#[test]
fn application_stop_failures_can_be_ignored_and_first_deployments_skip_it() {
    let mut s = spec("CodeDeployDefault.AllAtOnce", 2);
    s.load_balanced = false;
    s.ignore_application_stop_failures = true;
    s.hosts[1].has_last_revision = false;
    let mut sim = Sim::new(s, vec![Outcome::FailAt(0), Outcome::Ok]);
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Succeeded);
    assert_eq!(
        events_of(&sim, "h1").next(),
        Some(HostEvent::ApplicationStop)
    );
    assert_eq!(
        events_of(&sim, "h2").next(),
        Some(HostEvent::DownloadBundle)
    );
}

#[test]
fn an_alarm_stops_and_rolls_back_and_a_stop_cancels() {
    let mut sim = Sim::new(
        spec("CodeDeployDefault.OneAtATime", 3),
        vec![Outcome::Ok; 3],
    );
    sim.alarm_at = Some(16);
    sim.run();
    assert_eq!(sim.d.status(), HostDeploymentStatus::Stopped);
    assert_eq!(sim.d.reason(), Some(&EndReason::Alarm("errors".to_owned())));
    let tail = sim.finished();
    assert_eq!(
        tail[0],
        HostEffect::RollBack {
            hosts: vec!["h1".to_owned(), "h2".to_owned()]
        }
    );
    assert!(sim.log.iter().any(|(_, e)| *e
        == HostEffect::Cancel {
            host: "h2".to_owned()
        }));

    let mut d = cutover_deploy::hosts::HostDeployment::new(spec("CodeDeployDefault.AllAtOnce", 2));
    d.handle(HostInput::Start, T0);
    let out = d.handle(HostInput::Stop { rollback: false }, T0 + 1);
    assert_eq!(
        out.last(),
        Some(&HostEffect::Finished {
            status: HostDeploymentStatus::Stopped,
            reason: Some(EndReason::StopRequested)
        })
    );
    // Ended: results and further inputs change nothing, resume repeats the end.
    let before = d.clone();
    assert!(
        d.handle(
            HostInput::StepSucceeded {
                host: "h1".to_owned(),
                event: HostEvent::BeforeBlockTraffic
            },
            T0 + 2
        )
        .is_empty()
    );
    assert_eq!(d, before);
    assert_eq!(d.resume().last(), out.last());
}

#[test]
fn no_hosts_fails() {
    let mut sim = Sim::new(spec("CodeDeployDefault.AllAtOnce", 0), vec![]);
    sim.run();
    assert_eq!(sim.d.reason(), Some(&EndReason::NoHosts));
}

#[test]
fn a_crash_at_every_input_resumes_to_the_same_end() {
    let outcomes = vec![Outcome::Ok, Outcome::FailAt(9), Outcome::Ok];
    let mut reference = Sim::new(spec("CodeDeployDefault.OneAtATime", 3), outcomes.clone());
    reference.run();
    for crash in 1..40 {
        let mut sim = Sim::new(spec("CodeDeployDefault.OneAtATime", 3), outcomes.clone());
        sim.crash_at = Some(crash);
        sim.run();
        assert_eq!(sim.d, reference.d, "crash after input {crash}");
        assert_eq!(sim.log, reference.log, "crash after input {crash}");
    }
}
