//! The per-task supervisor ("shim"), like containerd-shim or conmon.
//!
//! The runtime starts `cutover __shim --task-dir DIR` in a session of its own,
//! so the server can stop, crash or be upgraded while the task keeps running.
//! The shim starts the task process (stdout and stderr appended to the task's
//! log, killed by the kernel if the shim dies), records its identity in
//! `task.pid`, reports `ok` or `err <message>` on its stdout (the runtime's
//! start pipe), then waits. SIGTERM (also SIGINT, SIGHUP, SIGQUIT) is
//! forwarded to the task's process group, followed by SIGKILL after the stop
//! timeout. When the task exits, leftover processes of its group are killed,
//! `exit.json` is written atomically and the shim exits.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use super::state::{self, Launch, ProcessRecord, StoredSpec, TaskPaths};
use super::sys::{self, SignalSet};
use crate::{ExitInfo, REASON_CANNOT_START, REASON_EXITED, REASON_STOPPED};

/// Runs the shim of the task whose state is in `task_dir`; returns the exit
/// code of the shim process (0 once the task's exit is recorded).
///
/// Call it from the hidden `cutover __shim --task-dir DIR` subcommand, before
/// any thread or async runtime is started: the shim relies on being
/// single-threaded for its signal handling and the task's death signal.
pub fn shim_main(task_dir: PathBuf) -> i32 {
    // Leave the server's session and process group: a Ctrl-C or a signal to
    // the server's group must not reach the task.
    if let Err(error) = sys::setsid() {
        eprintln!("shim: setsid failed: {error}");
    }
    let paths = TaskPaths::new(task_dir);
    match run(&paths) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("shim {}: {message}", paths.dir.display());
            report(&format!("err {message}"));
            1
        }
    }
}

fn run(paths: &TaskPaths) -> Result<i32, String> {
    let me = ProcessRecord::of(std::process::id())
        .map_err(|e| format!("cannot read own identity: {e}"))?;
    state::write_json_atomic(&paths.shim_pid(), &me)
        .map_err(|e| format!("cannot write {}: {e}", paths.shim_pid().display()))?;
    let spec: StoredSpec = match state::read_json(&paths.spec()) {
        Ok(Some(spec)) => spec,
        Ok(None) => return Err(format!("missing {}", paths.spec().display())),
        Err(e) => return Err(format!("cannot read {}: {e:?}", paths.spec().display())),
    };
    // Block the signals we handle before the task exists, so none is lost:
    // they stay pending until the wait loop takes them.
    let signals = SignalSet::block(&[
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGCHLD,
    ])
    .map_err(|e| format!("cannot block signals: {e}"))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.log())
        .map_err(|e| format!("cannot open {}: {e}", paths.log().display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot duplicate log descriptor: {e}"))?;

    let mut command = command_for(&spec.launch);
    command.stdin(Stdio::null()).stdout(log).stderr(log_err);
    let mut child = match sys::spawn_supervised(&mut command) {
        Ok(child) => child,
        Err(error) => {
            let message = format!(
                "{REASON_CANNOT_START}: cannot execute {} in {}: {error}",
                spec.launch.program.display(),
                spec.launch.cwd.display()
            );
            record_exit(
                paths,
                &ExitInfo {
                    exit_code: None,
                    signal: None,
                    oom_killed: false,
                    reason: message.clone(),
                    finished_at_unix_ms: state::now_unix_ms(),
                },
            );
            report(&format!("err {message}"));
            return Ok(1);
        }
    };
    let task_pid = child.id();
    // The child cannot be reaped before we wait for it, so its /proc entry
    // exists even if it already exited.
    let task =
        ProcessRecord::of(task_pid).map_err(|e| format!("cannot read task identity: {e}"))?;
    if let Err(e) = state::write_json_atomic(&paths.task_pid(), &task) {
        let _ = sys::kill(-(task_pid as i32), libc::SIGKILL);
        return Err(format!("cannot write {}: {e}", paths.task_pid().display()));
    }
    report(&format!("ok {task_pid}"));
    let _ = sys::stdout_to_dev_null();

    let group = -(task_pid as i32);
    let mut stop_requested = false;
    let mut kill_at: Option<Instant> = None;
    let status: ExitStatus = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        let timeout = kill_at.map(|at| at.saturating_duration_since(Instant::now()));
        match signals.wait(timeout) {
            Ok(Some(libc::SIGCHLD)) => {}
            Ok(Some(_stop)) => {
                if !stop_requested {
                    stop_requested = true;
                    let stop_timeout = spec.launch.stop_timeout();
                    eprintln!("shim: stopping task {task_pid}, SIGKILL after {stop_timeout:?}");
                    signal_task(group, task_pid, libc::SIGTERM);
                    kill_at = Some(Instant::now() + stop_timeout);
                }
            }
            Ok(None) => {
                eprintln!("shim: task {task_pid} outlived its stop timeout, sending SIGKILL");
                signal_task(group, task_pid, libc::SIGKILL);
                kill_at = None;
            }
            Err(error) => return Err(format!("waiting for signals failed: {error}")),
        }
    };
    // The task's own children die with it, as in a container.
    let _ = sys::kill(group, libc::SIGKILL);
    let signal = status.signal();
    let info = ExitInfo {
        exit_code: status.code().or(signal.map(|s| 128 + s)),
        signal,
        oom_killed: false,
        reason: if stop_requested {
            REASON_STOPPED
        } else {
            REASON_EXITED
        }
        .to_owned(),
        finished_at_unix_ms: state::now_unix_ms(),
    };
    record_exit(paths, &info);
    Ok(0)
}

fn command_for(launch: &Launch) -> Command {
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd);
    command
}

/// Signals the task's process group, and the task itself in case it left the group.
fn signal_task(group: i32, pid: u32, signal: i32) {
    let _ = sys::kill(group, signal);
    let _ = sys::kill(pid as i32, signal);
}

fn record_exit(paths: &TaskPaths, info: &ExitInfo) {
    if let Err(error) = state::write_json_atomic(&paths.exit(), info) {
        eprintln!("shim: cannot write {}: {error}", paths.exit().display());
    }
}

/// Writes one line on the start pipe; the runtime may be gone, so errors are ignored.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
