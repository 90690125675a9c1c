//! Running one lifecycle event's scripts: in order, each in its own process
//! group (so a timeout or a cancellation kills everything it started), with
//! CodeDeploy's variables, the bundle root as working directory, stdout and
//! stderr interleaved in one pipe, of which the tail is kept.

use anyhow::bail;
use cutover_api::agents::CommandStatus;
use cutover_spec::appspec_host::Script;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::fsops::{join_inside, lookup_id};

/// Output kept per event: its last 64 KiB.
pub(crate) const TAIL_BYTES: usize = 64 * 1024;

/// Output of an event, of which only the tail is kept.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    buf: Vec<u8>,
    dropped: u64,
}

impl Tail {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > TAIL_BYTES {
            let cut = self.buf.len() - TAIL_BYTES;
            self.buf.drain(..cut);
            self.dropped += cut as u64;
        }
    }

    pub(crate) fn text(&self) -> String {
        let body = String::from_utf8_lossy(&self.buf);
        if self.dropped > 0 {
            format!("[{} earlier bytes dropped]\n{body}", self.dropped)
        } else {
            body.into_owned()
        }
    }
}

/// How long output is read after a script exited (a daemon it started may
/// hold the pipe).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// How an event's scripts ended.
pub(crate) struct Outcome {
    pub(crate) status: CommandStatus,
    pub(crate) error: Option<String>,
}

/// What every script of the event gets.
pub(crate) struct Context<'a> {
    pub(crate) revision: &'a Path,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) is_root: bool,
    pub(crate) cancel: CancellationToken,
    /// Told each script's process group as it starts.
    pub(crate) started: &'a (dyn Fn(u32) + Sync),
}

/// Runs `scripts` in order; the first that fails ends the event.
pub(crate) async fn run_all(
    scripts: &[Script],
    cx: &Context<'_>,
    out: &Arc<Mutex<Tail>>,
) -> Outcome {
    for s in scripts {
        let (status, error) = match run_one(s, cx, out).await {
            Ok(o) => (o.status, o.error),
            Err(e) => (
                CommandStatus::Failed,
                Some(format!("{}: {e:#}", s.location)),
            ),
        };
        if status != CommandStatus::Succeeded {
            return Outcome { status, error };
        }
    }
    Outcome {
        status: CommandStatus::Succeeded,
        error: None,
    }
}

async fn run_one(s: &Script, cx: &Context<'_>, out: &Arc<Mutex<Tail>>) -> anyhow::Result<Outcome> {
    use std::os::unix::fs::PermissionsExt;
    let path = join_inside(cx.revision, &s.location)?;
    let meta =
        std::fs::metadata(&path).map_err(|e| anyhow::anyhow!("cannot read the script ({e})"))?;
    if meta.permissions().mode() & 0o111 == 0 {
        // CodeDeploy's agent makes a script executable too.
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(meta.permissions().mode() | 0o755),
        )?;
    }
    let mut cmd = tokio::process::Command::new(&path);
    cmd.current_dir(cx.revision)
        .envs(cx.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(user) = &s.runas {
        if cx.is_root {
            let uid = lookup_id("/etc/passwd", user)
                .ok_or_else(|| anyhow::anyhow!("runas: no user {user:?}"))?;
            let gid = primary_gid(user).unwrap_or(uid);
            cmd.uid(uid).gid(gid);
        } else if std::env::var("USER").ok().as_deref() != Some(user.as_str()) {
            bail!(
                "runas {user:?} needs the agent to run as root; it does not, so the script was not run"
            );
        }
    }
    let (reader, writer) = std::io::pipe()?;
    cmd.stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer));
    let mut child = cmd.spawn()?;
    drop(cmd);
    let pid = child.id();
    if let Some(p) = pid {
        (cx.started)(p);
    }
    let sink = out.clone();
    let pump = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut chunk = [0u8; 8192];
        while let Ok(n) = reader.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(&chunk[..n]);
        }
    });
    let limit = Duration::from_secs(u64::from(s.timeout_seconds()));
    let ended = tokio::select! {
        r = tokio::time::timeout(limit, child.wait()) => match r {
            Ok(status) => Some(status?),
            Err(_) => None,
        },
        () = cx.cancel.cancelled() => {
            kill_group(pid);
            let _ = child.wait().await;
            return Ok(Outcome { status: CommandStatus::Cancelled, error: Some(format!("{}: cancelled", s.location)) });
        }
    };
    if ended.is_none() {
        // Out of time: the script and everything it started go.
        kill_group(pid);
    }
    // A daemon the script started in the background may keep the output
    // pipe open: its output is not waited for beyond a grace period (the
    // daemon is left running, as CodeDeploy's agent leaves it).
    let _ = tokio::time::timeout(OUTPUT_GRACE, pump).await;
    Ok(match ended {
        None => {
            let _ = child.wait().await;
            Outcome {
                status: CommandStatus::TimedOut,
                error: Some(format!(
                    "{}: timed out after {} s",
                    s.location,
                    limit.as_secs()
                )),
            }
        }
        Some(st) if st.success() => Outcome {
            status: CommandStatus::Succeeded,
            error: None,
        },
        Some(st) => Outcome {
            status: CommandStatus::Failed,
            error: Some(format!("{}: {st}", s.location)),
        },
    })
}

/// The primary group of `user` in `/etc/passwd`.
fn primary_gid(user: &str) -> Option<u32> {
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&user)).then(|| f.get(3)?.parse().ok())?
        })
}

pub(crate) fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
