//! The seam between deploy actions and the control plane's deployments:
//! [`Deployments`] is what an `ECS` or `CodeDeployToECS` action needs from
//! the server (the service's current task definition, its deployment
//! tagged for this action, a new deployment, and its status). The server
//! implements it over its deployer; this crate never depends on the server.

use async_trait::async_trait;
use cutover_store::StoreError;
use serde_json::Value;

/// A deployment a deploy action asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRequest {
    /// The service deployed to.
    pub service: String,
    /// The task definition's family.
    pub family: String,
    /// The task definition body (ECS JSON) to register, or reuse when it
    /// equals the newest revision of `family`.
    pub task_definition: Value,
    /// The appspec of a `CodeDeployToECS` action, whose hooks the control
    /// plane resolves against the service's stack `functions`.
    pub appspec: Option<AppSpecFile>,
    /// `pipeline/<action key>`: finds the deployment again after a restart.
    pub started_by: String,
}

/// An appspec as read: its name, its text and the typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpecFile {
    /// The file name, for messages.
    pub file: String,
    /// The text, to locate messages in.
    pub text: String,
    /// The parsed appspec.
    pub appspec: cutover_spec::AppSpec,
}

/// Where a deployment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentState {
    /// Not finished.
    Running,
    /// Finished with success.
    Succeeded,
    /// Finished otherwise; the text says how (`deployment d-1 stopped: ...`).
    Failed(String),
}

/// Why the control plane could not answer a deploy action.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentsError {
    /// No service of that name.
    #[error("service {0:?} not found")]
    ServiceNotFound(String),
    /// No deployment of that id.
    #[error("deployment {0} not found")]
    DeploymentNotFound(String),
    /// The control plane refused the deployment; the text says why.
    #[error("{0}")]
    Refused(String),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The control plane's deployments, as deploy actions use them.
#[async_trait]
pub trait Deployments: Send + Sync {
    /// The task definition `service` runs now: its name
    /// (`family:revision`) and body.
    async fn current_task_definition(
        &self,
        service: &str,
    ) -> Result<(String, Value), DeploymentsError>;

    /// The id of the deployment of `service` started with `started_by`,
    /// if there is one (an action re-issued after a restart waits for it).
    async fn started_by(
        &self,
        service: &str,
        started_by: &str,
    ) -> Result<Option<String>, DeploymentsError>;

    /// Registers the task definition and creates the deployment; returns
    /// `(deployment id, task definition name)`.
    async fn create(
        &self,
        request: DeploymentRequest,
    ) -> Result<(String, String), DeploymentsError>;

    /// Where deployment `id` is.
    async fn state(&self, id: &str) -> Result<DeploymentState, DeploymentsError>;
}
