//! Deployments (CodeDeploy-style blue/green, and rolling updates).

use crate::services::Event;
use cutover_deploy::DeploymentKind;
use cutover_deploy::bluegreen::{DeploymentStatus, EventStatus};
use cutover_deploy::config::{LifecycleEvent, TrafficRouting};
use cutover_spec::diag::Diagnostic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A file as the user has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileBody {
    /// File name, for error messages.
    pub file: String,
    /// The file's text.
    pub content: String,
}

/// Where a deployment's new revision comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TaskDefinitionSource {
    /// `family[:revision]` already registered.
    Name(String),
    /// A task definition file to register.
    File(FileBody),
}

/// Body of `POST /v1/deployments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDeploymentRequest {
    /// The service.
    pub service: String,
    /// The new revision; absent: the service's current one (a redeploy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<TaskDefinitionSource>,
    /// A CodeDeploy appspec (hooks, container check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appspec: Option<FileBody>,
    /// A deployment configuration name (`CodeDeployDefault.ECSCanary10Percent5Minutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_config: Option<String>,
    /// Container name to image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
    /// Container name to (variable to value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, BTreeMap<String, String>>,
    /// Who started it (default `api`).
    #[serde(default = "default_started_by")]
    pub started_by: String,
}

fn default_started_by() -> String {
    "api".into()
}

/// A deployment: its row, and for a blue/green one its lifecycle and traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Id (`d-…`).
    pub id: String,
    /// The service.
    pub service: String,
    /// `BLUE_GREEN`, `ROLLING` or `ROLLBACK`.
    #[schema(schema_with = crate::schema::deployment_kind)]
    pub kind: DeploymentKind,
    /// CodeDeploy's status.
    #[schema(schema_with = crate::schema::deployment_status)]
    pub status: DeploymentStatus,
    /// The revision it replaces.
    pub from_task_definition: String,
    /// The revision it deploys.
    pub to_task_definition: String,
    /// The image of the revision it deploys, pinned to its digest when the
    /// deployment was created (`repo@sha256:...`); absent when not pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The digest of that image (`sha256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// The deployment configuration's name.
    pub config: String,
    /// Whether the green task set exists.
    pub green_provisioned: bool,
    /// Production share on green.
    pub prod_green_percent: u8,
    /// Whether the test listener routes to green.
    pub test_on_green: bool,
    /// Who started it.
    pub started_by: String,
    /// The deployment it rolls back.
    pub rollback_of: Option<String>,
    /// The deployment that rolled it back.
    pub rolled_back_by: Option<String>,
    /// How it ended.
    pub outcome: Option<String>,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms.
    pub updated_at: u64,
    /// Unix ms.
    pub finished_at: Option<u64>,
    /// Blue/green only: lifecycle, traffic, alarms, routing.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenView>,
    /// Its history (get only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
}

/// What the blue/green engine shows of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenView {
    /// The lifecycle events in order.
    pub lifecycle: Vec<LifecycleRecord>,
    /// Where traffic is.
    pub traffic: Traffic,
    /// Alarms that stop it.
    pub alarms: Vec<String>,
    /// How production traffic moves.
    #[schema(value_type = Object)]
    pub routing: TrafficRouting,
    /// When the engine next needs a tick (Unix ms).
    pub next_wakeup: Option<u64>,
}

/// One lifecycle event's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRecord {
    /// The event (`BeforeInstall` … `AfterAllowTraffic`).
    #[schema(value_type = String)]
    pub event: LifecycleEvent,
    /// Its status.
    #[schema(schema_with = crate::schema::event_status)]
    pub status: EventStatus,
    /// Unix ms.
    pub started_at: Option<u64>,
    /// Unix ms.
    pub ended_at: Option<u64>,
    /// Why it failed or was skipped.
    pub message: Option<String>,
}

/// Where a blue/green deployment's traffic is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    /// Acknowledged production share on green.
    pub prod_green_percent: u8,
    /// Acknowledged: the test listener routes to green.
    pub test_on_green: bool,
    /// A share requested and not yet acknowledged by the data plane.
    pub pending_percent: Option<u8>,
}

/// `GET /v1/deployments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentList {
    /// Newest first.
    pub deployments: Vec<Deployment>,
}

/// What was asked of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Requested {
    /// `POST …/stop`.
    Stop,
    /// `POST …/continue`.
    Continue,
    /// `POST /v1/services/{name}/rollback` during a termination wait.
    Rollback,
    /// `POST /v1/services/{name}/rollback` by a new deployment.
    Redeploy,
}

/// One deployment: create, get, stop, continue and rollback answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentEnvelope {
    /// The deployment.
    pub deployment: Deployment,
    /// Create only: warnings about the files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::schema::DiagnosticSchema>>)]
    pub warnings: Option<Vec<Diagnostic>>,
    /// Stop, continue and rollback: what was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<Requested>,
}

/// Body of `POST /v1/deployments/{id}/stop` (optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopDeploymentRequest {
    /// Roll production back to the original tasks; absent: the
    /// deployment's DEPLOYMENT_STOP_ON_REQUEST setting decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<bool>,
}

/// Body of `PUT /v1/deployments/{id}/lifecycle-hooks/{execution_id}`
/// (CodeDeploy's PutLifecycleEventHookExecutionStatus).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookStatusRequest {
    /// `Succeeded` or `Failed` (anything else is refused with 400).
    #[schema(schema_with = crate::schema::hook_status)]
    pub status: cutover_deploy::bluegreen::HookStatus,
}

/// Answer of the hook callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookStatusResponse {
    /// The hook execution.
    pub lifecycle_event_hook_execution_id: String,
}
