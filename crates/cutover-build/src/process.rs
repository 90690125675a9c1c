//! The build's process group: killing it, and finding it again after the
//! control plane restarted; and the environment a command of Cutover's
//! starts with ([`base_env`]).
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

/// The variables of the server's environment that commands Cutover runs
/// on the host inherit: see [`base_env`].
pub const BASE_ENV: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR"];

/// The environment for a command Cutover runs on the host (a build's
/// shell, an invoke action, a hook): `PATH`, `HOME`, `USER`, `LOGNAME`,
/// `LANG`, every `LC_*`, `TZ` and `TMPDIR` of this process, when set, and
/// nothing else. Use it after `Command::env_clear()`, then add the
/// command's own variables: the server's environment (`CUTOVER_TOKEN`,
/// `AWS_*` credentials, ...) never leaks into what it runs.
pub fn base_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = BASE_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    let mut locale: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("LC_"))
        .collect();
    locale.sort();
    env.extend(locale);
    env
}

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
/// the process that was recorded, and removes the file and the shell's
/// saved state (`<work_dir>/shell`, which holds the build's environment,
/// secrets included). Returns whether a group was killed.
pub fn kill_leftover(work_dir: &Path) -> io::Result<bool> {
    let killed = kill_recorded(work_dir)?;
    match std::fs::remove_dir_all(work_dir.join("shell")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(killed),
    }
}

fn kill_recorded(work_dir: &Path) -> io::Result<bool> {
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
    fn the_base_environment_is_an_allow_list() {
        let env = base_env();
        assert!(env.iter().any(|(k, _)| k == "PATH"));
        assert!(
            env.iter()
                .all(|(k, _)| BASE_ENV.contains(&k.as_str()) || k.starts_with("LC_")),
            "{env:?}"
        );
    }

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
