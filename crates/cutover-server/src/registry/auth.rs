//! Who may use `/v2/`, as ECR decides: HTTP Basic with user `AWS` and a
//! registry token as the password (minted by the key ring, valid for 12
//! hours); without credentials, only pulls from a repository that allows
//! anonymous pulls. `GET /v2/` without credentials is the challenge
//! clients log in with (401 and `WWW-Authenticate: Basic`).

use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use cutover_registry::route::Route;

use crate::api::AppState;

/// The realm clients are challenged with.
pub(super) const REALM: &str = "Basic realm=\"cutover registry\"";

/// The outcome of the credentials check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Caller {
    /// A valid token.
    Authenticated,
    /// No credentials at all.
    Anonymous,
    /// Credentials that do not verify.
    Refused,
}

/// Reads `Authorization: Basic base64(AWS:<token>)` and verifies the token.
pub(super) fn caller(st: &AppState, headers: &HeaderMap) -> Caller {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Caller::Anonymous;
    };
    let Some(encoded) = value.to_str().ok().and_then(|v| v.strip_prefix("Basic ")) else {
        return Caller::Refused;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return Caller::Refused;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Caller::Refused;
    };
    match text.split_once(':') {
        Some(("AWS", token)) if st.aws.keys.verify_registry_token(token, st.clock.now_ms()) => {
            Caller::Authenticated
        }
        _ => Caller::Refused,
    }
}

/// Whether `route` with `method` is a pull (what anonymous pull allows),
/// and of which repository.
pub(super) fn pulled_repository<'a>(method: &Method, route: &Route<'a>) -> Option<&'a str> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match *route {
        Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::Tags { name }
        | Route::Referrers { name, .. } => Some(name),
        _ => None,
    }
}
