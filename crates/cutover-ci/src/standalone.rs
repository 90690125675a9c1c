//! Builds started on their own (CodeBuild's StartBuild), outside any
//! pipeline: the same [`Builder`](crate::build) and the same `builds` rows
//! as a pipeline's build action (no `action_key`), so `cutover builds ls`
//! and `logs` show them.
//!
//! - The source is the project's `source: {repository: NAME}`: the
//!   repository is fetched and the commit `sourceVersion` names (a branch,
//!   tag or commit; default the repository's `HEAD`) is exported as a
//!   source action exports it. A project without `source` builds an empty
//!   directory (CodeBuild's `NO_SOURCE`) and so needs a buildspec of its
//!   own or an override.
//! - A privileged project (`privilegedMode`: the build gets the server's
//!   container engine, root-equivalent on its host) builds only what its
//!   stack names: a buildspec override, variables or a `sourceVersion` are
//!   refused for it, since any AWS key can start a build (a running build's
//!   own key included) and would otherwise run its own commands with the
//!   engine.
//! - A running build keeps a cancel token (a child of the server's
//!   shutdown) until it ends; [`Pipelines::stop_build`] cancels it, or the
//!   token of the pipeline action a build runs for.

use std::sync::Arc;
use std::time::Duration;

use cutover_build::run::SecretSource;
use cutover_store::{BuildRow, pipeline_ops};

use crate::build::BuildJob;
use crate::{PipelineError, Pipelines};

/// The value of a variable a standalone build is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// The value itself (`PLAINTEXT`).
    Plain(String),
    /// A Parameter Store name or ARN (`PARAMETER_STORE`).
    ParameterStore(String),
    /// A Secrets Manager reference, as in a buildspec's
    /// `env.secrets-manager` (`SECRETS_MANAGER`).
    SecretsManager(String),
}

/// A build to start on its own.
#[derive(Debug, Clone)]
pub struct StartBuild {
    /// The build project.
    pub project: String,
    /// A branch, tag or commit of the project's source repository.
    pub source_version: Option<String>,
    /// Variables applied after the project's own.
    pub env: Vec<(String, EnvValue)>,
    /// A buildspec (YAML text) used instead of the project's.
    pub buildspec_override: Option<String>,
    /// `CODEBUILD_INITIATOR` and the row's initiator.
    pub initiator: String,
}

