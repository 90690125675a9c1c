//! Container health checks run beside a process task.
//!
//! The check runs with the task's environment (so `PORT` points at the task)
//! and working directory, in a process group of its own that is killed as a
//! whole when the timeout passes, so a hung `curl` under `sh -c` cannot leak.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::state::Launch;
use super::sys;
use crate::{HealthCommand, ProbeOutcome};

/// How much output an unhealthy outcome keeps.
const OUTPUT_LIMIT: usize = 1024;

/// Runs `check` once for the task launched as `launch`.
pub(crate) async fn run(
    launch: &Launch,
    cutover_bin: &Path,
    check: &HealthCommand,
    timeout: Duration,
) -> std::io::Result<ProbeOutcome> {
    let (program, args): (std::path::PathBuf, &[String]) = match check {
        HealthCommand::Shell(script) => ("/bin/sh".into(), std::slice::from_ref(script)),
        HealthCommand::Cmd(argv) => match argv.split_first() {
            Some((first, rest)) if first == "cutover" => (cutover_bin.to_owned(), rest),
            Some((first, rest)) if first.contains('/') && Path::new(first).is_relative() => {
                (launch.cwd.join(first), rest)
            }
            Some((first, rest)) => (first.into(), rest),
            None => {
                return Ok(ProbeOutcome::Unhealthy {
                    exit_code: None,
                    output: "empty health check command".to_owned(),
                });
            }
        },
    };
    let mut command = tokio::process::Command::new(&program);
    if matches!(check, HealthCommand::Shell(_)) {
        command.arg("-c");
    }
    command
        .args(args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return Ok(ProbeOutcome::Unhealthy {
                exit_code: None,
                output: format!("cannot execute {}: {error}", program.display()),
            });
        }
    };
    let pid = child.id();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let finished = tokio::time::timeout(timeout, async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut err).await;
            }
        };
        let ((), (), status) = tokio::join!(read_out, read_err, child.wait());
        out.extend_from_slice(&err);
        status.map(|status| (status, out))
    })
    .await;
    match finished {
        Ok(result) => {
            let (status, output) = result?;
            if status.success() {
                Ok(ProbeOutcome::Healthy)
            } else {
                let tail = &output[output.len().saturating_sub(OUTPUT_LIMIT)..];
                Ok(ProbeOutcome::Unhealthy {
                    exit_code: status.code(),
                    output: String::from_utf8_lossy(tail).into_owned(),
                })
            }
        }
        Err(_elapsed) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = sys::kill(-pid, libc::SIGKILL);
            }
            Ok(ProbeOutcome::TimedOut)
        }
    }
}
