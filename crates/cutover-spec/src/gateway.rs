//! The API-gateway keys of a load balancer rule: a JWT `authorizer` (API Gateway HTTP APIs'
//! shape) and a `throttle` (a token bucket per client key, as API Gateway's usage plans), with
//! their validation. One model for both places that accept them: a rule of `lb.yaml` (read by
//! `cutover-proxy`, which runs them) and a service's `loadBalancer` in `stack.yaml`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A mistake in an authorizer or throttle: the field path below it (`issuer`,
/// `claimsToHeaders.sub`) and what is wrong.
pub type Invalid = (String, String);

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    (field.into(), message.into())
}

/// Default `leewaySeconds` of an authorizer: clock skew tolerated on `exp` and `nbf`.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;

/// A JWT authorizer: the request needs `Authorization: Bearer <token>` signed by a key of
/// `jwksUri`, issued by `issuer` for one of `audience`, holding every scope of `scopes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizerConfig {
    /// The kind of authorizer; only `JWT`.
    #[serde(rename = "type")]
    pub kind: AuthorizerKind,
    /// The exact `iss` the token must carry (`https://cognito-idp.<region>.amazonaws.com/<pool>`).
    pub issuer: String,
    /// Accepted audiences: the token's `aud` (or, without `aud`, its `client_id`, as Cognito
    /// access tokens carry) must hold one of them.
    pub audience: Vec<String>,
    /// Where the signing keys are: `https://`, `http://` or `file://` (a JWK set document).
    pub jwks_uri: String,
    /// Scopes the token must all hold (`scope`, space-separated, or `scp`); a missing one is 403.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Claims forwarded to the target, claim name to header name (`sub: x-user-id`); a header
    /// of these names sent by the client is always removed first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims_to_headers: BTreeMap<String, String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 60, at most 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leeway_seconds: Option<u64>,
}

impl AuthorizerConfig {
    /// `leewaySeconds` or its default.
    pub fn leeway_seconds(&self) -> u64 {
        self.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS)
    }
}

/// The kinds of authorizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorizerKind {
    /// A JSON Web Token checked against a JWK set.
    #[serde(rename = "JWT")]
    Jwt,
}

/// A token bucket per client key: `rate` requests per second on average, `burst` at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Steady requests per second (refill rate of each bucket).
    pub rate: f64,
    /// Bucket capacity: requests a quiet client may send at once.
    pub burst: u32,
    /// Who shares a bucket (default `source-ip`).
    #[serde(default, skip_serializing_if = "ThrottleKey::is_default")]
    pub key: ThrottleKey,
}

/// What identifies a client for throttling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ThrottleKey {
    /// The connection's peer address (`source-ip`).
    #[default]
    SourceIp,
    /// The value of a request header (`header:x-api-key`); requests without it share one bucket.
    Header(String),
    /// A claim of the verified token (`claim:sub`); needs an authorizer on the rule.
    Claim(String),
}

impl ThrottleKey {
    fn is_default(&self) -> bool {
        *self == ThrottleKey::SourceIp
    }
}

impl TryFrom<String> for ThrottleKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("{s:?} is not source-ip, header:NAME or claim:NAME");
        if s == "source-ip" {
            return Ok(ThrottleKey::SourceIp);
        }
        match s.split_once(':') {
            Some(("header", name)) if http::HeaderName::from_bytes(name.as_bytes()).is_ok() => {
                Ok(ThrottleKey::Header(name.to_ascii_lowercase()))
            }
            Some(("claim", name)) if !name.is_empty() => Ok(ThrottleKey::Claim(name.to_owned())),
            _ => Err(bad()),
        }
    }
}

impl From<ThrottleKey> for String {
    fn from(k: ThrottleKey) -> String {
        k.to_string()
    }
}

impl fmt::Display for ThrottleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThrottleKey::SourceIp => f.write_str("source-ip"),
            ThrottleKey::Header(n) => write!(f, "header:{n}"),
            ThrottleKey::Claim(n) => write!(f, "claim:{n}"),
        }
    }
}

/// Checks what serde cannot in an authorizer.
pub fn check_authorizer(a: &AuthorizerConfig) -> Result<(), Invalid> {
    if a.issuer.is_empty() {
        return Err(invalid("issuer", "must not be empty"));
    }
    if a.audience.is_empty() || a.audience.iter().any(String::is_empty) {
        return Err(invalid("audience", "needs at least one non-empty audience"));
    }
    let uri_ok = if let Some(path) = a.jwks_uri.strip_prefix("file://") {
        path.starts_with('/')
    } else {
        a.jwks_uri
            .parse::<http::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("https" | "http")) && u.host().is_some())
    };
    if !uri_ok {
        return Err(invalid(
            "jwksUri",
            format!(
                "{:?} must be an https://, http:// or file:/// (absolute path) URI",
                a.jwks_uri
            ),
        ));
    }
    for (claim, header) in &a.claims_to_headers {
        if claim.is_empty() {
            return Err(invalid("claimsToHeaders", "a claim name must not be empty"));
        }
        if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            return Err(invalid(
                format!("claimsToHeaders.{claim}"),
                format!("invalid header name {header:?}"),
            ));
        }
    }
    if a.leeway_seconds.is_some_and(|l| l > 600) {
        return Err(invalid("leewaySeconds", "must be at most 600"));
    }
    Ok(())
}

/// Checks what serde cannot in a throttle; `authorized` says whether the rule has an authorizer.
pub fn check_throttle(t: &ThrottleConfig, authorized: bool) -> Result<(), Invalid> {
    if !(t.rate.is_finite() && (0.001..=1e9).contains(&t.rate)) {
        return Err(invalid(
            "rate",
            "must be between 0.001 and 1e9 requests per second",
        ));
    }
    if !(1..=1_000_000_000).contains(&t.burst) {
        return Err(invalid("burst", "must be between 1 and 1e9"));
    }
    if matches!(t.key, ThrottleKey::Claim(_)) && !authorized {
        return Err(invalid(
            "key",
            "a claim key needs an authorizer on the same rule",
        ));
    }
    Ok(())
}

/// Parses a `sourceIp` network: `10.0.0.0/8`, `::1/128` or a bare address (one host), as the
/// network address and the prefix length.
pub fn parse_cidr(s: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let net: std::net::IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("invalid address {addr:?} in {s:?}"))?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => b
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("invalid prefix length in {s:?} (0..={max})"))?,
    };
    Ok((net, bits))
}
