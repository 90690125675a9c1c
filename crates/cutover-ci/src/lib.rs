//! Pipelines and builds in the control plane: the declared pipelines run for
//! real, from a git commit to a deployed service.
//!
//! - [`config`]: the `repositories:`, `buildProjects:` and `pipelines:`
//!   sections of `stack.yaml`, validated by `apply`.
//! - [`driver`]: one task per pipeline around the pure engine of
//!   `cutover-pipeline`; state saved before effects run; resumed at start.
//! - [`source`]: git mirrors, commit metadata, source artifacts.
//! - [`build`]: builds with `cutover-build`, logs in files, rows in `builds`.
//! - [`artifacts`]: the content-addressed artifact store.
//! - [`deploy`]: `ECS` and `CodeDeployToECS` through the service's deployment.
//! - [`invoke`]: invoke actions (a command or a URL).
//! - [`webhook`]: GitHub, GitLab and Gitea push webhooks.
//! - [`triggers`]: polling and webhook pushes to executions.
//!
//! Crash safety: every pipeline's engine state is in the store and is
//! written before the effects of each step run. At start, builds left
//! running by the previous server are failed and their processes killed
//! ([`build::fail_interrupted`]), then every pipeline's driver resumes (see
//! [`driver`] for what each kind of action does when re-issued).

// TODO(issue 9): converted by the cutover-ci move
#![allow(clippy::disallowed_methods)]

pub(crate) mod artifacts;
pub(crate) mod build;
pub(crate) mod config;
pub(crate) mod deploy;
pub(crate) mod driver;
pub(crate) mod invoke;
pub(crate) mod source;
#[cfg(test)]
mod tests;
pub(crate) mod triggers;
pub(crate) mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use cutover_pipeline::engine::{EngineError, Input, PipelineState};
use cutover_store::{Store, pipeline_ops};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::deploy::Deployer;
use cutover_clock::SharedClock;

/// Owns the pipeline drivers, the poller, the git mirrors and the builder.
pub(crate) struct Pipelines {
    store: Arc<Store>,
    clock: SharedClock,
    deployer: Arc<Deployer>,
    artifacts: artifacts::ArtifactStore,
    git: source::Git,
    builder: build::Builder,
    drivers: Mutex<HashMap<String, driver::Inbox>>,
    running: driver::Running,
    shutdown: CancellationToken,
    /// Held while a recorded head is compared and moved (poller, webhooks),
    /// so that one new head starts its pipelines once.
    heads: tokio::sync::Mutex<()>,
}

/// What a verified push did.
#[derive(Debug, Default)]
pub(crate) struct WebhookOutcome {
    /// The commit the ref points at after the fetch, if it exists.
    pub(crate) commit: Option<String>,
    /// `(pipeline, execution id)` of each execution started.
    pub(crate) started: Vec<(String, String)>,
    /// Why nothing started, when nothing did.
    pub(crate) note: Option<String>,
}

impl Pipelines {
    /// Fails interrupted builds, resumes every pipeline and starts polling.
    pub(crate) fn start(
        store: Arc<Store>,
        deployer: Arc<Deployer>,
        data_dir: &Path,
        engine: Option<Arc<cutover_docker::DockerRuntime>>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Pipelines>> {
        build::fail_interrupted(&store, deployer.clock.as_ref())?;
        let artifacts = artifacts::ArtifactStore::new(data_dir);
        let me = Arc::new(Pipelines {
            builder: build::Builder::new(
                store.clone(),
                deployer.clock.clone(),
                data_dir,
                artifacts.clone(),
            )
            .with_engine(engine),
            store,
            clock: deployer.clock.clone(),
            deployer,
            artifacts,
            git: source::Git::new(data_dir),
            drivers: Mutex::new(HashMap::new()),
            running: Arc::default(),
            shutdown,
            heads: tokio::sync::Mutex::new(()),
        });
        me.reload()?;
        tokio::spawn(triggers::poll(me.clone()));
        Ok(me)
    }

    /// Starts a driver for each new pipeline and tells the others their
    /// definition may have changed (after an apply). The driver of a
    /// deleted pipeline is told too: it stops its executions and ends.
    pub(crate) fn reload(self: &Arc<Self>) -> anyhow::Result<()> {
        let names: Vec<String> = self
            .store
            .with(pipeline_ops::list_pipelines)?
            .into_iter()
            .map(|p| p.name)
            .collect();
        let mut drivers = self.drivers.lock().unwrap_or_else(|p| p.into_inner());
        drivers.retain(|name, inbox| {
            names.contains(name) || {
                let _ = inbox.send(driver::Msg::Reload);
                false
            }
        });
        for name in names {
            match drivers.get(&name) {
                Some(inbox) if inbox.send(driver::Msg::Reload).is_ok() => {}
                _ => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(driver::drive(self.clone(), name.clone(), tx.clone(), rx));
                    drivers.insert(name, tx);
                }
            }
        }
        Ok(())
    }

