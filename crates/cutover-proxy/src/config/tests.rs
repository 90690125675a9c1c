use super::*;

const SAMPLE: &str = r#"admin: 127.0.0.1:19900
listeners:
  - name: prod
    address: 127.0.0.1:18080
    defaultAction:
      forward: [{targetGroup: blue, weight: 100}, {targetGroup: green, weight: 0}]
targetGroups:
  - name: blue
    targets: ["127.0.0.1:19001"]
    healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2, matcher: "200-299"}
    deregistrationDelaySeconds: 5
  - name: green
    targets: ["127.0.0.1:19002"]
"#;

fn err_of(text: &str) -> String {
    parse("lb.yaml", text).unwrap_err().to_string()
}

#[test]
fn parses_the_standalone_contract() {
    let c = parse("lb.yaml", SAMPLE).unwrap();
    assert_eq!(c.admin.as_deref(), Some("127.0.0.1:19900"));
    assert_eq!(c.listeners[0].name, "prod");
    let fwd = c.listeners[0].default_action.forward.as_ref().unwrap();
    assert_eq!(fwd[1].target_group, "green");
    assert_eq!(fwd[1].weight, 0);
    let hc = c.target_groups[0].health_check.as_ref().unwrap();
    assert_eq!(hc.healthy_threshold_count, 2);
    assert_eq!(c.target_groups[0].deregistration_delay_seconds, 5);
    assert_eq!(
        c.target_groups[1].deregistration_delay_seconds,
        DEFAULT_DEREGISTRATION_DELAY_SECONDS
    );
}

#[test]
fn json_round_trip_is_identical() {
    let c = parse("lb.yaml", SAMPLE).unwrap();
    let json = serde_json::to_string_pretty(&c).unwrap();
    assert_eq!(parse_json("<request>", &json).unwrap(), c);
}

#[test]
fn type_errors_are_located_with_the_field_path() {
    let text = SAMPLE.replace("weight: 0}", "weight: many}");
    assert_eq!(
        err_of(&text),
        "lb.yaml:6:80: listeners[0].defaultAction.forward[1].weight: expected an integer, found \"many\""
    );
}

#[test]
fn unknown_fields_are_rejected() {
    let e = err_of(&SAMPLE.replace("deregistrationDelaySeconds", "deregistrationDelay"));
    assert_eq!(
        e,
        "lb.yaml:11:5: targetGroups[0].deregistrationDelay: unknown key \"deregistrationDelay\", expected one of name, targets, healthCheck, deregistrationDelaySeconds, responseTimeoutSeconds, protocol, protocolVersion, idleTimeoutSeconds, maxConnectionsPerTarget, caFile, insecureSkipVerify"
    );
    let e = err_of(&SAMPLE.replace("healthCheck:", "helthCheck:"));
    assert_eq!(
        e,
        "lb.yaml:10:5: targetGroups[0].helthCheck: unknown key \"helthCheck\", did you mean \"healthCheck\"?"
    );
}

#[test]
fn target_protocol_and_pool_settings_are_read_and_checked() {
    let text = SAMPLE.replace(
        "  - name: green\n",
        "  - name: green\n    protocol: h2c\n    idleTimeoutSeconds: 5\n    maxConnectionsPerTarget: 8\n",
    );
    let c = parse("lb.yaml", &text).unwrap();
    assert_eq!(c.target_groups[0].protocol, TargetProtocol::Http1);
    let green = &c.target_groups[1];
    assert_eq!(green.protocol, TargetProtocol::H2c);
    assert_eq!(
        green.upstream_idle_timeout(),
        std::time::Duration::from_secs(5)
    );
    assert_eq!(green.max_connections_per_target, Some(8));
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(parse_json("<request>", &json).unwrap(), c);
    assert_eq!(
        err_of(&text.replace("protocol: h2c", "protocol: spdy")),
        "lb.yaml:13:15: targetGroups[1].protocol: unknown variant \"spdy\", expected one of http1, h2c, HTTP, HTTPS"
    );
    assert_eq!(
        err_of(&text.replace("PerTarget: 8", "PerTarget: 0")),
        "lb.yaml:15:30: targetGroups[1].maxConnectionsPerTarget: must be between 1 and 100000"
    );
}

