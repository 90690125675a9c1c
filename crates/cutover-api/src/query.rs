//! Query strings of the `GET` routes that take one; the OpenAPI document
//! lists their parameters from these types (utoipa's `IntoParams`).

use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

/// `GET /v1/task-definitions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskDefinitionListQuery {
    /// Only this family.
    pub family: Option<String>,
}

/// `GET /v1/services/{name}/events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Most events answered (default 100, at most 10000).
    pub limit: Option<u32>,
}

/// `GET /v1/tasks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskListQuery {
    /// Only this service's tasks.
    pub service: Option<String>,
    /// Include stopped tasks.
    #[serde(default)]
    pub all: bool,
    /// Most tasks answered (default 1000).
    pub limit: Option<u32>,
}

/// `GET /v1/tasks/{id}/logs` and `GET /v1/services/{name}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Keep the answer open and stream new lines.
    #[serde(default)]
    pub follow: bool,
}

/// `GET /v1/deployments`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeploymentListQuery {
    /// Only this service's deployments.
    pub service: Option<String>,
    /// Most deployments answered (default 50, at most 1000).
    pub limit: Option<u32>,
}

/// `GET /v1/builds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BuildListQuery {
    /// Only this build project's builds.
    pub project: Option<String>,
    /// Most builds answered (default 50).
    #[serde(default = "default_build_limit")]
    pub limit: u32,
}

fn default_build_limit() -> u32 {
    50
}

/// `GET /v1/builds/{id}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BuildLogQuery {
    /// Byte offset to read from (the previous answer's `nextOffset`).
    #[serde(default)]
    pub offset: u64,
}
