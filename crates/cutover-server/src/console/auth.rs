//! Who may use the console, and cross-site request forgery.
//!
//! - **No token** (loopback only): open, as the API is, behind the same
//!   loopback guard (`Host` a loopback name, no foreign `Origin`, no
//!   `Sec-Fetch-Site: cross-site`).
//! - **With a token**: `/sign-in` takes it and keeps it in the cookie
//!   [`COOKIE`] (`HttpOnly; SameSite=Strict; Path=/`, and `Secure` when the
//!   request came over HTTPS through a proxy that says so). Every page and
//!   action needs that cookie (or the API's bearer header); a page without
//!   it redirects to the sign-in form. The `/v1` API accepts the cookie for
//!   reads only (`GET`), so the pages can follow the event stream.
//! - **Every state change** (a form post) must carry the per-session CSRF
//!   token, an HMAC of the session under a key drawn at start, and must not
//!   come from another origin (`Origin` other than the request's own host,
//!   or `Sec-Fetch-Site: cross-site`). The token is never written into a
//!   page; only the CSRF token is.

use crate::api::auth::{bearer, require_loopback};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Deserialize;
use sha2::Sha256;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "cutover_session";

/// The console's credentials: the API token (if any) and the CSRF key.
#[derive(Clone)]
pub(crate) struct Guard {
    token: Option<Arc<String>>,
    csrf_key: Arc<[u8; 32]>,
}

/// What a handler knows of the request's session.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// The CSRF token every form carries.
    pub(crate) csrf: String,
    /// Whether there is a token to sign out of.
    pub(crate) signed_in: bool,
}

impl Guard {
    pub(crate) fn new(token: Option<Arc<String>>) -> Guard {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Guard {
            token,
            csrf_key: Arc::new(key),
        }
    }

    /// The CSRF token of a session (the empty session when open).
    fn csrf_for(&self, session: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.csrf_key[..]).expect("HMAC takes any key");
        mac.update(b"cutover-console-csrf\0");
        mac.update(session.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The session of a request: `Some` when it may use the console.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        match &self.token {
            None => Some(Session {
                csrf: self.csrf_for(""),
                signed_in: false,
            }),
            Some(token) => {
                let given = cookie_token(headers)
                    .or_else(|| bearer(headers).map(|b| b.as_bytes().to_vec()))?;
                bool::from(given.ct_eq(token.as_bytes())).then(|| Session {
                    csrf: self.csrf_for(token),
                    signed_in: true,
                })
            }
        }
    }
}

/// A cookie's value from the `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The token the session cookie carries (hex, so that any token makes a
/// valid cookie value).
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<Vec<u8>> {
    hex::decode(cookie(headers, COOKIE)?).ok()
}

/// Whether a request is a read, which the session cookie may authorise on
/// the `/v1` API.
pub(crate) fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// Why a state-changing request is refused as cross-site, if it is.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Some("cross-site request refused");
    }
    let origin = headers.get(header::ORIGIN)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    match (authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => None,
        _ => Some("cross-origin request refused"),
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, super::layout::message_page("Refused", why)).into_response()
}

/// Without a token, the API's loopback guard; with one, nothing (the
/// sign-in form and the assets are public).
pub(crate) async fn require_loopback_if_open(
    State(guard): State<Guard>,
    req: Request,
    next: Next,
) -> Response {
    if guard.token.is_none() {
        require_loopback(req, next).await
    } else {
        next.run(req).await
    }
}

