//! One shell session for a whole build, driven command by command.
//!
//! The shell (`bash` or `sh`, started with an empty environment except the
//! one given) runs a small loop: it reads a command number on its stdin,
//! sources the script `<dir>/c<N>.sh` in the current shell (so `cd`,
//! `export` and plain variables carry over to the next command), and writes
//! `done <N> <status>` on a control descriptor (fd 8, a pipe separate from
//! the output, so that `set -x` or a command's own output cannot forge it).
//! Commands get `/dev/null` as stdin; their stdout and stderr share one
//! pipe, read here as a byte stream that is masked (see `mask`) before it is
//! cut into lines, so a secret is masked across writes and line splits.
//!
//! A command may end the shell itself (`exit 1`, `set -e`). The shell's EXIT
//! trap then saves its exported variables and working directory and reports
//! `exit <status>`; the next command starts a fresh shell that restores
//! them, so later commands, `finally` and post_build still run, as in
//! CodeBuild. (Shell variables that were not exported and shell options do
//! not survive such an exit.)
//!
//! Every shell leads its own process group; [`Shell::kill`] kills all the
//! groups the build used, background processes included.
//!
//! In a container (see `container`), the session is started through the
//! caller's [`BuildContainer`] and reached through named pipes; the same
//! loop runs there. Killing its processes is the caller's business: it
//! removes the container when the build has ended.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, Lines,
};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::container::{self, BuildContainer};
use crate::mask::{MaskStream, Masker};
use crate::process;

/// Longest line passed on as one; longer output is split.
const MAX_LINE: usize = 64 * 1024;

/// How long to keep reading output after the shell exited, for lines still
/// in the pipe.
const DRAIN: Duration = Duration::from_millis(200);

/// The longest time spent reading output after the shell exited.
const DRAIN_MAX: Duration = Duration::from_secs(1);

/// How long output may pause before a line held back by the masker (it
/// ended with what could be the start of a multi-line secret) is released
/// as far as it can be.
const MASK_IDLE: Duration = Duration::from_millis(100);

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommandEnd {
    /// The command finished with this exit status.
    Exited(i32),
    /// The command ended the shell with this status (`exit`, `set -e`, a
    /// signal: 128 + signal number).
    ShellExited(i32),
    /// The build was stopped.
    Cancelled,
}

impl CommandEnd {
    /// The exit status to record for the command.
    pub(crate) fn status(self) -> Option<i32> {
        match self {
            CommandEnd::Exited(s) | CommandEnd::ShellExited(s) => Some(s),
            CommandEnd::Cancelled => None,
        }
    }
}

/// How the shell is started.
#[derive(Clone)]
pub(crate) struct ShellConfig {
    /// `bash` or `sh`.
    pub(crate) program: &'static str,
    /// The whole environment of the shell.
    pub(crate) env: Vec<(String, String)>,
    /// The starting directory.
    pub(crate) cwd: PathBuf,
    /// Where scripts and saved state go (not inside the source directory).
    pub(crate) dir: PathBuf,
    /// Run each command in a subshell (buildspec version 0.1).
    pub(crate) subshell_per_command: bool,
    /// Where to write the pid file of the current process group.
    pub(crate) work_dir: PathBuf,
    /// The container to run in, if not on the host.
    pub(crate) container: Option<Arc<dyn BuildContainer>>,
}

/// The running shell: a child process, or a session in a container.
enum Proc {
    Host {
        child: Child,
        pgid: u32,
    },
    Container {
        exit: oneshot::Receiver<i32>,
        forwarder: JoinHandle<()>,
    },
}

struct Session {
    proc: Proc,
    stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    stdout: Pin<Box<dyn AsyncRead + Send>>,
    control: Lines<BufReader<Pin<Box<dyn AsyncRead + Send>>>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Proc::Container { forwarder, .. } = &self.proc {
            forwarder.abort();
        }
    }
}

/// The build's shell, restarted when a command ends it.
pub(crate) struct Shell {
    cfg: ShellConfig,
    session: Option<Session>,
    groups: Vec<u32>,
    next: u64,
    sessions: u64,
    mask: MaskStream,
    /// Whether the masker was told of the current pause in the output.
    mask_idle: bool,
    masked: Vec<u8>,
    partial: Vec<u8>,
}

impl Shell {
    pub(crate) fn new(cfg: ShellConfig, masker: Masker) -> Shell {
        Shell {
            cfg,
            session: None,
            groups: Vec::new(),
            next: 0,
            sessions: 0,
            mask: masker.stream(),
            mask_idle: true,
            masked: Vec::new(),
            partial: Vec::new(),
        }
    }

