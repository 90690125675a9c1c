//! End-to-end behaviour of the data plane on loopback sockets with ephemeral ports: routing,
//! headers, weights, draining, upgrades, streaming, retries, rejected changes, persistence and
//! metrics.

mod common;

use std::time::Duration;

use common::{Proxy, backend, backend_with_health, client, get};
use cutover_proxy::health::TargetState;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;

fn two_groups(blue: &str, green: &str, hc: bool) -> String {
    let check = if hc {
        "    healthCheck: {path: /health, intervalSeconds: 0.1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2, matcher: \"200-299\"}\n"
    } else {
        ""
    };
    format!(
        "admin: ADMIN
listeners:
  - name: prod
    address: LISTEN
    defaultAction:
      forward: [{{targetGroup: blue, weight: 100}}, {{targetGroup: green, weight: 0}}]
targetGroups:
  - name: blue
    targets: [{blue}]
{check}    deregistrationDelaySeconds: 5
  - name: green
    targets: [{green}]
{check}"
    )
}

#[tokio::test]
async fn forwards_with_host_preserved_and_forwarding_headers() {
    let blue = backend("blue").await;
    let green = backend("green").await;
    let proxy = Proxy::start(&two_groups(
        &format!("\"{}\"", blue.addr),
        &format!("\"{}\"", green.addr),
        true,
    ))
    .await;
    proxy.wait_healthy("blue", 1).await;
    let c = client();
    let (status, h, body) = get(&c, &proxy.url("/"), &[("host", "app.example:8080")]).await;
    assert_eq!(status, 200);
    assert_eq!(body, "blue");
    assert_eq!(h["x-seen-host"], "app.example:8080");
    assert_eq!(h["x-seen-xff"], "127.0.0.1");
    assert_eq!(h["x-seen-proto"], "http");
    assert_eq!(h["x-seen-port"], proxy.listen.port().to_string().as_str());
    assert!(!h["x-seen-request-id"].is_empty());
    let (_, h, _) = get(
        &c,
        &proxy.url("/"),
        &[("x-request-id", "abc-123"), ("x-forwarded-for", "10.0.0.1")],
    )
    .await;
    assert_eq!(
        h["x-seen-request-id"], "abc-123",
        "an incoming request id is kept"
    );
    assert_eq!(
        h["x-seen-xff"], "127.0.0.1",
        "an untrusted client's X-Forwarded-For is replaced"
    );
}

#[tokio::test]
async fn weight_changes_are_acknowledged_with_a_version_and_in_force() {
    let blue = backend("blue").await;
    let green = backend("green").await;
    let proxy = Proxy::start(&two_groups(
        &format!("\"{}\"", blue.addr),
        &format!("\"{}\"", green.addr),
        true,
    ))
    .await;
    proxy.wait_healthy("blue", 1).await;
    proxy.wait_healthy("green", 1).await;
    let v0 = proxy.admin.status().await.unwrap().version;
    let v1 = proxy
        .admin
        .set_weights("prod", None, &[("blue", 0), ("green", 100)])
        .await
        .unwrap();
    assert_eq!(v1, v0 + 1);
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, &proxy.url("/"), &[]).await.2, "green");
    }
    let cfg = proxy.admin.get_config().await.unwrap();
    assert_eq!(cfg.version, v1);
    let fwd = cfg.config.listeners[0]
        .default_action
        .forward
        .clone()
        .unwrap();
    assert_eq!((fwd[0].weight, fwd[1].weight), (0, 100));
}

#[tokio::test]
async fn a_rejected_change_keeps_the_old_configuration_and_version() {
    let blue = backend("blue").await;
    let green = backend("green").await;
    let proxy = Proxy::start(&two_groups(
        &format!("\"{}\"", blue.addr),
        &format!("\"{}\"", green.addr),
        false,
    ))
    .await;
    let before = proxy.admin.get_config().await.unwrap();

    let err = proxy
        .admin
        .set_weights("prod", None, &[("blue", 1000)])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("400")
            && err.contains(
                "listeners[0].defaultAction.forward[0].weight: weight 1000 is out of range"
            ),
        "{err}"
    );

    let mut bad = before.config.clone();
    bad.listeners[0].default_action.forward.as_mut().unwrap()[1].target_group = "purple".into();
    let err = proxy.admin.put_config(&bad).await.unwrap_err().to_string();
    assert!(err.contains("unknown target group \"purple\""), "{err}");

    // A broken file: the reload is rejected with a located error.
    let text = std::fs::read_to_string(proxy.config_path()).unwrap();
    std::fs::write(
        proxy.config_path(),
        text.replace("weight: 100", "weight: lots"),
    )
    .unwrap();
    let err = proxy.admin.reload().await.unwrap_err().to_string();
    assert!(
        err.contains("lb.yaml:6:") && err.contains("listeners[0].defaultAction.forward[0].weight"),
        "{err}"
    );

    let after = proxy.admin.get_config().await.unwrap();
    assert_eq!(after, before);
    assert_eq!(get(&client(), &proxy.url("/"), &[]).await.2, "blue");

    // Fixing the file and reloading works.
    std::fs::write(
        proxy.config_path(),
        text.replace(
            "weight: 100}, {targetGroup: green, weight: 0}",
            "weight: 0}, {targetGroup: green, weight: 100}",
        ),
    )
    .unwrap();
    let v = proxy.admin.reload().await.unwrap();
    assert_eq!(v, before.version + 1);
    assert_eq!(get(&client(), &proxy.url("/"), &[]).await.2, "green");
}

