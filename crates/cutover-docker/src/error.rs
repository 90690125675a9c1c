//! Errors of the engine client, each naming the engine and the request.
//!
//! [`DockerError`] is what talking to Docker or Podman can go wrong with; the
//! runtime wraps it into [`cutover_runtime::RuntimeError`] with the task id
//! (see [`DockerError::for_task`]) so the control plane sees one error type.

use std::time::Duration;

use cutover_runtime::RuntimeError;

/// Why a request to the container engine failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// `DOCKER_HOST` (or the configured host) cannot be used.
    #[error("invalid engine host {host:?}: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No engine answered at any of the addresses tried.
    #[error("no container engine answers (tried {})", tried.join(", "))]
    NoEngine {
        /// Every address tried, with why it failed.
        tried: Vec<String>,
    },
    /// The engine's API version is too old for this client.
    #[error("engine at {endpoint} serves API {api_version}, at least {minimum} is needed")]
    OldApi {
        /// Address of the engine.
        endpoint: String,
        /// The version it serves.
        api_version: String,
        /// The oldest version this client speaks.
        minimum: &'static str,
    },
    /// The engine's socket or port cannot be reached.
    #[error("cannot connect to the engine at {endpoint}")]
    Connect {
        /// Address of the engine.
        endpoint: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange with the engine failed.
    #[error("{method} {path} at {endpoint} failed")]
    Http {
        /// Address of the engine.
        endpoint: String,
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// Underlying error.
        #[source]
        source: hyper::Error,
    },
    /// The engine answered with an error status.
    #[error("{method} {path}: engine answered {status}: {message}")]
    Api {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// HTTP status code.
        status: u16,
        /// The engine's `message`, or the body as text.
        message: String,
    },
    /// The engine's answer is not the JSON expected.
    #[error("{path}: unexpected answer from the engine")]
    Decode {
        /// Request path.
        path: String,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The engine did not answer in time.
    #[error("{what}: no answer from the engine within {after:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
    },
}

impl DockerError {
    /// HTTP status of an [`DockerError::Api`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the engine said the object does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The engine's own words, for stop reasons (`message` of an API error).
    pub fn engine_message(&self) -> String {
        match self {
            Self::Api { message, .. } => message.clone(),
            other => error_chain(other),
        }
    }

    /// Wraps this error as a [`RuntimeError`] of one task; `action` says what
    /// was attempted ("inspect the container of").
    pub(crate) fn for_task(
        self,
        task_id: &str,
        action: &'static str,
        endpoint: &str,
    ) -> RuntimeError {
        RuntimeError::Io {
            task_id: task_id.to_owned(),
            action,
            path: endpoint.into(),
            source: std::io::Error::other(self),
        }
    }
}

/// The error and its sources joined by ": ".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
