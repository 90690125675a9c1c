//! Errors of finding and talking to the engine.
//!
//! [`DockerError`] is what talking to Docker or Podman can go wrong with; the
//! runtime wraps it into [`cutover_runtime::RuntimeError`] with the task id
//! (see [`DockerError::for_task`]) so the control plane sees one error type.

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
    /// `runtime: swarm` needs a swarm manager, and this engine is not one.
    #[error(
        "engine at {endpoint} is not a Docker Swarm manager (swarm state {state:?}); run `docker swarm init` or point DOCKER_HOST at a manager"
    )]
    NotAManager {
        /// Address of the engine.
        endpoint: String,
        /// Its `Swarm.LocalNodeState` ("inactive", "active", ...).
        state: String,
    },
    /// A request to the engine failed: it could not be sent, the engine
    /// answered with an error status (`DockerResponseServerError`), or the
    /// answer is not what the API describes.
    #[error(transparent)]
    Engine(#[from] bollard::errors::Error),
}

impl DockerError {
    /// HTTP status of an error answer of the engine.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Engine(bollard::errors::Error::DockerResponseServerError {
                status_code, ..
            }) => Some(*status_code),
            _ => None,
        }
    }

    /// Whether the engine said the object does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The engine's own words, for stop reasons: the `message` of an error
    /// answer or of an error event in a stream, else the whole error chain.
    pub fn engine_message(&self) -> String {
        use bollard::errors::Error;
        match self {
            Self::Engine(
                Error::DockerResponseServerError { message, .. }
                | Error::DockerStreamError { error: message },
            ) => message.clone(),
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

/// An engine answer where "no such object" (HTTP 404) is `None`, not an
/// error.
pub(crate) fn if_exists<T>(
    answer: Result<T, bollard::errors::Error>,
) -> Result<Option<T>, DockerError> {
    match answer.map_err(DockerError::from) {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether an engine answer named a container state the Docker API does not
/// have: Podman reports `stopped` for the moment between a container's exit
/// and its cleanup (and `configured`/`initialized` before a start), which the
/// API's state enum refuses. Such an answer is asked again, as the container
/// soon reaches a state the API names.
pub(crate) fn is_transient_state(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::JsonDataError { message, .. } => {
            ["stopped", "configured", "initialized"]
                .iter()
                .any(|state| message.contains(&format!("unknown variant `{state}`")))
        }
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn json_error(message: &str) -> bollard::errors::Error {
        bollard::errors::Error::JsonDataError {
            message: message.into(),
            column: 183,
        }
    }

    #[test]
    fn podman_only_states_are_transient_and_other_answers_are_not() {
        let stopped = json_error(
            "unknown variant `stopped`, expected one of ``, `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`, `stopping` at line 1 column 183",
        );
        assert!(is_transient_state(&stopped));
        assert!(is_transient_state(&json_error(
            "unknown variant `configured`, expected one of"
        )));
        assert!(!is_transient_state(&json_error(
            "missing field `Id` at line 1 column 2"
        )));
        assert!(!is_transient_state(&json_error(
            "unknown variant `bogus`, expected one of"
        )));
        let server = bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message: "unknown variant `stopped`".into(),
        };
        assert!(!is_transient_state(&server));
    }
}
