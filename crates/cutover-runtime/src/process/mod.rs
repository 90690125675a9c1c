//! The process runtime: each task is a local process under its own shim.
//!
//! [`ProcessRuntime::start`] resolves the container definition (see
//! `launch`), writes `spec.json` into the task's directory and starts
//! `<cutover> __shim --task-dir DIR`, which starts the task process and
//! reports back on a pipe. The runtime holds no state of its own beyond a
//! few in-memory locks: every answer comes from the task directories and
//! `/proc`, so a new instance on the same data directory (a restarted or
//! upgraded server) sees and adopts exactly the tasks that exist. Exits are
//! noticed through a pidfd on the shim, without polling.

mod image;
mod launch;
mod logs;
mod probe;
mod shim;
mod start;
mod state;
mod sys;

pub use image::ImageError;
pub use shim::shim_main;

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::{
    ExitInfo, HealthCommand, LogStream, ProbeOutcome, REASON_LOST, Runtime, RuntimeError,
    TaskHandle, TaskSpec, TaskStatus,
};
use state::{ProcessRecord, ReadError, StoredSpec, TaskPaths};

/// Name of the process runtime.
pub const NAME: &str = "process";
/// Environment variable naming the binary that `cutover` means in commands
/// (and that runs the shims); defaults to the running executable.
pub const CUTOVER_BIN_ENV: &str = "CUTOVER_BIN";
/// How long `start` waits for the shim to report.
const SHIM_REPORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Fallback poll interval where pidfds are unavailable.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a handed-out port is kept from being handed out again.
const PORT_QUARANTINE: Duration = Duration::from_secs(120);

/// Runs tasks as local processes; see the module documentation.
pub struct ProcessRuntime {
    data_dir: PathBuf,
    cutover_bin: PathBuf,
    shim_command: Vec<OsString>,
    keep_logs: bool,
    keep_setuid: bool,
    start_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    recent_ports: Mutex<VecDeque<(u16, Instant)>>,
}

impl std::fmt::Debug for ProcessRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRuntime")
            .field("data_dir", &self.data_dir)
            .field("cutover_bin", &self.cutover_bin)
            .field("shim_command", &self.shim_command)
            .finish_non_exhaustive()
    }
}

