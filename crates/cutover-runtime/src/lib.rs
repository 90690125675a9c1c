//! Task runtimes behind one trait: the process runtime (embedded default).
//!
//! The control plane talks to a [`Runtime`]: start a task from a [`TaskSpec`],
//! observe it, stop it, probe its health and read its log. The trait is
//! engine-neutral; [`ProcessRuntime`] runs the essential container's command
//! as a local process under a small per-task supervisor (the *shim*, see
//! [`shim_main`]) so tasks outlive restarts and crashes of the server and are
//! adopted when it comes back.

mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod process;
mod types;

/// The parts of a [`Placement`], for cluster runtimes.
pub use cutover_core::placement as placement_types;
pub use error::RuntimeError;
pub use process::{ImageError, ProcessRuntime, shim_main};
pub use types::{
    ContainerSpec, ExitInfo, HealthCheckSpec, HealthCommand, LogStream, Placement, ProbeOutcome,
    REASON_CANNOT_START, REASON_EXITED, REASON_LOST, REASON_STOPPED, TaskHandle, TaskSpec,
    TaskStatus,
};

use std::time::Duration;

/// A way to run tasks on this machine.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Short name: "process", "docker".
    fn name(&self) -> &'static str;

    /// Whether this runtime's tasks run registry images (`repo:tag`) whose
    /// tags the control plane pins to digests when a deployment starts (the
    /// container runtimes). The process runtime's directories and tarballs
    /// are pinned by their content digest instead, so it answers `false`.
    fn pins_image_tags(&self) -> bool {
        false
    }

    /// Starts one task and returns once its process exists.
    ///
    /// Idempotent per task id: if a task with this id already exists (for
    /// example the server crashed after starting it), its handle is returned
    /// and nothing new is started; check [`Runtime::status`] to see whether
    /// it still runs.
    async fn start(&self, spec: &TaskSpec) -> Result<TaskHandle, RuntimeError>;

    /// Current state of a task; an unknown task is `Ok(TaskStatus::Gone)`.
    async fn status(&self, task_id: &str) -> Result<TaskStatus, RuntimeError>;

    /// Asks a task to stop (SIGTERM, then SIGKILL after its stop timeout) and
    /// returns at once. Stopping an exited or unknown task does nothing.
    async fn stop(&self, task_id: &str) -> Result<(), RuntimeError>;

    /// Waits until the task exits and returns how it ended. Cancel-safe.
    async fn wait(&self, task_id: &str) -> Result<ExitInfo, RuntimeError>;

    /// Every task this runtime has on this machine, running or exited but
    /// not yet removed, for adoption after a restart.
    async fn list(&self) -> Result<Vec<TaskHandle>, RuntimeError>;

    /// Forgets an exited task (its log is kept unless the runtime is
    /// configured otherwise). Removing an unknown task does nothing.
    async fn remove(&self, task_id: &str) -> Result<(), RuntimeError>;

    /// Runs the container health check once with the task's environment
    /// (including `PORT`) and working directory, killing it after `timeout`.
    async fn health_probe(
        &self,
        task_id: &str,
        check: &HealthCommand,
        timeout: Duration,
    ) -> Result<ProbeOutcome, RuntimeError>;

    /// The task's log: ends at the current end of the log when `follow` is
    /// false; otherwise keeps tailing until the task has exited and the log
    /// is drained.
    async fn logs(&self, task_id: &str, follow: bool) -> Result<LogStream, RuntimeError>;
}
