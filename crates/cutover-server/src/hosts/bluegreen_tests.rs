//! Blue/green host deployments through the driver, over the fake fleet
//! and the fake data plane, on a paused clock: the originals `h1`..`h3`
//! (`env=prod`, running v1) and the replacement hosts `g1`, `g2`
//! (`color=green`).

use cutover_api::host_deployments::{HostEventStatus, HostTargetStatus};
use cutover_deploy::hosts::HostDeploymentStatus;
use cutover_spec::HostEvent;
use cutover_store::host_deployments::{self as hd, HostDeploymentRow, HostRevision};

use super::tests::{World, bundle};

const STACK: &str = r#"applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      bg:
        onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
        deploymentConfig: CodeDeployDefault.AllAtOnce
        loadBalancer:
          listener: 127.0.0.1:18092
          deregistrationDelaySeconds: 1
        autoRollback: [DEPLOYMENT_FAILURE]
        blueGreen:
          replacementTagFilters: [{Key: color, Value: green, Type: KEY_AND_VALUE}]
          trafficConfig: Canary20Percent30Seconds
          terminationWaitMinutes: 1
deploymentConfigs:
  Canary20Percent30Seconds:
    trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 20, canaryIntervalSeconds: 30}}
"#;

const LISTENER: &str = "host-shop-bg-0";
const GREEN: &str = "host-shop-bg-0-green";

