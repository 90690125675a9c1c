//! Builds on the host: a pipeline's build action (or StartBuild, see
//! `standalone`) runs `cutover-build` in `<data_dir>/builds/<uuid>/` with
//!
//! - `src/`: a copy of the input artifact (builds may write into it);
//! - `work/`: the build's own directory (artifacts, scripts, `build.pid`);
//! - `build.log`: the log, appended line by line as the build writes it, so
//!   `cutover builds logs --follow` reads it live.
//!
//! The build is a row in `builds` from its start (IN_PROGRESS) to its end,
//! with phases, exported variables, artifacts and reports in `detail`.
//!
//! Secrets (`env.parameter-store`, `env.secrets-manager`) come from the
//! secret store first: the SSM parameters and Secrets Manager secrets the
//! AWS protocols wrote (`cutover_store::secrets::build_ref`: a parameter
//! name or ARN, decrypted; `secret-id:json-key:version-stage:version-id`
//! with `secret-id` a name or ARN). Failing that, a plain name (the
//! secret id of a `secrets-manager` reference) is looked up, as before the
//! store existed, in files under `<data_dir>/secrets/`
//! (`[A-Za-z0-9_./-]`, no `..` component, not absolute; a file
//! that is a symlink leading out of the secrets directory is refused), then
//! in the server's environment variable of that name only if the
//! operator listed it in `CUTOVER_BUILD_ENV_SECRETS` (comma-separated; a
//! `CUTOVER_*` name never qualifies, listed or not). A secret found nowhere
//! fails the build before anything runs, naming the buildspec field.
//!
//! `<data_dir>/builds` and each build's directory are 0700 and `build.log`
//! is 0600; the build's shell state (its environment, secrets included) is
//! deleted when the build ends, and by [`fail_interrupted`] after a crash.
//!
//! What happens to a running build when the control plane goes away:
//!
//! - a crash (or `kill -9`) leaves the build's process group running with
//!   no reader. At the next start [`fail_interrupted`] marks the build FAILED
//!   ("control plane restarted during the build") and kills its process group
//!   (`<work_dir>/build.pid`); the pipeline action it ran for fails when the
//!   engine re-issues it, and a stage retry (`cutover pipelines retry`) runs
//!   a new build;
//! - a graceful stop cancels the build (STOPPED) without reporting to the
//!   engine; after the restart the engine re-issues the action and a new
//!   build runs (if the server exits before the stopped build records its
//!   end, the build counts as interrupted, as after a crash).
//!
//! A build may run `timeoutInMinutes` (default 60) before it is stopped
//! (TIMED_OUT).
//!
//! Every build gets AWS credentials of its own from [`BuildCredentials`]
//! (see `credentials`): issued once its row is written, valid for its
//! timeout and a margin, their secret masked in the log, revoked when it
//! ends whatever the outcome, and by [`fail_interrupted`] after a crash.
//!
//! A project with `environment: {image: NAME}` builds in a container of
//! that image on the server's container engine ([`EngineContainer`]): one
//! container per build, `src/`, `work/` and the secondary sources
//! bind-mounted at their host paths, removed when the build ends (which
//! also kills what it left running); an image that cannot be had fails the
//! build with `CannotPullContainerError: ...`. A server without an engine
//! fails such builds with a message saying so. After a crash, the server
//! removes the build containers left behind when it starts, before any
//! build runs. With `privilegedMode: true` the container also gets the
//! engine itself (its socket, `CONTAINER_HOST`, `DOCKER_HOST`: see
//! `cutover_docker`'s `runtime/build.rs`), so the build can build and push
//! images.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cutover_api::builds::BuildStatus;
use cutover_build::container::BoxFuture;
use cutover_build::run::{SecretLookup, SecretSource};
use cutover_build::{BuildContainer, BuildRequest, BuildStatus as RunStatus, LogLine};
use cutover_docker::DockerRuntime;
use cutover_pipeline::engine::ArtifactRef;
use cutover_store::secrets::build_ref::{self, ReferenceError, SecretReference};
use cutover_store::{BuildRow, Store, StoreError, pipeline_ops};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::artifacts::{ArtifactStore, copy_tree};
use crate::config::{BuildEnvironment, BuildProjectSpec};
use crate::credentials::{BuildCredentials, IssuedCredentials, NoCredentials};
use cutover_clock::{Clock, SharedClock};

/// The message of a build interrupted by a restart.
pub(crate) const RESTARTED: &str = "control plane restarted during the build";

