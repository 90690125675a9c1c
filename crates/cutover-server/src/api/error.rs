//! The API's error type: a status, a message and, for rejected files, the
//! located diagnostics. Internal causes are logged, not leaked.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cutover_api::error::render_diagnostic;
use cutover_api::{ApiErrorBody, ApiErrorDetail, Diagnostic};

/// An error answered by the API.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    diagnostics: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
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

    /// A rejected file: 422 with every diagnostic (given as the JSON
    /// `crate::files` builds; each is a serialised [`Diagnostic`]).
    pub(crate) fn invalid(
        message: impl Into<String>,
        diagnostics: Vec<serde_json::Value>,
        warnings: Vec<serde_json::Value>,
    ) -> Self {
        let typed = |list: Vec<serde_json::Value>| -> Vec<Diagnostic> {
            list.into_iter()
                .filter_map(|d| serde_json::from_value(d).ok())
                .collect()
        };
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
            diagnostics: typed(diagnostics),
            warnings: typed(warnings),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        for d in self.diagnostics.iter().chain(&self.warnings) {
            write!(f, "\n  {}", render_diagnostic(d))?;
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            error: ApiErrorDetail {
                message: self.message,
                diagnostics: self.diagnostics,
                warnings: self.warnings,
            },
        };
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
