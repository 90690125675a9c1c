//! Engine-neutral types exchanged between the control plane and a runtime.
//!
//! Nothing here knows about processes or containers: the process runtime and
//! a later Docker runtime both start a [`TaskSpec`] and report a
//! [`TaskHandle`], [`TaskStatus`] and [`ExitInfo`].

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

/// Stop reason of a task whose essential container exited on its own.
pub const REASON_EXITED: &str = "Essential container in task exited";
/// Stop reason of a task stopped through [`crate::Runtime::stop`].
pub const REASON_STOPPED: &str = "Task stopped by user";
/// Prefix of the stop reason of a task whose process could not be started.
pub const REASON_CANNOT_START: &str = "CannotStartContainerError";
/// Stop reason of a task whose supervisor vanished without recording an exit.
pub const REASON_LOST: &str = "TaskLost: task supervisor exited without recording the exit";

/// What to run for one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Unique id of the task; letters, digits, `-`, `_` and `.` (not leading), at most 128.
    pub task_id: String,
    /// Name of the service the task belongs to.
    pub service: String,
    /// Task definition as `family:revision`.
    pub task_definition: String,
    /// The essential container of the task definition.
    pub container: ContainerSpec,
    /// Free-form labels, kept with the task for the control plane.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where a cluster runtime may run the task (the service's placement);
    /// single-machine runtimes ignore it.
    #[serde(default)]
    pub placement: Placement,
}

/// The container definition fields a runtime needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container name from the task definition.
    pub name: String,
    /// `image`: for the process runtime a local directory or `.tar`/`.tar.gz`
    /// archive (path or `file://` URI); other names are ignored with a warning.
    pub image: Option<String>,
    /// `entryPoint`, prepended to `command`.
    #[serde(default)]
    pub entry_point: Vec<String>,
    /// `command`.
    #[serde(default)]
    pub command: Vec<String>,
    /// `environment` as name/value pairs, later entries winning.
    #[serde(default)]
    pub environment: Vec<(String, String)>,
    /// `workingDirectory`; relative to the image root when there is an image.
    pub working_directory: Option<String>,
    /// `portMappings[0].containerPort`; the task's endpoint serves it.
    pub container_port: Option<u16>,
    /// `stopTimeout`: time between SIGTERM and SIGKILL.
    pub stop_timeout: Duration,
    /// `cpu` units (informational for the process runtime).
    pub cpu: Option<u32>,
    /// `memory` in MiB (informational for the process runtime).
    pub memory_mib: Option<u32>,
    /// `healthCheck`, for runtimes whose engine runs it (Swarm); the others
    /// leave it to the control plane's probes ([`crate::Runtime::health_probe`]).
    #[serde(default)]
    pub health_check: Option<HealthCheckSpec>,
}

/// A container's `healthCheck` with its timing, as the task definition gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckSpec {
    /// The command.
    pub command: HealthCommand,
    /// Time between two checks.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u32,
    /// Grace period after the start, during which failures do not count.
    pub start_period: Duration,
}

impl Default for ContainerSpec {
    fn default() -> Self {
        Self {
            name: String::new(),
            image: None,
            entry_point: Vec::new(),
            command: Vec::new(),
            environment: Vec::new(),
            working_directory: None,
            container_port: None,
            stop_timeout: Duration::from_secs(30),
            cpu: None,
            memory_mib: None,
            health_check: None,
        }
    }
}

/// A container health check command (`healthCheck.command`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthCommand {
    /// `["CMD", argv...]`: run argv directly.
    Cmd(Vec<String>),
    /// `["CMD-SHELL", script]`: run `sh -c script`.
    Shell(String),
}

/// Result of one health probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// The command exited 0.
    Healthy,
    /// The command failed.
    Unhealthy {
        /// Exit code, `None` when killed by a signal or not started.
        exit_code: Option<i32>,
        /// Last KiB of its stdout followed by its stderr.
        output: String,
    },
    /// The command ran past its timeout and was killed.
    TimedOut,
    /// The engine runs the check itself (Swarm) and has not decided yet.
    Pending,
}

pub use cutover_core::placement::Placement;
pub use cutover_core::task::TaskHandle;

/// Where a task stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskStatus {
    /// The task's process runs.
    Running(TaskHandle),
    /// The task ended; its state is kept until removed.
    Exited(ExitInfo),
    /// The runtime knows no such task.
    Gone,
}

/// How a task ended (the process runtime's `exit.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitInfo {
    /// Exit code; 128 + signal when killed by a signal (as Docker and ECS
    /// report it); `None` when the process never ran or was lost.
    pub exit_code: Option<i32>,
    /// The signal that killed the process, if any.
    pub signal: Option<i32>,
    /// Whether the kernel's OOM killer ended it (always false for processes).
    pub oom_killed: bool,
    /// Stop reason in ECS words, e.g. [`REASON_EXITED`], [`REASON_STOPPED`],
    /// `"CannotStartContainerError: ..."`.
    pub reason: String,
    /// When the exit was recorded (Unix epoch, milliseconds).
    #[serde(rename = "finishedAt")]
    pub finished_at_unix_ms: u64,
}

/// Bytes of a task's log, as written.
pub type LogStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;