/// One build to run.
#[derive(Debug, Clone)]
pub(crate) struct BuildJob {
    /// Project name.
    pub(crate) project: String,
    /// Its declaration.
    pub(crate) spec: BuildProjectSpec,
    /// `pipeline/execution/stage/action/attempt`, when run for a pipeline.
    pub(crate) action_key: Option<String>,
    /// `CODEBUILD_INITIATOR`.
    pub(crate) initiator: String,
    /// The primary source directory (an artifact).
    pub(crate) source: PathBuf,
    /// Secondary sources, by artifact name.
    pub(crate) secondary: Vec<(String, PathBuf)>,
    /// The commit built, if known.
    pub(crate) source_version: Option<String>,
    /// Variables from the pipeline action (or StartBuild), applied last.
    pub(crate) env: Vec<(String, String)>,
    /// Variables resolved from the secret store (StartBuild's
    /// `PARAMETER_STORE` and `SECRETS_MANAGER` overrides): source, name,
    /// reference; resolved and masked as the buildspec's own.
    pub(crate) secret_env: Vec<(SecretSource, String, String)>,
    /// The output artifacts to store: the first is the primary artifact,
    /// the others match secondary artifact identifiers.
    pub(crate) outputs: Vec<String>,
    /// How long the build may run before it is stopped.
    pub(crate) timeout: Duration,
}

/// A finished, successful build.
#[derive(Debug, Clone)]
pub(crate) struct BuildResult {
    /// `project:uuid`.
    pub(crate) build_id: String,
    /// `exported-variables`.
    pub(crate) variables: BTreeMap<String, String>,
    /// Output artifacts, stored.
    pub(crate) artifacts: BTreeMap<String, ArtifactRef>,
}

/// Runs builds and keeps their rows.
#[derive(Clone)]
pub(crate) struct Builder {
    store: Arc<Store>,
    clock: SharedClock,
    data_dir: PathBuf,
    artifacts: ArtifactStore,
    engine: Option<Arc<DockerRuntime>>,
    credentials: Arc<dyn BuildCredentials>,
}

/// The margin past a build's timeout its access key stays valid.
const KEY_MARGIN: Duration = Duration::from_secs(300);

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("data_dir", &self.data_dir)
            .field("engine", &self.engine.is_some())
            .finish_non_exhaustive()
    }
}

/// A build's container on the server's engine.
pub(crate) struct EngineContainer {
    engine: Arc<DockerRuntime>,
    id: String,
}

impl BuildContainer for EngineContainer {
    fn exec_detached(
        &self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: String,
    ) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            self.engine
                .exec_detached(&self.id, &argv, &env, &workdir)
                .await
                .map_err(std::io::Error::other)
        })
    }
}

/// The log file of a build row.
pub fn log_path(row: &BuildRow) -> PathBuf {
    Path::new(&row.work_dir).join("build.log")
}

impl Builder {
    /// Builds under `<data_dir>/builds`.
    pub(crate) fn new(
        store: Arc<Store>,
        clock: SharedClock,
        data_dir: &Path,
        artifacts: ArtifactStore,
    ) -> Builder {
        Builder {
            store,
            clock,
            data_dir: data_dir.to_path_buf(),
            artifacts,
            engine: None,
            credentials: Arc::new(NoCredentials),
        }
    }

    /// Builds get AWS credentials from `credentials`.
    pub(crate) fn with_credentials(mut self, credentials: Arc<dyn BuildCredentials>) -> Builder {
        self.credentials = credentials;
        self
    }

    /// Builds of projects naming an image run on `engine`.
    pub(crate) fn with_engine(mut self, engine: Option<Arc<DockerRuntime>>) -> Builder {
        self.engine = engine;
        self
    }

    /// Resolves the buildspec's secrets: the secret store first (what
    /// `aws ssm put-parameter` and `aws secretsmanager create-secret`
    /// wrote), then, for a plain name, a file under `<data_dir>/secrets/`,
    /// then a listed environment variable (see the module header).
    fn secrets(&self) -> SecretLookup {
        let dir = Arc::new(self.data_dir.join("secrets"));
        let allowed = Arc::new(env_secret_names(std::env::var(ENV_SECRETS).ok().as_deref()));
        let store = Arc::clone(&self.store);
        Arc::new(move |source: SecretSource, reference: String| {
            let (dir, allowed, store) = (dir.clone(), allowed.clone(), store.clone());
            Box::pin(async move {
                if let Some(found) = from_secret_store(&store, source, &reference).await {
                    return found;
                }
                let name = match source {
                    SecretSource::ParameterStore => reference.as_str(),
                    SecretSource::SecretsManager => SecretReference::parse(&reference)
                        .map_or(reference.as_str(), |r| r.secret_id),
                };
                if !valid_secret_name(name) {
                    return None;
                }
                if let Some(text) = read_secret_file(&dir, name) {
                    return Some(text);
                }
                if allowed.iter().any(|a| a == name) {
                    return std::env::var(name).ok();
                }
                None
            })
        })
    }

