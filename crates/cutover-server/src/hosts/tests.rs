//! The host-deployment driver over a fake fleet (`fake_fleet.rs`), on a
//! paused clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cutover_api::agents::{BundleFormat, BundleRef};
use cutover_api::host_deployments::{HostEventStatus, HostTargetStatus};
use cutover_deploy::hosts::HostDeploymentStatus;
use cutover_spec::HostEvent;
use cutover_store::host_deployments::{self as hd, HostDeploymentRow};
use tokio_util::sync::CancellationToken;

use super::deployer::{HostDeployer, HostSettings, NewHostDeployment};
use super::fake_fleet::{FakeFleet, Seen};
use crate::testing::Harness;

const STACK: &str = r#"applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      prod:
        onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
        deploymentConfig: CodeDeployDefault.OneAtATime
        loadBalancer:
          listener: 127.0.0.1:18090
          healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
          deregistrationDelaySeconds: 1
        autoRollback: [DEPLOYMENT_FAILURE]
      zonal:
        onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
        deploymentConfig: ZoneByZone
deploymentConfigs:
  ZoneByZone:
    computePlatform: Server
    minimumHealthyHosts: {type: HOST_COUNT, value: 0}
    zonalConfig: {firstZoneMonitorDurationInSeconds: 60, monitorDurationInSeconds: 30}
"#;

/// A harness with `STACK` applied, a fake fleet and a host deployer over
/// them on the paused clock (also the blue/green tests' world).
pub(super) struct World {
    pub(super) h: Harness,
    pub(super) fleet: Arc<FakeFleet>,
    pub(super) deployer: Arc<HostDeployer>,
    pub(super) cancel: CancellationToken,
}

fn settings() -> HostSettings {
    HostSettings {
        agent_lost_after: Duration::from_secs(5),
        poll: Duration::from_millis(500),
    }
}

impl World {
    async fn start() -> World {
        World::with_stack(STACK).await
    }

    /// `stack` applied, an empty fake fleet, a deployer.
    pub(super) async fn with_stack(stack: &str) -> World {
        let h = Harness::start().await;
        h.apply(stack, &[]).await;
        let fleet = FakeFleet::new(h.state.store.clone(), h.clock.clone());
        let cancel = CancellationToken::new();
        let deployer = World::deployer(&h, &fleet, &cancel);
        World {
            h,
            fleet,
            deployer,
            cancel,
        }
    }

    fn deployer(
        h: &Harness,
        fleet: &Arc<FakeFleet>,
        cancel: &CancellationToken,
    ) -> Arc<HostDeployer> {
        HostDeployer::new(
            h.state.store.clone(),
            Arc::new(fleet.clone()),
            h.dataplane.clone(),
            h.clock.clone(),
            settings(),
            cancel.clone(),
        )
    }

    /// Drops the deployer where it is and resumes with a new one over the
    /// same store and fleet.
    pub(super) async fn crash(&mut self) {
        self.cancel.cancel();
        for _ in 0..10_000 {
            tokio::task::yield_now().await;
        }
        self.cancel = CancellationToken::new();
        self.deployer = World::deployer(&self.h, &self.fleet, &self.cancel);
        self.deployer.resume_all().await.unwrap();
    }

    pub(super) async fn create(&self, group: &str, digest: &str) -> String {
        self.deployer
            .create(NewHostDeployment {
                application: "shop".into(),
                group: group.into(),
                revision: bundle(digest),
                source: digest.into(),
                config: None,
                started_by: None,
            })
            .await
            .unwrap()
    }

    pub(super) async fn row(&self, id: &str) -> HostDeploymentRow {
        let id = id.to_string();
        self.h
            .state
            .store
            .call(move |c| hd::host_deployment(c, &id))
            .await
            .unwrap()
            .unwrap()
    }

