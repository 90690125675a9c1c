//! Pipelines and builds: the declared pipelines run for real, from a git
//! commit to a deployed service. The control plane (`cutover-server`)
//! starts [`Pipelines`], tells it when an apply changed the pipeline rows
//! ([`Pipelines::reload`]), and maps [`PipelineError`] to HTTP.
//!
//! - [`config`]: the `repositories:`, `buildProjects:` and `pipelines:`
//!   sections of `stack.yaml`, validated and written by `apply`.
//! - `driver`: one task per pipeline around the pure engine of
//!   `cutover-pipeline`; state saved before effects run; resumed at start.
//! - `actions`: each action of an execution as a task reporting back to
//!   its driver.
//! - `source`: git mirrors, commit metadata, source artifacts.
//! - `build`: builds with `cutover-build`, logs in files, rows in `builds`;
//!   `standalone`: builds started on their own (CodeBuild's StartBuild);
//!   `credentials`: the AWS credentials every build gets, which the server
//!   provides as [`BuildCredentials`].
//! - `artifacts`: the content-addressed artifact store.
//! - `deploy`: `ECS` and `CodeDeployToECS` through the service's
//!   deployment, which the server provides as [`Deployments`].
//! - `host_deploy`: the `CodeDeploy` action for hosts, through the
//!   server's host deployments, which it provides as [`HostDeployments`].
//! - `invoke`: invoke actions (a command or a URL).
//! - [`webhook`]: GitHub, GitLab and Gitea push webhooks.
//! - `triggers`: polling and webhook pushes to executions.
//!
//! Crash safety: every pipeline's engine state is in the store and is
//! written before the effects of each step run. At start, builds left
//! running by the previous server are failed and their processes killed,
//! then every pipeline's driver resumes (see `driver` for what each kind of
//! action does when re-issued).
//!
//! Store access never blocks an async worker thread: every call goes
//! through `Store::call` or `Store::transact` (this crate's `clippy.toml`
//! forbids the synchronous forms).

mod actions;
mod artifacts;
mod build;
pub mod config;
mod credentials;
mod deploy;
mod deployments;
mod driver;
mod error;
mod host_deploy;
mod image_scans;
mod invoke;
mod source;
mod standalone;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod triggers;
pub mod webhook;

pub use build::log_path;
pub use credentials::{BuildCredentials, IssuedCredentials, NoCredentials};
pub use deployments::{
    AppSpecFile, DeploymentRequest, DeploymentState, Deployments, DeploymentsError,
};
pub use driver::attempt_key;
pub use error::PipelineError;
pub use host_deploy::{HostDeploymentRequest, HostDeploymentState, HostDeployments};
pub use image_scans::{ImageScanOutcome, ImageScans};
pub use source::GitError;
pub use standalone::{EnvValue, StartBuild};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use cutover_clock::SharedClock;
use cutover_pipeline::engine::{Input, PipelineState};
use cutover_spec::stack::ci::RepositorySpec;
use cutover_store::{Store, pipeline_ops};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// Owns the pipeline drivers, the poller, the git mirrors and the builder.
pub struct Pipelines {
    store: Arc<Store>,
    clock: SharedClock,
    deployments: Arc<dyn Deployments>,
    /// The scanning service the image scan gate uses, once the server set
    /// it ([`Pipelines::set_image_scans`]).
    image_scans: tokio::sync::watch::Sender<Option<Arc<dyn ImageScans>>>,
    /// The host deployments the `CodeDeploy` action uses, once the server
    /// set them ([`Pipelines::set_host_deployments`]).
    host_deployments: tokio::sync::watch::Sender<Option<Arc<dyn HostDeployments>>>,
    artifacts: artifacts::ArtifactStore,
    git: source::Git,
    builder: build::Builder,
    /// Held across a whole [`Pipelines::reload`], so that reloads apply
    /// the store's pipeline list in the order they read it.
    drivers: tokio::sync::Mutex<Drivers>,
    running: driver::Running,
    /// Cancel tokens of running standalone builds, by build id.
    builds: driver::Running,
    shutdown: CancellationToken,
    /// Held while a recorded head is compared, its executions started and
    /// the head moved (poller, webhooks), so that one new head starts its
    /// pipelines once.
    heads: tokio::sync::Mutex<()>,
}

/// The drivers by pipeline name: at most one runs per name. A driver
/// told its pipeline was deleted is `ending` until it has stopped its
/// executions; a driver started for the same name meanwhile waits for it.
#[derive(Default)]
struct Drivers {
    live: HashMap<String, driver::Handle>,
    ending: HashMap<String, CancellationToken>,
}