impl Pipelines {
    /// Starts a build of `req.project`; returns its row once written (the
    /// build then runs on a task of its own).
    pub async fn start_build(self: &Arc<Self>, req: StartBuild) -> Result<BuildRow, PipelineError> {
        let owned = req.project.clone();
        let mut spec = self
            .store
            .call(move |c| pipeline_ops::build_project(c, &owned))
            .await?
            .ok_or_else(|| PipelineError::BuildProjectNotFound(req.project.clone()))?
            .spec;
        let invalid = |m: String| PipelineError::InvalidBuild(m);
        if spec.environment.privileged_mode() {
            let overrides = [
                ("buildspecOverride", req.buildspec_override.is_some()),
                ("environmentVariablesOverride", !req.env.is_empty()),
                ("sourceVersion", req.source_version.is_some()),
            ];
            if let Some((name, _)) = overrides.iter().find(|(_, given)| *given) {
                return Err(invalid(format!(
                    "project {} is privileged (privilegedMode: it gets the server's container engine), so it builds only what its stack names: {name} is refused",
                    req.project
                )));
            }
        }
        if let Some(text) = req.buildspec_override {
            cutover_build::parse_buildspec("buildspecOverride", &text).map_err(|e| {
                invalid(
                    e.diagnostics
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
            spec.buildspec = Some("buildspecOverride".into());
            spec.buildspec_text = Some(text);
        }
        let (staged_source, commit) = match &spec.source {
            Some(source) => {
                let commit = self
                    .checkout(&source.repository, req.source_version.as_deref())
                    .await?;
                (
                    self.export(&source.repository, &commit).await?,
                    Some(commit),
                )
            }
            None => {
                if req.source_version.is_some() {
                    return Err(invalid(format!(
                        "project {} has no source, so a sourceVersion names nothing",
                        req.project
                    )));
                }
                if spec.buildspec_text.is_none() {
                    return Err(invalid(format!(
                        "project {} has no source, so its buildspec must be sent with the stack or given as buildspecOverride",
                        req.project
                    )));
                }
                let staged = self.artifacts.staging().map_err(build_io)?;
                (self.artifacts.commit(&staged).map_err(build_io)?, None)
            }
        };
        let source = self.artifacts.path(&staged_source).map_err(build_io)?;
        let (mut env, mut secret_env) = (Vec::new(), Vec::new());
        for (name, value) in req.env {
            match value {
                EnvValue::Plain(v) => env.push((name, v)),
                EnvValue::ParameterStore(r) => {
                    secret_env.push((SecretSource::ParameterStore, name, r))
                }
                EnvValue::SecretsManager(r) => {
                    secret_env.push((SecretSource::SecretsManager, name, r))
                }
            }
        }
        let timeout = Duration::from_secs(60 * spec.timeout_in_minutes.unwrap_or(60));
        let job = BuildJob {
            project: req.project,
            spec,
            action_key: None,
            initiator: req.initiator,
            source,
            secondary: Vec::new(),
            source_version: commit,
            env,
            secret_env,
            outputs: Vec::new(),
            timeout,
        };
        let row = self
            .builder
            .begin(&job)
            .await
            .map_err(PipelineError::BuildNotStarted)?;
        let cancel = self.shutdown.child_token();
        self.builds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(row.id.clone(), cancel.clone());
        let (me, started) = (self.clone(), row.clone());
        tokio::spawn(async move {
            let id = started.id.clone();
            if let Err(message) = me.builder.execute(job, started, cancel).await {
                tracing::info!(build = %id, message, "standalone build did not succeed");
            }
            me.builds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
        Ok(row)
    }

    /// Stops build `id` if it runs (a build of a pipeline action stops
    /// that action, which fails); returns its row as it is now.
    pub async fn stop_build(&self, id: &str) -> Result<BuildRow, PipelineError> {
        let owned = id.to_string();
        let row = self
            .store
            .call(move |c| pipeline_ops::build(c, &owned))
            .await?
            .ok_or_else(|| PipelineError::BuildNotFound(id.to_string()))?;
        let token = match &row.action_key {
            Some(key) => self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .cloned(),
            None => self
                .builds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
                .cloned(),
        };
        if let Some(token) = token {
            tracing::info!(build = %id, "stopping a build");
            token.cancel();
        }
        Ok(row)
    }

    /// Fetches `repository` and resolves `version` (a branch first, then
    /// any revision; default `HEAD`) to a commit.
    async fn checkout(
        &self,
        repository: &str,
        version: Option<&str>,
    ) -> Result<String, PipelineError> {
        let owned = repository.to_string();
        let spec = self
            .store
            .call(move |c| pipeline_ops::repository(c, &owned))
            .await?
            .ok_or_else(|| {
                PipelineError::InvalidBuild(format!(
                    "the project's source repository {repository:?} is not declared"
                ))
            })?
            .spec;
        self.git.fetch(repository, &spec.url).await?;
        let version = version.unwrap_or("HEAD");
        if version.is_empty() || version.starts_with('-') {
            return Err(PipelineError::InvalidBuild(format!(
                "sourceVersion {version:?} is not a branch, tag or commit"
            )));
        }
        if let Ok(commit) = self
            .git
            .resolve(repository, &format!("refs/heads/{version}"))
            .await
        {
            return Ok(commit);
        }
        self.git.resolve(repository, version).await.map_err(|_| {
            PipelineError::InvalidBuild(format!(
                "sourceVersion {version:?} names no branch, tag or commit of repository {repository:?}"
            ))
        })
    }

    /// Writes the tree of `version` (a branch, then any revision) of the
    /// declared repository `repository` into the empty directory `dest`,
    /// fetching it first; returns the commit. The server's `git:REF` and
    /// CodeDeploy GitHub revisions read their trees here.
    pub async fn export_tree(
        &self,
        repository: &str,
        version: &str,
        dest: &std::path::Path,
    ) -> Result<String, PipelineError> {
        let commit = self.checkout(repository, Some(version)).await?;
        self.git.export(repository, &commit, dest).await?;
        Ok(commit)
    }

    /// The tree of `commit` as a stored artifact (what a source action
    /// outputs).
    pub(crate) async fn export(
        &self,
        repository: &str,
        commit: &str,
    ) -> Result<cutover_pipeline::engine::ArtifactRef, PipelineError> {
        let staged = self.artifacts.staging().map_err(build_io)?;
        if let Err(e) = self.git.export(repository, commit, &staged).await {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(e.into());
        }
        self.artifacts.commit(&staged).map_err(build_io)
    }
}

fn build_io(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::BuildNotStarted(e.to_string())
}

#[cfg(test)]
// Tests write the store inline: nothing else runs on their runtime yet.
#[allow(clippy::disallowed_methods)]
mod tests {
    use cutover_api::builds::BuildStatus;
    use cutover_store::{BuildProjectRow, RepositoryRow, Store};
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::source::tests::repo_with;

    /// Polls the store until build `id` has ended (bounded).
    async fn ended(store: &Arc<Store>, id: &str) -> BuildRow {
        for _ in 0..600 {
            let id = id.to_string();
            let row = store
                .call(move |c| pipeline_ops::build(c, &id))
                .await
                .unwrap()
                .unwrap();
            if row.finished_at.is_some() {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("build {id} never ended");
    }

    fn start(project: &str, source_version: Option<&str>) -> StartBuild {
        StartBuild {
            project: project.into(),
            source_version: source_version.map(str::to_string),
            env: vec![("X".into(), EnvValue::Plain("1".into()))],
            buildspec_override: None,
            initiator: "test".into(),
        }
    }

    #[tokio::test]
    async fn standalone_builds_check_out_their_source_and_can_be_stopped() {
        let data = tempfile::tempdir().unwrap();
        let repo = repo_with(&[
            ("README.md", "hi"),
            (
                "buildspec.yml",
                "version: 0.2\nphases:\n  build:\n    commands: ['test -f README.md', 'test \"$X\" = 1']\n",
            ),
        ]);
        let store = Arc::new(Store::open(&data.path().join("state.db")).unwrap());
        let project = |name: &str, spec: serde_json::Value| BuildProjectRow {
            name: name.into(),
            spec: serde_json::from_value(spec).unwrap(),
            updated_at: 1,
        };
        store
            .with(|c| {
                pipeline_ops::put_repository(
                    c,
                    &RepositoryRow {
                        name: "app".into(),
                        spec: serde_json::from_value(
                            json!({"url": repo.path().to_string_lossy()}),
                        )
                        .unwrap(),
                        updated_at: 1,
                    },
                )?;
                pipeline_ops::put_build_project(
                    c,
                    &project("b", json!({"source": {"repository": "app"}})),
                )?;
                pipeline_ops::put_build_project(c, &project("empty", json!({})))?;
                pipeline_ops::put_build_project(
                    c,
                    &project(
                        "privileged",
                        json!({"environment": {"image": "b:1", "privilegedMode": true},
                               "source": {"repository": "app"}}),
                    ),
                )?;
                pipeline_ops::put_build_project(
                    c,
                    &project(
                        "sleeper",
                        json!({"buildspecText": "version: 0.2\nphases:\n  build:\n    commands: ['sleep 30']\n"}),
                    ),
                )
            })
            .unwrap();
        let pipelines = Pipelines::start(
            store.clone(),
            Arc::new(cutover_clock::SystemClock),
            Arc::new(crate::testing::NoDeployments),
            Arc::new(crate::NoCredentials),
            data.path(),
            None,
            CancellationToken::new(),
        )
        .await
        .unwrap();

        let row = pipelines
            .start_build(start("b", Some("main")))
            .await
            .unwrap();
        assert_eq!(row.action_key, None);
        assert_eq!(row.source.as_deref().map(str::len), Some(40));
        assert_eq!(ended(&store, &row.id).await.status, BuildStatus::Succeeded);

        for (req, refused) in [
            (start("nope", None), "build project \"nope\" not found"),
            (start("empty", None), "project empty has no source"),
            (start("b", Some("nope")), "sourceVersion \"nope\" names no"),
            (
                start("sleeper", Some("main")),
                "has no source, so a sourceVersion",
            ),
        ] {
            let e = pipelines.start_build(req).await.unwrap_err().to_string();
            assert!(e.contains(refused), "{e}");
        }
        // A privileged project builds only what its stack names.
        let mut bare = start("privileged", None);
        bare.env.clear();
        let mut with_buildspec = bare.clone();
        with_buildspec.buildspec_override = Some("version: 0.2\nphases: {}\n".into());
        for (req, refused) in [
            (
                start("privileged", None),
                "environmentVariablesOverride is refused",
            ),
            (with_buildspec, "buildspecOverride is refused"),
            (
                StartBuild {
                    source_version: Some("main".into()),
                    ..bare
                },
                "sourceVersion is refused",
            ),
        ] {
            let e = pipelines.start_build(req).await.unwrap_err();
            assert!(matches!(e, PipelineError::InvalidBuild(_)), "{e}");
            assert!(e.to_string().contains(refused), "{e}");
        }
        // An override gives a project without source a buildspec.
        let mut req = start("empty", None);
        req.buildspec_override =
            Some("version: 0.2\nphases:\n  build:\n    commands: ['test \"$X\" = 1']\n".into());
        let row = pipelines.start_build(req).await.unwrap();
        assert_eq!(ended(&store, &row.id).await.status, BuildStatus::Succeeded);

        let row = pipelines.start_build(start("sleeper", None)).await.unwrap();
        pipelines.stop_build(&row.id).await.unwrap();
        assert_eq!(ended(&store, &row.id).await.status, BuildStatus::Stopped);
        assert!(matches!(
            pipelines.stop_build("p:none").await,
            Err(PipelineError::BuildNotFound(_))
        ));
    }
}
