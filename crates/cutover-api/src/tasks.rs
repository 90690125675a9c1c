//! Tasks.

use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A task, as `aws ecs describe-tasks` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Id.
    pub id: String,
    /// Its service.
    pub service: String,
    /// Its task set (blue/green group).
    pub task_set: String,
    /// `family:revision`.
    pub task_definition: String,
    /// `process` or `docker`.
    pub runtime: String,
    /// Where it is in its lifecycle.
    #[schema(schema_with = crate::schema::task_state)]
    pub last_status: TaskState,
    /// Where the controller wants it.
    #[schema(schema_with = crate::schema::desired_status)]
    pub desired_status: DesiredStatus,
    /// Its health check's verdict.
    #[schema(schema_with = crate::schema::health_status)]
    pub health_status: HealthStatus,
    /// The image it runs, pinned to its digest (`repo@sha256:...`); absent
    /// when its image is not pinned (the process runtime, short names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The digest of that image (`sha256:...`), ECS's `imageDigest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// `host:port` it serves on.
    pub endpoint: Option<String>,
    /// The runtime's handle (pid, endpoint; `detail` holds the runtime's
    /// own fields, such as a container id).
    #[schema(value_type = Option<Object>)]
    pub handle: Option<cutover_core::task::TaskHandle>,
    /// ECS-style stop code.
    pub stop_code: Option<String>,
    /// Why it stopped.
    pub stopped_reason: Option<String>,
    /// Exit code of its essential container.
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

/// `GET /v1/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskList {
    /// The tasks.
    pub tasks: Vec<Task>,
}

/// `GET /v1/tasks/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskEnvelope {
    /// The task.
    pub task: Task,
}
