//! The console's pages rendered by the real router over the in-process
//! control plane ([`Harness`]): what each page shows of the state the API
//! holds. The browser test (`crates/cutover/tests/console_e2e.rs`) covers
//! loading them in Chromium.

// The tests read and seed the store synchronously.
#![allow(clippy::disallowed_methods)]

use crate::testing::{Harness, WEB_TASKDEF};
use axum::http::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// A blue/green service with a short canary and an alarm on its 5xx.
const STACK: &str = r#"services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18080
      testListener: 127.0.0.1:18081
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
    deployment:
      type: BLUE_GREEN
      config: Canary10Percent1Minute
      terminationWaitSeconds: 1
deploymentConfigs:
  Canary10Percent1Minute:
    trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 10, canaryInterval: 1}}
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

async fn page(h: &Harness, path: &str) -> (StatusCode, String) {
    let (status, body) = h.call(Method::GET, path, None).await;
    match body {
        Value::String(s) => (status, s),
        other => (status, other.to_string()),
    }
}

async fn with_web() -> Harness {
    let h = Harness::start().await;
    h.apply(STACK, &[("./taskdef.json", WEB_TASKDEF)]).await;
    let up = h
        .run_until(Duration::from_secs(60), Duration::from_millis(100), |h| {
            h.runtime.running().len() == 2
        })
        .await;
    assert!(up, "v1 never ran");
    h
}

#[tokio::test(start_paused = true)]
async fn a_deployment_page_shows_each_lifecycle_event_with_its_duration_and_output() {
    let h = with_web().await;
    let v2 = WEB_TASKDEF.replace("\"v1\"", "\"v2\"");
    h.apply(STACK, &[("./taskdef.json", &v2)]).await;
    let id = h.latest_deployment("web").expect("a deployment").id;
    let done = h
        .run_until(Duration::from_secs(300), Duration::from_secs(1), |h| {
            h.deployment(&id).finished_at.is_some()
        })
        .await;
    assert!(done);
    let (status, html) = page(&h, &format!("/deployments/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Lifecycle and hooks"), "{html}");
    for event in [
        "BeforeInstall",
        "AfterAllowTestTraffic",
        "AfterAllowTraffic",
    ] {
        assert!(
            html.contains(&format!("Output of {event}")),
            "{event}: {html}"
        );
    }
    assert!(html.contains("no hook configured"), "{html}");
    assert!(html.contains("took "), "{html}");
}