/// What a verified push did.
#[derive(Debug, Default)]
pub struct WebhookOutcome {
    /// The commit the ref points at after the fetch, if it exists.
    pub commit: Option<String>,
    /// `(pipeline, execution id)` of each execution started.
    pub started: Vec<(String, String)>,
    /// Why nothing started, when nothing did.
    pub note: Option<String>,
}

impl Pipelines {
    /// Fails interrupted builds (revoking their credentials), resumes
    /// every pipeline and starts polling. Builds of projects naming an
    /// image run on `engine`; every build gets AWS credentials from
    /// `credentials`.
    pub async fn start(
        store: Arc<Store>,
        clock: SharedClock,
        deployments: Arc<dyn Deployments>,
        credentials: Arc<dyn BuildCredentials>,
        data_dir: &Path,
        engine: Option<Arc<cutover_docker::DockerRuntime>>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Pipelines>, PipelineError> {
        build::fail_interrupted(&store, clock.as_ref(), credentials.as_ref()).await?;
        let artifacts = artifacts::ArtifactStore::new(data_dir);
        let me = Arc::new(Pipelines {
            builder: build::Builder::new(store.clone(), clock.clone(), data_dir, artifacts.clone())
                .with_engine(engine)
                .with_credentials(credentials),
            store,
            clock,
            deployments,
            image_scans: tokio::sync::watch::Sender::new(None),
            host_deployments: tokio::sync::watch::Sender::new(None),
            artifacts,
            git: source::Git::new(data_dir),
            drivers: tokio::sync::Mutex::default(),
            running: Arc::default(),
            builds: Arc::default(),
            shutdown,
            heads: tokio::sync::Mutex::new(()),
        });
        me.reload().await?;
        tokio::spawn(triggers::poll(me.clone()));
        Ok(me)
    }

    /// Gives the image scan gate action its scanning service. Set right
    /// after [`Pipelines::start`]: an action resumed before waits for it.
    pub fn set_image_scans(&self, scans: Arc<dyn ImageScans>) {
        self.image_scans.send_replace(Some(scans));
    }

    /// Gives the `CodeDeploy` action the server's host deployments. Set
    /// right after [`Pipelines::start`]: an action resumed before waits.
    pub fn set_host_deployments(&self, hosts: Arc<dyn HostDeployments>) {
        self.host_deployments.send_replace(Some(hosts));
    }

    /// Brings the drivers in line with the stored pipelines (after an
    /// apply): a new pipeline gets a driver, the others are told their
    /// definition may have changed, and the driver of a deleted pipeline is
    /// told so: it stops its executions and ends. A pipeline deleted and
    /// declared again gets a new driver only once the old one has ended, so
    /// a pipeline never has two.
    pub async fn reload(self: &Arc<Self>) -> Result<(), PipelineError> {
        let mut drivers = self.drivers.lock().await;
        let names: BTreeSet<String> = self
            .store
            .call(pipeline_ops::list_pipelines)
            .await?
            .into_iter()
            .map(|p| p.name)
            .collect();
        let Drivers { live, ending } = &mut *drivers;
        ending.retain(|_, done| !done.is_cancelled());
        let gone: Vec<String> = live
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(d) = live.remove(&name) {
                let _ = d.inbox.send(driver::Msg::Deleted);
                ending.insert(name, d.done);
            }
        }
        for name in names {
            if let Some(d) = live.get(&name)
                && d.inbox.send(driver::Msg::Reload).is_ok()
            {
                continue;
            }
            // A new pipeline, or one whose driver ended (it could not load
            // it): the new driver first waits for any previous one's end.
            let previous = live
                .remove(&name)
                .map(|d| d.done)
                .or_else(|| ending.remove(&name));
            let handle = driver::spawn(self.clone(), name.clone(), previous);
            live.insert(name, handle);
        }
        Ok(())
    }

    /// Feeds `input` to pipeline `name` and waits until the engine accepted
    /// it and the resulting state is saved, with `head` recorded in the same
    /// transaction when given.
    async fn feed(
        &self,
        name: &str,
        input: Input,
        head: Option<driver::Head>,
    ) -> Result<(), PipelineError> {
        let inbox = self
            .drivers
            .lock()
            .await
            .live
            .get(name)
            .map(|d| d.inbox.clone())
            .ok_or_else(|| PipelineError::NotFound(name.to_string()))?;
        let (tx, rx) = oneshot::channel();
        inbox
            .send(driver::Msg::Input {
                input: Box::new(input),
                head,
                reply: Some(tx),
            })
            .map_err(|_| PipelineError::DriverStopped(name.to_string()))?;
        rx.await
            .map_err(|_| PipelineError::DriverStopped(name.to_string()))?
    }

    /// Feeds `input` to pipeline `name` and waits for the engine's answer.
    pub async fn send(&self, name: &str, input: Input) -> Result<(), PipelineError> {
        self.feed(name, input, None).await
    }

