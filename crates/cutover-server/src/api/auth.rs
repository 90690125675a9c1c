//! Who may call the API.
//!
//! - **With a token** (`--token`, `--token-file` or `CUTOVER_TOKEN`), every
//!   call needs `Authorization: Bearer <token>`. The scheme is matched
//!   case-insensitively (RFC 9110 §11.1) and the token in constant time.
//!   A browser cannot attach that header to a cross-site request without a
//!   CORS preflight, which this API never grants, so a token also stops
//!   cross-site request forgery. A read (`GET`) may instead carry the
//!   console's `HttpOnly; SameSite=Strict` session cookie, so the console's
//!   pages can follow `/v1/events/stream`; a change never may.
//! - **Without a token** the server only listens on loopback, and that is
//!   not enough on its own: a web page the operator visits can resolve its
//!   own name to 127.0.0.1 (DNS rebinding) or post a "simple" cross-site
//!   form to `http://127.0.0.1:7070`. So a token-less API accepts a request
//!   only when its `Host` is a loopback name (`localhost`, `*.localhost`,
//!   an address in 127.0.0.0/8 or `[::1]`, with any port), and refuses any
//!   request whose `Origin` is not such a loopback origin, or that a browser
//!   marks `Sec-Fetch-Site: cross-site`. This is what Jupyter and Vite do.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Middleware state: the expected token.
#[derive(Clone)]
pub(crate) struct Token(pub(crate) Arc<String>);

/// Requires the configured bearer token.
pub(crate) async fn require_token(
    State(token): State<Token>,
    req: Request,
    next: Next,
) -> Response {
    let given = match bearer(req.headers()) {
        Some(b) => b.as_bytes().to_vec(),
        None if crate::console::auth::is_read(req.method()) => {
            crate::console::auth::cookie_token(req.headers()).unwrap_or_default()
        }
        None => Vec::new(),
    };
    if bool::from(given.ct_eq(token.0.as_bytes())) {
        next.run(req).await
    } else {
        super::error::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token (set CUTOVER_TOKEN or pass --token)",
        )
        .into_response()
    }
}

/// Without a token: only loopback `Host`s and same-machine origins.
pub(crate) async fn require_loopback(req: Request, next: Next) -> Response {
    match loopback_verdict(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(why) => super::error::ApiError::new(StatusCode::FORBIDDEN, why).into_response(),
    }
}

/// The credentials of `Authorization: Bearer <credentials>`, the scheme
/// compared case-insensitively.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start_matches(' '))
}

/// Why a token-less request is refused, if it is.
pub(crate) fn loopback_verdict(headers: &HeaderMap) -> Result<(), &'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(h), None) => h.to_str().map_err(|_| "the Host header is not ASCII")?,
        (None, _) => return Err("a Host header is required"),
        (Some(_), Some(_)) => return Err("more than one Host header"),
    };
    if !is_loopback_authority(host) {
        return Err(
            "this API has no token, so it answers only to loopback names \
             (localhost, 127.0.0.1, [::1]); set a token (--token-file or \
             CUTOVER_TOKEN) to reach it under another name",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if !authority.is_some_and(is_loopback_authority) {
            return Err("cross-origin request refused");
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err("cross-site request refused");
    }
    Ok(())
}

/// `host[:port]` where host is a loopback name or address.
fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return false;
        }
        return v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| a.is_loopback());
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if is_port(port) => h,
            Some(_) => return false,
            None => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost")
        || host.len() > ".localhost".len()
            && host[host.len() - ".localhost".len()..].eq_ignore_ascii_case(".localhost")
    {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn loopback_authorities() {
        for ok in [
            "localhost",
            "LOCALHOST:7070",
            "localhost.",
            "app.localhost:80",
            "127.0.0.1",
            "127.0.0.1:7070",
            "127.8.9.10:1",
            "[::1]",
            "[::1]:7070",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7070",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:7070",
            "[::2]:1",
            "[::1]x",
            "localhost:http",
            "",
            "0.0.0.0:7070",
            "notlocalhost",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }

    #[test]
    fn rebinding_and_cross_site_requests_are_refused() {
        assert!(loopback_verdict(&headers(&[("host", "127.0.0.1:7070")])).is_ok());
        assert!(
            loopback_verdict(&headers(&[
                ("host", "localhost:7070"),
                ("origin", "http://localhost:7070"),
                ("sec-fetch-site", "same-origin"),
            ]))
            .is_ok()
        );
        assert!(loopback_verdict(&headers(&[("host", "rebind.example:7070")])).is_err());
        assert!(loopback_verdict(&headers(&[])).is_err());
        assert!(
            loopback_verdict(&headers(&[("host", "127.0.0.1"), ("host", "evil.example")])).is_err()
        );
        assert!(
            loopback_verdict(&headers(&[
                ("host", "127.0.0.1:7070"),
                ("origin", "https://evil.example"),
            ]))
            .is_err()
        );
        assert!(
            loopback_verdict(&headers(&[("host", "127.0.0.1:7070"), ("origin", "null")])).is_err()
        );
        assert!(
            loopback_verdict(&headers(&[
                ("host", "127.0.0.1:7070"),
                ("sec-fetch-site", "cross-site"),
            ]))
            .is_err()
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret"] {
            assert_eq!(bearer(&headers(&[("authorization", v)])), Some("s3cret"));
        }
        assert_eq!(bearer(&headers(&[("authorization", "Basic s3cret")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearers3cret")])), None);
    }
}