#[tokio::test(start_paused = true)]
async fn the_alarms_page_charts_the_state_and_the_value_the_alarm_judges() {
    use cutover_proxy::metrics::{MetricSample, SecondBucket};
    let h = with_web().await;
    let second = h.clock_sec() + 1;
    let bad = MetricSample {
        request_count: 100,
        target5xx: 40,
        ..MetricSample::default()
    };
    let mut bucket = SecondBucket {
        time: second,
        ..SecondBucket::default()
    };
    bucket.listeners.insert("web-prod".into(), bad);
    h.dataplane.push_second(bucket);
    let fired = h
        .run_until(Duration::from_secs(30), Duration::from_millis(100), |h| {
            h.state
                .store
                .with(cutover_store::ops::list_alarms)
                .unwrap()
                .iter()
                .any(|a| a.state == cutover_deploy::alarm::AlarmState::Alarm)
        })
        .await;
    assert!(fired);
    let (status, html) = page(&h, "/alarms").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"class="band bad""#), "{html}");
    assert!(html.contains(r#"class="threshold""#), "{html}");
    assert!(html.contains("value now 40.0, threshold 5.0"), "{html}");
    assert!(html.contains("HTTPCode_Target_5XX_Count"), "{html}");
}

#[tokio::test(start_paused = true)]
async fn the_hosts_and_registry_pages_render_empty_and_in_the_menu() {
    let h = Harness::start().await;
    let (status, html) = page(&h, "/hosts").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("No agent has registered"), "{html}");
    assert!(html.contains(r#"href="/registry""#), "{html}");
    let (status, html) = page(&h, "/registry").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("No repositories yet"), "{html}");
    assert_eq!(
        page(&h, "/host-deployments/d-none").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&h, "/host-deployments?id=..%2Fx").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(start_paused = true)]
async fn the_registry_page_lists_repositories_and_their_images() {
    use cutover_store::registry::{self as rows, NewManifest, RepositoryRow, TagMutability};
    let h = Harness::start().await;
    let digest = format!("sha256:{}", "a".repeat(64));
    h.state
        .store
        .with(|c| {
            rows::create_repository(
                c,
                &RepositoryRow {
                    name: "team/web".into(),
                    created_at_ms: 1,
                    tag_mutability: TagMutability::Immutable,
                    scan_on_push: true,
                    anonymous_pull: false,
                    lifecycle_policy: None,
                },
            )?;
            rows::put_manifest(
                c,
                "team/web",
                &NewManifest {
                    digest: digest.clone(),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    size: 2,
                    image_size: 2048,
                    artifact_type: None,
                    subject: None,
                    annotations: Default::default(),
                    refs: Vec::new(),
                },
                Some("v7"),
                1_500,
            )
        })
        .unwrap();
    let (status, html) = page(&h, "/registry").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("team/web"), "{html}");
    assert!(html.contains("Tags immutable · scan on push on"), "{html}");
    assert!(html.contains("<code>v7</code>"), "{html}");
    assert!(html.contains(&digest), "{html}");
    assert!(html.contains("2.0 KiB"), "{html}");
}

#[test]
fn a_host_deployment_page_shows_each_host_s_events_their_output_and_the_stop_buttons() {
    use cutover_api::agents::{BundleFormat, BundleRef};
    use cutover_api::host_deployments::{
        HostDeploymentView, HostEventStatus, HostEventView, HostTargetStatus, HostTargetView,
    };
    use cutover_deploy::hosts::HostDeploymentStatus;
    use cutover_spec::HostEvent;
    let event = |event, status, output: &str, ended| HostEventView {
        event,
        status,
        command: None,
        output: output.into(),
        error: (status == HostEventStatus::Failed).then(|| "exit code 1".into()),
        started_at_ms: 1_000,
        ended_at_ms: ended,
    };
    let d = HostDeploymentView {
        id: "d-1".into(),
        application: "shop".into(),
        deployment_group: "prod".into(),
        status: HostDeploymentStatus::InProgress,
        reason: None,
        revision: BundleRef {
            digest: format!("sha256:{}", "b".repeat(64)),
            format: BundleFormat::Tgz,
        },
        source: "dir".into(),
        config: "CodeDeployDefault.OneAtATime".into(),
        rollback_of: None,
        rolled_back_by: None,
        created_at_ms: 1_000,
        finished_at_ms: None,
        targets: vec![
            HostTargetView {
                host: "h1".into(),
                zone: Some("a".into()),
                status: HostTargetStatus::Succeeded,
                events: vec![event(
                    HostEvent::ApplicationStart,
                    HostEventStatus::Succeeded,
                    "started v2 on 8080",
                    Some(3_500),
                )],
            },
            HostTargetView {
                host: "h2".into(),
                zone: None,
                status: HostTargetStatus::InProgress,
                events: vec![event(
                    HostEvent::ValidateService,
                    HostEventStatus::InProgress,
                    "",
                    None,
                )],
            },
        ],
    };
    let session = super::auth::Session {
        csrf: "t0k".into(),
        signed_in: false,
    };
    let html = super::hosts::deployment_page(&session, &d, 6_000).into_string();
    assert!(
        html.contains(r#"data-topic="host-deployment/d-1""#),
        "{html}"
    );
    assert!(html.contains("1 of 2 hosts done"), "{html}");
    assert!(html.contains("Output of ApplicationStart on h1"), "{html}");
    assert!(html.contains("started v2 on 8080"), "{html}");
    assert!(html.contains("took 2.5 s"), "{html}");
    assert!(html.contains("running for 5.0 s"), "{html}");
    assert!(
        html.contains(r#"action="/host-deployments/d-1/stop""#),
        "{html}"
    );
    assert!(html.contains(">Stop and roll back<"), "{html}");
    assert!(html.contains(r#"name="csrf" value="t0k""#), "{html}");
}

#[test]
fn the_hosts_page_lists_recent_host_deployments_with_links() {
    use cutover_api::host_deployments::HostDeploymentSummary;
    use cutover_deploy::hosts::HostDeploymentStatus;
    let d = |id: &str, status, reason: Option<&str>| HostDeploymentSummary {
        id: id.into(),
        application: "shop".into(),
        deployment_group: "prod".into(),
        status,
        reason: reason.map(str::to_string),
        source: "git:shop@abc123".into(),
        hosts: 3,
        created_at_ms: 1_000,
        finished_at_ms: None,
    };
    let session = super::auth::Session {
        csrf: "t0k".into(),
        signed_in: false,
    };
    let html = super::hosts::agents_page(
        &session,
        &[],
        &[
            d(
                "d-2",
                HostDeploymentStatus::Failed,
                Some("ValidateService failed on h2"),
            ),
            d("d-1", HostDeploymentStatus::Succeeded, None),
        ],
    )
    .into_string();
    assert!(html.contains(r#"href="/host-deployments/d-2""#), "{html}");
    assert!(html.contains(r#"href="/host-deployments/d-1""#), "{html}");
    assert!(html.contains("ValidateService failed on h2"), "{html}");
    assert!(html.contains("shop / prod"), "{html}");
    assert!(html.contains("git:shop@abc123"), "{html}");
    assert!(
        html.find("d-2").unwrap() < html.find("d-1").unwrap(),
        "newest first: {html}"
    );
    let empty = super::hosts::agents_page(&session, &[], &[]).into_string();
    assert!(empty.contains("No host deployment yet"), "{empty}");
}
