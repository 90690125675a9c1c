//! Plain row types, one per table, serialised as the API shows them.

use cutover_core::service::ServiceStatus;
use cutover_core::task::{DesiredStatus, HealthStatus, TaskHandle, TaskState};
use cutover_deploy::alarm::AlarmState;
use cutover_deploy::{DeploymentEngine, DeploymentKind, DeploymentStatus};
use cutover_spec::stack::{Alarm, ServiceSettings};
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
    pub spec: ServiceSettings,
    /// ACTIVE, or DRAINING after a delete until its tasks stopped (stored
    /// under these names; an unknown one is an error).
    pub status: ServiceStatus,
    /// Which of the service's two target groups (`a` or `b`) is live.
    pub lb_group: String,
    /// Bumped on every change of the declaration.
    pub generation: u64,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms.
    pub updated_at: u64,
}

/// A task: one running (or once running) copy of a service.
///
/// Each column has one writer, so a write from a stale read can never undo
/// another writer's change: [`crate::ops::insert_task`] writes the row once;
/// the identity columns (`id`, `service`, `task_definition`, `runtime`,
/// `created_at`) never change; `task_set` changes only through
/// [`crate::ops::relabel_task_set`] (a blue/green promotion); every other
/// column is the lifecycle, written only by the service's reconcile loop
/// (and adoption, before the loop starts) through
/// [`crate::ops::update_task_lifecycle`], which checks the status change
/// against the stored status.
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
    /// PROVISIONING, PENDING, RUNNING, STOPPING, STOPPED; changed only
    /// through [`TaskRow::set_status`], which refuses a move backwards.
    pub last_status: TaskState,
    /// RUNNING or STOPPED.
    pub desired_status: DesiredStatus,
    /// UNKNOWN, HEALTHY, UNHEALTHY.
    pub health_status: HealthStatus,
    /// host:port the task serves on.
    pub endpoint: Option<String>,
    /// The runtime's handle, for adoption (stored as its JSON).
    pub handle: Option<TaskHandle>,
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

/// A lifecycle move the task state machine forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task}: {from} cannot become {to}")]
pub struct InvalidTransition {
    /// The task.
    pub task: String,
    /// Its state.
    pub from: TaskState,
    /// The refused state.
    pub to: TaskState,
}

impl TaskRow {
    /// Moves the task to `to` if the lifecycle allows it
    /// ([`TaskState::can_become`]); staying in the same state is allowed
    /// and changes nothing.
    pub fn set_status(&mut self, to: TaskState) -> Result<(), InvalidTransition> {
        if self.last_status == to {
            return Ok(());
        }
        if !self.last_status.can_become(to) {
            return Err(InvalidTransition {
                task: self.id.clone(),
                from: self.last_status,
                to,
            });
        }
        self.last_status = to;
        Ok(())
    }
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

/// A deployment of a service: its engine state and what the data plane
/// should carry for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRow {
    /// Deployment id (`d-...`).
    pub id: String,
    /// The service.
    pub service: String,
    /// Created, Queued, InProgress, Baking, Ready, Succeeded, Failed,
    /// Stopped (stored under these names; an unknown one is an error).
    pub status: DeploymentStatus,
    /// Revision before (`family:revision`).
    pub from_task_definition: String,
    /// Revision deployed.
    pub to_task_definition: String,
    /// Deployment configuration name.
    pub config: String,
    /// The kind, and for a blue/green deployment the pure engine's state
    /// (stored as the `kind` column and the engine's JSON); see
    /// [`DeploymentRow::kind`].
    pub engine: DeploymentEngine,
    /// Whether the replacement task set should run.
    pub green_provisioned: bool,
    /// Production traffic on the replacement, as last pushed to the proxy.
    pub prod_green_percent: u8,
    /// Whether the test listener points at the replacement.
    pub test_on_green: bool,
    /// Who or what started it.
    pub started_by: String,
    /// The deployment this one rolls back, if any.
    pub rollback_of: Option<String>,
    /// The deployment that rolled this one back, if any.
    pub rolled_back_by: Option<String>,
    /// Final message.
    pub outcome: Option<String>,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms.
    pub updated_at: u64,
    /// Unix ms.
    pub finished_at: Option<u64>,
}

impl DeploymentRow {
    /// A new deployment of `service` from one revision to another, with
    /// nothing provisioned and no traffic moved yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        service: &str,
        engine: DeploymentEngine,
        status: DeploymentStatus,
        from: &str,
        to: &str,
        config: &str,
        started_by: &str,
        now: u64,
    ) -> DeploymentRow {
        DeploymentRow {
            id: id.to_string(),
            service: service.to_string(),
            status,
            from_task_definition: from.to_string(),
            to_task_definition: to.to_string(),
            config: config.to_string(),
            engine,
            green_provisioned: false,
            prod_green_percent: 0,
            test_on_green: false,
            started_by: started_by.to_string(),
            rollback_of: None,
            rolled_back_by: None,
            outcome: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }

    /// BLUE_GREEN, ROLLING or ROLLBACK, implied by the engine state.
    pub fn kind(&self) -> DeploymentKind {
        self.engine.kind()
    }
}

/// An alarm's declaration and last state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    /// Alarm name.
    pub name: String,
    /// Its declaration, as applied.
    pub spec: AlarmSpec,
    /// OK, ALARM, INSUFFICIENT_DATA (stored under these names; an unknown
    /// one is an error).
    pub state: AlarmState,
    /// Why.
    pub reason: String,
    /// Unix ms of the last state change.
    pub updated_at: u64,
}

/// An alarm's stored declaration: the stack's alarm entry (stored as its
/// JSON), or, for a stored text this binary cannot read, that text and why.
///
/// An unreadable declaration is not an error of the whole table, unlike an
/// unknown state: the alarm loop reports that one alarm (INSUFFICIENT_DATA,
/// with the reason) and goes on evaluating the others, and writing the row
/// back keeps the text as it was.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmSpec {
    /// The declaration, typed.
    Declared(Alarm),
    /// A stored declaration that does not decode as an [`Alarm`].
    Unreadable {
        /// The stored JSON text, unchanged.
        json: String,
        /// Why it does not decode.
        error: String,
    },
}

impl AlarmSpec {
    /// The declaration, or why the stored one cannot be read.
    pub fn declared(&self) -> Result<&Alarm, &str> {
        match self {
            AlarmSpec::Declared(a) => Ok(a),
            AlarmSpec::Unreadable { error, .. } => Err(error),
        }
    }

    /// The spec of a stored column's text.
    pub(crate) fn from_column(json: String) -> AlarmSpec {
        match serde_json::from_str(&json) {
            Ok(a) => AlarmSpec::Declared(a),
            Err(e) => AlarmSpec::Unreadable {
                json,
                error: e.to_string(),
            },
        }
    }

    /// The column's text.
    pub(crate) fn to_column(&self) -> Result<String, serde_json::Error> {
        match self {
            AlarmSpec::Declared(a) => serde_json::to_string(a),
            AlarmSpec::Unreadable { json, .. } => Ok(json.clone()),
        }
    }
}

impl From<Alarm> for AlarmSpec {
    fn from(a: Alarm) -> AlarmSpec {
        AlarmSpec::Declared(a)
    }
}