#[test]
fn tls_to_targets_and_the_protocol_version_are_read_and_checked() {
    let text = SAMPLE.replace(
        "  - name: green\n",
        "  - name: green\n    protocol: HTTPS\n    protocolVersion: GRPC\n    caFile: /etc/ca.pem\n",
    );
    let c = parse("lb.yaml", &text).unwrap();
    let green = c.target_groups[1].connection();
    assert!(green.tls() && green.http2());
    assert_eq!(green.ca_file.as_deref(), Some("/etc/ca.pem"));
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(parse_json("<request>", &json).unwrap(), c);
    assert_eq!(
        err_of(&text.replace("GRPC", "HTTP3")),
        "lb.yaml:14:22: targetGroups[1].protocolVersion: unknown variant \"HTTP3\", expected one of HTTP1, HTTP2, GRPC"
    );
    assert_eq!(
        err_of(&text.replace("protocol: HTTPS", "protocol: h2c")),
        "lb.yaml:14:22: targetGroups[1].protocolVersion: goes with protocol HTTP or HTTPS (http1 and h2c name their version)"
    );
    assert_eq!(
        err_of(&text.replace("protocol: HTTPS", "protocol: HTTP")),
        "lb.yaml:15:13: targetGroups[1].caFile: needs protocol HTTPS"
    );
    assert_eq!(
        err_of(&text.replace(
            "caFile: /etc/ca.pem",
            "caFile: /etc/ca.pem\n    insecureSkipVerify: true"
        )),
        "lb.yaml:16:25: targetGroups[1].insecureSkipVerify: verifies nothing, so a caFile with it would be ignored: give one of them"
    );
}

#[test]
fn json_bodies_are_read_by_the_same_layer() {
    let e = deserialize::<crate::api::WeightsRequest>(
        "<request>",
        "{\"weights\": {\"blue\": 1},\n \"colour\": 2}",
        Format::Json,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "<request>:2:2: colour: unknown key \"colour\", expected one of rule, weights"
    );
    let e = parse_json("<request>", "{\"listeners\": [}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "<request>:1:16: expected a JSON value, found `}`"
    );
}

#[test]
fn weight_out_of_range_is_located() {
    let e = err_of(&SAMPLE.replace("weight: 0}", "weight: 1000}"));
    assert_eq!(
        e,
        "lb.yaml:6:80: listeners[0].defaultAction.forward[1].weight: weight 1000 is out of range 0..999"
    );
}

#[test]
fn unknown_target_group_is_located() {
    let e = err_of(&SAMPLE.replace("targetGroup: green", "targetGroup: purple"));
    assert_eq!(
        e,
        "lb.yaml:6:65: listeners[0].defaultAction.forward[1].targetGroup: unknown target group \"purple\""
    );
}

#[test]
fn semantic_errors_in_json_are_located() {
    let c = parse("lb.yaml", SAMPLE).unwrap();
    let mut json = serde_json::to_value(&c).unwrap();
    json["targetGroups"][1]["name"] = "blue".into();
    let text = serde_json::to_string_pretty(&json).unwrap();
    let e = parse_json("<request>", &text).unwrap_err();
    assert_eq!(e.path, "targetGroups[1].name");
    assert!(e.location.is_some());
    assert!(e.message.contains("duplicate target group"), "{e}");
}

#[test]
fn all_zero_weights_are_rejected() {
    let e = err_of(&SAMPLE.replace("weight: 100}", "weight: 0}"));
    assert!(
        e.contains(
            "listeners[0].defaultAction.forward: at least one target group needs a non-zero weight"
        ),
        "{e}"
    );
}

#[test]
fn duplicate_listener_addresses_are_rejected() {
    let text = SAMPLE.replace(
        "targetGroups:",
        "  - name: test\n    address: 127.0.0.1:18080\n    defaultAction: {fixedResponse: {statusCode: 404}}\ntargetGroups:",
    );
    let e = err_of(&text);
    assert!(
        e.starts_with("lb.yaml:8:14: listeners[1].address: address 127.0.0.1:18080 is used twice"),
        "{e}"
    );
}

#[test]
fn actions_and_conditions_need_exactly_one_kind() {
    let text = SAMPLE.replace(
        "    defaultAction:",
        "    rules:\n      - conditions: [{pathPattern: [/a], host: [x]}]\n        action: {fixedResponse: {statusCode: 200}}\n    defaultAction:",
    );
    assert!(
        err_of(&text)
            .contains("listeners[0].rules[0].conditions[0]: a condition needs exactly one")
    );
    let text = SAMPLE.replace(
        "    defaultAction:",
        "    rules:\n      - action: {}\n    defaultAction:",
    );
    assert!(err_of(&text).contains("listeners[0].rules[0].action: an action needs exactly one"));
}

