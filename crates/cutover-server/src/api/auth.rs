//! Bearer-token authentication.
//!
//! On loopback the API is open unless a token is configured; on any other
//! address the server refuses to start without one. When a token is set it
//! is checked on every call with a constant-time comparison.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Middleware state: the expected token.
#[derive(Clone)]
pub(crate) struct Token(pub(crate) Arc<String>);

pub(crate) async fn require_token(
    State(token): State<Token>,
    req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.0.as_bytes())) {
        next.run(req).await
    } else {
        super::error::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token (set CUTOVER_TOKEN or pass --token)",
        )
        .into_response()
    }
}