/// Pages and actions: a session, and for a post no foreign origin (the
/// form's CSRF token is checked by the action, [`csrf_refusal`]).
pub(crate) async fn require_session(
    State(guard): State<Guard>,
    mut req: Request,
    next: Next,
) -> Response {
    if guard.token.is_none() {
        let session = guard.session(req.headers()).expect("open console");
        req.extensions_mut().insert(session);
        return require_loopback(req, next).await;
    }
    let Some(session) = guard.session(req.headers()) else {
        if is_read(req.method()) {
            let path = req.uri().path();
            let next_path = if path.starts_with('/') && !path.starts_with("//") {
                path
            } else {
                "/"
            };
            return Redirect::to(&format!("/sign-in?next={}", encode(next_path))).into_response();
        }
        return refuse(StatusCode::UNAUTHORIZED, "sign in first");
    };
    if !is_read(req.method())
        && let Some(why) = cross_site(req.headers())
    {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    req.extensions_mut().insert(session);
    next.run(req).await
}

/// The refusal of a form whose CSRF token is not the session's, if it is not.
pub(crate) fn csrf_refusal(session: &Session, given: &str) -> Option<Response> {
    (!bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes()))).then(|| {
        refuse(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong; reload the page and try again",
        )
    })
}

/// Percent-encodes a path for a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
}

/// Where to go after signing in: a local path only.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/",
    }
}

pub(crate) async fn sign_in_page(
    axum::extract::Query(q): axum::extract::Query<SignInQuery>,
) -> maud::Markup {
    super::layout::sign_in(local_path(q.next.as_deref()), None)
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

pub(crate) async fn sign_in(
    State(guard): State<Guard>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if let Some(why) = cross_site(&headers) {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    let next = local_path(form.next.as_deref()).to_string();
    let Some(token) = &guard.token else {
        return Redirect::to(&next).into_response();
    };
    if !bool::from(form.token.as_bytes().ct_eq(token.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            super::layout::sign_in(&next, Some("That token is not this server's.")),
        )
            .into_response();
    }
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{}",
        hex::encode(&form.token),
        if secure { "; Secure" } else { "" }
    );
    let mut resp = Redirect::to(&next).into_response();
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn sign_out(
    Extension(session): Extension<Session>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&session, &form.csrf) {
        return refused;
    }
    let mut resp = Redirect::to("/sign-in").into_response();
    if let Ok(v) = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0").parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_session_is_the_token_cookie_and_the_csrf_token_is_not_the_token() {
        let g = Guard::new(Some(Arc::new("s3cret".into())));
        assert!(g.session(&headers(&[])).is_none());
        assert!(
            g.session(&headers(&[("cookie", "a=b; cutover_session=77726f6e67")]))
                .is_none()
        );
        assert!(
            g.session(&headers(&[("cookie", "cutover_session=s3cret")]))
                .is_none()
        );
        // hex("s3cret")
        let s = g
            .session(&headers(&[("cookie", "a=b; cutover_session=733363726574")]))
            .unwrap();
        assert!(!s.csrf.contains("s3cret"));
        assert!(csrf_refusal(&s, &s.csrf).is_none());
        assert!(csrf_refusal(&s, "").is_some());
        // Another server (another key) issues other CSRF tokens.
        let other = Guard::new(Some(Arc::new("s3cret".into())));
        assert_ne!(other.csrf_for("s3cret"), s.csrf);
    }

    #[test]
    fn foreign_origins_are_cross_site() {
        assert!(cross_site(&headers(&[("host", "ci.example:7070")])).is_none());
        assert!(
            cross_site(&headers(&[
                ("host", "ci.example:7070"),
                ("origin", "https://ci.example:7070")
            ]))
            .is_none()
        );
        for bad in ["https://evil.example", "null", "http://ci.example:7071"] {
            let mut h = headers(&[("host", "ci.example:7070")]);
            h.insert("origin", HeaderValue::from_static(bad));
            assert!(cross_site(&h).is_some(), "{bad}");
        }
        assert!(
            cross_site(&headers(&[
                ("host", "ci.example:7070"),
                ("sec-fetch-site", "cross-site")
            ]))
            .is_some()
        );
    }

    #[test]
    fn sign_in_only_returns_to_local_paths() {
        assert_eq!(local_path(Some("/deployments/d-1")), "/deployments/d-1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", ""] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
    }
}
