//! Services, their events, and the server status.

use crate::tasks::Task;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatus {
    /// The server's version.
    pub version: String,
    /// When the server started (Unix ms).
    pub started_at: u64,
    /// The state store's schema version.
    pub schema_version: u32,
    /// The runtimes tasks can run on (`process`, `docker`).
    pub runtimes: Vec<String>,
}

/// Whether a service runs or is being deleted (`cutover-core`'s, which the
/// store holds too).
pub use cutover_core::service::ServiceStatus;

/// A service with counts of its tasks, as `aws ecs describe-services` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Name.
    pub name: String,
    /// Active or draining.
    #[schema(schema_with = crate::schema::service_status)]
    pub status: ServiceStatus,
    /// `family:revision` its tasks run.
    pub task_definition: String,
    /// Tasks wanted.
    pub desired_count: u32,
    /// Tasks running.
    pub running_count: u32,
    /// Tasks starting.
    pub pending_count: u32,
    /// Tasks passing their health check.
    pub healthy_count: u32,
    /// `process` or `docker`.
    pub runtime: String,
    /// Bumped by every change.
    pub generation: u64,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms.
    pub updated_at: u64,
    /// The stack's settings of the service (load balancer, deployment), as
    /// stored.
    #[schema(value_type = Object)]
    pub spec: cutover_spec::stack::ServiceSettings,
    /// Latest events, newest first (describe only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
    /// Its tasks (describe only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<Task>>,
}

/// `GET /v1/services`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceList {
    /// Every service.
    pub services: Vec<Service>,
}

/// One service: describe, scale and delete answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceEnvelope {
    /// The service.
    pub service: Service,
}

/// Body of `PUT /v1/services/{name}/desired-count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleRequest {
    /// 0 to 1000.
    pub desired_count: u32,
}

/// An entry of a subject's history (`service/web`, `deployment/d-…`, `alarm/…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Increasing id.
    pub id: i64,
    /// Unix ms.
    pub at: u64,
    /// What it is about.
    pub subject: String,
    /// What happened.
    pub message: String,
}

/// `GET /v1/services/{name}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// Newest first.
    pub events: Vec<Event>,
}