impl ProcessRuntime {
    /// A runtime keeping its state under `data_dir` (`tasks/`, `images/`, `logs/`).
    ///
    /// `cutover` in commands and the shim both use `$CUTOVER_BIN`, else the
    /// running executable; the shim is started as `<bin> __shim --task-dir DIR`.
    pub fn new(data_dir: PathBuf) -> Self {
        let cutover_bin = std::env::var_os(CUTOVER_BIN_ENV)
            .map(PathBuf::from)
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("cutover"));
        Self {
            data_dir,
            shim_command: vec![cutover_bin.clone().into(), "__shim".into()],
            cutover_bin,
            keep_logs: true,
            keep_setuid: false,
            start_locks: Mutex::new(HashMap::new()),
            recent_ports: Mutex::new(VecDeque::new()),
        }
    }

    /// Sets the binary that `cutover` means in commands and health checks.
    pub fn with_cutover_bin(mut self, path: PathBuf) -> Self {
        self.cutover_bin = path;
        self
    }

    /// Keeps setuid and setgid bits of image files (off by default: an
    /// image is content from a build or another user, and a setuid binary
    /// in it would run with its owner's rights on this host).
    pub fn with_setuid_images(mut self, keep: bool) -> Self {
        self.keep_setuid = keep;
        self
    }

    /// Sets the command that starts a shim; `--task-dir DIR` is appended.
    pub fn with_shim_command(mut self, command: Vec<OsString>) -> Self {
        self.shim_command = command;
        self
    }

    /// Whether `remove` keeps a task's log (moved to `logs/<task_id>.log`); default true.
    pub fn with_keep_logs(mut self, keep: bool) -> Self {
        self.keep_logs = keep;
        self
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Path of a task's log file (in the task directory, or under `logs/`
    /// once the task was removed).
    pub fn log_path(&self, task_id: &str) -> PathBuf {
        let live = self.paths(task_id).log();
        if live.exists() {
            live
        } else {
            self.kept_log(task_id)
        }
    }

    fn tasks_dir(&self) -> PathBuf {
        self.data_dir.join("tasks")
    }

    fn paths(&self, task_id: &str) -> TaskPaths {
        TaskPaths::new(self.tasks_dir().join(task_id))
    }

    fn kept_log(&self, task_id: &str) -> PathBuf {
        self.data_dir.join("logs").join(format!("{task_id}.log"))
    }

    fn start_lock(&self, task_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.start_locks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(task_id.to_owned()).or_default())
    }

    fn read<T: DeserializeOwned>(task_id: &str, path: &Path) -> Result<Option<T>, RuntimeError> {
        state::read_json(path).map_err(|e| match e {
            ReadError::Io(source) => RuntimeError::io(task_id, "read", path, source),
            ReadError::Json(source) => RuntimeError::Corrupt {
                task_id: task_id.to_owned(),
                path: path.to_owned(),
                source,
            },
        })
    }

    fn handle(&self, spec: &StoredSpec, paths: &TaskPaths) -> Result<TaskHandle, RuntimeError> {
        let task_id = &spec.task.task_id;
        let task: Option<ProcessRecord> = Self::read(task_id, &paths.task_pid())?;
        let shim: Option<ProcessRecord> = Self::read(task_id, &paths.shim_pid())?;
        Ok(TaskHandle {
            task_id: task_id.clone(),
            runtime: NAME.to_owned(),
            endpoint: spec
                .task
                .container
                .container_port
                .map(|_| SocketAddr::from((Ipv4Addr::LOCALHOST, spec.launch.port))),
            pid: task.map(|t| t.pid),
            started_at_unix_ms: task.map_or(spec.created_at_unix_ms, |t| t.recorded_at_unix_ms),
            detail: serde_json::json!({
                "taskDir": paths.dir,
                "logPath": paths.log(),
                "shimPid": shim.map(|s| s.pid),
                "port": spec.launch.port,
                "cwd": spec.launch.cwd,
                "imageDigest": spec.image_digest,
                "warnings": spec.warnings,
            }),
        })
    }

    /// The recorded exit, or a synthesized one if the shim died without
    /// recording it (then the task is killed for good and the exit written).
    fn exit_if_over(
        &self,
        task_id: &str,
        paths: &TaskPaths,
    ) -> Result<Option<ExitInfo>, RuntimeError> {
        if let Some(exit) = Self::read(task_id, &paths.exit())? {
            return Ok(Some(exit));
        }
        let Some(shim) = Self::read::<ProcessRecord>(task_id, &paths.shim_pid())? else {
            return Ok(None);
        };
        if shim.is_alive() {
            return Ok(None);
        }
        // The shim writes exit.json before exiting: look again to close the race.
        if let Some(exit) = Self::read(task_id, &paths.exit())? {
            return Ok(Some(exit));
        }
        // The kernel killed the task with the shim (death signal); make sure
        // of it, and of anything left in its process group.
        if let Some(task) = Self::read::<ProcessRecord>(task_id, &paths.task_pid())?
            && task.is_alive()
        {
            signal_record(&task, libc::SIGKILL);
            if let Ok(pid) = i32::try_from(task.pid) {
                let _ = sys::kill(-pid, libc::SIGKILL);
            }
        }
        tracing::warn!(%task_id, shim_pid = shim.pid, "task supervisor vanished; recording the task as lost");
        let exit = ExitInfo {
            exit_code: None,
            signal: None,
            oom_killed: false,
            reason: REASON_LOST.to_owned(),
            finished_at_unix_ms: state::now_unix_ms(),
        };
        state::write_json_atomic(&paths.exit(), &exit)
            .map_err(|e| RuntimeError::io(task_id, "write", paths.exit(), e))?;
        Ok(Some(exit))
    }
}