#[tokio::test]
async fn a_long_request_to_a_deregistered_target_completes() {
    let blue = backend("blue").await;
    let green = backend("green").await;
    let proxy = Proxy::start(&two_groups(
        &format!("\"{}\"", blue.addr),
        &format!("\"{}\"", green.addr),
        true,
    ))
    .await;
    proxy.wait_healthy("blue", 1).await;
    proxy.wait_healthy("green", 1).await;
    let c = client();
    let url = proxy.url("/slow?ms=2000");
    let slow = tokio::spawn({
        let c = c.clone();
        async move { get(&c, &url, &[]).await }
    });
    proxy
        .wait_for("the slow request to reach blue", |h| {
            h.group("blue")
                .is_some_and(|g| g.targets.iter().any(|t| t.in_flight == 1))
        })
        .await;
    proxy
        .admin
        .set_weights("prod", None, &[("blue", 0), ("green", 100)])
        .await
        .unwrap();
    proxy.admin.set_targets::<&str>("blue", &[]).await.unwrap();

    let h = proxy.admin.health().await.unwrap();
    let t = &h.group("blue").unwrap().targets[0];
    assert_eq!((t.state, t.in_flight), (TargetState::Draining, 1));
    assert_eq!(
        get(&c, &proxy.url("/"), &[]).await.2,
        "green",
        "new requests avoid the draining target"
    );

    let (status, _, body) = slow.await.unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "blue"));
    proxy
        .wait_for("the drained target to be gone once idle", |h| {
            h.group("blue").unwrap().targets.is_empty()
        })
        .await;
}

#[tokio::test]
async fn unhealthy_targets_get_no_requests() {
    let good = backend("good").await;
    let bad = backend_with_health("bad", 500).await;
    let green = backend("green").await;
    let proxy = Proxy::start(&two_groups(
        &format!("\"{}\", \"{}\"", good.addr, bad.addr),
        &format!("\"{}\"", green.addr),
        true,
    ))
    .await;
    proxy.wait_healthy("blue", 1).await;
    for _ in 0..100 {
        let h = proxy.admin.health().await.unwrap();
        if h.group("blue").unwrap().unhealthy_host_count == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let h = proxy.admin.health().await.unwrap();
    let bad_state = h
        .group("blue")
        .unwrap()
        .targets
        .iter()
        .find(|t| t.address == bad.addr.to_string())
        .unwrap()
        .clone();
    assert_eq!(bad_state.state, TargetState::Unhealthy);
    assert!(bad_state.reason.contains("500"), "{}", bad_state.reason);
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, &proxy.url("/"), &[]).await.2, "good");
    }
}

#[tokio::test]
async fn websocket_pass_through() {
    let blue = backend("blue").await;
    let green = backend("green").await;
    let proxy = Proxy::start(&two_groups(
        &format!("\"{}\"", blue.addr),
        &format!("\"{}\"", green.addr),
        false,
    ))
    .await;
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/ws", proxy.listen))
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for i in 0..3 {
        ws.send(format!("hello {i}").into()).await.unwrap();
        let msg = ws.next().await.unwrap().unwrap();
        assert_eq!(msg.into_text().unwrap().as_str(), format!("hello {i}"));
    }
    let h = proxy.admin.health().await.unwrap();
    assert_eq!(
        h.group("blue").unwrap().targets[0].in_flight,
        1,
        "an open tunnel counts as in flight"
    );
}

