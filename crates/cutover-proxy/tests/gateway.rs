//! The API-gateway features of rules on loopback sockets: JWT authorizers (RS256, ES256, EdDSA,
//! every refusal, JWK set refresh), claims forwarded as headers, throttling on the injected
//! clock, source-IP conditions and per-target metrics.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{Proxy, backend, client, get};
use cutover_clock::Clock;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair as _;
use serde_json::json;

const ISSUER: &str = "https://issuer.example";
/// Unix time of the tests' clock at start (2026-01-01).
const T0: u64 = 1_767_225_600;

/// A clock the test moves by hand.
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A signing key and its public JWK.
struct SigningKey {
    kid: &'static str,
    alg: Algorithm,
    key: EncodingKey,
    jwk: serde_json::Value,
}

fn rsa_key() -> SigningKey {
    // A 2048-bit RSA key made with openssl for these tests only (ring cannot generate RSA).
    let der = include_bytes!("fixtures/rsa-test-key.der");
    let pair = ring::signature::RsaKeyPair::from_der(der).unwrap();
    let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
    let (n, e) = (public.n, public.e);
    SigningKey {
        kid: "rsa",
        alg: Algorithm::RS256,
        key: EncodingKey::from_rsa_der(der),
        jwk: json!({"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256", "n": B64.encode(n), "e": B64.encode(e)}),
    }
}

fn ec_key(kid: &'static str) -> SigningKey {
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    SigningKey {
        kid,
        alg: Algorithm::ES256,
        key: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])}),
    }
}

fn ed_key() -> SigningKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    SigningKey {
        kid: "ed",
        alg: Algorithm::EdDSA,
        key: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": B64.encode(pair.public_key().as_ref())}),
    }
}

fn write_jwks(path: &std::path::Path, keys: &[&SigningKey]) {
    let set = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    std::fs::write(path, set.to_string()).unwrap();
}

fn sign(k: &SigningKey, claims: serde_json::Value) -> String {
    let mut h = Header::new(k.alg);
    h.kid = Some(k.kid.to_owned());
    jsonwebtoken::encode(&h, &claims, &k.key).unwrap()
}

fn claims(sub: &str) -> serde_json::Value {
    json!({"iss": ISSUER, "aud": "api", "sub": sub, "exp": T0 + 300, "iat": T0, "scope": "read write"})
}

struct Setup {
    proxy: Proxy,
    clock: Arc<ManualClock>,
    jwks: std::path::PathBuf,
    _jwks_dir: tempfile::TempDir,
    backend: common::Backend,
}