/// The stack applied, `g1` and `g2` registered, `h1`..`h3` on v1.
async fn start() -> World {
    let w = World::with_stack(STACK).await;
    w.fleet.register("g1", ("color", "green"), "127.0.0.1:9201");
    w.fleet.register("g2", ("color", "green"), "127.0.0.1:9202");
    w.h.state
        .store
        .transact(|c| {
            for n in 1..=3 {
                let rev = HostRevision {
                    host: format!("h{n}"),
                    revision: bundle("v1"),
                    target: Some(format!("127.0.0.1:910{n}")),
                };
                hd::put_host_revision(c, "shop", "bg", &rev, "d-v1", 0)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    w
}

/// The green target group's weight in each configuration where the
/// listener's weights changed.
fn green_weights(w: &World) -> Vec<u32> {
    w.h.dataplane
        .weights_history(LISTENER)
        .iter()
        .map(|ws| ws.iter().find(|(g, _)| g == GREEN).map_or(0, |w| w.1))
        .collect()
}

/// The targets of `group` in the newest applied configuration.
fn targets(w: &World, group: &str) -> Vec<String> {
    let applied = w.h.dataplane.applied();
    let cfg = applied.last().expect("a configuration");
    cfg.target_groups
        .iter()
        .find(|g| g.name == group)
        .map(|g| g.targets.clone())
        .unwrap_or_default()
}

fn event<'a>(
    row: &'a HostDeploymentRow,
    host: &str,
    event: HostEvent,
) -> &'a cutover_api::host_deployments::HostEventView {
    row.body.events[host]
        .iter()
        .find(|v| v.event == event)
        .unwrap_or_else(|| panic!("{host} has no {event}: {:?}", row.body.events[host]))
}

#[tokio::test(start_paused = true)]
async fn installs_on_the_replacements_moves_traffic_by_the_canary_then_retires_the_originals() {
    let w = start().await;
    let id = w.create("bg", "v2").await;
    let row = w.finish(&id).await;
    assert_eq!(
        row.status,
        HostDeploymentStatus::Succeeded,
        "{:?}",
        row.body.plan.reason()
    );

    // The replacement hosts: the install (no ApplicationStop: nothing ran
    // there), BeforeAllowTraffic, then AfterAllowTraffic once traffic moved.
    for g in ["g1", "g2"] {
        let evs: Vec<HostEvent> = row.body.events[g].iter().map(|v| v.event).collect();
        assert_eq!(
            evs,
            [
                HostEvent::DownloadBundle,
                HostEvent::BeforeInstall,
                HostEvent::Install,
                HostEvent::AfterInstall,
                HostEvent::ApplicationStart,
                HostEvent::ValidateService,
                HostEvent::BeforeAllowTraffic,
                HostEvent::AfterAllowTraffic,
            ],
            "{g}"
        );
    }
    // The originals: out of the target group, then, after the termination
    // wait (1 min), ApplicationStop of their revision.
    for h in ["h1", "h2", "h3"] {
        let evs: Vec<HostEvent> = row.body.events[h].iter().map(|v| v.event).collect();
        assert_eq!(
            evs,
            [
                HostEvent::BeforeBlockTraffic,
                HostEvent::BlockTraffic,
                HostEvent::AfterBlockTraffic,
                HostEvent::ApplicationStop,
            ],
            "{h}"
        );
        assert!(
            row.body.events[h]
                .iter()
                .all(|v| v.status == HostEventStatus::Succeeded)
        );
        let left = event(&row, h, HostEvent::AfterBlockTraffic)
            .ended_at_ms
            .unwrap();
        let stop = event(&row, h, HostEvent::ApplicationStop).started_at_ms;
        assert!(
            stop >= left + 60_000,
            "{h}: stopped {} ms after leaving",
            stop - left
        );
    }
    let stops: Vec<_> = w
        .fleet
        .seen()
        .into_iter()
        .filter(|s| s.event == HostEvent::ApplicationStop)
        .collect();
    assert!(
        stops.iter().all(|s| s.revision.as_deref() == Some("v1")),
        "{stops:?}"
    );
    // Traffic: 0 % during the install, the 20 % canary, 30 s later all of it.
    assert_eq!(green_weights(&w), [0, 20, 100]);
    let canary_at = event(&row, "g1", HostEvent::BeforeAllowTraffic)
        .ended_at_ms
        .unwrap();
    let after = event(&row, "g1", HostEvent::AfterAllowTraffic).started_at_ms;
    assert!(
        after >= canary_at + 30_000,
        "all traffic {} ms after the canary",
        after - canary_at
    );
    // The replacements serve and run v2; the originals left the group.
    assert_eq!(targets(&w, GREEN), ["127.0.0.1:9201", "127.0.0.1:9202"]);
    assert!(targets(&w, LISTENER).is_empty());
    assert_eq!(
        w.revisions("bg").await,
        [
            ("g1".to_string(), "v2".to_string()),
            ("g2".into(), "v2".into())
        ]
        .into()
    );
    let view = super::views::view(&row);
    let hosts: Vec<(&str, HostTargetStatus)> = view
        .targets
        .iter()
        .map(|t| (t.host.as_str(), t.status))
        .collect();
    assert_eq!(
        hosts,
        [
            ("g1", HostTargetStatus::Succeeded),
            ("g2", HostTargetStatus::Succeeded),
            ("h1", HostTargetStatus::Succeeded),
            ("h2", HostTargetStatus::Succeeded),
            ("h3", HostTargetStatus::Succeeded),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_traffic_moved_sends_it_back_to_the_originals() {
    let w = start().await;
    w.fleet.fail("g1", HostEvent::AfterAllowTraffic, "v2");
    let id = w.create("bg", "v2").await;
    let row = w.finish(&id).await;
    assert_eq!(row.status, HostDeploymentStatus::Failed);
    // Traffic went to green and back in one change; the originals never
    // left, nothing was stopped, and no rollback deployment was needed.
    assert_eq!(green_weights(&w), [0, 20, 100, 0]);
    assert_eq!(
        targets(&w, LISTENER),
        ["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"]
    );
    for h in ["h1", "h2", "h3"] {
        assert!(
            !row.body.events.contains_key(h),
            "{h}: {:?}",
            row.body.events[h]
        );
    }
    assert!(row.body.rolled_back_by.is_none());
    assert_eq!(
        w.revisions("bg").await,
        (1..=3)
            .map(|n| (format!("h{n}"), "v1".to_string()))
            .collect()
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_install_fails_before_any_traffic_moves() {
    let w = start().await;
    w.fleet.fail("g1", HostEvent::ValidateService, "v2");
    w.fleet.fail("g2", HostEvent::ValidateService, "v2");
    let id = w.create("bg", "v2").await;
    let row = w.finish(&id).await;
    assert_eq!(row.status, HostDeploymentStatus::Failed);
    assert!(green_weights(&w).iter().all(|w| *w == 0));
    assert!(!row.body.events.contains_key("h1"));
}

#[tokio::test(start_paused = true)]
async fn a_server_crash_during_the_canary_resumes_without_running_a_step_twice() {
    let mut w = start().await;
    let id = w.create("bg", "v2").await;
    // Crash while the canary serves (traffic at 20 %, not yet all of it).
    w.wait(&id, |r| {
        r.body
            .plan
            .blue_green()
            .is_some_and(|bg| bg.replacement_percent() == 20)
    })
    .await;
    w.crash().await;
    let row = w.finish(&id).await;
    assert_eq!(row.status, HostDeploymentStatus::Succeeded);
    assert_eq!(green_weights(&w), [0, 20, 100]);
    let seen = w.fleet.seen();
    let mut steps: Vec<(String, HostEvent)> =
        seen.iter().map(|s| (s.host.clone(), s.event)).collect();
    let n = steps.len();
    steps.sort();
    steps.dedup();
    assert_eq!(steps.len(), n, "a step ran twice: {seen:?}");
}