#[tokio::test]
async fn server_sent_events_are_not_buffered() {
    let blue = backend("blue").await;
    let green = backend("green").await;
    let proxy = Proxy::start(&two_groups(
        &format!("\"{}\"", blue.addr),
        &format!("\"{}\"", green.addr),
        false,
    ))
    .await;
    let c = client();
    let start = tokio::time::Instant::now();
    let resp = c
        .request(
            http::Request::get(proxy.url("/sse"))
                .body(Default::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"data: event 0\n\n");
    assert!(
        start.elapsed() < Duration::from_millis(600),
        "first event took {:?}",
        start.elapsed()
    );
    let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&second[..], b"data: event 1\n\n");
    assert!(start.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn rules_fixed_responses_and_redirects() {
    let blue = backend("blue").await;
    let green = backend("green").await;
    let yaml = format!(
        "admin: ADMIN
listeners:
  - name: prod
    address: LISTEN
    rules:
      - conditions: [{{pathPattern: [/api/*]}}, {{httpHeader: {{name: x-canary, values: [\"y?s\"]}}}}]
        action: {{forward: [{{targetGroup: green}}]}}
      - conditions: [{{host: [\"*.green.test\"]}}]
        action: {{forward: [{{targetGroup: green}}]}}
      - conditions: [{{queryString: [{{key: v, value: \"2*\"}}]}}]
        action: {{forward: [{{targetGroup: green}}]}}
      - conditions: [{{pathPattern: [/old/*]}}]
        action: {{redirect: {{protocol: https, host: new.example, path: /new, statusCode: HTTP_301}}}}
      - conditions: [{{pathPattern: [/v?/gone]}}]
        action: {{fixedResponse: {{statusCode: 410, contentType: application/json, messageBody: '{{\"gone\":true}}'}}}}
    defaultAction:
      forward: [{{targetGroup: blue}}]
targetGroups:
  - name: blue
    targets: [\"{}\"]
  - name: green
    targets: [\"{}\"]
",
        blue.addr, green.addr
    );
    let proxy = Proxy::start(&yaml).await;
    let c = client();
    let body = |h: &'static [(&'static str, &'static str)], p: &'static str| {
        let c = c.clone();
        let url = proxy.url(p);
        async move { get(&c, &url, h).await.2 }
    };
    assert_eq!(body(&[("x-canary", "YES")], "/api/x").await, "green");
    assert_eq!(body(&[("x-canary", "no")], "/api/x").await, "blue");
    assert_eq!(body(&[], "/api/x").await, "blue");
    assert_eq!(body(&[("host", "a.green.test:80")], "/").await, "green");
    assert_eq!(body(&[], "/?a=1&v=2.1").await, "green");
    assert_eq!(body(&[], "/?v=1").await, "blue");

    let (status, h, b) = get(&c, &proxy.url("/v1/gone"), &[]).await;
    assert_eq!((status.as_u16(), b.as_str()), (410, "{\"gone\":true}"));
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        get(&c, &proxy.url("/v12/gone"), &[]).await.2,
        "blue",
        "? matches one character"
    );

    let (status, h, _) = get(&c, &proxy.url("/old/page?q=1"), &[("host", "old.example")]).await;
    assert_eq!(status.as_u16(), 301);
    assert_eq!(h["location"], "https://new.example/new?q=1");
}

#[tokio::test]
async fn connect_failures_are_retried_on_another_target_and_counted() {
    let blue = backend("blue").await;
    let green = backend("green").await;
    // Held but never listening: every connection to it is refused.
    let dead = format!("127.0.0.1:{}", common::free_port());
    let proxy = Proxy::start(&two_groups(
        &format!("\"{dead}\", \"{}\"", blue.addr),
        &format!("\"{}\"", green.addr),
        false,
    ))
    .await;
    let c = client();
    for _ in 0..10 {
        let (status, _, body) = get(&c, &proxy.url("/"), &[]).await;
        assert_eq!((status.as_u16(), body.as_str()), (200, "blue"));
    }
    let text = proxy.admin.prometheus().await.unwrap();
    let retries: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("cutover_proxy_target_group_retries_total{target_group=\"blue\"} ")
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        retries >= 4,
        "round robin sends about half the requests to the dead target first: {retries}"
    );
}

#[tokio::test]
async fn empty_groups_answer_503_counted_as_elb_errors_in_the_feed() {
    let green = backend("green").await;
    let proxy = Proxy::start(&two_groups("", &format!("\"{}\"", green.addr), false)).await;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let c = client();
    for _ in 0..5 {
        assert_eq!(get(&c, &proxy.url("/"), &[]).await.0.as_u16(), 503);
    }
    proxy
        .admin
        .set_weights("prod", None, &[("green", 1)])
        .await
        .unwrap();
    for _ in 0..7 {
        assert_eq!(get(&c, &proxy.url("/"), &[]).await.0.as_u16(), 200);
    }
    let mut totals = (0, 0, 0, 0);
    for _ in 0..40 {
        let feed = proxy.admin.metrics_feed(since).await.unwrap();
        totals = feed.seconds.iter().fold((0, 0, 0, 0), |acc, s| {
            let l = &s.listeners["prod"];
            let g = s
                .target_groups
                .get("green")
                .map(|g| g.target2xx)
                .unwrap_or(0);
            (
                acc.0 + l.request_count,
                acc.1 + l.elb5xx,
                acc.2 + l.target2xx,
                acc.3 + g,
            )
        });
        if totals.0 == 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(totals, (12, 5, 7, 7));
    let feed = proxy.admin.metrics_feed(since).await.unwrap();
    let last = feed.seconds.last().unwrap();
    assert_eq!(last.target_groups["green"].healthy_host_count, 1);
}

#[tokio::test]
async fn pushed_configuration_survives_a_restart_without_the_file() {
    let blue = backend("blue").await;
    let green = backend("green").await;
    let mut proxy = Proxy::start(&two_groups(
        &format!("\"{}\"", blue.addr),
        &format!("\"{}\"", green.addr),
        false,
    ))
    .await;
    let v = proxy
        .admin
        .set_weights("prod", None, &[("blue", 0), ("green", 100)])
        .await
        .unwrap();
    proxy.stop().await;

    // The control plane is gone and the proxy restarts from its state directory alone.
    proxy.launch(None).await;
    let cfg = proxy.admin.get_config().await.unwrap();
    assert_eq!(cfg.version, v);
    assert_eq!(get(&client(), &proxy.url("/"), &[]).await.2, "green");
    let v2 = proxy
        .admin
        .set_weights("prod", None, &[("blue", 100)])
        .await
        .unwrap();
    assert_eq!(v2, v + 1, "versions keep growing across restarts");
    proxy.stop().await;
}

#[tokio::test]
async fn a_tunnel_outliving_the_deregistration_delay_is_cut() {
    let blue = backend("blue").await;
    let yaml = format!(
        "admin: ADMIN
listeners:
  - name: prod
    address: LISTEN
    defaultAction: {{forward: [{{targetGroup: blue}}]}}
targetGroups:
  - name: blue
    targets: [\"{}\"]
    deregistrationDelaySeconds: 1
",
        blue.addr
    );
    let proxy = Proxy::start(&yaml).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", proxy.listen))
        .await
        .unwrap();
    ws.send("before".into()).await.unwrap();
    assert!(ws.next().await.unwrap().is_ok());
    let start = tokio::time::Instant::now();
    proxy.admin.set_targets::<&str>("blue", &[]).await.unwrap();
    // Still usable while draining.
    ws.send("during".into()).await.unwrap();
    assert_eq!(
        ws.next()
            .await
            .unwrap()
            .unwrap()
            .into_text()
            .unwrap()
            .as_str(),
        "during"
    );
    // Then cut once the delay elapsed.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => break,
                Some(Ok(m)) if m.is_close() => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "tunnel was not cut");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "cut after {waited:?}"
    );
    let h = proxy.admin.health().await.unwrap();
    assert!(h.group("blue").unwrap().targets.is_empty());
}

#[tokio::test]
async fn starts_empty_with_an_admin_address_and_takes_pushed_configuration() {
    let blue = backend("blue").await;
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", common::free_port());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let address_file = dir.path().join("admin.address");
    let opts = cutover_proxy::ProxyOptions {
        config_path: None,
        state_dir: Some(dir.path().to_owned()),
        workers: 1,
        admin_address: Some("127.0.0.1:0".into()),
        admin_token_file: None,
        admin_address_file: Some(address_file.clone()),
        clock: Default::default(),
    };
    let task = tokio::spawn(cutover_proxy::run(opts, async {
        let _ = rx.await;
    }));
    let admin = common::admin_address(&address_file, || None).await;
    let client = cutover_proxy::client::AdminClient::new(format!("http://{admin}"));
    let status = client.status().await.expect("admin api answers");
    assert!(status.listeners.is_empty());
    let config = cutover_proxy::config::parse_json(
        "<test>",
        &format!(
            r#"{{"listeners": [{{"name": "prod", "address": "{listen}",
                "defaultAction": {{"forward": [{{"targetGroup": "blue"}}]}}}}],
              "targetGroups": [{{"name": "blue", "targets": ["{}"]}}]}}"#,
            blue.addr
        ),
    )
    .unwrap();
    let v = client.put_config(&config).await.unwrap();
    assert_eq!(v, status.version + 1);
    let (code, _, body) = get(&common::client(), &format!("http://{listen}/"), &[]).await;
    assert_eq!((code.as_u16(), body.as_str()), (200, "blue"));
    assert!(
        dir.path().join("config.json").exists(),
        "persisted before acknowledged"
    );
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}