    async fn put(&self, row: &BuildRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.store
            .call(move |c| pipeline_ops::put_build(c, &row))
            .await
    }

    /// Runs `job` until it ends or `cancel` fires. `Err` carries the
    /// message the pipeline action fails with.
    pub(crate) async fn run(
        &self,
        job: BuildJob,
        cancel: CancellationToken,
    ) -> Result<BuildResult, String> {
        let row = self.begin(&job).await?;
        self.execute(job, row, cancel).await
    }

    /// Writes the row of a new build of `job` (IN_PROGRESS) and makes its
    /// directory; [`Builder::execute`] runs it.
    pub(crate) async fn begin(&self, job: &BuildJob) -> Result<BuildRow, String> {
        let uuid = uuid::Uuid::new_v4();
        let root = self.data_dir.join("builds").join(uuid.simple().to_string());
        for dir in [self.data_dir.join("builds"), root.clone()] {
            cutover_build::safe_fs::private_dir(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let id = format!("{}:{uuid}", job.project);
        let project = job.project.clone();
        let number = self
            .store
            .call(move |c| pipeline_ops::next_build_number(c, &project))
            .await
            .map_err(|e| e.to_string())?;
        let row = BuildRow {
            id: id.clone(),
            project: job.project.clone(),
            number,
            status: BuildStatus::InProgress,
            initiator: job.initiator.clone(),
            action_key: job.action_key.clone(),
            source: job.source_version.clone(),
            work_dir: root.to_string_lossy().into_owned(),
            detail: json!({}),
            message: None,
            started_at: self.clock.now_ms(),
            finished_at: None,
        };
        self.put(&row).await.map_err(|e| e.to_string())?;
        tracing::info!(build = %id, project = %job.project, "build started");
        Ok(row)
    }

    /// Runs the build [`Builder::begin`] wrote until it ends or `cancel`
    /// fires, and records its end.
    pub(crate) async fn execute(
        &self,
        job: BuildJob,
        mut row: BuildRow,
        cancel: CancellationToken,
    ) -> Result<BuildResult, String> {
        let id = row.id.clone();
        let root = PathBuf::from(&row.work_dir);
        let (src, work) = (root.join("src"), root.join("work"));
        let in_container = job.spec.environment.image_name().is_some();
        let ttl = job.timeout.saturating_add(KEY_MARGIN).as_millis();
        let credentials = match self
            .credentials
            .issue(&id, u64::try_from(ttl).unwrap_or(u64::MAX), in_container)
            .await
        {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(build = %id, error = %e, "cannot issue AWS credentials to a build");
                None
            }
        };
        // The build's own token: cancelled by the caller or by the timeout.
        let token = cancel.child_token();
        let timed_out = Arc::new(AtomicBool::new(false));
        let timer = tokio::spawn({
            let (token, timed_out, timeout) = (token.clone(), timed_out.clone(), job.timeout);
            async move {
                tokio::select! {
                    _ = tokio::time::sleep(timeout) => {
                        timed_out.store(true, Ordering::SeqCst);
                        token.cancel();
                    }
                    _ = token.cancelled() => {}
                }
            }
        });
        let result = self
            .run_in(&job, &row, &src, &work, credentials.as_ref(), token)
            .await;
        timer.abort();
        self.credentials.revoke(&id).await;
        row.finished_at = Some(self.clock.now_ms());
        let out = match result {
            Ok((status, detail, result)) => {
                row.status = match status {
                    RunStatus::Succeeded => BuildStatus::Succeeded,
                    RunStatus::Failed => BuildStatus::Failed,
                    RunStatus::Stopped => BuildStatus::Stopped,
                };
                row.detail = detail;
                match status {
                    RunStatus::Succeeded => Ok(result),
                    RunStatus::Failed => Err(format!("build {id} failed")),
                    RunStatus::Stopped if timed_out.load(Ordering::SeqCst) => {
                        row.status = BuildStatus::TimedOut;
                        Err(format!(
                            "build {id} timed out after {}",
                            humanize(job.timeout)
                        ))
                    }
                    RunStatus::Stopped => Err(format!("build {id} was stopped")),
                }
            }
            Err(message) => {
                row.status = BuildStatus::Fault;
                Err(format!("build {id}: {message}"))
            }
        };
        let out = out.and_then(|r| r.ok_or_else(|| format!("build {id}: no artifacts")));
        if let Err(m) = &out {
            row.message = Some(m.clone());
            if row.status == BuildStatus::Succeeded {
                row.status = BuildStatus::Failed;
            }
        }
        if let Err(e) = self.put(&row).await {
            tracing::error!(build = %id, error = %e, "cannot record the end of a build");
        }
        // The source copy is not needed any more; the log and work dir stay.
        let _ = std::fs::remove_dir_all(&src);
        tracing::info!(build = %id, status = row.status.as_str(), "build finished");
        out
    }

    /// The build itself; `Ok` with its status, detail and (when it
    /// succeeded) the stored outputs.
    async fn run_in(
        &self,
        job: &BuildJob,
        row: &BuildRow,
        src: &Path,
        work: &Path,
        credentials: Option<&IssuedCredentials>,
        cancel: CancellationToken,
    ) -> Result<(RunStatus, serde_json::Value, Option<BuildResult>), String> {
        std::fs::create_dir_all(src).map_err(|e| format!("{}: {e}", src.display()))?;
        copy_tree(&job.source, src).map_err(|e| e.to_string())?;
        let (file, text) = match (&job.spec.buildspec_text, &job.spec.buildspec) {
            (Some(text), name) => (
                match name {
                    // Inline text (several lines) is named by its field.
                    Some(name) if name.contains('\n') => "buildspec (inline)".into(),
                    Some(name) => name.clone(),
                    None => "buildspec.yml".into(),
                },
                text.clone(),
            ),
            (None, name) => {
                let name = name.clone().unwrap_or_else(|| "buildspec.yml".into());
                // Never through a symlink: the repository controls the source.
                let text = cutover_build::safe_fs::open_beneath(src, Path::new(&name))
                    .and_then(|mut f| {
                        let mut text = String::new();
                        std::io::Read::read_to_string(&mut f, &mut text).map(|_| text)
                    })
                    .map_err(|e| format!("cannot read {name} in the source: {e}"))?;
                (name, text)
            }
        };
        let mut spec = cutover_build::parse_buildspec(&file, &text).map_err(|e| {
            e.diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        for (source, name, reference) in &job.secret_env {
            let list = match source {
                SecretSource::ParameterStore => &mut spec.value.env.parameter_store,
                SecretSource::SecretsManager => &mut spec.value.env.secrets_manager,
            };
            list.push((name.clone(), reference.clone()));
        }
        let mut req = BuildRequest::new(
            &job.project,
            row.number,
            src.to_path_buf(),
            work.to_path_buf(),
        );
        req.build_id = row.id.clone();
        req.secondary_sources = job.secondary.clone();
        req.source_version = job.source_version.clone();
        req.resolved_source_version = job.source_version.clone();
        req.initiator = job.initiator.clone();
        let (aws_vars, masked) = credentials
            .map(|c| (c.vars.clone(), c.masked.clone()))
            .unwrap_or_default();
        req.env = aws_vars
            .into_iter()
            .chain(
                job.spec
                    .environment_variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            )
            .chain(job.env.iter().cloned())
            .collect();
        req.masked = masked;
        req.secrets = self.secrets();
        if job.spec.cache {
            req.cache_dir = Some(self.data_dir.join("cache").join(&job.project));
        }
        let log_file = Path::new(&row.work_dir).join("build.log");
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_file)
            .map_err(|e| format!("{}: {e}", log_file.display()))?;
        let writer = move |line: LogLine| {
            let text = match line.source {
                cutover_build::run::LogSource::System => format!("[Container] {}\n", line.text),
                cutover_build::run::LogSource::Output => format!("{}\n", line.text),
            };
            let _ = log.write_all(text.as_bytes());
        };
        // Before any container is created for it.
        cutover_build::run::check_runnable(&spec.value).map_err(|e| e.to_string())?;
        let outcome = match &job.spec.environment {
            BuildEnvironment::Host => cutover_build::run_build(&spec.value, req, writer, cancel)
                .await
                .map_err(|e| e.to_string())?,
            BuildEnvironment::Image {
                image,
                privileged_mode,
            } => {
                let engine = self.engine.clone().ok_or_else(|| {
                    format!(
                        "project {} builds in image {image}, but this server has no container engine",
                        job.project
                    )
                })?;
                let mounts = cutover_build::container_mounts(&req).map_err(|e| e.to_string())?;
                let id = engine
                    .create_build_container(&req.build_id, image, &mounts, *privileged_mode)
                    .await
                    .map_err(|e| e.to_string())?;
                let container = Arc::new(EngineContainer {
                    engine: engine.clone(),
                    id: id.clone(),
                });
                let outcome =
                    cutover_build::run_build_in(&spec.value, req, Some(container), writer, cancel)
                        .await;
                engine.remove_build_container(&id).await;
                // The container's shell may have saved its state after the
                // build returned: the container is gone now.
                let _ = std::fs::remove_dir_all(work.join("shell"));
                outcome.map_err(|e| e.to_string())?
            }
        };
        let detail = json!({
            "phases": outcome.phases.iter().map(|p| json!({
                "phase": p.phase.as_str(),
                "status": format!("{:?}", p.status).to_uppercase(),
                "durationMs": p.duration_ms,
                "message": p.message,
            })).collect::<Vec<_>>(),
            "exportedVariables": outcome.exported_variables,
            "artifacts": outcome.artifacts.iter().map(|a| json!({
                "identifier": a.identifier,
                "name": a.name,
                "files": a.files.len(),
            })).collect::<Vec<_>>(),
            "reports": outcome.reports.iter().map(|r| json!({
                "group": r.group,
                "total": r.total,
                "passed": r.passed,
                "failed": r.failed,
                "errored": r.errored,
                "skipped": r.skipped,
            })).collect::<Vec<_>>(),
        });
        if outcome.status != RunStatus::Succeeded {
            return Ok((outcome.status, detail, None));
        }
        let mut stored = BTreeMap::new();
        for (i, name) in job.outputs.iter().enumerate() {
            let set = outcome.artifacts.iter().find(|a| {
                if i == 0 {
                    a.identifier.is_none()
                } else {
                    a.identifier.as_deref() == Some(name.as_str())
                }
            });
            let Some(set) = set else {
                return Err(format!(
                    "the pipeline expects output artifact {name:?} but the buildspec declares no {}",
                    if i == 0 {
                        "artifacts".to_string()
                    } else {
                        format!("secondary artifact {name:?}")
                    }
                ));
            };
            let r = self
                .artifacts
                .put_copy(&set.dir)
                .map_err(|e| e.to_string())?;
            stored.insert(name.clone(), r);
        }
        let result = BuildResult {
            build_id: row.id.clone(),
            variables: outcome.exported_variables.clone(),
            artifacts: stored,
        };
        Ok((RunStatus::Succeeded, detail, Some(result)))
    }
}

fn humanize(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        s if s >= 1 => format!("{s} s"),
        _ => format!("{} ms", d.as_millis()),
    }
}

/// The variable naming the server's environment variables builds may read
/// as secrets.
pub(crate) const ENV_SECRETS: &str = "CUTOVER_BUILD_ENV_SECRETS";

/// The names listed in `CUTOVER_BUILD_ENV_SECRETS`, without `CUTOVER_*`
/// ones (Cutover's own settings and tokens are never a build's secret).
fn env_secret_names(list: Option<&str>) -> Vec<String> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.starts_with("CUTOVER_"))
        .map(str::to_string)
        .collect()
}

