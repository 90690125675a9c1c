//! The API's error type: a status, a message and, for rejected files, the
//! located diagnostics. Internal causes are logged, not leaked.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered by the API.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    diagnostics: Vec<serde_json::Value>,
    warnings: Vec<serde_json::Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            diagnostics: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{} not found", what.into()))
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A rejected file: 422 with every diagnostic.
    pub(crate) fn invalid(
        message: impl Into<String>,
        diagnostics: Vec<serde_json::Value>,
        warnings: Vec<serde_json::Value>,
    ) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
            diagnostics,
            warnings,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        for d in self.diagnostics.iter().chain(&self.warnings) {
            let line = |k: &str| d.get(k).and_then(|v| v.as_u64());
            write!(f, "\n  {}", d["file"].as_str().unwrap_or(""))?;
            if let Some(l) = line("line") {
                write!(f, ":{l}")?;
                if let Some(c) = line("column") {
                    write!(f, ":{c}")?;
                }
            }
            write!(
                f,
                ": {}: {}",
                d["path"].as_str().unwrap_or(""),
                d["message"].as_str().unwrap_or("")
            )?;
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "diagnostics": self.diagnostics,
            "warnings": self.warnings,
        }});
        (self.status, Json(body)).into_response()
    }
}

impl From<cutover_store::StoreError> for ApiError {
    fn from(e: cutover_store::StoreError) -> Self {
        match e {
            cutover_store::StoreError::NotFound { kind, name } => {
                ApiError::not_found(format!("{kind} {name:?}"))
            }
            cutover_store::StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            other => {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(other)), "state store failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: the state store failed (see the server log)",
                )
            }
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(error = %format!("{e:#}"), "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )
    }
}

/// Result type of the handlers.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
