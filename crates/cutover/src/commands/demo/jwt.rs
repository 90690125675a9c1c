//! The demo's JWT-protected route (issue 16): an Ed25519 signing key made at start, its JWK set
//! written to a file the data plane reads (`jwksUri: file://...`), the stack's `authorizer` on
//! `/api/*` of service `web`, and the tour step that calls that route without a token (401),
//! with a signed token (200, and the claim header the task sees) and with a token lacking the
//! route's scope (403).

use anyhow::Context;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::path::{Path, PathBuf};

const ISSUER: &str = "https://issuer.demo.cutover.invalid";
const AUDIENCE: &str = "demo-api";
const SCOPE: &str = "orders/read";
const KID: &str = "demo-1";
/// The header the task sees the token's `sub` in.
pub(super) const USER_HEADER: &str = "x-user-id";
/// The protected path the tour calls.
const PATH: &str = "/api/orders";

/// The demo's token issuer: its signing key and the JWK set file of its public key.
pub(super) struct Issuer {
    key: EncodingKey,
    jwks: PathBuf,
}

#[derive(Serialize)]
struct Jwk {
    kty: &'static str,
    crv: &'static str,
    kid: &'static str,
    alg: &'static str,
    #[serde(rename = "use")]
    usage: &'static str,
    x: String,
}

#[derive(Serialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    scope: &'a str,
    iat: u64,
    exp: u64,
}

impl Issuer {
    /// A new key pair; its JWK set is written to `dir/jwks.json`.
    pub(super) fn new(dir: &Path) -> anyhow::Result<Issuer> {
        use ring::signature::KeyPair;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("cannot generate the demo's signing key"))?;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| anyhow::anyhow!("cannot read the demo's signing key"))?;
        let set = JwkSet {
            keys: vec![Jwk {
                kty: "OKP",
                crv: "Ed25519",
                kid: KID,
                alg: "EdDSA",
                usage: "sig",
                x: base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(pair.public_key().as_ref()),
            }],
        };
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, serde_json::to_string(&set)?)
            .with_context(|| format!("cannot write {}", jwks.display()))?;
        Ok(Issuer {
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwks,
        })
    }

    /// The `loadBalancer` keys that protect `/api/*` (indented for the demo's stack).
    pub(super) fn stack_keys(&self) -> String {
        format!(
            "      authorizer: {{type: JWT, issuer: \"{ISSUER}\", audience: [{AUDIENCE}], jwksUri: \"file://{}\", scopes: [{SCOPE}], claimsToHeaders: {{sub: {USER_HEADER}}}}}\n      guardedPaths: [\"/api/*\"]\n",
            self.jwks.display()
        )
    }

    /// A token for `sub` holding `scope`, valid for an hour.
    fn token(&self, sub: &str, scope: &str) -> anyhow::Result<String> {
        let now = crate::output::now_ms() / 1000;
        let claims = Claims {
            iss: ISSUER,
            aud: AUDIENCE,
            sub,
            scope,
            iat: now,
            exp: now + 3600,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KID.to_owned());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

/// What the protected route answered.
pub(super) struct Outcome {
    pub(super) without_token: u16,
    pub(super) with_token: u16,
    /// The `sub` the task saw in [`USER_HEADER`].
    pub(super) user_seen: Option<String>,
    pub(super) without_scope: u16,
}

impl Outcome {
    /// Whether each call got the answer it should.
    pub(super) fn ok(&self) -> bool {
        self.without_token == 401
            && self.with_token == 200
            && self.user_seen.as_deref() == Some("alice")
            && self.without_scope == 403
    }
}

/// Calls `GET /api/orders` on `127.0.0.1:port` three ways and prints each answer.
pub(super) async fn tour(issuer: &Issuer, port: u16) -> anyhow::Result<Outcome> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("http://127.0.0.1:{port}{PATH}");
    let call = |token: Option<String>| {
        let mut req = client.get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = call(None).await?;
    let without_token = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    println!(
        "   GET {PATH} without a token           -> {without_token}  (WWW-Authenticate: {challenge})"
    );
    let r = call(Some(issuer.token("alice", SCOPE)?)).await?;
    let with_token = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    let prefix = format!("{USER_HEADER}: ");
    let user_seen = body
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned);
    println!(
        "   GET {PATH} with a signed token       -> {with_token}  (the task saw {USER_HEADER}: {})",
        user_seen.as_deref().unwrap_or("-")
    );
    let r = call(Some(issuer.token("bob", "orders/write")?)).await?;
    let without_scope = r.status().as_u16();
    println!("   GET {PATH} without scope {SCOPE} -> {without_scope}");
    Ok(Outcome {
        without_token,
        with_token,
        user_seen,
        without_scope,
    })
}