    /// Feeds `input` to pipeline `name` and waits for the engine's answer.
    pub(crate) async fn send(&self, name: &str, input: Input) -> Result<(), ApiError> {
        let inbox = self
            .drivers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("pipeline {name:?}")))?;
        let (tx, rx) = oneshot::channel();
        inbox
            .send(driver::Msg::Input(input, Some(tx)))
            .map_err(|_| {
                ApiError::from(anyhow::anyhow!("the driver of pipeline {name:?} stopped"))
            })?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(engine_error(e)),
            Err(_) => Err(ApiError::from(anyhow::anyhow!(
                "the driver of pipeline {name:?} stopped"
            ))),
        }
    }

    /// Starts an execution; returns its id.
    pub(crate) async fn start_execution(
        &self,
        name: &str,
        trigger: String,
        variables: BTreeMap<String, String>,
        source_revisions: BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.send(
            name,
            Input::StartExecution {
                id: id.clone(),
                trigger,
                variables,
                source_revisions,
            },
        )
        .await?;
        Ok(id)
    }

    /// Acts on a verified push: fetches the repository and starts the
    /// pipelines the pushed ref triggers, on the commit the ref points at
    /// *after the fetch* (as CodePipeline builds the branch head at trigger
    /// time). The payload only says "look now": its `after` is not built
    /// when the forge's ref says otherwise, and when the ref is where it
    /// was last recorded (an old or replayed push) nothing starts, so a
    /// payload never moves a head backwards or sideways.
    pub(crate) async fn webhook_push(
        &self,
        repository: &str,
        spec: &config::RepositorySpec,
        push: webhook::Push,
    ) -> Result<WebhookOutcome, ApiError> {
        self.git
            .fetch(repository, &spec.url)
            .await
            .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
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
        let recorded = {
            let _held = self.heads.lock().await;
            let recorded = self
                .store
                .with(|c| pipeline_ops::repository_head(c, repository, &key))?;
            if recorded.as_deref() == Some(commit.as_str()) {
                return Ok(WebhookOutcome {
                    note: Some(format!(
                        "{reference} is still at {commit}, which was already acted on"
                    )),
                    commit: Some(commit),
                    ..WebhookOutcome::default()
                });
            }
            // The poller must not start the same commit again.
            self.store.with(|c| {
                pipeline_ops::set_repository_head(c, repository, &key, &commit, self.clock.now_ms())
            })?;
            recorded
        };
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
        let started = triggers::push(self, repository, &event, &commit, "webhook").await;
        Ok(WebhookOutcome {
            commit: Some(commit),
            started,
            note: None,
        })
    }

    /// The saved state of a pipeline (`None` before its first save).
    pub(crate) fn state(&self, name: &str) -> Result<Option<PipelineState>, ApiError> {
        let row = self
            .store
            .with(|c| pipeline_ops::pipeline(c, name))?
            .ok_or_else(|| ApiError::not_found(format!("pipeline {name:?}")))?;
        row.state
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ApiError::from(anyhow::Error::from(e)))
    }

    /// The commit an execution's sources resolved to (the first source).
    fn source_revision(&self, pipeline: &str, execution: &str) -> Option<String> {
        let state = self.state(pipeline).ok()??;
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
            store: self.store.clone(),
            deployer: self.deployer.clone(),
            artifacts: self.artifacts.clone(),
        }
    }
}

/// An engine refusal as an API error.
fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::UnknownExecution(_)
        | EngineError::UnknownStage(_)
        | EngineError::NoPendingApproval { .. } => {
            ApiError::new(axum::http::StatusCode::NOT_FOUND, e.to_string())
        }
        EngineError::DuplicateExecution(_)
        | EngineError::Finished { .. }
        | EngineError::NotRetryable { .. } => {
            ApiError::new(axum::http::StatusCode::CONFLICT, e.to_string())
        }
        EngineError::UnknownVariable(_) => ApiError::bad_request(e.to_string()),
    }
}
