//! Health checks run by Cutover inside the container through the exec API.
//!
//! The engine's own health checks are switched off for task containers
//! (`Healthcheck: NONE`); Cutover runs the task definition's `healthCheck`
//! itself so both runtimes judge health the same way and on the same
//! schedule: `CMD` runs its argv, `CMD-SHELL` runs `sh -c <script>`, both
//! with the container's environment and working directory. On timeout the
//! exec'd process is killed when the engine is local and the process is
//! verifiably in the container's cgroup; otherwise the engine reaps it when
//! it ends.

use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::ExecInspectResponse;
use bytes::BytesMut;
use cutover_runtime::{HealthCommand, ProbeOutcome};
use futures_util::StreamExt;

use crate::error::DockerError;

/// How much of each output a probe keeps.
const TAIL: usize = 1024;

/// Runs `check` once in container `container_id`; `local` says whether the
/// engine's processes are this host's (so a timed-out probe can be killed).
pub(crate) async fn probe(
    docker: &Docker,
    local: bool,
    container_id: &str,
    check: &HealthCommand,
    timeout: Duration,
) -> Result<ProbeOutcome, DockerError> {
    let cmd: Vec<String> = match check {
        HealthCommand::Cmd(argv) => argv.clone(),
        HealthCommand::Shell(script) => vec!["sh".into(), "-c".into(), script.clone()],
    };
    if cmd.is_empty() {
        return Ok(ProbeOutcome::Unhealthy {
            exit_code: None,
            output: "empty health check command".into(),
        });
    }
    let options = CreateExecOptions {
        attach_stdin: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        cmd: Some(cmd),
        ..CreateExecOptions::default()
    };
    let exec_id = match docker.create_exec(container_id, options).await {
        Ok(created) => created.id,
        Err(e) => {
            let e = DockerError::from(e);
            if e.status() == Some(409) {
                return Ok(ProbeOutcome::Unhealthy {
                    exit_code: None,
                    output: format!("cannot run the health check: {}", e.engine_message()),
                });
            }
            return Err(e);
        }
    };
    match tokio::time::timeout(timeout, run(docker, &exec_id)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            kill_exec(docker, local, container_id, &exec_id).await;
            Ok(ProbeOutcome::TimedOut)
        }
    }
}

async fn run(docker: &Docker, exec_id: &str) -> Result<ProbeOutcome, DockerError> {
    let start = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: None,
    };
    let (mut stdout, mut stderr) = (BytesMut::new(), BytesMut::new());
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(exec_id, Some(start)).await?
    {
        while let Some(Ok(frame)) = output.next().await {
            let (buf, payload) = match frame {
                LogOutput::StdErr { message } => (&mut stderr, message),
                LogOutput::StdOut { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message } => (&mut stdout, message),
            };
            buf.extend_from_slice(&payload);
            if buf.len() > 2 * TAIL {
                let excess = buf.len() - TAIL;
                let _ = buf.split_to(excess);
            }
        }
    }
    // The stream ends with the process; its exit code can lag a little.
    let exit_code = loop {
        let state = docker.inspect_exec(exec_id).await?;
        if state.running != Some(true)
            && let Some(code) = state.exit_code
        {
            break code;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if exit_code == 0 {
        return Ok(ProbeOutcome::Healthy);
    }
    let mut output = String::from_utf8_lossy(tail(&stdout)).into_owned();
    output.push_str(&String::from_utf8_lossy(tail(&stderr)));
    Ok(ProbeOutcome::Unhealthy {
        exit_code: i32::try_from(exit_code).ok(),
        output,
    })
}

fn tail(buf: &[u8]) -> &[u8] {
    &buf[buf.len().saturating_sub(TAIL)..]
}

/// Kills a probe that ran past its timeout, if it is safe to: the engine is
/// local and `/proc/<pid>/cgroup` names the container.
async fn kill_exec(docker: &Docker, local: bool, container_id: &str, exec_id: &str) {
    let state: ExecInspectResponse = match docker.inspect_exec(exec_id).await {
        Ok(state) => state,
        Err(error) => {
            tracing::debug!(exec = exec_id, %error, "cannot inspect a timed-out health check");
            return;
        }
    };
    let pid = state
        .pid
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(rustix::process::Pid::from_raw);
    let Some(pid) = pid else {
        return;
    };
    if state.running != Some(true) || !local {
        return;
    }
    let in_container = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.as_raw_nonzero()))
        .is_ok_and(|cgroup| cgroup.contains(container_id));
    if !in_container {
        tracing::debug!(
            exec = exec_id,
            pid = pid.as_raw_nonzero(),
            "timed-out health check left to the engine"
        );
        return;
    }
    if rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok() {
        tracing::debug!(
            exec = exec_id,
            pid = pid.as_raw_nonzero(),
            "killed a timed-out health check"
        );
    }
}