async fn setup(keys: &[&SigningKey]) -> Setup {
    let api = backend("api").await;
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    write_jwks(&jwks, keys);
    let clock = Arc::new(ManualClock(AtomicU64::new(T0 * 1000)));
    let authorizer = format!(
        "{{type: JWT, issuer: \"{ISSUER}\", audience: [api, cli], jwksUri: \"file://{}\", leewaySeconds: 5",
        jwks.display()
    );
    let yaml = format!(
        "admin: ADMIN
listeners:
  - name: api
    address: LISTEN
    rules:
      - conditions: [{{pathPattern: [\"/admin/*\"]}}]
        authorizer: {authorizer}, scopes: [admin, root]}}
        action: {{forward: [{{targetGroup: api, weight: 1}}]}}
      - conditions: [{{pathPattern: [\"/api/*\"]}}]
        authorizer: {authorizer}, claimsToHeaders: {{sub: x-user-id, scope: x-user-scope}}}}
        action: {{forward: [{{targetGroup: api, weight: 1}}]}}
      - conditions: [{{pathPattern: [\"/limited/*\"]}}]
        throttle: {{rate: 10, burst: 20}}
        action: {{forward: [{{targetGroup: api, weight: 1}}]}}
      - conditions: [{{pathPattern: [\"/per-user/*\"]}}]
        authorizer: {authorizer}}}
        throttle: {{rate: 1, burst: 2, key: \"claim:sub\"}}
        action: {{forward: [{{targetGroup: api, weight: 1}}]}}
      - conditions: [{{sourceIp: [\"10.0.0.0/8\", \"::1/128\"]}}]
        action: {{fixedResponse: {{statusCode: 200, messageBody: internal}}}}
      - conditions: [{{sourceIp: [\"127.0.0.1/32\"]}}, {{pathPattern: [\"/local\"]}}]
        action: {{fixedResponse: {{statusCode: 200, messageBody: local}}}}
    defaultAction: {{fixedResponse: {{statusCode: 404}}}}
targetGroups:
  - name: api
    targets: [\"{}\"]
",
        api.addr
    );
    let shared: cutover_clock::SharedClock = clock.clone();
    let proxy = Proxy::start_with_clock(&yaml, cutover_proxy::ProxyClock(shared)).await;
    Setup {
        proxy,
        clock,
        jwks,
        _jwks_dir: dir,
        backend: api,
    }
}

async fn call(s: &Setup, path: &str, token: Option<&str>) -> (u16, http::HeaderMap, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (status, h, body) = get(&client(), &s.proxy.url(path), &headers).await;
    (status.as_u16(), h, body)
}

fn challenge(h: &http::HeaderMap) -> &str {
    h.get("www-authenticate").unwrap().to_str().unwrap()
}

#[tokio::test]
async fn tokens_of_each_algorithm_are_checked_and_every_refusal_is_a_401() {
    let (rsa, ec, ed) = (rsa_key(), ec_key("ec"), ed_key());
    let s = setup(&[&rsa, &ec, &ed]).await;

    for k in [&rsa, &ec, &ed] {
        let (status, _, body) = call(&s, "/api/x", Some(&sign(k, claims("alice")))).await;
        assert_eq!((status, body.as_str()), (200, "api"), "{:?}", k.alg);
    }

    let (status, h, _) = call(&s, "/api/x", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge(&h),
        "Bearer",
        "no token: no error code (RFC 6750 3.1)"
    );

    let mut cases: Vec<(&str, String)> = Vec::new();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims("alice");
        f(&mut c);
        sign(&ec, c)
    };
    cases.push(("expired", with(&|c| c["exp"] = json!(T0 - 6))));
    cases.push((
        "no exp",
        with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
    ));
    cases.push(("not yet valid", with(&|c| c["nbf"] = json!(T0 + 6))));
    cases.push(("wrong audience", with(&|c| c["aud"] = json!(["other"]))));
    cases.push((
        "wrong issuer",
        with(&|c| c["iss"] = json!("https://evil.example")),
    ));
    cases.push(("garbage", "not.a.token".to_owned()));
    // alg none: a header and payload with an empty signature.
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","kid":"ec"}"#),
        B64.encode(claims("alice").to_string())
    );
    cases.push(("alg none", none));
    // HS256 with the RSA public key's published text as the secret (key confusion).
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rsa".into());
    let secret = std::fs::read(&s.jwks).unwrap();
    let confused =
        jsonwebtoken::encode(&h, &claims("alice"), &EncodingKey::from_secret(&secret)).unwrap();
    cases.push(("HS256 confusion", confused));
    // A valid signature by a key whose kid names another key of the set.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("ed".into());
    cases.push((
        "kid of another key",
        jsonwebtoken::encode(&h, &claims("alice"), &ec.key).unwrap(),
    ));
    for (what, token) in &cases {
        let (status, h, _) = call(&s, "/api/x", Some(token)).await;
        assert_eq!(status, 401, "{what}");
        assert!(
            challenge(&h).starts_with("Bearer error=\"invalid_token\""),
            "{what}: {h:?}"
        );
    }

    // Within the leeway (5 s) both ways.
    let ok = with(&|c| {
        c["exp"] = json!(T0 - 4);
        c["nbf"] = json!(T0 + 4);
    });
    assert_eq!(call(&s, "/api/x", Some(&ok)).await.0, 200);
    // Cognito access tokens: no aud, client_id instead.
    let cognito = with(&|c| {
        c.as_object_mut().unwrap().remove("aud");
        c["client_id"] = json!("cli");
    });
    assert_eq!(call(&s, "/api/x", Some(&cognito)).await.0, 200);
}

#[tokio::test]
async fn scopes_claims_and_an_unknown_kid_refreshes_the_set() {
    let (ec, later) = (ec_key("ec"), ec_key("later"));
    let s = setup(&[&ec]).await;
    let c = client();

    // Route scopes: at least one of [admin, root], in `scope` or `scp`.
    let (status, h, _) = call(&s, "/admin/x", Some(&sign(&ec, claims("alice")))).await;
    assert_eq!(status, 403);
    assert_eq!(
        challenge(&h),
        "Bearer error=\"insufficient_scope\", scope=\"admin root\""
    );
    let mut root = claims("alice");
    root["scope"] = json!("read root");
    assert_eq!(call(&s, "/admin/x", Some(&sign(&ec, root))).await.0, 200);
    let mut scp = claims("alice");
    scp.as_object_mut().unwrap().remove("scope");
    scp["scp"] = json!(["admin"]);
    assert_eq!(call(&s, "/admin/x", Some(&sign(&ec, scp))).await.0, 200);

    // Claims forwarded; client-sent copies removed.
    let auth = format!("Bearer {}", sign(&ec, claims("alice")));
    let (status, h, _) = get(
        &c,
        &s.proxy.url("/api/x"),
        &[
            ("authorization", &auth),
            ("x-user-id", "mallory"),
            ("X-User-Scope", "admin"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let seen: Vec<_> = h.get_all("x-echo-x-user-id").iter().collect();
    assert_eq!(seen, ["alice"]);
    let seen: Vec<_> = h.get_all("x-echo-x-user-scope").iter().collect();
    assert_eq!(seen, ["read write"]);
    // A refused request never reaches the target, spoofed headers or not.
    let (status, h, _) = get(&c, &s.proxy.url("/api/x"), &[("x-user-id", "mallory")]).await;
    assert_eq!(status, 401);
    assert!(h.get("x-echo-x-user-id").is_none());

    // A key published after the set was read: refused until a refetch is allowed, then found.
    write_jwks(&s.jwks, &[&ec, &later]);
    let token = sign(&later, claims("bob"));
    assert_eq!(
        call(&s, "/api/x", Some(&token)).await.0,
        401,
        "rate-limited"
    );
    s.clock.0.fetch_add(10_000, Ordering::SeqCst);
    let (status, _, body) = call(&s, "/api/x", Some(&token)).await;
    assert_eq!((status, body.as_str()), (200, "api"));

    // The set gone: the keys already known still serve.
    std::fs::remove_file(&s.jwks).unwrap();
    s.clock.0.fetch_add(20_000, Ordering::SeqCst);
    let fresh = |sub| {
        let mut c = claims(sub);
        c["exp"] = json!(T0 + 3600);
        c
    };
    assert_eq!(
        call(&s, "/api/x", Some(&sign(&ec, fresh("carol")))).await.0,
        200
    );
    let metrics = s.proxy.admin.prometheus().await.unwrap();
    assert!(
        metrics.contains("cutover_proxy_listener_unauthorized_total{listener=\"api\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unreachable_set_answers_503() {
    let ec = ec_key("ec");
    let s = setup(&[&ec]).await;
    std::fs::remove_file(&s.jwks).unwrap();
    let (status, h, _) = call(&s, "/api/x", Some(&sign(&ec, claims("alice")))).await;
    assert_eq!(status, 503);
    assert!(challenge(&h).contains("temporarily_unavailable"));
}

#[tokio::test]
async fn throttling_answers_429_past_the_burst_and_refills_at_the_rate() {
    let ec = ec_key("ec");
    let s = setup(&[&ec]).await;
    let mut statuses = Vec::new();
    for _ in 0..50 {
        let (status, h, _) = call(&s, "/limited/x", None).await;
        if status == 429 {
            assert_eq!(h["retry-after"], "1");
        }
        statuses.push(status);
    }
    // The clock stands still: exactly the burst passes.
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 20);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 30);
    // One second at 10 per second.
    s.clock.0.fetch_add(1_000, Ordering::SeqCst);
    let mut ok = 0;
    for _ in 0..15 {
        ok += usize::from(call(&s, "/limited/x", None).await.0 == 200);
    }
    assert_eq!(ok, 10);

    // Keyed by a claim: each user has a bucket of 2.
    for (sub, want) in [("alice", [200, 200, 429]), ("bob", [200, 200, 429])] {
        let token = sign(&ec, claims(sub));
        for w in want {
            assert_eq!(call(&s, "/per-user/x", Some(&token)).await.0, w, "{sub}");
        }
    }
    let metrics = s.proxy.admin.prometheus().await.unwrap();
    assert!(
        metrics.contains("cutover_proxy_listener_throttled_total{listener=\"api\"} 37"),
        "{metrics}"
    );
}

#[tokio::test]
async fn source_ip_rules_and_per_target_metrics() {
    let ec = ec_key("ec");
    let s = setup(&[&ec]).await;
    // 127.0.0.1 is neither in 10.0.0.0/8 nor ::1.
    assert_eq!(call(&s, "/local", None).await.2, "local");
    assert_eq!(call(&s, "/elsewhere", None).await.0, 404);
    for _ in 0..3 {
        assert_eq!(call(&s, "/limited/x", None).await.0, 200);
    }
    let target = s.backend.addr.to_string();
    let metrics = s.proxy.admin.prometheus().await.unwrap();
    let labels = format!("target_group=\"api\",target=\"{target}\"");
    for line in [
        format!("cutover_proxy_target_requests_total{{{labels}}} 3"),
        format!("cutover_proxy_target_5xx_total{{{labels}}} 0"),
        format!("cutover_proxy_target_response_time_ms_bucket{{{labels},le=\"+Inf\"}} 3"),
        format!("cutover_proxy_target_response_time_ms_count{{{labels}}} 3"),
    ] {
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    // The feed: per-target figures beside the group's, within two seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let feed = s.proxy.admin.metrics_feed(0).await.unwrap();
        let n: u64 = feed
            .seconds
            .iter()
            .filter_map(|b| b.targets.get("api")?.get(&target))
            .map(|t| t.request_count)
            .sum();
        if n == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{feed:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
