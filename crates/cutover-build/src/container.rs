//! Builds inside a container image: the build's shell session runs in a
//! container that the caller provides through [`BuildContainer`], so that
//! this crate knows nothing of the container engine.
//!
//! The caller creates the container from the project's image with the
//! directories of [`container_mounts`] bind-mounted at their host paths
//! (so `CODEBUILD_SRC_DIR`, artifact and report paths mean the same on
//! both sides), runs the build with [`crate::run::run_build_in`], and
//! removes the container afterwards (which kills whatever the build left
//! running in it). The session speaks the same protocol as on the host
//! (see `shell`), through three named pipes created in the build's shell
//! directory: its input, its output and its control channel. A small
//! wrapper started in the container opens them for the shell, and when the
//! shell has ended writes its exit status on the control pipe, which stands
//! in for waiting on a child process.
//!
//! The shell is the buildspec's `env.shell`; with the default (`bash`) and
//! an image without bash (busybox, alpine), `sh` runs the build instead.
//! The image's own environment (`PATH`, `HOME`) is kept; none of the
//! server's is passed in.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::future::Future;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::run::{BuildError, BuildRequest};

/// A boxed future, as returned by [`BuildContainer`]'s methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A running container that a build's shell sessions are started in.
pub trait BuildContainer: Send + Sync {
    /// Starts `argv` in the container, detached, with `env` added to the
    /// image's environment and `workdir` as its working directory; returns
    /// once it was started.
    fn exec_detached(
        &self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: String,
    ) -> BoxFuture<'_, io::Result<()>>;
}

/// The host directories a build container must have bind-mounted at the
/// same paths: the source, the secondary sources and the work directory
/// (created if missing), canonicalized as [`crate::run::run_build_in`]
/// will use them.
pub fn container_mounts(req: &BuildRequest) -> Result<Vec<PathBuf>, BuildError> {
    let canonical = |p: &Path| {
        std::fs::canonicalize(p).map_err(|source| BuildError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    std::fs::create_dir_all(&req.work_dir).map_err(|source| BuildError::Io {
        path: req.work_dir.clone(),
        source,
    })?;
    let mut mounts = vec![canonical(&req.src_dir)?, canonical(&req.work_dir)?];
    for (_, dir) in &req.secondary_sources {
        mounts.push(canonical(dir)?);
    }
    Ok(mounts)
}

/// Runs in the container's `sh`: picks the shell, connects it to the pipes
/// and reports its exit status on the control pipe.
const WRAPPER: &str = r#"p=$1
if [ "$p" = bash ] && ! command -v bash >/dev/null 2>&1; then p=sh; fi
"$p" -c "$2" <"$3" >"$4" 2>"$5"
printf '__cutover_ended %s\n' "$?" >"$5"
"#;

/// The control line the wrapper writes when the shell has ended.
const ENDED: &str = "__cutover_ended ";

/// A shell session running in a container, seen from the host.
pub(crate) struct ContainerSession {
    /// The shell's input.
    pub(crate) stdin: Pin<Box<dyn AsyncWrite + Send>>,
    /// The shell's output (commands' stdout and stderr).
    pub(crate) stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// The control lines, ending when the shell has ended.
    pub(crate) control: Pin<Box<dyn AsyncRead + Send>>,
    /// The shell's exit status, once it has ended.
    pub(crate) exit: oneshot::Receiver<i32>,
    /// Forwards the control pipe; aborted when the session is dropped.
    pub(crate) forwarder: JoinHandle<()>,
}

fn mkfifo(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte in path"))?;
    // SAFETY: `c` is a valid nul-terminated string that outlives the call;
    // mkfifo(3) only reads it.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts session `k` of `program` running `bootstrap` in `container`,
/// with its pipes in `dir`.
pub(crate) async fn start(
    container: &dyn BuildContainer,
    k: u64,
    program: &str,
    bootstrap: String,
    env: Vec<(String, String)>,
    cwd: &Path,
    dir: &Path,
) -> io::Result<ContainerSession> {
    let paths: Vec<PathBuf> = ["in", "out", "ctl"]
        .iter()
        .map(|n| dir.join(format!("s{k}.{n}")))
        .collect();
    for p in &paths {
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        mkfifo(p)?;
    }
    // Opened read-write, so that no open blocks and no read sees an end of
    // file before the other side has opened its end; the end of the
    // session is told by the wrapper's control line instead.
    let stdin = pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(&paths[0])?;
    let stdout = pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&paths[1])?;
    let ctl = pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&paths[2])?;
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    let (exit_tx, exit) = oneshot::channel();
    let forwarder = tokio::spawn(async move {
        let mut lines = BufReader::new(ctl).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(status) = line.strip_prefix(ENDED) {
                let _ = exit_tx.send(status.trim().parse().unwrap_or(1));
                return;
            }
            if tx.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let mut argv: Vec<String> = vec!["sh".into(), "-c".into(), WRAPPER.into()];
    argv.push("cutover-build".into());
    argv.push(program.into());
    argv.push(bootstrap);
    argv.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    if let Err(e) = container
        .exec_detached(argv, env, cwd.to_string_lossy().into_owned())
        .await
    {
        forwarder.abort();
        return Err(e);
    }
    debug!(session = k, program, "build shell started in the container");
    Ok(ContainerSession {
        stdin: Box::pin(stdin),
        stdout: Box::pin(stdout),
        control: Box::pin(rx),
        exit,
        forwarder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_are_created_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        mkfifo(&p).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&p).unwrap().file_type().is_fifo());
        assert_eq!(mkfifo(&p).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    }
}
