//! Plain row types, one per table, serialised as the API shows them.

use serde::{Deserialize, Serialize};

/// One registered task definition revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionRow {
    /// Family name.
    pub family: String,
    /// Revision, from 1.
    pub revision: u32,
    /// The canonical task definition JSON.
    pub body: serde_json::Value,
    /// sha256 of the canonical JSON, to make registration idempotent.
    pub digest: String,
    /// Registration time, Unix ms.
    pub registered_at: u64,
}

impl TaskDefinitionRow {
    /// `family:revision`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }
}

/// A service: what should run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRow {
    /// Service name.
    pub name: String,
    /// Current task definition, `family:revision`.
    pub task_definition: String,
    /// Desired number of tasks.
    pub desired_count: u32,
    /// Runtime name (`process`, `docker`).
    pub runtime: String,
    /// The rest of the service's declaration (load balancer, deployment), as applied.
    pub spec: serde_json::Value,
    /// ACTIVE, or DRAINING after a delete until its tasks stopped.
    pub status: String,
    /// Bumped on every change of the declaration.
    pub generation: u64,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms.
    pub updated_at: u64,
}

/// A task: one running (or once running) copy of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRow {
    /// Task id.
    pub id: String,
    /// Owning service.
    pub service: String,
    /// Task set within the service.
    pub task_set: String,
    /// `family:revision` it runs.
    pub task_definition: String,
    /// Runtime name.
    pub runtime: String,
    /// PROVISIONING, PENDING, RUNNING, STOPPING, STOPPED.
    pub last_status: String,
    /// RUNNING or STOPPED.
    pub desired_status: String,
    /// UNKNOWN, HEALTHY, UNHEALTHY.
    pub health_status: String,
    /// host:port the task serves on.
    pub endpoint: Option<String>,
    /// The runtime's handle (JSON), for adoption.
    pub handle: Option<serde_json::Value>,
    /// ECS-style stop code (EssentialContainerExited, TaskFailedToStart, ServiceSchedulerInitiated, UserInitiated).
    pub stop_code: Option<String>,
    /// Human-readable stop reason.
    pub stopped_reason: Option<String>,
    /// Exit code of the essential container.
    pub exit_code: Option<i32>,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms.
    pub started_at: Option<u64>,
    /// Unix ms.
    pub stopping_at: Option<u64>,
    /// Unix ms.
    pub stopped_at: Option<u64>,
}

/// One line of history about a service, task or deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    /// Monotonic id.
    pub id: i64,
    /// Unix ms.
    pub at: u64,
    /// `service/web`, `task/ID`, ...
    pub subject: String,
    /// The message.
    pub message: String,
}