#[test]
fn matchers_are_typed_and_located() {
    // The grammar itself is `cutover_spec::matcher`'s (tested there).
    let e = err_of(&SAMPLE.replace("\"200-299\"", "\"2xx\""));
    assert!(
        e.contains("targetGroups[0].healthCheck.matcher") && e.contains("invalid matcher"),
        "{e}"
    );
    let grpc = SAMPLE.replace(
        "matcher: \"200-299\"",
        "matcher: \"200-299\", grpcCode: \"0\"",
    );
    let e = err_of(&grpc);
    assert!(
        e.contains("targetGroups[0].healthCheck.grpcCode: needs protocolVersion GRPC"),
        "{e}"
    );
    let e = err_of(&SAMPLE.replace("matcher: \"200-299\"", "grpcCode: \"100\""));
    assert!(
        e.contains("targetGroups[0].healthCheck.grpcCode") && e.contains("invalid grpcCode"),
        "{e}"
    );
}

#[test]
fn redirect_codes() {
    assert_eq!(RedirectCode::Name("HTTP_301".into()).status(), Some(301));
    assert_eq!(RedirectCode::Number(308).status(), Some(308));
    assert_eq!(RedirectCode::Number(200).status(), None);
}

#[test]
fn health_check_seconds_are_bounded_so_no_duration_overflows() {
    for (field, value) in [("intervalSeconds", "1e20"), ("timeoutSeconds", "1e20")] {
        let text = SAMPLE.replace(&format!("{field}: 1,"), &format!("{field}: {value},"));
        let err = err_of(&text);
        assert!(err.contains(field) && err.contains("86400"), "{err}");
    }
}

const GATEWAY: &str = r#"listeners:
  - name: api
    address: 127.0.0.1:18081
    rules:
      - conditions: [{pathPattern: ["/api/*"]}, {sourceIp: ["10.0.0.0/8", "::1/128"]}]
        authorizer: {type: JWT, issuer: "https://issuer.example", audience: ["api"], jwksUri: "file:///etc/jwks.json", scopes: [read], claimsToHeaders: {sub: x-user-id}}
        throttle: {rate: 100, burst: 200, key: "claim:sub"}
        action: {forward: [{targetGroup: api, weight: 1}]}
    defaultAction: {fixedResponse: {statusCode: 404}}
targetGroups:
  - name: api
    targets: ["127.0.0.1:19001"]
"#;

#[test]
fn gateway_keys_parse_and_round_trip() {
    let c = parse("lb.yaml", GATEWAY).unwrap();
    let r = &c.listeners[0].rules[0];
    let a = r.authorizer.as_ref().unwrap();
    assert_eq!(a.kind, AuthorizerKind::Jwt);
    assert_eq!(a.leeway_seconds(), DEFAULT_LEEWAY_SECONDS);
    assert_eq!(a.claims_to_headers["sub"], "x-user-id");
    let t = r.throttle.as_ref().unwrap();
    assert_eq!((t.rate, t.burst), (100.0, 200));
    assert_eq!(t.key, ThrottleKey::Claim("sub".into()));
    assert_eq!(r.conditions[1].source_ip.as_ref().unwrap().len(), 2);
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(parse_json("config.json", &json).unwrap(), c);
}

#[test]
fn gateway_mistakes_are_located() {
    for (from, to, want) in [
        (
            "type: JWT",
            "type: OIDC",
            "lb.yaml:6:28: listeners[0].rules[0].authorizer.type: unknown variant",
        ),
        (
            "\"file:///etc/jwks.json\"",
            "\"ftp://x\"",
            "authorizer.jwksUri: \"ftp://x\" must be",
        ),
        (
            "audience: [\"api\"]",
            "audience: []",
            "authorizer.audience: needs at least one",
        ),
        (
            "x-user-id",
            "\"bad header\"",
            "authorizer.claimsToHeaders.sub: invalid header name",
        ),
        (
            "rate: 100",
            "rate: 0",
            "throttle.rate: must be between 0.001",
        ),
        (
            "burst: 200",
            "burst: 0",
            "throttle.burst: must be between 1",
        ),
        ("\"claim:sub\"", "\"cookie:x\"", "throttle.key"),
        (
            "\"::1/128\"",
            "\"::1/129\"",
            "conditions[1].sourceIp[1]: invalid prefix length",
        ),
        (
            "scopes:",
            "scope:",
            "unknown key \"scope\", did you mean \"scopes\"?",
        ),
    ] {
        let text = GATEWAY.replace(from, to);
        assert_ne!(text, GATEWAY, "{from}");
        let e = err_of(&text);
        assert!(e.contains(want), "{to}: {e}");
    }
    // A claim key needs an authorizer on the rule.
    let text = GATEWAY.replace(
        "        authorizer: {type: JWT, issuer: \"https://issuer.example\", audience: [\"api\"], jwksUri: \"file:///etc/jwks.json\", scopes: [read], claimsToHeaders: {sub: x-user-id}}\n",
        "",
    );
    assert!(
        err_of(&text).contains("throttle.key: a claim key needs an authorizer"),
        "{}",
        err_of(&text)
    );
}
