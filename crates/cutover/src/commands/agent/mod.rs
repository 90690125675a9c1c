//! `cutover agent`: the host agent. It registers its host, long-polls the
//! server for commands and runs them one at a time: download a bundle
//! (digest verified), install it (`files`, `permissions`), or run one
//! event's scripts, and reports each result.
//!
//! It outlives the server (every call is retried with backoff) and itself:
//! its state directory records the command in flight, so after a restart
//! it reports that one `Cancelled` instead of running it again blindly, and
//! a result not yet acknowledged, which it reports again. It also keeps,
//! per deployment group, the files the last install wrote (removed before
//! the next install, as CodeDeploy does) and the last successful revision.

mod fsops;
mod scripts;
mod state;
#[cfg(test)]
mod tests;

use crate::cli::{AgentArgs, Globals};
use anyhow::{Context, anyhow, bail};
use cutover_api::agents::{
    AGENT_HEADER, AgentCommand, AgentPoll, AgentRegistration, BundleRef, CommandResult,
    CommandStatus, PollQuery,
};
use cutover_spec::HostEvent;
use cutover_spec::appspec_host::{FileExistsBehavior, HostAppSpec};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use fsops::Root;
use scripts::Tail;
use state::State;

/// The agent's connection to the server.
struct Link {
    http: reqwest::Client,
    base: String,
    name: String,
    key: Option<String>,
}

/// Why a call failed: worth retrying, or not.
enum CallError {
    /// The server is unreachable or answered 5xx: retry.
    Transient(anyhow::Error),
    /// The server refused (4xx).
    Refused(StatusCode, String),
}