/// A secret reference: `[A-Za-z0-9_./-]`, not absolute, no `.` or `..`
/// component, no empty component.
fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The secret store's answer for a buildspec reference
/// (`cutover_store::secrets::build_ref` has the rules): `None` if the store
/// has no such parameter or secret (the older sources are asked next),
/// `Some(None)` if it has one that cannot serve (no such version or JSON
/// key, a binary value) or cannot be read. Why is logged, never a value.
async fn from_secret_store(
    store: &Arc<Store>,
    source: SecretSource,
    reference: &str,
) -> Option<Option<String>> {
    use secrecy::ExposeSecret as _;
    let r = reference.to_string();
    let found = store
        .call(move |c| match source {
            SecretSource::ParameterStore => {
                build_ref::parameter_value(c, &r).map(|r| r.map(|v| v.expose_secret().to_string()))
            }
            SecretSource::SecretsManager => build_ref::secret_value(c, &r),
        })
        .await;
    match found {
        Ok(Ok(value)) => Some(Some(value)),
        Ok(Err(why @ (ReferenceError::NoParameter(_) | ReferenceError::NoSecret(_)))) => {
            tracing::debug!(%source, reference, %why, "not in the secret store");
            None
        }
        Ok(Err(why)) => {
            tracing::warn!(%source, reference, %why, "refused a buildspec secret");
            Some(None)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the secret store");
            Some(None)
        }
    }
}