    /// Runs until `until` holds of `id`'s row (at most ten minutes of its time).
    pub(super) async fn wait(
        &self,
        id: &str,
        until: impl Fn(&HostDeploymentRow) -> bool,
    ) -> HostDeploymentRow {
        for _ in 0..6_000 {
            let row = self.row(id).await;
            if until(&row) {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "deployment {id} never got there: {:#?}",
            self.row(id).await.body.events
        );
    }

    /// Runs until `id` ended.
    pub(super) async fn finish(&self, id: &str) -> HostDeploymentRow {
        self.wait(id, |r| r.finished_at.is_some()).await
    }

    pub(super) async fn revisions(&self, group: &str) -> BTreeMap<String, String> {
        let group = group.to_string();
        self.h
            .state
            .store
            .call(move |c| hd::host_revisions(c, "shop", &group))
            .await
            .unwrap()
            .into_iter()
            .map(|(h, b)| (h, b.digest))
            .collect()
    }
}

pub(super) fn bundle(digest: &str) -> BundleRef {
    BundleRef {
        digest: digest.into(),
        format: BundleFormat::Tar,
    }
}

fn all_on(digest: &str) -> BTreeMap<String, String> {
    ["h1", "h2", "h3"]
        .map(|h| (h.to_string(), digest.to_string()))
        .into()
}

/// The events' records of `host`, as (event, status).
fn events(row: &HostDeploymentRow, host: &str) -> Vec<(HostEvent, HostEventStatus)> {
    row.body.events[host]
        .iter()
        .map(|v| (v.event, v.status))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn one_at_a_time_takes_each_host_out_of_traffic_around_its_lifecycle() {
    let w = World::start().await;
    let first = w.create("prod", "v1").await;
    assert_eq!(
        w.finish(&first).await.status,
        HostDeploymentStatus::Succeeded
    );
    assert_eq!(w.revisions("prod").await, all_on("v1"));
    let before = w.fleet.seen().len();

    let id = w.create("prod", "v2").await;
    let row = w.finish(&id).await;
    assert_eq!(row.status, HostDeploymentStatus::Succeeded);
    assert_eq!(w.revisions("prod").await, all_on("v2"));
    let seen = &w.fleet.seen()[before..];
    for s in seen {
        // Every script of the deployment ran while its host alone was out
        // of the target group, except the first and the last.
        let outside = [HostEvent::BeforeBlockTraffic, HostEvent::AfterAllowTraffic];
        let expect: BTreeSet<String> = if outside.contains(&s.event) {
            BTreeSet::new()
        } else {
            [s.host.clone()].into()
        };
        assert_eq!(s.blocked, expect, "{s:?}");
        // ApplicationStop and the block-traffic hooks run the old revision.
        let old = matches!(
            s.event,
            HostEvent::ApplicationStop
                | HostEvent::BeforeBlockTraffic
                | HostEvent::AfterBlockTraffic
        );
        assert_eq!(
            s.revision.as_deref(),
            Some(if old { "v1" } else { "v2" }),
            "{s:?}"
        );
    }
    // One host after the other.
    let hosts: Vec<&str> = seen.iter().map(|s| s.host.as_str()).collect();
    let mut order = hosts.clone();
    order.dedup();
    assert_eq!(order, ["h1", "h2", "h3"]);
    // Each host's lifecycle in CodeDeploy's order, every event recorded.
    let lifecycle: Vec<HostEvent> = HostEvent::ALL.to_vec();
    for h in ["h1", "h2", "h3"] {
        let evs = events(&row, h);
        assert_eq!(
            evs.iter().map(|e| e.0).collect::<Vec<_>>(),
            lifecycle,
            "{h}"
        );
        assert!(
            evs.iter().all(|e| e.1 == HostEventStatus::Succeeded),
            "{h}: {evs:?}"
        );
        let stop = row.body.events[h]
            .iter()
            .find(|v| v.event == HostEvent::ApplicationStop)
            .unwrap();
        assert_eq!(stop.output, format!("ApplicationStop on {h}"));
        assert_eq!(
            stop.command.as_deref(),
            Some(format!("{id}/{h}/ApplicationStop/1").as_str())
        );
    }
    // The block step waited the group's deregistration delay (1 s).
    let block = row.body.events["h1"]
        .iter()
        .find(|v| v.event == HostEvent::BlockTraffic)
        .unwrap();
    assert!(
        block.ended_at_ms.unwrap() >= block.started_at_ms + 1_000,
        "{block:?}"
    );
    assert!(row.body.blocked.is_empty());
    // The data plane's target group: each host left it in turn, and all
    // three serve at the end.
    let history = target_history(&w);
    let all = ["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"].map(String::from);
    assert_eq!(history.last().unwrap(), &all.to_vec());
    for (n, h) in all.iter().enumerate() {
        let without: Vec<String> = all.iter().filter(|a| *a != h).cloned().collect();
        assert!(
            history.contains(&without),
            "host {} never left: {history:?}",
            n + 1
        );
    }
}

/// The targets of the group's target group at each change.
fn target_history(w: &World) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for cfg in w.h.dataplane.applied() {
        let Some(tg) = cfg
            .target_groups
            .iter()
            .find(|g| g.name == "host-shop-prod-0")
        else {
            continue;
        };
        if out.last() != Some(&tg.targets) {
            out.push(tg.targets.clone());
        }
    }
    out
}

/// Deploys v1 then v2 to the `prod` group.
async fn on_v2(w: &World) {
    for v in ["v1", "v2"] {
        let id = w.create("prod", v).await;
        assert_eq!(w.finish(&id).await.status, HostDeploymentStatus::Succeeded);
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_validate_service_stops_and_the_rollback_restores_the_last_good_revision() {
    let w = World::start().await;
    on_v2(&w).await;
    w.fleet.fail("h2", HostEvent::ValidateService, "v3");
    let id = w.create("prod", "v3").await;
    let row = w.finish(&id).await;
    assert_eq!(row.status, HostDeploymentStatus::Failed);
    let h2 = events(&row, "h2");
    assert_eq!(
        h2.last(),
        Some(&(HostEvent::ValidateService, HostEventStatus::Failed))
    );
    assert_eq!(
        row.body.events["h2"].last().unwrap().error.as_deref(),
        Some("script exited with 1")
    );
    // h3 was never touched.
    assert!(!row.body.events.contains_key("h3"));
    // As `cutover deployments get` shows it.
    let view = super::views::view(&row);
    let statuses: Vec<(&str, HostTargetStatus)> = view
        .targets
        .iter()
        .map(|t| (t.host.as_str(), t.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("h1", HostTargetStatus::Succeeded),
            ("h2", HostTargetStatus::Failed),
            ("h3", HostTargetStatus::Skipped)
        ]
    );
    let failed = view.targets[1].events.last().unwrap();
    assert_eq!(failed.output, "ValidateService on h2");
    assert_eq!(view.rolled_back_by, row.body.rolled_back_by);
    // The rollback was created once, of v2, to the hosts that got v3.
    let rollback = row.body.rolled_back_by.clone().expect("a rollback");
    let rb = w.finish(&rollback).await;
    assert_eq!(rb.status, HostDeploymentStatus::Succeeded);
    assert_eq!(rb.body.rollback_of.as_deref(), Some(id.as_str()));
    assert_eq!(rb.body.revision.digest, "v2");
    let mut hosts: Vec<&str> = rb
        .body
        .plan
        .targets()
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["h1", "h2"]);
    assert_eq!(w.revisions("prod").await, all_on("v2"));
    // h1's ApplicationStop during the rollback stopped v3 (what it ran).
    let stop = w
        .fleet
        .seen()
        .into_iter()
        .rfind(|s| s.host == "h1" && s.event == HostEvent::ApplicationStop)
        .unwrap();
    assert_eq!(stop.revision.as_deref(), Some("v3"));
    // h2 stayed out of the target group with the broken v3 until the
    // rollback returned it.
    assert_eq!(row.body.blocked, ["h2".to_string()].into());
    assert!(rb.body.blocked.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_zonal_deployment_waits_each_zones_monitor_time() {
    let w = World::start().await;
    let id = w.create("zonal", "v1").await;
    let row = w.finish(&id).await;
    assert_eq!(row.status, HostDeploymentStatus::Succeeded);
    let span = |h: &str| {
        let evs = &row.body.events[h];
        (
            evs.first().unwrap().started_at_ms,
            evs.last().unwrap().ended_at_ms.unwrap(),
        )
    };
    let (a, b, c) = (span("h1"), span("h2"), span("h3"));
    // Zone a, then 60 s (the first zone's monitor time), then b, then 30 s, then c.
    assert!(b.0 >= a.1 + 60_000, "a {a:?} b {b:?}");
    assert!(b.0 < a.1 + 62_000, "a {a:?} b {b:?}");
    assert!(c.0 >= b.1 + 30_000, "b {b:?} c {c:?}");
    assert!(c.0 < b.1 + 32_000, "b {b:?} c {c:?}");
}

#[tokio::test(start_paused = true)]
async fn a_lost_agent_fails_its_host_by_the_configurations_rules() {
    let w = World::start().await;
    on_v2(&w).await;
    let id = w.create("prod", "v3").await;
    // Kill h2's agent as soon as its first command is queued.
    loop {
        if w.fleet
            .seen()
            .iter()
            .any(|s| s.host == "h2" && s.revision.as_deref() == Some("v2"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w.fleet.kill("h2");
    let row = w.finish(&id).await;
    // OneAtATime keeps two of three healthy: h2 lost, h3 may not start.
    assert_eq!(row.status, HostDeploymentStatus::Failed);
    let lost = row.body.events["h2"].last().unwrap();
    assert_eq!(lost.status, HostEventStatus::Failed);
    assert_eq!(
        lost.error.as_deref(),
        Some("the host's agent stopped polling")
    );
    // Lost within the timeout (5 s) and a poll.
    assert!(
        lost.ended_at_ms.unwrap() - lost.started_at_ms <= 6_000,
        "{lost:?}"
    );
    assert!(!row.body.events.contains_key("h3"));
}

#[tokio::test(start_paused = true)]
async fn a_server_crash_in_the_middle_resumes_without_running_a_step_twice() {
    let mut w = World::start().await;
    on_v2(&w).await;
    let before = w.fleet.seen().len();
    let id = w.create("prod", "v3").await;
    loop {
        if w.fleet.seen()[before..].iter().any(|s| s.host == "h2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w.crash().await;
    assert!(w.deployer.is_running(&id));
    let row = w.finish(&id).await;
    assert_eq!(row.status, HostDeploymentStatus::Succeeded);
    assert_eq!(w.revisions("prod").await, all_on("v3"));
    // Every step ran once (the fake agents run a command id once; a step
    // re-issued with a new id would show twice here).
    let seen = &w.fleet.seen()[before..];
    let mut steps: Vec<(String, HostEvent)> =
        seen.iter().map(|s| (s.host.clone(), s.event)).collect();
    let all = steps.len();
    steps.sort();
    steps.dedup();
    assert_eq!(steps.len(), all);
    for h in ["h1", "h2", "h3"] {
        assert_eq!(events(&row, h).len(), HostEvent::ALL.len(), "{h}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_stopped_deployment_ends_and_its_group_takes_the_next() {
    let w = World::start().await;
    on_v2(&w).await;
    let id = w.create("prod", "v3").await;
    let busy = w
        .deployer
        .create(NewHostDeployment {
            application: "shop".into(),
            group: "prod".into(),
            revision: bundle("v4"),
            source: "v4".into(),
            config: None,
            started_by: None,
        })
        .await;
    assert!(
        matches!(busy, Err(super::deployer::HostDeployError::Busy { .. })),
        "{busy:?}"
    );
    w.deployer.stop(&id, false).unwrap();
    let row = w.finish(&id).await;
    assert_eq!(row.status, HostDeploymentStatus::Stopped);
    assert!(row.body.rolled_back_by.is_none());
    assert!(row.body.blocked.is_empty());
    let next = w.create("prod", "v4").await;
    assert_eq!(
        w.finish(&next).await.status,
        HostDeploymentStatus::Succeeded
    );
}

#[tokio::test(start_paused = true)]
async fn a_host_that_joins_later_gets_the_current_revision() {
    let w = World::start().await;
    on_v2(&w).await;
    w.deployer.start().await.unwrap();
    w.fleet.join("h4");
    let mut on = BTreeMap::new();
    for _ in 0..600 {
        on = w.revisions("prod").await;
        if on.contains_key("h4") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut expect = all_on("v2");
    expect.insert("h4".into(), "v2".into());
    assert_eq!(on, expect);
    // Only h4 was deployed to, once; nothing is outdated any more.
    let h4: Vec<Seen> = w
        .fleet
        .seen()
        .into_iter()
        .filter(|s| s.host == "h4")
        .collect();
    assert_eq!(
        h4.iter().filter(|s| s.event == HostEvent::Install).count(),
        1
    );
    assert!(h4.iter().all(|s| s.revision.as_deref() == Some("v2")));
    assert!(
        super::outdated::update(&w.deployer)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A zonal group watching a service's 5xx alarm, beside a service that
/// carries it.
const ALARM_STACK: &str = r#"services:
  web:
    runtime: process
    desiredCount: 1
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18080
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      zonal:
        onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
        deploymentConfig: ZoneByZone
        alarms: [web-5xx]
        autoRollback: [DEPLOYMENT_STOP_ON_ALARM]
deploymentConfigs:
  ZoneByZone:
    computePlatform: Server
    minimumHealthyHosts: {type: HOST_COUNT, value: 0}
    zonalConfig: {firstZoneMonitorDurationInSeconds: 60, monitorDurationInSeconds: 30}
alarms:
  web-5xx:
    metric: {name: HTTPCode_Target_5XX_Count, service: web}
    statistic: Sum
    periodSeconds: 1
    evaluationPeriods: 1
    threshold: 5
    comparisonOperator: GreaterThanOrEqualToThreshold
    treatMissingData: notBreaching
"#;

#[tokio::test(start_paused = true)]
async fn an_alarm_during_a_zones_monitor_time_stops_and_rolls_back() {
    use cutover_proxy::metrics::{MetricSample, SecondBucket};
    let w = World::start().await;
    w.h.apply(
        ALARM_STACK,
        &[("./taskdef.json", crate::testing::WEB_TASKDEF)],
    )
    .await;
    let first = w.create("zonal", "v1").await;
    assert_eq!(
        w.finish(&first).await.status,
        HostDeploymentStatus::Succeeded
    );
    let id = w.create("zonal", "v2").await;
    // Zone a done: its monitor time runs.
    loop {
        let row = w.row(&id).await;
        if row
            .body
            .plan
            .in_place()
            .unwrap()
            .zone_done_at()
            .first()
            .is_some_and(Option::is_some)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bad = MetricSample {
        request_count: 100,
        target5xx: 40,
        ..MetricSample::default()
    };
    let mut bucket = SecondBucket {
        time: w.h.clock_sec() + 1,
        ..SecondBucket::default()
    };
    bucket.listeners.insert("web-prod".into(), bad.clone());
    bucket.target_groups.insert("web-a".into(), bad);
    w.h.dataplane.push_second(bucket);
    let row = w.finish(&id).await;
    assert_eq!(row.status, HostDeploymentStatus::Stopped);
    assert_eq!(
        row.body.plan.reason(),
        Some(&cutover_deploy::hosts::EndReason::Alarm("web-5xx".into()))
    );
    // Zones b and c were never touched; zone a's host is rolled back.
    assert!(!row.body.events.contains_key("h2") && !row.body.events.contains_key("h3"));
    let rb = w
        .finish(row.body.rolled_back_by.as_deref().expect("a rollback"))
        .await;
    assert_eq!(rb.status, HostDeploymentStatus::Succeeded);
    assert_eq!(w.revisions("zonal").await, all_on("v1"));
}