impl Link {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(AGENT_HEADER, &self.name);
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(k);
        }
        rb
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
        let resp = rb
            .send()
            .await
            .map_err(|e| CallError::Transient(e.into()))?;
        let status = resp.status();
        if status.is_success() {
            Ok(resp)
        } else {
            let body = resp.bytes().await.unwrap_or_default();
            let msg = crate::client::render_error(status, &body);
            if status.is_server_error() {
                Err(CallError::Transient(anyhow!(msg)))
            } else {
                Err(CallError::Refused(status, msg))
            }
        }
    }

    /// Retries `call` with backoff (0.5 s doubling to 10 s) while the server
    /// is away; a refusal ends it.
    async fn retry<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, (StatusCode, String)>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let mut delay = Duration::from_millis(500);
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(CallError::Refused(s, m)) => return Err((s, m)),
                Err(CallError::Transient(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "{what}: the server is away; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn register(&self, reg: &AgentRegistration) -> anyhow::Result<()> {
        self.retry("register", || async {
            self.send(
                self.request(reqwest::Method::POST, "/v1/agents/register")
                    .json(reg),
            )
            .await
            .map(drop)
        })
        .await
        .map_err(|(s, m)| anyhow!("the server refused the registration ({s}): {m}"))
    }

    async fn poll(&self, running: Option<&str>, wait: u32) -> Result<AgentPoll, CallError> {
        let q = PollQuery {
            running: running.map(str::to_string),
            wait: Some(wait),
        };
        let resp = self
            .send(
                self.request(
                    reqwest::Method::GET,
                    &format!("/v1/agents/{}/poll", self.name),
                )
                .query(&q)
                .timeout(Duration::from_secs(u64::from(wait) + 15)),
            )
            .await?;
        resp.json()
            .await
            .map_err(|e| CallError::Transient(e.into()))
    }

    /// Reports `result` until the server has it (or refuses it: a command
    /// it does not know, or an agent it deregistered).
    async fn report(&self, result: &CommandResult) {
        let path = format!("/v1/agents/{}/results", self.name);
        if let Err((s, m)) = self
            .retry("report", || async {
                self.send(self.request(reqwest::Method::POST, &path).json(result))
                    .await
                    .map(drop)
            })
            .await
        {
            tracing::warn!(command = %result.id, status = %s, "result refused: {m}");
        }
    }

    /// Downloads bundle `b` to `dest`, verifying its digest while writing.
    async fn download(&self, b: &BundleRef, dest: &Path) -> anyhow::Result<()> {
        let path = format!("/v1/agents/bundles/{}", b.digest);
        let mut resp = self
            .retry("download", || async {
                self.send(self.request(reqwest::Method::GET, &path)).await
            })
            .await
            .map_err(|(s, m)| anyhow!("bundle {} refused ({s}): {m}", b.digest))?;
        let tmp = dest.with_extension("part");
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut hash = Sha256::new();
        while let Some(chunk) = resp.chunk().await? {
            hash.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        let got = format!("sha256:{}", hex::encode(hash.finalize()));
        if got != b.digest {
            let _ = tokio::fs::remove_file(&tmp).await;
            bail!("bundle digest mismatch: expected {}, got {got}", b.digest);
        }
        tokio::fs::rename(&tmp, dest).await?;
        Ok(())
    }
}

/// What the agent is configured with.
struct Agent {
    link: Link,
    root: Root,
    state: State,
    env: Vec<(String, String)>,
    is_root: bool,
}

pub(crate) async fn run(g: &Globals, args: AgentArgs) -> anyhow::Result<ExitCode> {
    let mut tags = std::collections::BTreeMap::new();
    for t in &args.tags {
        let (k, v) = t.split_once('=').unwrap_or((t.as_str(), ""));
        tags.insert(k.to_string(), v.to_string());
    }
    let mut env = Vec::new();
    for e in &args.env {
        let (k, v) = e
            .split_once('=')
            .ok_or_else(|| anyhow!("--env {e:?}: expected K=V"))?;
        env.push((k.to_string(), v.to_string()));
    }
    let key = match (&args.key_file, std::env::var("CUTOVER_AGENT_KEY").ok()) {
        (Some(f), _) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the key file {}", f.display()))?
                .trim()
                .to_string(),
        ),
        (None, k) => k.filter(|k| !k.is_empty()),
    };
    let root = Root::new(args.root.as_deref())?;
    let state_dir = match (&args.state_dir, &args.root) {
        (Some(d), _) => d.clone(),
        (None, Some(r)) => r.join(".cutover-agent"),
        (None, None) => super::default_data_dir().join(format!("agent-{}", args.name)),
    };
    let reg = AgentRegistration {
        name: args.name.clone(),
        tags,
        zone: args.zone.clone(),
        target: args.target.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let agent = Agent {
        link: Link {
            http: crate::client::builder(g)?
                .connect_timeout(Duration::from_secs(10))
                .build()?,
            base: g.server.trim_end_matches('/').to_string(),
            name: args.name.clone(),
            key,
        },
        root,
        state: State::open(&state_dir)?,
        env,
        is_root: rustix::process::geteuid().is_root(),
    };
    tokio::select! {
        r = agent.serve(&reg) => r.map(|()| ExitCode::SUCCESS),
        () = super::shutdown_signal() => Ok(ExitCode::SUCCESS),
    }
}

impl Agent {
    async fn serve(&self, reg: &AgentRegistration) -> anyhow::Result<()> {
        self.link.register(reg).await?;
        tracing::info!(name = %reg.name, "agent registered");
        // A result the server has not acknowledged, then the command that
        // was running when the agent stopped.
        if let Some(r) = self.state.pending_result()? {
            self.link.report(&r).await;
            self.state.clear_result()?;
        }
        if let Some((cmd, started)) = self.state.in_flight()? {
            // What the interrupted command's script started goes with it.
            if let Some(group) = self.state.script_group()? {
                scripts::kill_group(Some(group));
            }
            let r = CommandResult {
                id: cmd.id.clone(),
                status: CommandStatus::Cancelled,
                output: String::new(),
                error: Some(
                    "the agent restarted while this command ran; it was not run again".into(),
                ),
                started_at_ms: started,
                ended_at_ms: now_ms(),
            };
            self.finish(r).await?;
        }
        loop {
            let poll = match self.link.poll(None, 20).await {
                Ok(p) => p,
                Err(CallError::Transient(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "poll failed; retrying");
                    self.link
                        .retry("poll", || self.link.poll(None, 0))
                        .await
                        .map_err(|(s, m)| anyhow!("poll refused ({s}): {m}"))?
                }
                Err(CallError::Refused(StatusCode::NOT_FOUND, _)) => {
                    // The server forgot this host (deregistered): register again.
                    self.link.register(reg).await?;
                    continue;
                }
                Err(CallError::Refused(s, m)) => bail!("poll refused ({s}): {m}"),
            };
            for cmd in poll.commands {
                if poll.cancel.contains(&cmd.id) {
                    continue;
                }
                self.execute(cmd).await?;
            }
            for id in poll.cancel {
                let r = CommandResult {
                    id,
                    status: CommandStatus::Cancelled,
                    output: String::new(),
                    error: Some("cancelled before it ran".into()),
                    started_at_ms: now_ms(),
                    ended_at_ms: now_ms(),
                };
                self.link.report(&r).await;
            }
        }
    }

    /// Runs one command (watching for its cancellation) and reports it.
    async fn execute(&self, cmd: AgentCommand) -> anyhow::Result<()> {
        let started = now_ms();
        self.state.set_in_flight(&cmd, started)?;
        tracing::info!(command = %cmd.id, event = %cmd.event, "running");
        let cancel = CancellationToken::new();
        let out = Arc::new(Mutex::new(Tail::default()));
        let work = self.perform(&cmd, &cancel, &out);
        tokio::pin!(work);
        let outcome = loop {
            if cancel.is_cancelled() {
                break work.await;
            }
            tokio::select! {
                r = &mut work => break r,
                p = self.link.poll(Some(&cmd.id), 20) => match p {
                    Ok(p) => {
                        if p.cancel.contains(&cmd.id) {
                            cancel.cancel();
                        }
                    }
                    // The server is away: try again a bit later.
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                },
            }
        };
        let (status, error) = match outcome {
            Ok(o) => (o.status, o.error),
            Err(e) => (CommandStatus::Failed, Some(format!("{e:#}"))),
        };
        let output = out.lock().unwrap_or_else(|p| p.into_inner()).text();
        tracing::info!(command = %cmd.id, ?status, "done");
        self.finish(CommandResult {
            id: cmd.id.clone(),
            status,
            output,
            error,
            started_at_ms: started,
            ended_at_ms: now_ms(),
        })
        .await
    }

    /// Records, reports, then forgets a result.
    async fn finish(&self, r: CommandResult) -> anyhow::Result<()> {
        self.state.set_result(&r)?;
        self.state.clear_in_flight()?;
        self.link.report(&r).await;
        self.state.clear_result()
    }

    /// The revision's directory, downloaded and unpacked if needed.
    async fn revision(&self, b: &BundleRef) -> anyhow::Result<PathBuf> {
        let dir = self.state.revision_dir(b)?;
        if dir.is_dir() {
            return Ok(dir);
        }
        let file = self.state.bundle_file(b)?;
        if !file.is_file() {
            self.link.download(b, &file).await?;
        }
        let tmp = dir.with_extension("unpacking");
        let _ = std::fs::remove_dir_all(&tmp);
        let (f, fmt, t) = (file.clone(), b.format, tmp.clone());
        tokio::task::spawn_blocking(move || fsops::unpack(&f, fmt, &t)).await??;
        std::fs::rename(&tmp, &dir)?;
        Ok(dir)
    }

    async fn perform(
        &self,
        cmd: &AgentCommand,
        cancel: &CancellationToken,
        out: &Arc<Mutex<Tail>>,
    ) -> anyhow::Result<scripts::Outcome> {
        let ok = scripts::Outcome {
            status: CommandStatus::Succeeded,
            error: None,
        };
        let Some(bundle) = &cmd.revision else {
            return Ok(ok);
        };
        let dir = self.revision(bundle).await?;
        if cmd.event == HostEvent::DownloadBundle {
            return Ok(ok);
        }
        let spec = read_appspec(&dir)?;
        if cmd.event == HostEvent::Install {
            let behavior = cmd
                .file_exists_behavior
                .or(spec.file_exists_behavior)
                .unwrap_or(FileExistsBehavior::Disallow);
            let previous = self.state.installed(&cmd.deployment_group)?;
            let root = self.root.clone();
            let is_root = self.is_root;
            let written = tokio::task::spawn_blocking(move || {
                fsops::remove_installed(&previous, &root);
                let mut log = String::new();
                let r = fsops::install(&spec, &dir, &root, behavior, &mut log).and_then(|w| {
                    fsops::apply_permissions(&spec.permissions, &root, is_root, &mut log)?;
                    Ok(w)
                });
                (r, log)
            })
            .await?;
            let (written, log) = written;
            out.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(log.as_bytes());
            let written = written?;
            self.state.set_installed(&cmd.deployment_group, &written)?;
            return Ok(ok);
        }
        let mut env = vec![
            (
                "LIFECYCLE_EVENT".to_string(),
                cmd.event.as_str().to_string(),
            ),
            ("DEPLOYMENT_ID".into(), cmd.deployment_id.clone()),
            ("APPLICATION_NAME".into(), cmd.application.clone()),
            ("DEPLOYMENT_GROUP_NAME".into(), cmd.deployment_group.clone()),
            (
                "DEPLOYMENT_GROUP_ID".into(),
                cmd.deployment_group_id.clone(),
            ),
        ];
        env.extend(self.env.iter().cloned());
        let record = |group: u32| {
            if let Err(e) = self.state.set_script_group(group) {
                tracing::warn!(error = %format!("{e:#}"), "cannot record the script's process group");
            }
        };
        let cx = scripts::Context {
            revision: &dir,
            env,
            is_root: self.is_root,
            cancel: cancel.clone(),
            started: &record,
        };
        let outcome = scripts::run_all(spec.scripts(cmd.event), &cx, out).await;
        if outcome.status == CommandStatus::Succeeded && cmd.event == HostEvent::ValidateService {
            self.state
                .set_last_successful(&cmd.deployment_group, bundle)?;
        }
        Ok(outcome)
    }
}

/// The revision's `appspec.yml` (or `.yaml`, `.json`).
fn read_appspec(dir: &Path) -> anyhow::Result<HostAppSpec> {
    for name in ["appspec.yml", "appspec.yaml", "appspec.json"] {
        let path = dir.join(name);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return cutover_spec::parse_host_appspec(name, &text)
                .map(|p| p.value)
                .map_err(|e| anyhow!("{e}"));
        }
    }
    bail!("the revision has no appspec.yml at its root")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
