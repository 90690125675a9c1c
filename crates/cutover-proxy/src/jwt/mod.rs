//! JWT authorizers, as API Gateway HTTP APIs check them ("Working with JWT authorizers for
//! HTTP APIs"): the bearer token's signature against the issuer's JWK set ([`jwks`]), `exp`
//! (required) and `nbf`/`iat` (when present) against the proxy's clock with a leeway, `iss`
//! exactly, `aud` against the audiences (or, when the token has no `aud`, `client_id`, as
//! Cognito access tokens carry), and, when the route lists scopes, at least one of them in
//! `scope` (space-separated) or `scp`.
//!
//! The signature is checked by `jsonwebtoken` (no crypto here), with the one algorithm the
//! token's header names, and only when the key was published for it. Refusals follow RFC 6750:
//! 401 with `WWW-Authenticate: Bearer` (plus `error="invalid_token"` when a token was sent), 403
//! with `error="insufficient_scope"`, and 503 when no key set could ever be fetched.

pub(crate) mod jwks;

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use jsonwebtoken::Validation;
use serde::Deserialize;

use crate::config::AuthorizerConfig;
use jwks::Jwks;

/// A compiled authorizer.
pub(crate) struct Authorizer {
    issuer: String,
    audience: Vec<String>,
    scopes: Vec<String>,
    /// Claims forwarded as headers.
    pub(crate) claim_headers: Vec<(String, HeaderName)>,
    leeway: u64,
    jwks: Arc<Jwks>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No bearer token.
    Missing,
    /// A token that does not verify; the reason is logged at debug level and sent as
    /// `error_description`.
    Invalid(&'static str),
    /// A valid token without the route's scopes.
    Scope,
    /// No key set could be fetched yet.
    Unavailable,
}

/// The claims of a verified token that the checks read; the others are kept for
/// `claimsToHeaders` and throttle keys.
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    iss: Option<String>,
    #[serde(default)]
    aud: OneOrMany,
    client_id: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    scope: Option<String>,
    #[serde(default)]
    scp: OneOrMany,
    #[serde(flatten)]
    other: HashMap<String, serde_json::Value>,
}

/// A claim that is a string or a list of strings (`aud`, `scp`).
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn iter(&self) -> impl Iterator<Item = &str> {
        let s: &[String] = match self {
            OneOrMany::None => &[],
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        };
        s.iter().map(String::as_str)
    }
}

impl Claims {
    /// A claim as header text: strings as they are, numbers and booleans printed, lists
    /// joined by spaces; objects and nulls have none.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        let join = |v: &OneOrMany| {
            let s = v.iter().collect::<Vec<_>>().join(" ");
            (!s.is_empty()).then_some(s)
        };
        let num = |n: Option<f64>| n.map(|n| n.to_string());
        match name {
            "iss" => self.iss.clone(),
            "aud" => join(&self.aud),
            "client_id" => self.client_id.clone(),
            "exp" => num(self.exp),
            "nbf" => num(self.nbf),
            "iat" => num(self.iat),
            "scope" => self.scope.clone(),
            "scp" => join(&self.scp),
            _ => match self.other.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                serde_json::Value::Array(a) => Some(
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                _ => None,
            },
        }
    }

    fn has_scope(&self, want: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|x| x == want))
            || self.scp.iter().any(|x| x == want)
    }
}

impl Authorizer {
    pub(crate) fn new(c: &AuthorizerConfig, jwks: Arc<Jwks>) -> Self {
        Authorizer {
            issuer: c.issuer.clone(),
            audience: c.audience.clone(),
            scopes: c.scopes.clone(),
            claim_headers: c
                .claims_to_headers
                .iter()
                .filter_map(|(claim, h)| {
                    Some((claim.clone(), HeaderName::from_bytes(h.as_bytes()).ok()?))
                })
                .collect(),
            leeway: c.leeway_seconds(),
            jwks,
        }
    }

    /// Checks the request's bearer token at `now_ms` (Unix milliseconds).
    pub(crate) async fn authorize(
        &self,
        headers: &HeaderMap,
        now_ms: u64,
    ) -> Result<Claims, Denied> {
        let token = bearer(headers).ok_or(Denied::Missing)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Denied::Invalid("malformed token or unsupported algorithm"))?;
        let keys = self
            .jwks
            .keys(header.kid.as_deref())
            .await
            .ok_or(Denied::Unavailable)?;
        let mut validation = Validation::new(header.alg);
        // Time, issuer and audience are checked below against the proxy's clock and API
        // Gateway's rules; the crate checks the signature with exactly this algorithm.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let mut candidates = keys
            .iter()
            .filter(|k| header.kid.is_none() || k.kid == header.kid)
            .filter(|k| k.algorithms.contains(&header.alg))
            .peekable();
        if candidates.peek().is_none() {
            return Err(Denied::Invalid("no key of the issuer matches the token"));
        }
        let claims = candidates
            .find_map(|k| jsonwebtoken::decode::<Claims>(token, &k.key, &validation).ok())
            .ok_or(Denied::Invalid("signature or claims invalid"))?
            .claims;
        self.check(&claims, now_ms)?;
        Ok(claims)
    }

    fn check(&self, c: &Claims, now_ms: u64) -> Result<(), Denied> {
        let now = now_ms as f64 / 1000.0;
        let leeway = self.leeway as f64;
        match c.exp {
            None => return Err(Denied::Invalid("the token has no exp")),
            Some(exp) if now > exp + leeway => return Err(Denied::Invalid("the token expired")),
            _ => {}
        }
        if c.nbf.is_some_and(|nbf| now + leeway < nbf) {
            return Err(Denied::Invalid("the token is not valid yet"));
        }
        if c.iat.is_some_and(|iat| now + leeway < iat) {
            return Err(Denied::Invalid("the token was issued in the future"));
        }
        if c.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(Denied::Invalid("wrong issuer"));
        }
        let audience_ok = match &c.aud {
            OneOrMany::None => c
                .client_id
                .as_ref()
                .is_some_and(|id| self.audience.contains(id)),
            aud => aud.iter().any(|a| self.audience.iter().any(|x| x == a)),
        };
        if !audience_ok {
            return Err(Denied::Invalid("wrong audience"));
        }
        if !self.scopes.is_empty() && !self.scopes.iter().any(|s| c.has_scope(s)) {
            return Err(Denied::Scope);
        }
        Ok(())
    }

    /// The `WWW-Authenticate` value and status for a refusal.
    pub(crate) fn refusal(&self, d: Denied) -> (StatusCode, HeaderValue) {
        match d {
            Denied::Missing => (StatusCode::UNAUTHORIZED, HeaderValue::from_static("Bearer")),
            Denied::Invalid(why) => (
                StatusCode::UNAUTHORIZED,
                HeaderValue::from_str(&format!(
                    "Bearer error=\"invalid_token\", error_description=\"{why}\""
                ))
                .unwrap_or(HeaderValue::from_static("Bearer error=\"invalid_token\"")),
            ),
            Denied::Scope => (
                StatusCode::FORBIDDEN,
                HeaderValue::from_str(&format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                    self.scopes.join(" ")
                ))
                .unwrap_or(HeaderValue::from_static(
                    "Bearer error=\"insufficient_scope\"",
                )),
            ),
            Denied::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                HeaderValue::from_static("Bearer error=\"temporarily_unavailable\""),
            ),
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