    /// Starts an execution; returns its id once its start is saved.
    pub async fn start_execution(
        &self,
        name: &str,
        trigger: String,
        variables: BTreeMap<String, String>,
        source_revisions: BTreeMap<String, String>,
    ) -> Result<String, PipelineError> {
        self.start_recording(name, trigger, variables, source_revisions, None)
            .await
    }

    /// [`Pipelines::start_execution`], recording `head` as acted on in the
    /// transaction that saves the start.
    async fn start_recording(
        &self,
        name: &str,
        trigger: String,
        variables: BTreeMap<String, String>,
        source_revisions: BTreeMap<String, String>,
        head: Option<driver::Head>,
    ) -> Result<String, PipelineError> {
        let id = uuid::Uuid::new_v4().to_string();
        let input = Input::StartExecution {
            id: id.clone(),
            trigger,
            variables,
            source_revisions,
        };
        self.feed(name, input, head).await?;
        Ok(id)
    }

    /// Acts on a verified push: fetches the repository and starts the
    /// pipelines the pushed ref triggers, on the commit the ref points at
    /// *after the fetch* (as CodePipeline builds the branch head at trigger
    /// time). The payload only says "look now": its `after` is not built
    /// when the forge's ref says otherwise, and when the ref is where it
    /// was last recorded (an old or replayed push) nothing starts, so a
    /// payload never moves a head backwards or sideways. The head is
    /// recorded only with an execution start (same transaction), or when
    /// the push starts no pipeline at all.
    pub async fn webhook_push(
        &self,
        repository: &str,
        spec: &RepositorySpec,
        push: webhook::Push,
    ) -> Result<WebhookOutcome, PipelineError> {
        self.git.fetch(repository, &spec.url).await?;
        let (reference, key) = match (&push.branch, &push.tag) {
            (Some(b), _) => (format!("refs/heads/{b}"), b.clone()),
            (None, Some(t)) => (format!("refs/tags/{t}"), format!("tag:{t}")),
            (None, None) => return Ok(WebhookOutcome::default()),
        };
        let Ok(commit) = self.git.resolve(repository, &reference).await else {
            return Ok(WebhookOutcome {
                note: Some(format!("{reference} does not exist in the repository")),
                ..WebhookOutcome::default()
            });
        };
        let _held = self.heads.lock().await;
        let recorded = {
            let (repository, key) = (repository.to_string(), key.clone());
            self.store
                .call(move |c| pipeline_ops::repository_head(c, &repository, &key))
                .await?
        };
        if recorded.as_deref() == Some(commit.as_str()) {
            return Ok(WebhookOutcome {
                note: Some(format!(
                    "{reference} is still at {commit}, which was already acted on"
                )),
                commit: Some(commit),
                ..WebhookOutcome::default()
            });
        }
        let trusted_files = push.after.as_deref() == Some(commit.as_str())
            && !push.changed_files.is_empty()
            && (recorded.is_none() || recorded == push.before);
        let changed = if trusted_files {
            push.changed_files
        } else {
            // What changed since the last head acted on (or since the
            // payload's `before`); every file when neither is known.
            let base = recorded.or(push.before).unwrap_or_default();
            self.git
                .changed_files(repository, &base, &commit)
                .await
                .unwrap_or_default()
        };
        let event = cutover_pipeline::PushEvent {
            branch: push.branch,
            tag: push.tag,
            changed_files: changed,
        };
        let head = driver::Head {
            repository: repository.to_string(),
            key,
            commit: commit.clone(),
        };
        let started = triggers::push(self, &event, &head, "webhook")
            .await
            .map_err(|()| PipelineError::NotStarted {
                reference,
                commit: commit.clone(),
            })?;
        Ok(WebhookOutcome {
            commit: Some(commit),
            started,
            note: None,
        })
    }

    /// The saved state of a pipeline (`None` before its first save).
    pub async fn state(&self, name: &str) -> Result<Option<PipelineState>, PipelineError> {
        let owned = name.to_string();
        let row = self
            .store
            .call(move |c| pipeline_ops::pipeline(c, &owned))
            .await?
            .ok_or_else(|| PipelineError::NotFound(name.to_string()))?;
        row.state
            .map(serde_json::from_value)
            .transpose()
            .map_err(|source| PipelineError::State {
                pipeline: name.to_string(),
                source,
            })
    }

    /// The commit an execution's sources resolved to (the first source).
    async fn source_revision(&self, pipeline: &str, execution: &str) -> Option<String> {
        let state = self.state(pipeline).await.ok()??;
        state
            .executions
            .get(execution)?
            .source_revisions
            .values()
            .next()
            .cloned()
    }

    fn deploy_context(&self) -> deploy::DeployContext {
        deploy::DeployContext {
            deployments: self.deployments.clone(),
            artifacts: self.artifacts.clone(),
        }
    }
}