    fn bootstrap(&self) -> String {
        let dir = sh_quote(&self.cfg.dir.to_string_lossy());
        format!(
            r#"exec 8>&2 2>&1
__cutover_dir={dir}
if [ -f "$__cutover_dir/state.env" ]; then . "$__cutover_dir/state.env" >/dev/null 2>&1; fi
if [ -f "$__cutover_dir/state.cwd" ]; then cd "$(cat "$__cutover_dir/state.cwd")" 2>/dev/null; fi
trap '__cutover_status=$?; {{ set +x; (umask 077; export -p > "$__cutover_dir/state.env"; pwd > "$__cutover_dir/state.cwd"); }} 2>/dev/null; printf "exit %s\n" "$__cutover_status" >&8' EXIT
__cutover_flags=
__cutover_internal=
while IFS= read -r __cutover_n; do
  . "$__cutover_dir/c$__cutover_n.sh" </dev/null
  {{ __cutover_status=$?; [ -n "$__cutover_internal" ] || __cutover_flags=$-; __cutover_internal=; set +x; }} 2>/dev/null
  printf 'done %s %s\n' "$__cutover_n" "$__cutover_status" >&8
done
"#
        )
    }

    async fn start(&mut self) -> io::Result<()> {
        if let Some(c) = self.cfg.container.clone() {
            self.sessions += 1;
            let started = container::start(
                c.as_ref(),
                self.sessions,
                self.cfg.program,
                self.bootstrap(),
                self.cfg.env.clone(),
                &self.cfg.cwd,
                &self.cfg.dir,
            )
            .await?;
            self.session = Some(Session {
                proc: Proc::Container {
                    exit: started.exit,
                    forwarder: started.forwarder,
                },
                stdin: Some(started.stdin),
                stdout: started.stdout,
                control: BufReader::new(started.control).lines(),
            });
            return Ok(());
        }
        let mut cmd = Command::new(self.cfg.program);
        cmd.arg("-c")
            .arg(self.bootstrap())
            .env_clear()
            .envs(self.cfg.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cfg.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let pgid = child
            .id()
            .ok_or_else(|| io::Error::other("shell exited at once"))?;
        self.groups.push(pgid);
        if let Err(e) = process::write_pid_file(&self.cfg.work_dir, pgid) {
            debug!(error = %e, "could not write the build's pid file");
        }
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr"))?;
        debug!(pgid, program = self.cfg.program, "build shell started");
        let control: Pin<Box<dyn AsyncRead + Send>> = Box::pin(stderr);
        self.session = Some(Session {
            proc: Proc::Host { child, pgid },
            stdin: Some(Box::pin(stdin)),
            stdout: Box::pin(stdout),
            control: BufReader::new(control).lines(),
        });
        Ok(())
    }

    /// Runs `script` in the session, passing each output line (masked) to
    /// `emit` as it comes.
    pub(crate) async fn run(
        &mut self,
        script: &str,
        emit: &mut (dyn FnMut(String) + Send),
        cancel: &CancellationToken,
    ) -> io::Result<CommandEnd> {
        // Tracing (`set -x`) left on by an earlier command resumes for this
        // one only, so that the session's own loop is never traced.
        let mut body = String::from("case $__cutover_flags in *x*) set -x ;; esac\n");
        if self.cfg.subshell_per_command {
            body.push_str(&format!("(\n{script}\n)\n"));
        } else {
            body.push_str(&format!("{script}\n"));
        }
        self.exec(body, emit, cancel).await
    }

    /// Runs a script of Cutover's own in the session: never traced, never
    /// in a subshell (it reads and sets the session's variables).
    pub(crate) async fn run_internal(
        &mut self,
        script: &str,
        emit: &mut (dyn FnMut(String) + Send),
        cancel: &CancellationToken,
    ) -> io::Result<CommandEnd> {
        self.exec(format!("__cutover_internal=1\n{script}\n"), emit, cancel)
            .await
    }

    async fn exec(
        &mut self,
        body: String,
        emit: &mut (dyn FnMut(String) + Send),
        cancel: &CancellationToken,
    ) -> io::Result<CommandEnd> {
        if self.session.is_none() {
            self.start().await?;
        }
        self.next += 1;
        let n = self.next;
        crate::safe_fs::write_private(&self.cfg.dir.join(format!("c{n}.sh")), body.as_bytes())?;
        let session = self.session.as_mut().expect("started above");
        let written = match session.stdin.as_mut() {
            Some(stdin) => stdin.write_all(format!("{n}\n").as_bytes()).await.is_ok(),
            None => false,
        };
        if !written {
            // The shell is gone; its control pipe says how.
            debug!("build shell closed its input");
        }
        let mut buf = vec![0u8; 16 * 1024];
        let mut stdout_open = true;
        loop {
            let session = self.session.as_mut().expect("started above");
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    self.kill();
                    self.finish(emit);
                    return Ok(CommandEnd::Cancelled);
                }
                read = session.stdout.read(&mut buf), if stdout_open => {
                    match read {
                        Ok(0) | Err(_) => stdout_open = false,
                        Ok(k) => {
                            let chunk = buf[..k].to_vec();
                            self.feed(&chunk, emit);
                        }
                    }
                }
                _ = tokio::time::sleep(MASK_IDLE), if !self.mask_idle && self.mask.holds_newline() => {
                    self.mask_idle = true;
                    let mut out = std::mem::take(&mut self.masked);
                    self.mask.idle(&mut out);
                    self.split(&out, emit);
                    self.masked = out;
                }
                line = session.control.next_line() => {
                    match line? {
                        Some(l) => {
                            let mut words = l.split_whitespace();
                            match (words.next(), words.next(), words.next()) {
                                (Some("done"), Some(m), Some(status)) if m == n.to_string() => {
                                    self.flush(emit);
                                    return Ok(CommandEnd::Exited(status.parse().unwrap_or(1)));
                                }
                                (Some("exit"), Some(status), None) => {
                                    let status = status.parse().unwrap_or(1);
                                    self.end_session(emit).await;
                                    return Ok(CommandEnd::ShellExited(status));
                                }
                                _ => debug!(line = %l, "unexpected control line from the build shell"),
                            }
                        }
                        None => {
                            // Killed without running its EXIT trap.
                            let status = self.end_session(emit).await;
                            return Ok(CommandEnd::ShellExited(status));
                        }
                    }
                }
            }
        }
    }

    /// Waits for the current shell to exit after it reported so, reads the
    /// rest of its output, and returns its exit status.
    async fn end_session(&mut self, emit: &mut (dyn FnMut(String) + Send)) -> i32 {
        let Some(mut session) = self.session.take() else {
            return 1;
        };
        let status = match &mut session.proc {
            Proc::Host { child, pgid } => {
                match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                    Ok(Ok(s)) => s.code().unwrap_or_else(|| {
                        use std::os::unix::process::ExitStatusExt;
                        128 + s.signal().unwrap_or(9)
                    }),
                    _ => {
                        let _ = process::kill_group(*pgid);
                        1
                    }
                }
            }
            Proc::Container { exit, .. } => {
                match tokio::time::timeout(Duration::from_secs(5), exit).await {
                    Ok(Ok(s)) => s,
                    _ => 1,
                }
            }
        };
        // Background processes may hold the pipe open and keep writing:
        // read what is there, for a bounded time.
        let deadline = tokio::time::Instant::now() + DRAIN_MAX;
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(Ok(k)) = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + DRAIN),
            session.stdout.read(&mut buf),
        )
        .await
        {
            if k == 0 {
                break;
            }
            let chunk = buf[..k].to_vec();
            self.feed(&chunk, emit);
        }
        self.finish(emit);
        status
    }

    /// Closes the session (the shell leaves its loop and exits), reads the
    /// rest of its output, and kills every process the build left behind.
    pub(crate) async fn close(&mut self, emit: &mut (dyn FnMut(String) + Send)) {
        if let Some(session) = self.session.as_mut() {
            // End of input ends the shell's read loop.
            drop(session.stdin.take());
            self.end_session(emit).await;
        }
        self.kill();
    }

    /// Kills every process group of the build.
    pub(crate) fn kill(&mut self) {
        for pgid in self.groups.drain(..) {
            if let Err(e) = process::kill_group(pgid) {
                debug!(pgid, error = %e, "could not kill the build's process group");
            }
        }
        self.session = None;
        let _ = std::fs::remove_file(process::pid_file(&self.cfg.work_dir));
    }

    /// The directory of scripts and saved state.
    pub(crate) fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    /// Masks `chunk` and passes on the lines it completes.
    fn feed(&mut self, chunk: &[u8], emit: &mut (dyn FnMut(String) + Send)) {
        self.mask_idle = false;
        let mut out = std::mem::take(&mut self.masked);
        out.clear();
        self.mask.push(chunk, &mut out);
        self.split(&out, emit);
        self.masked = out;
    }

    fn split(&mut self, masked: &[u8], emit: &mut (dyn FnMut(String) + Send)) {
        for &b in masked {
            if b == b'\n' {
                let line = std::mem::take(&mut self.partial);
                emit_line(&line, emit);
            } else {
                self.partial.push(b);
                if self.partial.len() >= MAX_LINE {
                    let line = std::mem::take(&mut self.partial);
                    emit_line(&line, emit);
                }
            }
        }
    }

    /// The command ended: passes on its last, unterminated line, except
    /// what could still be the start of a secret (the next command's
    /// output may complete it).
    fn flush(&mut self, emit: &mut (dyn FnMut(String) + Send)) {
        let mut out = Vec::new();
        self.mask.idle(&mut out);
        self.split(&out, emit);
        self.mask_idle = true;
        self.emit_partial(emit);
    }

    /// The output ended: passes on everything.
    fn finish(&mut self, emit: &mut (dyn FnMut(String) + Send)) {
        let mut out = Vec::new();
        self.mask.finish(&mut out);
        self.split(&out, emit);
        self.mask_idle = true;
        self.emit_partial(emit);
    }

    fn emit_partial(&mut self, emit: &mut (dyn FnMut(String) + Send)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            emit_line(&line, emit);
        }
    }
}

fn emit_line(line: &[u8], emit: &mut (dyn FnMut(String) + Send)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    emit(String::from_utf8_lossy(line).into_owned());
}

impl Drop for Shell {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `s` in single quotes for a POSIX shell.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }
}
