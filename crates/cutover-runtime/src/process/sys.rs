//! Thin safe wrappers over the Linux calls the process runtime needs.
//!
//! Every `unsafe` block of the crate lives here, each with its reason; the
//! rest of the crate calls these functions only.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::Duration;

/// Turns `ret == -1` into the current `errno`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Makes the calling process the leader of a new session (and process group),
/// detached from any controlling terminal.
pub(crate) fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments and only changes this process's session.
    check(unsafe { libc::setsid() }).map(drop)
}

/// Sends `signal` to `pid` (a negative pid names a process group).
pub(crate) fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers and touches no memory of ours.
    check(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Opens a pidfd for `pid`: a handle that keeps naming that very process
/// even after its pid is reused, and polls readable once it has exited.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `signal` to the process behind `pidfd`, never to a pid's later owner.
pub(crate) fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd is a live descriptor we own; info may be null; flags must be 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A set of signals blocked in the calling thread, consumed with [`SignalSet::wait`].
pub(crate) struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// Blocks `signals` in the calling thread so that they stay pending until waited for.
    pub(crate) fn block(signals: &[i32]) -> io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before any use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: set points to a valid sigset_t owned by this frame.
        check(unsafe { libc::sigemptyset(&mut set) })?;
        for &signal in signals {
            // SAFETY: as above; signal is a valid signal number from libc constants.
            check(unsafe { libc::sigaddset(&mut set, signal) })?;
        }
        // SAFETY: set is initialised; the old mask is not needed (null).
        let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        Ok(Self(set))
    }

    /// Waits for one of the blocked signals, at most `timeout` (forever when
    /// `None`); `Ok(None)` when the timeout passed first.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<i32>> {
        loop {
            let ret = match timeout {
                Some(timeout) => {
                    let ts = libc::timespec {
                        tv_sec: libc::time_t::try_from(timeout.as_secs())
                            .unwrap_or(libc::time_t::MAX),
                        tv_nsec: libc::c_long::from(
                            i32::try_from(timeout.subsec_nanos()).unwrap_or(0),
                        ),
                    };
                    // SAFETY: the set and timespec are valid for the call; info may be null.
                    unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) }
                }
                // SAFETY: the set is valid for the call; info may be null.
                None => unsafe { libc::sigwaitinfo(&self.0, std::ptr::null_mut()) },
            };
            if ret >= 0 {
                return Ok(Some(ret));
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(error),
            }
        }
    }
}

/// Spawns `command` as the task process of the calling shim: in a process
/// group of its own, with every signal unblocked, and killed (SIGKILL) by the
/// kernel as soon as the shim dies, so a task never outlives its supervisor.
pub(crate) fn spawn_supervised(command: &mut Command) -> io::Result<Child> {
    // SAFETY: getpid is always safe.
    let shim_pid = unsafe { libc::getpid() };
    command.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (sigemptyset, pthread_sigmask, prctl, getppid,
    // kill); it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            // The shim may have died between fork and prctl: then nobody
            // would ever deliver the death signal, so give up now.
            if libc::getppid() != shim_pid {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Points this process's stdout at /dev/null (after the shim reported its
/// start, so the reader of the start pipe sees end of file).
pub(crate) fn stdout_to_dev_null() -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    // SAFETY: both descriptors are valid; dup2 atomically replaces fd 1.
    check(unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) }).map(drop)
}

/// Registers a pidfd with tokio's reactor; it polls readable once the process exits.
pub(crate) fn async_pidfd(pidfd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd keeps its descriptor open, and always returns the
    // same one from as_raw_fd, for as long as the AsyncFd owns it.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }
    .map_err(io::Error::from)
}