#[async_trait::async_trait]
impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, spec: &TaskSpec) -> Result<TaskHandle, RuntimeError> {
        let task_id = &spec.task_id;
        validate_task_id(task_id)?;
        let lock = self.start_lock(task_id);
        let _guard = lock.lock().await;
        let paths = self.paths(task_id);
        if let Some(handle) = self.existing(task_id, &paths).await? {
            tracing::info!(%task_id, pid = ?handle.pid, "task already exists; adopting it");
            return Ok(handle);
        }
        self.start_new(spec, &paths).await
    }

    async fn status(&self, task_id: &str) -> Result<TaskStatus, RuntimeError> {
        validate_task_id(task_id)?;
        let paths = self.paths(task_id);
        let Some(spec) = Self::read::<StoredSpec>(task_id, &paths.spec())? else {
            return Ok(TaskStatus::Gone);
        };
        if let Some(exit) = self.exit_if_over(task_id, &paths)? {
            return Ok(TaskStatus::Exited(exit));
        }
        Ok(TaskStatus::Running(self.handle(&spec, &paths)?))
    }

    async fn stop(&self, task_id: &str) -> Result<(), RuntimeError> {
        validate_task_id(task_id)?;
        let paths = self.paths(task_id);
        if self.exit_if_over(task_id, &paths)?.is_some() {
            return Ok(());
        }
        if let Some(shim) = Self::read::<ProcessRecord>(task_id, &paths.shim_pid())? {
            tracing::info!(%task_id, shim_pid = shim.pid, "stopping task");
            signal_record(&shim, libc::SIGTERM);
        }
        Ok(())
    }

    async fn wait(&self, task_id: &str) -> Result<ExitInfo, RuntimeError> {
        validate_task_id(task_id)?;
        let paths = self.paths(task_id);
        loop {
            if let Some(exit) = self.exit_if_over(task_id, &paths)? {
                return Ok(exit);
            }
            if !paths.dir.exists() {
                return Err(RuntimeError::NotFound {
                    task_id: task_id.to_owned(),
                });
            }
            let Some(shim) = Self::read::<ProcessRecord>(task_id, &paths.shim_pid())? else {
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            };
            match sys::pidfd_open(shim.pid).and_then(sys::async_pidfd) {
                // Opened after the identity check would race; checking after
                // opening proves the descriptor names the shim we recorded.
                Ok(fd) if shim.is_alive() => {
                    let _ = fd.readable().await;
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }

    async fn list(&self) -> Result<Vec<TaskHandle>, RuntimeError> {
        let dir = self.tasks_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RuntimeError::io("", "read", &dir, e)),
        };
        let mut handles = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RuntimeError::io("", "read", &dir, e))?;
            let Some(task_id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if validate_task_id(&task_id).is_err() {
                continue;
            }
            let paths = self.paths(&task_id);
            match Self::read::<StoredSpec>(&task_id, &paths.spec()) {
                Ok(Some(spec)) if paths.task_pid().exists() || paths.exit().exists() => {
                    handles.push(self.handle(&spec, &paths)?);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%task_id, error = %error, "skipping unreadable task"),
            }
        }
        handles.sort_by(|a, b| {
            a.started_at_unix_ms
                .cmp(&b.started_at_unix_ms)
                .then(a.task_id.cmp(&b.task_id))
        });
        Ok(handles)
    }

    async fn remove(&self, task_id: &str) -> Result<(), RuntimeError> {
        validate_task_id(task_id)?;
        let paths = self.paths(task_id);
        if !paths.dir.exists() {
            return Ok(());
        }
        if paths.spec().exists() && self.exit_if_over(task_id, &paths)?.is_none() {
            return Err(RuntimeError::StillRunning {
                task_id: task_id.to_owned(),
            });
        }
        if self.keep_logs && paths.log().exists() {
            let kept = self.kept_log(task_id);
            if let Some(parent) = kept.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| RuntimeError::io(task_id, "create", parent, e))?;
            }
            std::fs::rename(paths.log(), &kept)
                .map_err(|e| RuntimeError::io(task_id, "move", paths.log(), e))?;
        }
        remove_tree(task_id, &paths.dir)?;
        self.start_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(task_id);
        Ok(())
    }

    async fn health_probe(
        &self,
        task_id: &str,
        check: &HealthCommand,
        timeout: Duration,
    ) -> Result<ProbeOutcome, RuntimeError> {
        validate_task_id(task_id)?;
        let paths = self.paths(task_id);
        let spec: StoredSpec =
            Self::read(task_id, &paths.spec())?.ok_or_else(|| RuntimeError::NotFound {
                task_id: task_id.to_owned(),
            })?;
        probe::run(&spec.launch, &self.cutover_bin, check, timeout)
            .await
            .map_err(|e| RuntimeError::io(task_id, "run the health check of", &paths.dir, e))
    }

    async fn logs(&self, task_id: &str, follow: bool) -> Result<LogStream, RuntimeError> {
        validate_task_id(task_id)?;
        let paths = self.paths(task_id);
        let (path, follow) = if paths.log().exists() {
            (paths.log(), follow)
        } else if paths.spec().exists() {
            // Started but nothing written yet: the shim creates the file.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(paths.log())
                .map_err(|e| RuntimeError::io(task_id, "open", paths.log(), e))?;
            (paths.log(), follow)
        } else {
            // A removed task's kept log no longer grows.
            (self.kept_log(task_id), false)
        };
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound {
                    task_id: task_id.to_owned(),
                });
            }
            Err(e) => return Err(RuntimeError::io(task_id, "open", &path, e)),
        };
        Ok(logs::stream(file, follow, paths.exit()))
    }
}

/// Signals a recorded process, only if it is still that very process.
fn signal_record(record: &ProcessRecord, signal: i32) {
    match sys::pidfd_open(record.pid) {
        Ok(fd) if record.is_alive() => {
            let _ = sys::pidfd_send_signal(&fd, signal);
        }
        Ok(_) => {}
        Err(_) if record.is_alive() => {
            let _ = i32::try_from(record.pid).map(|pid| sys::kill(pid, signal));
        }
        Err(_) => {}
    }
}

fn remove_tree(task_id: &str, dir: &Path) -> Result<(), RuntimeError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::io(task_id, "remove", dir, e)),
    }
}

/// Task ids name directories: letters, digits, `-`, `_`, `.` (not first), 1..=128 bytes.
fn validate_task_id(task_id: &str) -> Result<(), RuntimeError> {
    let reason = if task_id.is_empty() {
        Some("empty")
    } else if task_id.len() > 128 {
        Some("longer than 128 bytes")
    } else if task_id.starts_with('.') {
        Some("starts with a dot")
    } else if !task_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("only letters, digits, '-', '_' and '.' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RuntimeError::InvalidTaskId {
            task_id: task_id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::validate_task_id;

    #[test]
    fn task_ids_are_safe_names() {
        for ok in ["a", "web-1.2_x", "0f3c9a"] {
            assert!(validate_task_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", &"x".repeat(129)] {
            assert!(validate_task_id(bad).is_err(), "{bad}");
        }
    }
}
