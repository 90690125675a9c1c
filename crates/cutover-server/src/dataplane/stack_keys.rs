//! Tests: every data-plane key a stack service's `loadBalancer` accepts (the gateway's
//! `authorizer`, `throttle`, `guardedPaths` and `sourceIp`, and the target group's `protocol`,
//! `protocolVersion`, `idleTimeoutSeconds`, `maxConnectionsPerTarget`, `caFile`,
//! `insecureSkipVerify`, and the health check's `grpcCode`) goes from `apply` to the
//! configuration the data plane gets.

use crate::testing::{Harness, WEB_TASKDEF};
use cutover_proxy::config::{
    ProtocolVersion, ProxyConfig, RuleConfig, TargetGroupConfig, TargetProtocol,
};

/// Applies service `web` with `keys` (lines indented under its `loadBalancer`) and returns
/// the configuration the data plane was given.
async fn applied(keys: &str) -> ProxyConfig {
    let h = Harness::start().await;
    let stack = format!(
        "services:
  web:
    runtime: process
    desiredCount: 1
    taskDefinition: ./web.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18080
      testListener: 127.0.0.1:18081
{keys}"
    );
    h.apply(&stack, &[("./web.json", WEB_TASKDEF)]).await;
    crate::dataplane::DataPlane::sync(h.dataplane.as_ref())
        .await
        .unwrap();
    let cfg = h.dataplane.applied().pop().unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.listeners.len(), 2, "{cfg:?}");
    cfg
}

/// Both target groups of `web`, which carry the same keys.
fn groups(cfg: &ProxyConfig) -> Vec<&TargetGroupConfig> {
    let g: Vec<_> = cfg
        .target_groups
        .iter()
        .filter(|g| g.name.starts_with("web-"))
        .collect();
    assert_eq!(g.len(), 2);
    g
}

/// The one rule of each listener.
fn rules(cfg: &ProxyConfig) -> Vec<&RuleConfig> {
    cfg.listeners
        .iter()
        .map(|l| {
            assert_eq!(l.rules.len(), 1, "{l:?}");
            &l.rules[0]
        })
        .collect()
}

const AUTHORIZER: &str = "      authorizer: {type: JWT, issuer: \"https://issuer.example\", audience: [api], jwksUri: \"https://issuer.example/jwks.json\", scopes: [read]}\n";

#[tokio::test(start_paused = true)]
async fn authorizer_guards_every_path_of_both_listeners() {
    let cfg = applied(AUTHORIZER).await;
    for (l, r) in cfg.listeners.iter().zip(rules(&cfg)) {
        let a = r.authorizer.as_ref().expect("authorizer");
        assert_eq!(
            (a.issuer.as_str(), a.scopes.as_slice()),
            ("https://issuer.example", &["read".to_owned()][..])
        );
        assert_eq!(r.conditions[0].path_pattern, Some(vec!["*".to_owned()]));
        assert_eq!(r.action, l.default_action);
    }
}

