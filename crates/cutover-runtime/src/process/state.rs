//! On-disk state of one task and process identity checks.
//!
//! A task lives in `<data_dir>/tasks/<task_id>/`:
//! `spec.json` (what was started and how), `shim.pid` and `task.pid`
//! (pid plus kernel start time, so a recycled pid is never mistaken for the
//! task), `log` (stdout and stderr as written), `shim.log` (the supervisor's
//! own diagnostics) and `exit.json` (how the task ended). Every JSON file is
//! written to a temporary name, synced and renamed, so readers never see a
//! partial file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::TaskSpec;

/// Paths of one task's state directory.
#[derive(Debug, Clone)]
pub(crate) struct TaskPaths {
    pub(crate) dir: PathBuf,
}

impl TaskPaths {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
    pub(crate) fn spec(&self) -> PathBuf {
        self.dir.join("spec.json")
    }
    pub(crate) fn shim_pid(&self) -> PathBuf {
        self.dir.join("shim.pid")
    }
    pub(crate) fn task_pid(&self) -> PathBuf {
        self.dir.join("task.pid")
    }
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("log")
    }
    pub(crate) fn shim_log(&self) -> PathBuf {
        self.dir.join("shim.log")
    }
    pub(crate) fn exit(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
}

/// Everything the shim needs to run the task, resolved by the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Launch {
    /// Program to execute (absolute, relative to nothing, or a name looked up in `PATH`).
    pub(crate) program: PathBuf,
    /// Arguments after the program.
    pub(crate) args: Vec<String>,
    /// The complete environment of the task.
    pub(crate) env: Vec<(String, String)>,
    /// Working directory.
    pub(crate) cwd: PathBuf,
    /// Port passed as `PORT`.
    pub(crate) port: u16,
    /// Time between SIGTERM and SIGKILL on stop.
    pub(crate) stop_timeout_ms: u64,
}

impl Launch {
    pub(crate) fn stop_timeout(&self) -> Duration {
        Duration::from_millis(self.stop_timeout_ms)
    }
}

/// The content of `spec.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredSpec {
    pub(crate) task: TaskSpec,
    pub(crate) launch: Launch,
    /// `sha256:<hex>` of the image, when the task has a local image.
    pub(crate) image_digest: Option<String>,
    /// Things the runtime ignored or changed, for the control plane to surface.
    pub(crate) warnings: Vec<String>,
    pub(crate) created_at_unix_ms: u64,
}

/// Identity of a process: its pid and kernel start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProcessRecord {
    pub(crate) pid: u32,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks after boot.
    pub(crate) start_time: u64,
    pub(crate) recorded_at_unix_ms: u64,
}

impl ProcessRecord {
    /// The identity of the live process `pid`.
    pub(crate) fn of(pid: u32) -> io::Result<Self> {
        let stat = proc_stat(pid)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("process {pid} does not exist"),
            )
        })?;
        Ok(Self {
            pid,
            start_time: stat.start_time,
            recorded_at_unix_ms: now_unix_ms(),
        })
    }

    /// Whether this very process still runs (not exited, not a zombie, and
    /// its pid not reused by another process).
    pub(crate) fn is_alive(&self) -> bool {
        matches!(proc_stat(self.pid), Ok(Some(stat)) if stat.start_time == self.start_time && stat.state != 'Z' && stat.state != 'X')
    }
}

struct ProcStat {
    state: char,
    start_time: u64,
}

/// Reads the state and start time of `pid` from `/proc`; `None` if it is gone.
fn proc_stat(pid: u32) -> io::Result<Option<ProcStat>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    // The command name (field 2) is in parentheses and may itself contain
    // spaces or parentheses: the fields after it start at the last ')'.
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat"),
        )
    };
    let rest = &text[text.rfind(')').ok_or_else(bad)? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields
        .next()
        .and_then(|s| s.chars().next())
        .ok_or_else(bad)?;
    // `state` is field 3; the start time is field 22.
    let start_time = fields
        .nth(18)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok(Some(ProcStat { state, start_time }))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes `value` as JSON to `path` atomically (temporary file, fsync, rename).
pub(crate) fn write_json_atomic(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Why a JSON state file could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    Json(serde_json::Error),
}

/// Reads a JSON state file; `Ok(None)` when it does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, ReadError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(ReadError::Json),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReadError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessRecord::of(std::process::id()).unwrap();
        assert!(me.is_alive());
        let recycled = ProcessRecord {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!recycled.is_alive());
        let gone = ProcessRecord {
            pid: u32::MAX - 1,
            ..me
        };
        assert!(!gone.is_alive());
    }

    #[test]
    fn json_round_trip_is_atomic_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        assert!(matches!(read_json::<Vec<u32>>(&path), Ok(None)));
        write_json_atomic(&path, &vec![1u32, 2]).unwrap();
        assert!(matches!(read_json::<Vec<u32>>(&path), Ok(Some(v)) if v == [1, 2]));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
