//! The agents' side through the real router: keys, long polls, dispatch
//! through the [`Fleet`], results recorded once, hostile calls refused.

use super::fleet::Fleet;
use crate::api;
use crate::testing::Harness;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use cutover_api::agents::{AgentCommand, CommandResult, CommandStatus};
use cutover_spec::HostEvent;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

async fn call(
    h: &Harness,
    token: Option<&str>,
    host: &str,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let router = api::router(h.state.clone(), token.map(str::to_string));
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = router.oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

fn command(id: &str) -> AgentCommand {
    AgentCommand {
        id: id.into(),
        deployment_id: "d-1".into(),
        application: "shop".into(),
        deployment_group: "prod".into(),
        deployment_group_id: "g-1".into(),
        event: HostEvent::BeforeInstall,
        revision: None,
        file_exists_behavior: None,
    }
}

fn registration(name: &str, env: &str) -> Value {
    json!({"name": name, "tags": {"env": env}, "zone": "a", "version": "test"})
}

const LOCAL: &str = "127.0.0.1:7070";
const REMOTE: &str = "cutover.example:7070";

#[tokio::test(start_paused = true)]
async fn keys_bind_agents_and_results_are_recorded_once() {
    let h = Harness::start().await;
    let token = Some("t0ken");
    // Issuing a key needs the API token.
    let (s, _) = call(
        &h,
        token,
        REMOTE,
        Method::POST,
        "/v1/agents/h1/key",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, k1) = call(
        &h,
        token,
        REMOTE,
        Method::POST,
        "/v1/agents/h1/key",
        Some("t0ken"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{k1}");
    let k1 = k1["key"].as_str().unwrap().to_string();
    let (_, k2) = call(
        &h,
        token,
        REMOTE,
        Method::POST,
        "/v1/agents/h2/key",
        Some("t0ken"),
        None,
    )
    .await;
    let k2 = k2["key"].as_str().unwrap().to_string();

    // Off loopback: no key, a forged key, another agent's key: refused.
    for key in [None, Some("cak_forged"), Some(k2.as_str()), Some("t0ken")] {
        let (s, _) = call(
            &h,
            token,
            REMOTE,
            Method::POST,
            "/v1/agents/register",
            key,
            Some(registration("h1", "prod")),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{key:?}");
    }
    let (s, view) = call(
        &h,
        token,
        REMOTE,
        Method::POST,
        "/v1/agents/register",
        Some(&k1),
        Some(registration("h1", "prod")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["tags"]["env"], "prod");
    assert!(view["online"].as_bool().unwrap());
    // Re-registering with other tags updates them.
    call(
        &h,
        token,
        REMOTE,
        Method::POST,
        "/v1/agents/register",
        Some(&k1),
        Some(registration("h1", "test")),
    )
    .await;
    let instances = h.state.fleet.instances().await.unwrap();
    assert_eq!(instances.len(), 1, "h2 never registered");
    assert_eq!(instances[0].registration.tags["env"], "test");

    // A command dispatched through the fleet reaches h1's poll, not h2's.
    h.state.fleet.dispatch("h1", command("c1")).await.unwrap();
    h.state.fleet.dispatch("h1", command("c1")).await.unwrap();
    assert!(
        h.state
            .fleet
            .dispatch("nobody", command("c9"))
            .await
            .is_err()
    );
    let (s, poll) = call(
        &h,
        token,
        REMOTE,
        Method::GET,
        "/v1/agents/h1/poll",
        Some(&k1),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(poll["commands"].as_array().unwrap().len(), 1, "{poll}");
    let (s, _) = call(
        &h,
        token,
        REMOTE,
        Method::GET,
        "/v1/agents/h1/poll",
        Some(&k2),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "h2 cannot poll as h1");

    let result = |status: CommandStatus| {
        serde_json::to_value(CommandResult {
            id: "c1".into(),
            status,
            output: "ok\n".into(),
            error: None,
            started_at_ms: 1,
            ended_at_ms: 2,
        })
        .unwrap()
    };
    // h2 reporting h1's command, and a result for an unknown command.
    let (s, _) = call(
        &h,
        token,
        REMOTE,
        Method::POST,
        "/v1/agents/h2/results",
        Some(&k2),
        Some(result(CommandStatus::Failed)),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let mut unknown = result(CommandStatus::Succeeded);
    unknown["id"] = json!("nope");
    let (s, _) = call(
        &h,
        token,
        REMOTE,
        Method::POST,
        "/v1/agents/h1/results",
        Some(&k1),
        Some(unknown),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, ack) = call(
        &h,
        token,
        REMOTE,
        Method::POST,
        "/v1/agents/h1/results",
        Some(&k1),
        Some(result(CommandStatus::Succeeded)),
    )
    .await;
    assert_eq!((s, ack["recorded"].as_bool()), (StatusCode::OK, Some(true)));
    let (_, ack) = call(
        &h,
        token,
        REMOTE,
        Method::POST,
        "/v1/agents/h1/results",
        Some(&k1),
        Some(result(CommandStatus::Failed)),
    )
    .await;
    assert_eq!(ack["recorded"].as_bool(), Some(false));
    let recorded = h.state.fleet.result("c1").await.unwrap().unwrap();
    assert_eq!(recorded.status, CommandStatus::Succeeded);

    // Deregistered: its key goes with it.
    let (s, _) = call(
        &h,
        token,
        REMOTE,
        Method::DELETE,
        "/v1/agents/h1",
        Some("t0ken"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &h,
        token,
        REMOTE,
        Method::GET,
        "/v1/agents/h1/poll",
        Some(&k1),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(start_paused = true)]
async fn loopback_without_a_token_needs_no_key_unless_one_was_issued() {
    let h = Harness::start().await;
    let (s, _) = call(
        &h,
        None,
        LOCAL,
        Method::POST,
        "/v1/agents/register",
        None,
        Some(registration("h1", "prod")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &h,
        None,
        REMOTE,
        Method::POST,
        "/v1/agents/register",
        None,
        Some(registration("h1", "prod")),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a rebinding name is not loopback"
    );
    let (_, key) = call(
        &h,
        None,
        LOCAL,
        Method::POST,
        "/v1/agents/h1/key",
        None,
        None,
    )
    .await;
    let (s, _) = call(
        &h,
        None,
        LOCAL,
        Method::POST,
        "/v1/agents/register",
        None,
        Some(registration("h1", "prod")),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "h1 has a key now");
    let (s, _) = call(
        &h,
        None,
        LOCAL,
        Method::POST,
        "/v1/agents/register",
        key["key"].as_str(),
        Some(registration("h1", "prod")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for bad in [
        "/v1/agents/..%2Fx/poll",
        "/v1/agents/bundles/sha256:..%2F..%2Fstate.db",
    ] {
        let (s, _) = call(&h, None, LOCAL, Method::GET, bad, None, None).await;
        assert!(s.is_client_error(), "{bad}: {s}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_wakes_on_dispatch_and_on_cancel_of_the_running_command() {
    let h = Harness::start().await;
    call(
        &h,
        None,
        LOCAL,
        Method::POST,
        "/v1/agents/register",
        None,
        Some(registration("h1", "prod")),
    )
    .await;
    let fleet = h.state.fleet.clone();
    let waiting =
        tokio::spawn(async move { fleet.poll("h1", None, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!waiting.is_finished());
    h.state.fleet.dispatch("h1", command("c1")).await.unwrap();
    let poll = waiting.await.unwrap().unwrap();
    assert_eq!(poll.commands, vec![command("c1")]);

    // While c1 runs, a poll answers only when c1 is cancelled.
    let fleet = h.state.fleet.clone();
    let started = tokio::time::Instant::now();
    let waiting =
        tokio::spawn(async move { fleet.poll("h1", Some("c1"), Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    h.state.fleet.cancel("h1", "c1").await.unwrap();
    let poll = waiting.await.unwrap().unwrap();
    assert_eq!(poll.cancel, vec!["c1".to_string()]);
    assert!(started.elapsed() < Duration::from_secs(20));
    // An idle poll with nothing to do waits its whole time and answers empty.
    let started = tokio::time::Instant::now();
    let (s, _) = call(
        &h,
        None,
        LOCAL,
        Method::POST,
        "/v1/agents/register",
        None,
        Some(registration("h2", "prod")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let poll = h
        .state
        .fleet
        .poll("h2", None, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(poll.commands.is_empty() && poll.cancel.is_empty());
    assert_eq!(started.elapsed().as_secs(), 20, "capped at 20 s");
}
