//! The API's error type: a status, a message and, for rejected files, the
//! located diagnostics. Internal causes are logged, not leaked.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cutover_api::error::render_diagnostic;
use cutover_api::{ApiErrorBody, ApiErrorDetail, Diagnostic};

use crate::apply::ApplyError;
use crate::deploy::DeployError;
use crate::files::FileError;
use cutover_ci::PipelineError;
use cutover_pipeline::engine::EngineError;

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

    /// The HTTP status it is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// A rejected file: 422 with every diagnostic and warning.
    pub(crate) fn invalid(
        message: impl Into<String>,
        diagnostics: Vec<Diagnostic>,
        warnings: Vec<Diagnostic>,
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

impl From<FileError> for ApiError {
    fn from(e: FileError) -> Self {
        let message = e.to_string();
        match e {
            FileError::Rejected { error, .. } => {
                ApiError::invalid(message, error.diagnostics, error.warnings)
            }
        }
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Rejected(e) => e.into(),
            ApplyError::Store(e) => e.into(),
            ApplyError::Encode(e) => anyhow::Error::from(e)
                .context("cannot encode the stack")
                .into(),
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::ServiceNotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            DeployError::ServiceDeleting(_)
            | DeployError::Config(_)
            | DeployError::Settings { .. } => ApiError::bad_request(e.to_string()),
            // The registry failed or refused: the deployment did not start.
            DeployError::Image(crate::pins::PinError::Resolve(_)) => {
                ApiError::new(StatusCode::BAD_GATEWAY, e.to_string())
            }
            DeployError::Image(_) => ApiError::bad_request(e.to_string()),
            DeployError::NotRunning(_) | DeployError::JustFinished(_) => {
                ApiError::new(StatusCode::CONFLICT, e.to_string())
            }
            DeployError::Store(e) => e.into(),
            DeployError::Encode(e) => anyhow::Error::from(e)
                .context("cannot encode the deployment")
                .into(),
        }
    }
}

/// A request body serde refuses is a bad request (axum answers 422 for a
/// well-formed body of the wrong shape; here 422 means a rejected file),
/// with serde's message, which names the field and the value.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match r {
            JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
                StatusCode::BAD_REQUEST
            }
            _ => r.status(),
        };
        ApiError::new(status, r.body_text())
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::NotFound(_)
            | PipelineError::BuildProjectNotFound(_)
            | PipelineError::BuildNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, e.to_string())
            }
            PipelineError::InvalidBuild(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
            PipelineError::Refused(refused) => {
                let status = match refused {
                    EngineError::UnknownExecution(_)
                    | EngineError::UnknownStage(_)
                    | EngineError::NoPendingApproval { .. } => StatusCode::NOT_FOUND,
                    EngineError::DuplicateExecution(_)
                    | EngineError::Finished { .. }
                    | EngineError::NotRetryable { .. } => StatusCode::CONFLICT,
                    EngineError::UnknownVariable(_) => StatusCode::BAD_REQUEST,
                };
                ApiError::new(status, refused.to_string())
            }
            PipelineError::Store(e) => e.into(),
            PipelineError::DriverStopped(_)
            | PipelineError::State { .. }
            | PipelineError::Git(_)
            | PipelineError::NotStarted { .. }
            | PipelineError::BuildNotStarted(_) => anyhow::Error::from(e).into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::spec::DeploySpecError;

    #[test]
    fn domain_errors_map_to_their_http_status_only_here() {
        let status = |e: ApiError| e.status;
        assert_eq!(
            status(DeployError::ServiceNotFound("web".into()).into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(DeployError::ServiceDeleting("web".into()).into()),
            StatusCode::BAD_REQUEST
        );
        let unknown = DeployError::Config(DeploySpecError::UnknownConfig("Nope".into()));
        // The message users saw before the error was typed (it may go on
        // to name more places a configuration comes from).
        assert!(
            unknown.to_string().starts_with(
                "deployment configuration \"Nope\" is neither predefined nor declared in the stack's deploymentConfigs"
            )
        );
        assert_eq!(status(unknown.into()), StatusCode::BAD_REQUEST);
        let settings = DeployError::Settings {
            service: "web".into(),
            source: DeploySpecError::NotAHookEvent("Install".into()),
        };
        assert_eq!(
            settings.to_string(),
            "service \"web\": \"Install\" is not a lifecycle hook event"
        );
        assert_eq!(status(settings.into()), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(DeployError::NotRunning("d-1".into()).into()),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(DeployError::JustFinished("d-1".into()).into()),
            StatusCode::CONFLICT
        );
        let missing = cutover_store::StoreError::NotFound {
            kind: "service",
            name: "web".into(),
        };
        assert_eq!(
            status(DeployError::Store(missing).into()),
            StatusCode::NOT_FOUND
        );
        let rejected: ApiError = crate::files::task_definition("td.json", "{\"family\": 3}")
            .err()
            .expect("refused")
            .into();
        assert_eq!(rejected.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!rejected.diagnostics.is_empty());
        assert!(rejected.message.starts_with("td.json was rejected"));
        assert_eq!(
            status(PipelineError::NotFound("app".into()).into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(PipelineError::Refused(EngineError::UnknownStage("Ship".into())).into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(PipelineError::Refused(EngineError::DuplicateExecution("e".into())).into()),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(PipelineError::Refused(EngineError::UnknownVariable("V".into())).into()),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(
                PipelineError::NotStarted {
                    reference: "refs/heads/main".into(),
                    commit: "abc".into()
                }
                .into()
            ),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
