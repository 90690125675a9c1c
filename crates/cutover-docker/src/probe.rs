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

#![allow(unsafe_code)]

use std::time::Duration;

use bytes::BytesMut;
use cutover_runtime::{HealthCommand, ProbeOutcome};
use futures_util::StreamExt;
use http::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::{Client, body_stream};
use crate::error::DockerError;
use crate::logs::{Demuxer, Output};

/// How much of each output a probe keeps.
const TAIL: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecState {
    running: bool,
    exit_code: Option<i32>,
    pid: i64,
}

/// Runs `check` once in container `container_id`.
pub(crate) async fn probe(
    client: &Client,
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
    let body = json!({
        "AttachStdin": false,
        "AttachStdout": true,
        "AttachStderr": true,
        "Tty": false,
        "Cmd": cmd,
    });
    let created: Created = match client
        .json(
            Method::POST,
            &format!("/containers/{container_id}/exec"),
            Some(&body),
        )
        .await
    {
        Ok(created) => created,
        Err(e) if e.status() == Some(409) => {
            return Ok(ProbeOutcome::Unhealthy {
                exit_code: None,
                output: format!("cannot run the health check: {}", e.engine_message()),
            });
        }
        Err(e) => return Err(e),
    };
    let exec_id = created.id;
    match tokio::time::timeout(timeout, run(client, &exec_id)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            kill_exec(client, container_id, &exec_id).await;
            Ok(ProbeOutcome::TimedOut)
        }
    }
}

async fn run(client: &Client, exec_id: &str) -> Result<ProbeOutcome, DockerError> {
    let path = format!("/exec/{exec_id}/start");
    let start = json!({ "Detach": false, "Tty": false });
    let response = client.send(Method::POST, &path, Some(&start), &[]).await?;
    let response = client.check(&Method::POST, &path, response).await?;
    let mut body = Box::pin(body_stream(response));
    let mut demuxer = Demuxer::default();
    let (mut stdout, mut stderr) = (BytesMut::new(), BytesMut::new());
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        demuxer.push(&chunk);
        while let Some((output, payload)) = demuxer.next_frame() {
            let buf = if output == Output::Stderr {
                &mut stderr
            } else {
                &mut stdout
            };
            buf.extend_from_slice(&payload);
            if buf.len() > 2 * TAIL {
                let excess = buf.len() - TAIL;
                let _ = buf.split_to(excess);
            }
        }
    }
    // The stream ends with the process; its exit code can lag a little.
    let state = loop {
        let state: ExecState = client
            .json(Method::GET, &format!("/exec/{exec_id}/json"), None)
            .await?;
        if !state.running && state.exit_code.is_some() {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if state.exit_code == Some(0) {
        return Ok(ProbeOutcome::Healthy);
    }
    let mut output = String::from_utf8_lossy(tail(&stdout)).into_owned();
    output.push_str(&String::from_utf8_lossy(tail(&stderr)));
    Ok(ProbeOutcome::Unhealthy {
        exit_code: state.exit_code,
        output,
    })
}

fn tail(buf: &[u8]) -> &[u8] {
    &buf[buf.len().saturating_sub(TAIL)..]
}

/// Kills a probe that ran past its timeout, if it is safe to: the engine is
/// local and `/proc/<pid>/cgroup` names the container.
async fn kill_exec(client: &Client, container_id: &str, exec_id: &str) {
    let state: ExecState = match client
        .json(Method::GET, &format!("/exec/{exec_id}/json"), None)
        .await
    {
        Ok(state) => state,
        Err(error) => {
            tracing::debug!(exec = exec_id, %error, "cannot inspect a timed-out health check");
            return;
        }
    };
    let Ok(pid) = i32::try_from(state.pid) else {
        return;
    };
    if !state.running || pid <= 0 || !client.is_local() {
        return;
    }
    let in_container = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|cgroup| cgroup.contains(container_id));
    if !in_container {
        tracing::debug!(
            exec = exec_id,
            pid,
            "timed-out health check left to the engine"
        );
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; the pid was just
    // checked to belong to the task's container.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    if rc == 0 {
        tracing::debug!(exec = exec_id, pid, "killed a timed-out health check");
    }
}
