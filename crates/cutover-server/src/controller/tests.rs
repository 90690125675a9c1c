//! The reconcile loop in-process, on a paused clock: desired counts are
//! kept through task crashes and control-plane crashes, quick failures back
//! off, and no task is ever started twice.

use crate::testing::Harness;
use axum::http::{Method, StatusCode};
use cutover_runtime::fake::Call;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const TASKDEF: &str = r#"{
  "family": "api",
  "containerDefinitions": [{
    "name": "api", "essential": true, "image": "local/api",
    "command": ["sleep", "3600"],
    "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 2, "startPeriod": 0}
  }]
}"#;

const STACK: &str = r#"services:
  api:
    runtime: process
    desiredCount: 3
    taskDefinition: ./taskdef.json
"#;

fn started(h: &Harness) -> Vec<String> {
    h.runtime
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Start { task_id, .. } => Some(task_id),
            _ => None,
        })
        .collect()
}

async fn running(h: &Harness, n: usize) -> bool {
    h.run_until(Duration::from_secs(120), Duration::from_millis(100), |h| {
        h.runtime.running().len() == n
    })
    .await
}

async fn scale(h: &Harness, n: u32) {
    let (status, body) = h
        .call(
            Method::PUT,
            "/v1/services/api/desired-count",
            Some(json!({"desiredCount": n})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(start_paused = true)]
async fn crashed_tasks_are_replaced_and_scaling_converges() {
    let h = Harness::start().await;
    h.apply(STACK, &[("./taskdef.json", TASKDEF)]).await;
    assert!(running(&h, 3).await, "{:?}", h.runtime.calls());

    let (victim, _) = h.runtime.running()[0].clone();
    assert!(h.runtime.crash(&victim, 137));
    let replaced = h
        .run_until(Duration::from_secs(60), Duration::from_millis(100), |h| {
            let r = h.runtime.running();
            r.len() == 3 && r.iter().all(|(id, _)| *id != victim)
        })
        .await;
    assert!(replaced, "{:?}", h.runtime.calls());

    scale(&h, 5).await;
    assert!(running(&h, 5).await);
    scale(&h, 1).await;
    assert!(running(&h, 1).await);
    let ids = started(&h);
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a task id started twice: {ids:?}");
    assert_eq!(ids.len(), 3 + 1 + 2, "{ids:?}");
}

#[tokio::test(start_paused = true)]
async fn quick_failures_back_off_instead_of_spinning() {
    let h = Harness::start().await;
    h.apply(
        STACK.replace("desiredCount: 3", "desiredCount: 1").as_str(),
        &[("./taskdef.json", TASKDEF)],
    )
    .await;
    assert!(running(&h, 1).await);
    // Crash every replacement as soon as it starts, for 2 minutes.
    let mut crashes = 0;
    let until = h.elapsed_ms() + 120_000;
    while h.elapsed_ms() < until {
        for (id, _) in h.runtime.running() {
            if h.runtime.crash(&id, 1) {
                crashes += 1;
            }
        }
        h.advance(Duration::from_millis(50)).await;
    }
    // Backoff from 1 s doubling to 30 s: about 1+2+4+8+16+30+30+30 = 121 s
    // for 8 restarts; never the hundreds a loop without backoff would make.
    assert!(
        (5..=12).contains(&crashes),
        "{crashes} restarts in 2 minutes of failures"
    );
}

#[tokio::test(start_paused = true)]
async fn a_control_plane_crash_at_any_point_of_a_scale_up_never_duplicates_tasks() {
    for crash_after_ms in [0u64, 1, 5, 20, 50, 100, 300, 1_000] {
        let mut h = Harness::start().await;
        h.apply(STACK, &[("./taskdef.json", TASKDEF)]).await;
        assert!(running(&h, 3).await);
        scale(&h, 6).await;
        h.advance(Duration::from_millis(crash_after_ms)).await;
        h = h.crash().await;
        assert!(
            running(&h, 6).await,
            "crash after {crash_after_ms} ms: {:?}",
            h.runtime.running()
        );
        // Settled: still 6 a minute later, each started once.
        h.advance(Duration::from_secs(60)).await;
        assert_eq!(
            h.runtime.running().len(),
            6,
            "crash after {crash_after_ms} ms"
        );
        let ids = started(&h);
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "crash after {crash_after_ms} ms: {ids:?}"
        );
        assert_eq!(ids.len(), 6, "crash after {crash_after_ms} ms: {ids:?}");
    }
}

/// The health of every task of `api`, as the API reports it.
async fn health(h: &Harness) -> Vec<String> {
    let (status, body) = h.call(Method::GET, "/v1/tasks?service=api", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["healthStatus"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_health_check_without_cmd_never_runs_and_the_health_stays_unknown() {
    // ECS registers `["true"]` and Docker never runs it; so here. The same
    // task definition with CMD-SHELL is probed and becomes healthy.
    let bare = TASKDEF.replace(r#"["CMD-SHELL", "true"]"#, r#"["true"]"#);
    for (taskdef, expected) in [(TASKDEF, "HEALTHY"), (bare.as_str(), "UNKNOWN")] {
        let h = Harness::start().await;
        h.apply(STACK, &[("./taskdef.json", taskdef)]).await;
        assert!(running(&h, 3).await, "{:?}", h.runtime.calls());
        h.advance(Duration::from_secs(60)).await;
        assert_eq!(health(&h).await, vec![expected; 3], "{taskdef}");
    }
}