/// The secret file `name` under `dir`, if it exists and, symlinks
/// resolved, is still inside `dir`; its trailing newlines removed.
fn read_secret_file(dir: &Path, name: &str) -> Option<String> {
    let root = std::fs::canonicalize(dir).ok()?;
    let path = std::fs::canonicalize(dir.join(name)).ok()?;
    if !path.starts_with(&root) {
        tracing::warn!(
            secret = name,
            "refused a secret file outside the secrets directory"
        );
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    Some(text.trim_end_matches('\n').to_string())
}

/// Marks every build left running by a previous server FAILED and kills
/// what is left of its processes (see the module header).
pub(crate) async fn fail_interrupted(
    store: &Arc<Store>,
    clock: &dyn Clock,
    credentials: &dyn BuildCredentials,
) -> Result<(), StoreError> {
    for mut b in store.call(pipeline_ops::unfinished_builds).await? {
        // Its access key may not have expired yet.
        credentials.revoke(&b.id).await;
        let work = Path::new(&b.work_dir).join("work");
        match cutover_build::run::kill_leftover(&work) {
            Ok(true) => {
                tracing::warn!(build = %b.id, "killed the processes of an interrupted build")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(build = %b.id, error = %e, "cannot kill an interrupted build"),
        }
        b.status = BuildStatus::Failed;
        b.message = Some(RESTARTED.into());
        b.finished_at = Some(clock.now_ms());
        store.call(move |c| pipeline_ops::put_build(c, &b)).await?;
    }
    Ok(())
}

#[cfg(test)]
// Tests read the store inline: nothing else runs on their runtime.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn project() -> BuildProjectSpec {
        BuildProjectSpec {
            environment: Default::default(),
            buildspec: None,
            cache: false,
            environment_variables: BTreeMap::from([("GREETING".into(), "hi".into())]),
            buildspec_text: None,
            timeout_in_minutes: None,
            source: None,
        }
    }

    /// A source directory holding `buildspec`.
    fn source_with(buildspec: &str) -> tempfile::TempDir {
        let source = tempfile::tempdir().unwrap();
        std::fs::write(source.path().join("buildspec.yml"), buildspec).unwrap();
        source
    }

    /// A job of project `p` on `source`, started by a test, with no inputs.
    fn job(source: &Path) -> BuildJob {
        BuildJob {
            project: "p".into(),
            spec: project(),
            action_key: None,
            initiator: "test".into(),
            source: source.to_path_buf(),
            secondary: Vec::new(),
            source_version: None,
            env: Vec::new(),
            secret_env: Vec::new(),
            outputs: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn a_build_stores_its_artifact_variables_and_log() {
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in_memory().unwrap());
        let artifacts = ArtifactStore::new(data.path());
        let builder = Builder::new(
            store.clone(),
            Arc::new(cutover_clock::SystemClock),
            data.path(),
            artifacts.clone(),
        );
        let source = source_with(
            "version: 0.2\nenv:\n  exported-variables: [OUT]\nphases:\n  build:\n    commands:\n      - echo \"$GREETING $FROM_PIPELINE\" > out.txt\n      - export OUT=$(cat out.txt)\nartifacts:\n  files: [out.txt]\n",
        );
        let job = BuildJob {
            action_key: Some("app/e1/Build/Build/1".into()),
            initiator: "codepipeline/app".into(),
            source_version: Some("abc".into()),
            env: vec![("FROM_PIPELINE".into(), "there".into())],
            outputs: vec!["BuildArtifact".into()],
            ..job(source.path())
        };
        let result = builder
            .run(job.clone(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(result.variables["OUT"], "hi there");
        let dir = artifacts.path(&result.artifacts["BuildArtifact"]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("out.txt")).unwrap(),
            "hi there\n"
        );
        let row = store
            .with(|c| pipeline_ops::build(c, &result.build_id))
            .unwrap()
            .unwrap();
        assert_eq!(row.status, BuildStatus::Succeeded);
        assert_eq!(row.number, 1);
        assert!(row.finished_at.is_some());
        let log = std::fs::read_to_string(log_path(&row)).unwrap();
        assert!(log.contains("echo \"$GREETING $FROM_PIPELINE\""), "{log}");

        // A failing command fails the build and the action.
        std::fs::write(
            source.path().join("buildspec.yml"),
            "version: 0.2\nphases:\n  build:\n    commands: [\"false\"]\n",
        )
        .unwrap();
        let err = builder
            .run(job, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.ends_with("failed"), "{err}");
        let builds = store
            .with(|c| pipeline_ops::list_builds(c, Some("p"), 10))
            .unwrap();
        assert_eq!(builds[0].number, 2);
        assert_eq!(builds[0].status, BuildStatus::Failed);
    }

    #[tokio::test]
    async fn a_project_naming_an_image_builds_in_a_container_of_it() {
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in_memory().unwrap());
        let artifacts = ArtifactStore::new(data.path());
        let source = source_with(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - test -x /bin/busybox\n      - echo \"$GREETING\" > out.txt\nartifacts:\n  files: [out.txt]\n",
        );
        let mut spec = project();
        spec.environment = BuildEnvironment::image("cutover-sample:test");
        let job = BuildJob {
            spec,
            outputs: vec!["BuildArtifact".into()],
            ..job(source.path())
        };

        // Without an engine the build fails and says why.
        let builder = Builder::new(
            store.clone(),
            Arc::new(cutover_clock::SystemClock),
            data.path(),
            artifacts.clone(),
        );
        let err = builder
            .run(job.clone(), CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            err.contains("but this server has no container engine"),
            "{err}"
        );

        let Some(engine) = crate::testing::container_engine("test-build").await else {
            return;
        };
        let builder = builder.with_engine(Some(engine));
        let result = builder
            .run(job.clone(), CancellationToken::new())
            .await
            .unwrap();
        let dir = artifacts.path(&result.artifacts["BuildArtifact"]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("out.txt")).unwrap(),
            "hi\n"
        );

        // An image that cannot be had fails the build plainly.
        let mut job = job;
        job.spec.environment = BuildEnvironment::image("localhost:1/cutover/none:x");
        let err = builder
            .run(job, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.contains("CannotPullContainerError: "), "{err}");
    }

    #[tokio::test]
    async fn a_broken_buildspec_in_the_source_fails_with_its_location() {
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in_memory().unwrap());
        let builder = Builder::new(
            store.clone(),
            Arc::new(cutover_clock::SystemClock),
            data.path(),
            ArtifactStore::new(data.path()),
        );
        let source = source_with("version: 0.2\nphases:\n  build:\n    commands: {a: 1}\n");
        let job = job(source.path());
        let err = builder
            .run(job, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.contains("buildspec.yml:4:"), "{err}");
        let row = &store
            .with(|c| pipeline_ops::list_builds(c, None, 1))
            .unwrap()[0];
        assert_eq!(row.status, BuildStatus::Fault);
    }

    #[tokio::test]
    async fn a_build_past_its_timeout_is_stopped_and_says_so() {
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in_memory().unwrap());
        let builder = Builder::new(
            store.clone(),
            Arc::new(cutover_clock::SystemClock),
            data.path(),
            ArtifactStore::new(data.path()),
        );
        let source = source_with("version: 0.2\nphases:\n  build:\n    commands: [\"sleep 30\"]\n");
        let job = BuildJob {
            timeout: Duration::from_millis(300),
            ..job(source.path())
        };
        let started = std::time::Instant::now();
        let err = builder
            .run(job, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.ends_with("timed out after 300 ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
        let row = &store
            .with(|c| pipeline_ops::list_builds(c, None, 1))
            .unwrap()[0];
        assert_eq!(row.status, BuildStatus::TimedOut);
    }

    /// `lookup` answered on a runtime of its own (the tests are synchronous).
    fn blocking(lookup: SecretLookup) -> impl Fn(SecretSource, &str) -> Option<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        move |source, reference| rt.block_on(lookup(source, reference.to_string()))
    }

    #[test]
    fn secrets_come_from_the_local_store_and_cannot_escape_it() {
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in_memory().unwrap());
        let builder = Builder::new(
            store,
            Arc::new(cutover_clock::SystemClock),
            data.path(),
            ArtifactStore::new(data.path()),
        );
        std::fs::create_dir_all(data.path().join("secrets/prod")).unwrap();
        std::fs::write(data.path().join("secrets/prod/db-password"), "hunter2\n").unwrap();
        std::fs::write(data.path().join("outside"), "no").unwrap();
        let lookup = blocking(builder.secrets());
        assert_eq!(
            lookup(SecretSource::ParameterStore, "prod/db-password").as_deref(),
            Some("hunter2")
        );
        // secrets-manager references are `secret-id:json-key:...`.
        assert_eq!(
            lookup(SecretSource::SecretsManager, "prod/db-password:password").as_deref(),
            Some("hunter2")
        );
        assert_eq!(lookup(SecretSource::ParameterStore, "../outside"), None);
        assert_eq!(lookup(SecretSource::ParameterStore, "/etc/hostname"), None);
        assert_eq!(
            lookup(SecretSource::ParameterStore, "prod/./db-password"),
            None
        );
        assert_eq!(
            lookup(SecretSource::ParameterStore, "prod/db password"),
            None
        );
        // A symlink leading out of the secrets directory is refused; one
        // inside it is fine.
        std::os::unix::fs::symlink(data.path().join("outside"), data.path().join("secrets/out"))
            .unwrap();
        assert_eq!(lookup(SecretSource::ParameterStore, "out"), None);
        std::os::unix::fs::symlink("prod/db-password", data.path().join("secrets/alias")).unwrap();
        assert_eq!(
            lookup(SecretSource::ParameterStore, "alias").as_deref(),
            Some("hunter2")
        );
        // The server's own environment is not a secret store.
        assert_eq!(lookup(SecretSource::ParameterStore, "PATH"), None);
    }

    #[test]
    fn secrets_come_from_the_secret_store_before_the_files() {
        use cutover_store::secrets::{
            ParameterRow, ParameterType, SecretRow, SecretValue, SecretVersion, put_parameter,
            put_secret,
        };
        use secrecy::SecretString;
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in_memory().unwrap());
        store
            .with(|c| {
                put_parameter(
                    c,
                    &ParameterRow {
                        name: "/prod/db-password".into(),
                        type_: ParameterType::SecureString,
                        value: SecretString::from("from-ssm"),
                        version: 1,
                        last_modified: 1,
                        description: None,
                    },
                )?;
                put_secret(
                    c,
                    &SecretRow {
                        name: "prod/db".into(),
                        arn_suffix: "a1B2c3".into(),
                        description: None,
                        current: Some(SecretVersion {
                            id: "v1".into(),
                            value: SecretValue::Text(SecretString::from(r#"{"password":"pw"}"#)),
                            created_at: 1,
                        }),
                        previous: None,
                        created_at: 1,
                        changed_at: 1,
                        deleted_at: None,
                        purge_at: None,
                    },
                )
            })
            .unwrap();
        let builder = Builder::new(
            store,
            Arc::new(cutover_clock::SystemClock),
            data.path(),
            ArtifactStore::new(data.path()),
        );
        std::fs::create_dir_all(data.path().join("secrets/prod")).unwrap();
        std::fs::write(data.path().join("secrets/prod/db"), "from-file").unwrap();
        let lookup = blocking(builder.secrets());
        assert_eq!(
            lookup(SecretSource::ParameterStore, "/prod/db-password").as_deref(),
            Some("from-ssm")
        );
        assert_eq!(
            lookup(SecretSource::SecretsManager, "prod/db:password").as_deref(),
            Some("pw")
        );
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-a1B2c3";
        assert_eq!(
            lookup(
                SecretSource::SecretsManager,
                &format!("{arn}:password:AWSCURRENT")
            )
            .as_deref(),
            Some("pw")
        );
        // A stored secret wins over a file of the same name, even when it
        // cannot serve the reference.
        assert_eq!(lookup(SecretSource::SecretsManager, "prod/db:user"), None);
        // One the store lacks is still read from its file.
        std::fs::write(data.path().join("secrets/prod/other"), "old").unwrap();
        assert_eq!(
            lookup(SecretSource::SecretsManager, "prod/other:user").as_deref(),
            Some("old")
        );
        assert_eq!(lookup(SecretSource::ParameterStore, "/prod/other"), None);
    }

    #[test]
    fn only_listed_non_cutover_variables_may_come_from_the_environment() {
        assert_eq!(
            env_secret_names(Some(" NPM_TOKEN, CUTOVER_TOKEN,,CUTOVER_PROXY_TOKEN,GH ")),
            ["NPM_TOKEN", "GH"]
        );
        assert!(env_secret_names(None).is_empty());
        assert!(valid_secret_name("prod/db-password_2.txt"));
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a b", "a\nb", "a:b"] {
            assert!(!valid_secret_name(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn interrupted_builds_are_failed_at_start() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let data = tempfile::tempdir().unwrap();
        let row = BuildRow {
            id: "p:1".into(),
            project: "p".into(),
            number: 1,
            status: BuildStatus::InProgress,
            initiator: "test".into(),
            action_key: None,
            source: None,
            work_dir: data.path().to_string_lossy().into_owned(),
            detail: json!({}),
            message: None,
            started_at: 1,
            finished_at: None,
        };
        store.with(|c| pipeline_ops::put_build(c, &row)).unwrap();
        fail_interrupted(&store, &cutover_clock::SystemClock, &NoCredentials)
            .await
            .unwrap();
        let after = store
            .with(|c| pipeline_ops::build(c, "p:1"))
            .unwrap()
            .unwrap();
        assert_eq!(after.status, BuildStatus::Failed);
        assert_eq!(after.message.as_deref(), Some(RESTARTED));
        assert!(
            store
                .with(pipeline_ops::unfinished_builds)
                .unwrap()
                .is_empty()
        );
    }
}
