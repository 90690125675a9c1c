//! The build's process group: killing it, and finding it again after the
//! control plane restarted.
//!
//! The shell of a build leads its own process group, so that stopping a
//! build (or ending one) kills every process it started. Its id and start
//! time are written to `<work_dir>/build.pid` while the build runs; after a
//! restart of the control plane, [`kill_leftover`] reads that file and
//! kills the group if its leader is still the same process (the start time
//! guards against a recycled pid).
#![allow(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

/// The name of the pid file in a build's work directory.
pub const PID_FILE: &str = "build.pid";

/// Sends SIGKILL to the process group `pgid`. A group that is already gone
/// is not an error.
pub(crate) fn kill_group(pgid: u32) -> io::Result<()> {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "pid out of range",
        ));
    };
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to kill process group 0 or 1",
        ));
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid
    // names the process group, checked above to be a real group id.
    let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` if there is no such process.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub(crate) fn pid_file(work_dir: &Path) -> PathBuf {
    work_dir.join(PID_FILE)
}

pub(crate) fn write_pid_file(work_dir: &Path, pid: u32) -> io::Result<()> {
    let start = start_time(pid).unwrap_or(0);
    std::fs::write(pid_file(work_dir), format!("{pid} {start}\n"))
}

/// Kills what is left of a build whose control plane went away: reads
/// `<work_dir>/build.pid`, kills that process group if its leader is still
/// the process that was recorded, and removes the file. Returns whether a
/// group was killed.
pub fn kill_leftover(work_dir: &Path) -> io::Result<bool> {
    let path = pid_file(work_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut parts = text.split_whitespace();
    let pid: Option<u32> = parts.next().and_then(|p| p.parse().ok());
    let recorded: Option<u64> = parts.next().and_then(|p| p.parse().ok());
    let killed = match pid {
        Some(pid) if start_time(pid).is_some() && start_time(pid) == recorded => {
            kill_group(pid)?;
            true
        }
        _ => false,
    };
    std::fs::remove_file(&path)?;
    Ok(killed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_this_process() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(u32::MAX), None);
    }

    #[test]
    fn refuses_group_zero_and_one() {
        assert!(kill_group(0).is_err());
        assert!(kill_group(1).is_err());
    }
}
