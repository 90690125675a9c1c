//! Pinning through the whole control plane on a paused clock: a moved tag
//! never changes what a scale-up, a restart after a crash or a rollback
//! runs, and a tag that cannot be resolved refuses the deployment.

use crate::testing::Harness;
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

const TASKDEF: &str = r#"{
  "family": "api",
  "containerDefinitions": [{
    "name": "api", "essential": true, "image": "registry.test/api:v1",
    "command": ["sleep", "3600"]
  }]
}"#;

const STACK: &str = r#"services:
  api:
    runtime: process
    desiredCount: 1
    taskDefinition: ./taskdef.json
"#;

/// The images the running tasks were started with, sorted.
fn images(h: &Harness) -> Vec<String> {
    let mut out: Vec<String> = h
        .runtime
        .running()
        .iter()
        .filter_map(|(id, _)| h.runtime.image_of(id))
        .collect();
    out.sort();
    out
}

async fn until_images(h: &Harness, want: &[String]) -> bool {
    h.run_until(Duration::from_secs(300), Duration::from_millis(100), |h| {
        images(h) == want
    })
    .await
}

fn pinned(digest: &str, n: usize) -> Vec<String> {
    vec![format!("registry.test/api@{digest}"); n]
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
async fn a_moved_tag_never_changes_what_runs_or_what_a_rollback_restores() {
    let h = Harness::start_pinning().await;
    h.resolver.tag("registry.test/api:v1", D1);
    h.apply(STACK, &[("./taskdef.json", TASKDEF)]).await;
    assert!(until_images(&h, &pinned(D1, 1)).await, "{:?}", images(&h));

    // The tag moves; a scale-up and a restart after a crash keep the pin.
    h.resolver.tag("registry.test/api:v1", D2);
    scale(&h, 2).await;
    assert!(until_images(&h, &pinned(D1, 2)).await, "{:?}", images(&h));
    let h = h.crash().await;
    scale(&h, 3).await;
    assert!(until_images(&h, &pinned(D1, 3)).await, "{:?}", images(&h));
    assert_eq!(h.resolver.lookups.load(Ordering::SeqCst), 1);

    // A tag the registry does not have refuses the deployment, as ECS
    // reports a failed pull; nothing is recorded and nothing changes.
    let deploy = json!({"service": "api", "images": {"api": "registry.test/api:v2"}});
    let (status, body) = h
        .call(Method::POST, "/v1/deployments", Some(deploy.clone()))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body.to_string()
            .contains("CannotPullContainerError: cannot resolve registry.test/api:v2"),
        "{body}"
    );
    assert!(h.latest_deployment("api").is_none());

    // Pushed: the deployment pins v2 and records it with the deployment.
    h.resolver.tag("registry.test/api:v2", D3);
    let (status, body) = h.call(Method::POST, "/v1/deployments", Some(deploy)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(until_images(&h, &pinned(D3, 3)).await, "{:?}", images(&h));
    let id = h.latest_deployment("api").unwrap().id;
    let (_, shown) = h
        .call(Method::GET, &format!("/v1/deployments/{id}"), None)
        .await;
    assert_eq!(shown["deployment"]["imageDigest"], D3, "{shown}");

    // A rollback restores the digest v1 ran, not what the tag names now.
    let done = h
        .run_until(Duration::from_secs(300), Duration::from_millis(100), |h| {
            h.deployment(&id).status.to_string() == "Succeeded"
        })
        .await;
    assert!(done);
    let (status, body) = h
        .call(Method::POST, "/v1/services/api/rollback", None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(until_images(&h, &pinned(D1, 3)).await, "{:?}", images(&h));
    assert_eq!(
        h.resolver.lookups.load(Ordering::SeqCst),
        3,
        "v1 once, v2 refused once, v2 once: never again"
    );

    // Every task shows the digest it runs.
    let (_, tasks) = h.call(Method::GET, "/v1/tasks?service=api", None).await;
    let shown: Vec<&str> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .map(|t| t["imageDigest"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(shown, vec![D1; 3], "{tasks}");
}
