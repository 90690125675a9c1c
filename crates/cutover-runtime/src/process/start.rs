//! Starting a task: adopting an existing one, or launching a new shim.
//!
//! `start` is idempotent per task id. An existing task directory means the
//! task was started before (possibly by an earlier server): its handle is
//! returned as it is. A directory left by a start that was interrupted
//! before the task existed is cleared and the start done afresh. A new task
//! gets a free loopback port, a resolved launch in `spec.json`, and a shim
//! whose one-line report on a pipe tells whether the process runs.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

use super::state::{self, ProcessRecord, StoredSpec, TaskPaths};
use super::{
    PORT_QUARANTINE, ProcessRuntime, SHIM_REPORT_TIMEOUT, launch, remove_tree, signal_record,
};
use crate::{RuntimeError, TaskHandle, TaskSpec};

impl ProcessRuntime {
    /// A free loopback port not handed out recently.
    pub(super) fn allocate_port(&self, task_id: &str) -> Result<u16, RuntimeError> {
        let mut recent = self.recent_ports.lock().unwrap_or_else(|e| e.into_inner());
        while recent
            .front()
            .is_some_and(|(_, at)| at.elapsed() > PORT_QUARANTINE)
        {
            recent.pop_front();
        }
        for _ in 0..32 {
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| RuntimeError::io(task_id, "bind", "127.0.0.1:0", e))?;
            let port = listener
                .local_addr()
                .map_err(|e| RuntimeError::io(task_id, "bind", "127.0.0.1:0", e))?
                .port();
            if !recent.iter().any(|(p, _)| *p == port) {
                recent.push_back((port, Instant::now()));
                return Ok(port);
            }
        }
        Err(RuntimeError::InvalidSpec {
            task_id: task_id.to_owned(),
            reason: "no free loopback port".to_owned(),
        })
    }

    /// An existing task with this id, or `None` if there is none (a leftover
    /// of an interrupted start is cleared).
    pub(super) async fn existing(
        &self,
        task_id: &str,
        paths: &TaskPaths,
    ) -> Result<Option<TaskHandle>, RuntimeError> {
        let Some(spec) = Self::read::<StoredSpec>(task_id, &paths.spec())? else {
            if paths.dir.exists() {
                remove_tree(task_id, &paths.dir)?;
            }
            return Ok(None);
        };
        if paths.task_pid().exists() || self.exit_if_over(task_id, paths)?.is_some() {
            return Ok(Some(self.handle(&spec, paths)?));
        }
        if let Some(shim) = Self::read::<ProcessRecord>(task_id, &paths.shim_pid())? {
            // A shim is still starting the task (a start elsewhere was
            // interrupted): give it the time a start normally takes.
            let deadline = Instant::now() + SHIM_REPORT_TIMEOUT;
            while shim.is_alive() && Instant::now() < deadline {
                if paths.task_pid().exists() || paths.exit().exists() {
                    return Ok(Some(self.handle(&spec, paths)?));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if paths.task_pid().exists() || paths.exit().exists() {
                return Ok(Some(self.handle(&spec, paths)?));
            }
            if shim.is_alive() {
                signal_record(&shim, libc::SIGKILL);
            }
        }
        // A start interrupted before the shim ran: nothing runs, start afresh.
        remove_tree(task_id, &paths.dir)?;
        Ok(None)
    }

    pub(super) async fn start_new(
        &self,
        spec: &TaskSpec,
        paths: &TaskPaths,
    ) -> Result<TaskHandle, RuntimeError> {
        let task_id = &spec.task_id;
        std::fs::create_dir_all(&paths.dir)
            .map_err(|e| RuntimeError::io(task_id, "create", &paths.dir, e))?;
        let port = self.allocate_port(task_id)?;
        let resolved = {
            let spec = spec.clone();
            let task_dir = paths.dir.clone();
            let images_dir = self.data_dir.join("images");
            let cutover_bin = self.cutover_bin.clone();
            let keep_setuid = self.keep_setuid;
            tokio::task::spawn_blocking(move || {
                launch::resolve(
                    &spec,
                    &launch::Context {
                        task_dir: &task_dir,
                        images_dir: &images_dir,
                        cutover_bin: &cutover_bin,
                        port,
                        keep_setuid,
                    },
                )
            })
            .await
            .map_err(|e| RuntimeError::Shim {
                task_id: task_id.clone(),
                message: format!("launch resolution panicked: {e}"),
            })?
        };
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&paths.dir);
                return Err(error);
            }
        };
        let stored = StoredSpec {
            task: spec.clone(),
            launch: resolved.launch,
            image_digest: resolved.image_digest,
            warnings: resolved.warnings,
            created_at_unix_ms: state::now_unix_ms(),
        };
        state::write_json_atomic(&paths.spec(), &stored)
            .map_err(|e| RuntimeError::io(task_id, "write", paths.spec(), e))?;

        let shim_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths.shim_log())
            .map_err(|e| RuntimeError::io(task_id, "open", paths.shim_log(), e))?;
        let (program, prefix) =
            self.shim_command
                .split_first()
                .ok_or_else(|| RuntimeError::Shim {
                    task_id: task_id.clone(),
                    message: "empty shim command".to_owned(),
                })?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(prefix)
            .arg("--task-dir")
            .arg(&paths.dir)
            // The shim lives as long as its task: it keeps none of the
            // server's secrets in its environment.
            .env_clear()
            .envs(launch::inherited_env())
            .envs(
                std::env::var("CUTOVER_LOG")
                    .ok()
                    .map(|v| ("CUTOVER_LOG", v)),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(shim_log)
            .kill_on_drop(false);
        let mut child = command.spawn().map_err(|e| RuntimeError::Shim {
            task_id: task_id.clone(),
            message: format!("cannot execute {}: {e}", Path::new(program).display()),
        })?;
        let stdout = child.stdout.take();
        // Reap the shim whenever it ends; it is not ours to kill.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let mut line = String::new();
        if let Some(stdout) = stdout {
            let mut reader = BufReader::new(stdout);
            match tokio::time::timeout(SHIM_REPORT_TIMEOUT, reader.read_line(&mut line)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(RuntimeError::io(
                        task_id,
                        "read the start report of",
                        &paths.dir,
                        e,
                    ));
                }
                Err(_) => {
                    return Err(RuntimeError::Shim {
                        task_id: task_id.clone(),
                        message: format!("no start report within {SHIM_REPORT_TIMEOUT:?}"),
                    });
                }
            }
        }
        let line = line.trim_end();
        if let Some(message) = line.strip_prefix("err ") {
            return Err(RuntimeError::CannotStart {
                task_id: task_id.clone(),
                message: message.to_owned(),
            });
        }
        if !line.starts_with("ok ") {
            let shim_log = std::fs::read_to_string(paths.shim_log()).unwrap_or_default();
            return Err(RuntimeError::Shim {
                task_id: task_id.clone(),
                message: format!(
                    "exited without reporting; its log says: {}",
                    shim_log.trim()
                ),
            });
        }
        let handle = self.handle(&stored, paths)?;
        tracing::info!(
            %task_id,
            pid = ?handle.pid,
            endpoint = ?handle.endpoint,
            program = %stored.launch.program.display(),
            "task started"
        );
        Ok(handle)
    }
}
