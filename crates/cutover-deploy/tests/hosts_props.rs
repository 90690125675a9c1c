//! Property test of the in-place host planner: random fleets (zones,
//! health, first deployments), configurations (predefined, custom, zonal),
//! agent outcomes, alarms and crash points. The simulated driver asserts on
//! every effect that the minimum of healthy hosts in service is kept, each
//! host is deployed at most once, zones go in order after their monitor
//! time, and a crash at any input resumes exactly what was in flight; here
//! we check that every deployment ends as the rules say, and that a crashed
//! run ends exactly as the same run without the crash.

mod hosts_sim;

use cutover_deploy::hosts::rules;
use cutover_deploy::hosts::{
    EndReason, HostDeploymentStatus, HostEffect, HostRollback, HostTarget, HostsSpec,
};
use cutover_spec::stack::applications::{
    HostConfig, HostsRule, MinimumHealthyHosts, MinimumHealthyHostsType, ZonalConfig,
};
use hosts_sim::{Outcome, Sim};
use proptest::prelude::*;

fn rule() -> impl Strategy<Value = HostsRule> {
    prop_oneof![
        Just(HostsRule::OneAtATime),
        Just(HostsRule::HalfAtATime),
        Just(HostsRule::AllAtOnce),
        (0u32..6).prop_map(|value| HostsRule::Minimum(MinimumHealthyHosts {
            kind: MinimumHealthyHostsType::HostCount,
            value
        })),
        (0u32..100).prop_map(|value| HostsRule::Minimum(MinimumHealthyHosts {
            kind: MinimumHealthyHostsType::FleetPercent,
            value
        })),
    ]
}

fn zonal() -> impl Strategy<Value = Option<ZonalConfig>> {
    prop_oneof![
        Just(None),
        (
            proptest::option::of(0u64..120),
            0u64..60,
            proptest::option::of((0u32..3).prop_map(|value| MinimumHealthyHosts {
                kind: MinimumHealthyHostsType::HostCount,
                value
            })),
        )
            .prop_map(|(first, monitor, per_zone)| Some(ZonalConfig {
                first_zone_monitor_duration_in_seconds: first,
                monitor_duration_in_seconds: monitor,
                minimum_healthy_hosts_per_zone: per_zone,
            })),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        8 => Just(Outcome::Ok),
        1 => (0usize..13).prop_map(Outcome::FailAt),
        1 => (0usize..13).prop_map(Outcome::LostAt),
    ]
}

#[derive(Debug, Clone)]
struct Scenario {
    spec: HostsSpec,
    outcomes: Vec<Outcome>,
    alarm_at: Option<usize>,
    crash_at: Option<usize>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1usize..8)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(
                    (
                        proptest::option::of(prop_oneof![Just("a"), Just("b"), Just("c")]),
                        proptest::bool::weighted(0.85),
                        proptest::bool::weighted(0.7),
                    ),
                    n,
                ),
                proptest::collection::vec(outcome(), n),
                rule(),
                zonal(),
                any::<(bool, bool, bool, bool)>(),
                proptest::option::weighted(0.15, 0usize..60),
                proptest::option::weighted(0.5, 1usize..80),
            )
        })
        .prop_map(
            |(
                hosts,
                outcomes,
                rule,
                zonal,
                (lb, ignore_stop, on_failure, on_alarm),
                alarm_at,
                crash_at,
            )| {
                let hosts = hosts
                    .into_iter()
                    .enumerate()
                    .map(|(i, (zone, healthy, has_last_revision))| HostTarget {
                        name: format!("h{i}"),
                        zone: zone.map(str::to_owned),
                        healthy,
                        has_last_revision,
                    })
                    .collect();
                Scenario {
                    spec: HostsSpec {
                        hosts,
                        config: HostConfig { rule, zonal },
                        load_balanced: lb,
                        ignore_application_stop_failures: ignore_stop,
                        rollback: HostRollback {
                            on_failure,
                            on_alarm,
                            last_good_revision: true,
                        },
                    },
                    outcomes,
                    alarm_at,
                    crash_at,
                }
            },
        )
}

fn run(s: &Scenario, crash_at: Option<usize>) -> Sim {
    let mut sim = Sim::new(s.spec.clone(), s.outcomes.clone());
    sim.alarm_at = s.alarm_at;
    sim.crash_at = crash_at;
    sim.run();
    sim
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn host_deployments_keep_their_rules(s in scenario()) {
        let sim = run(&s, None);
        let n = s.spec.hosts.len();
        let status = sim.d.status();
        match rules::limits(&s.spec.config.rule, n) {
            None => prop_assert!(sim.started.is_empty()),
            Some(limits) => {
                if status == HostDeploymentStatus::Succeeded {
                    prop_assert!(sim.succeeded.len() >= limits.must_succeed);
                }
                let all_ok = s.outcomes.iter().all(|o| *o == Outcome::Ok);
                // Zone by zone, a healthy host of an early zone may have to
                // wait for unhealthy hosts of a later one: the rules then
                // stop the deployment (HEALTH_CONSTRAINTS).
                let zones_can_block = s.spec.config.zonal.is_some()
                    && s.spec.hosts.iter().any(|h| !h.healthy);
                if all_ok && s.alarm_at.is_none() {
                    if zones_can_block && status == HostDeploymentStatus::Failed {
                        prop_assert_eq!(sim.d.reason(), Some(&EndReason::HealthConstraints));
                    } else {
                        prop_assert_eq!(status, HostDeploymentStatus::Succeeded);
                        prop_assert_eq!(sim.succeeded.len(), n);
                    }
                }
            }
        }
        // A rollback names exactly the hosts that got the revision.
        let rolled_back = sim.finished().into_iter().find_map(|e| match e {
            HostEffect::RollBack { hosts } => Some(hosts),
            _ => None,
        });
        if let Some(hosts) = rolled_back {
            let mut started: Vec<String> = sim.started.iter().map(|(h, _)| h.clone()).collect();
            started.sort();
            let mut hosts = hosts;
            hosts.sort();
            prop_assert_eq!(hosts, started);
            prop_assert!(status != HostDeploymentStatus::Succeeded);
        }
        // A crash anywhere ends exactly as the run without it.
        if let Some(crash_at) = s.crash_at {
            let crashed = run(&s, Some(crash_at));
            prop_assert_eq!(&crashed.d, &sim.d);
            prop_assert_eq!(&crashed.log, &sim.log);
        }
    }
}