#[tokio::test(start_paused = true)]
async fn throttle_reaches_the_rule() {
    let cfg = applied("      throttle: {rate: 5, burst: 10, key: \"header:x-api-key\"}\n").await;
    for r in rules(&cfg) {
        let t = r.throttle.as_ref().expect("throttle");
        assert_eq!(
            (t.rate, t.burst, t.key.to_string().as_str()),
            (5.0, 10, "header:x-api-key")
        );
        assert!(r.authorizer.is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn guarded_paths_scope_the_authorizer_and_other_paths_are_forwarded() {
    let cfg = applied(&format!("{AUTHORIZER}      guardedPaths: [\"/api/*\"]\n")).await;
    for (l, r) in cfg.listeners.iter().zip(rules(&cfg)) {
        assert_eq!(
            r.conditions[0].path_pattern,
            Some(vec!["/api/*".to_owned()])
        );
        assert!(r.authorizer.is_some());
        assert!(l.default_action.forward.is_some());
    }
}

#[tokio::test(start_paused = true)]
async fn source_ip_forwards_only_those_networks_and_answers_403_to_others() {
    let cfg = applied("      sourceIp: [10.0.0.0/8, \"::1/128\"]\n").await;
    for (l, r) in cfg.listeners.iter().zip(rules(&cfg)) {
        let nets = vec!["10.0.0.0/8".to_owned(), "::1/128".to_owned()];
        assert_eq!(r.conditions[0].source_ip, Some(nets));
        assert!(r.action.forward.is_some());
        let fixed = l.default_action.fixed_response.as_ref().expect("403");
        assert_eq!(fixed.status_code, 403);
    }
}

#[tokio::test(start_paused = true)]
async fn protocol_version_reaches_the_target_groups() {
    let cfg = applied("      protocol: HTTP\n      protocolVersion: GRPC\n").await;
    for g in groups(&cfg) {
        assert_eq!(g.protocol, TargetProtocol::Http);
        assert_eq!(g.protocol_version, Some(ProtocolVersion::Grpc));
        assert!(g.connection().http2());
    }
}

#[tokio::test(start_paused = true)]
async fn a_grpc_health_check_s_codes_reach_the_target_groups() {
    let cfg = applied(
        "      protocol: HTTP\n      protocolVersion: GRPC\n      healthCheck: {path: /AWS.ALB/healthcheck, grpcCode: \"0,12\"}\n",
    )
    .await;
    for g in groups(&cfg) {
        let hc = g.health_check.as_ref().unwrap();
        assert_eq!(hc.path, "/AWS.ALB/healthcheck");
        let codes = hc.grpc_code.as_ref().unwrap();
        assert_eq!(codes.as_str(), "0,12");
        assert!(codes.matches(0) && codes.matches(12) && !codes.matches(1));
    }
}

#[tokio::test(start_paused = true)]
async fn the_pool_idle_timeout_reaches_the_target_groups() {
    let cfg = applied("      idleTimeoutSeconds: 12.5\n").await;
    for g in groups(&cfg) {
        assert_eq!(g.idle_timeout_seconds, Some(12.5));
    }
}

#[tokio::test(start_paused = true)]
async fn the_per_target_connection_limit_reaches_the_target_groups() {
    let cfg = applied("      maxConnectionsPerTarget: 64\n").await;
    for g in groups(&cfg) {
        assert_eq!(g.max_connections_per_target, Some(64));
    }
}

#[tokio::test(start_paused = true)]
async fn tls_to_targets_reaches_the_target_groups() {
    let cfg = applied(
        "      protocol: HTTPS\n      protocolVersion: HTTP2\n      caFile: /etc/cutover/ca.pem\n",
    )
    .await;
    for g in groups(&cfg) {
        let c = g.connection();
        assert!(c.tls() && c.http2());
        assert_eq!(c.ca_file.as_deref(), Some("/etc/cutover/ca.pem"));
        assert!(!c.insecure_skip_verify);
    }
    let cfg = applied("      protocol: HTTPS\n      insecureSkipVerify: true\n").await;
    for g in groups(&cfg) {
        assert!(g.insecure_skip_verify && g.ca_file.is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn mismatched_keys_are_refused_at_their_place_in_the_stack() {
    let h = Harness::start().await;
    let stack = "services:
  web:
    runtime: process
    taskDefinition: ./web.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18080
      protocol: h2c
      protocolVersion: GRPC
      caFile: ca.pem
      sourceIp: [10.0.0.0/33]
  api:
    runtime: process
    taskDefinition: ./web.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18090
      healthCheck: {grpcCode: \"0\"}
";
    let body = serde_json::json!({"file": "stack.yaml", "content": stack,
        "files": {"./web.json": WEB_TASKDEF}});
    let (status, body) = h
        .call(axum::http::Method::POST, "/v1/apply", Some(body))
        .await;
    assert_eq!(
        status,
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "{body:#}"
    );
    let text = body.to_string();
    for path in [
        "services.web.loadBalancer.protocolVersion",
        "services.web.loadBalancer.caFile",
        "services.web.loadBalancer.sourceIp[0]",
        "services.api.loadBalancer.healthCheck.grpcCode",
    ] {
        assert!(text.contains(path), "{path}: {body:#}");
    }
}
