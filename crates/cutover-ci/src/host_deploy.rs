//! The CodeDeploy deploy action for hosts (`CodeDeploy`, the Server
//! platform), and its seam to the control plane: [`HostDeployments`] is
//! what the action needs of the server's host deployments (deploy a
//! directory to a deployment group, find the deployment an attempt
//! started, read its state, stop it). The server implements it and sets it
//! with [`crate::Pipelines::set_host_deployments`]; this crate never
//! depends on the server. Without one the action fails and says why.
//!
//! The one input artifact is the revision, `appspec.yml` at its root. The
//! action waits for the deployment: Succeeded succeeds the action,
//! anything else fails it with the deployment's reason. A deployment is
//! tagged `started_by = pipeline/<action key>`; when the engine re-issues
//! the same attempt after a restart, the action waits for that deployment
//! instead of starting another (as the ECS deploy actions do). Abandoning
//! the action (a stop with abandon, a deleted pipeline) stops the
//! deployment; a server shutting down does not.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cutover_pipeline::engine::ActionRequest;
use tokio_util::sync::CancellationToken;

use crate::artifacts::ArtifactStore;

/// How often the action looks at its deployment.
const POLL: Duration = Duration::from_millis(100);

/// A host deployment to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDeploymentRequest {
    /// `ApplicationName`.
    pub application: String,
    /// `DeploymentGroupName`.
    pub group: String,
    /// The revision: a directory with `appspec.yml` at its root.
    pub dir: PathBuf,
    /// Where the revision came from, for people.
    pub source: String,
    /// `pipeline/<action key>`.
    pub started_by: String,
}

/// Where a host deployment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostDeploymentState {
    /// Not ended.
    InProgress,
    /// Ended well.
    Succeeded,
    /// Ended badly, and why.
    Failed(String),
    /// Stopped, and why.
    Stopped(String),
}

/// The control plane's host deployments, as the action uses them.
#[async_trait]
pub trait HostDeployments: Send + Sync {
    /// The deployment of `application`/`group` tagged `started_by`, if any.
    async fn started_by(
        &self,
        application: &str,
        group: &str,
        started_by: &str,
    ) -> Result<Option<String>, String>;
    /// Checks the revision and creates the deployment; returns its id.
    async fn create(&self, request: HostDeploymentRequest) -> Result<String, String>;
    /// Where deployment `id` is.
    async fn state(&self, id: &str) -> Result<HostDeploymentState, String>;
    /// Stops deployment `id` (it ends Stopped).
    async fn stop(&self, id: &str) -> Result<(), String>;
}

/// Runs a `CodeDeploy` action with the key `key`: the summary when its
/// deployment succeeds, why when it does not. `cancel` ends the wait; the
/// deployment is stopped too unless `shutdown` is cancelled (the server
/// stops; the re-issued attempt waits for the same deployment).
pub(crate) async fn action(
    hosts: Option<Arc<dyn HostDeployments>>,
    artifacts: &ArtifactStore,
    key: &str,
    req: &ActionRequest,
    cancel: CancellationToken,
    shutdown: &CancellationToken,
) -> Result<String, String> {
    let hosts = hosts.ok_or("host deployments are not available in this process")?;
    let conf = |k: &str| {
        req.configuration
            .get(k)
            .cloned()
            .ok_or_else(|| format!("configuration.{k} is missing"))
    };
    let (application, group) = (conf("ApplicationName")?, conf("DeploymentGroupName")?);
    let started_by = format!("pipeline/{key}");
    let id = match hosts.started_by(&application, &group, &started_by).await? {
        Some(id) => id,
        None => {
            let (artifact, r) = req
                .input_artifacts
                .first()
                .ok_or("the action has no input artifact")?;
            let dir = artifacts.path(r).map_err(|e| e.to_string())?;
            let id = hosts
                .create(HostDeploymentRequest {
                    application: application.clone(),
                    group: group.clone(),
                    dir,
                    source: format!("artifact {artifact} of {started_by}"),
                    started_by,
                })
                .await
                .map_err(|e| {
                    format!("cannot deploy artifact {artifact} to {application}/{group}: {e}")
                })?;
            tracing::info!(deployment = %id, application, group, "pipeline host deployment started");
            id
        }
    };
    loop {
        match hosts.state(&id).await? {
            HostDeploymentState::Succeeded => {
                return Ok(format!("host deployment {id} succeeded"));
            }
            HostDeploymentState::Failed(why) => {
                return Err(format!("host deployment {id} failed: {why}"));
            }
            HostDeploymentState::Stopped(why) => {
                return Err(format!("host deployment {id} stopped: {why}"));
            }
            HostDeploymentState::InProgress => {}
        }
        tokio::select! {
            () = cancel.cancelled() => {
                if shutdown.is_cancelled() {
                    return Err(format!("the server is stopping; host deployment {id} goes on"));
                }
                hosts.stop(&id).await?;
                return Err(format!("stopped; host deployment {id} was stopped"));
            }
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Host deployments in memory: each ends as `outcome` says.
    struct Fake {
        outcome: HostDeploymentState,
        /// `(id, request)` of each deployment, oldest first.
        created: Mutex<Vec<(String, HostDeploymentRequest)>>,
        stopped: Mutex<Vec<String>>,
    }

    impl Fake {
        fn new(outcome: HostDeploymentState) -> Arc<Fake> {
            Arc::new(Fake {
                outcome,
                created: Mutex::default(),
                stopped: Mutex::default(),
            })
        }
    }

    #[async_trait]
    impl HostDeployments for Fake {
        async fn started_by(
            &self,
            application: &str,
            group: &str,
            started_by: &str,
        ) -> Result<Option<String>, String> {
            Ok(self.created.lock().unwrap().iter().find_map(|(id, r)| {
                (r.application == application && r.group == group && r.started_by == started_by)
                    .then(|| id.clone())
            }))
        }
        async fn create(&self, request: HostDeploymentRequest) -> Result<String, String> {
            if !request.dir.join("appspec.yml").is_file() {
                return Err("the revision has no appspec.yml at its root".into());
            }
            let mut created = self.created.lock().unwrap();
            let id = format!("d-{}", created.len() + 1);
            created.push((id.clone(), request));
            Ok(id)
        }
        async fn state(&self, _id: &str) -> Result<HostDeploymentState, String> {
            Ok(self.outcome.clone())
        }
        async fn stop(&self, id: &str) -> Result<(), String> {
            self.stopped.lock().unwrap().push(id.to_string());
            Ok(())
        }
    }

    struct Setup {
        _data: tempfile::TempDir,
        artifacts: ArtifactStore,
        req: ActionRequest,
    }

    fn setup() -> Setup {
        let data = tempfile::tempdir().unwrap();
        let artifacts = ArtifactStore::new(data.path());
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        let stored = artifacts.put_copy(src.path()).unwrap();
        let req = ActionRequest {
            execution: "e1".into(),
            stage: "Deploy".into(),
            action: "Hosts".into(),
            attempt: 1,
            category: "Deploy".into(),
            provider: "CodeDeploy".into(),
            configuration: BTreeMap::from([
                ("ApplicationName".into(), "shop".into()),
                ("DeploymentGroupName".into(), "prod".into()),
            ]),
            input_artifacts: vec![("Src".into(), stored)],
            output_artifact_names: Vec::new(),
            namespace: None,
            source_revision: None,
            deadline: None,
        };
        Setup {
            _data: data,
            artifacts,
            req,
        }
    }

    const KEY: &str = "app/e1/Deploy/Hosts/1";

    async fn run(
        s: &Setup,
        hosts: &Arc<Fake>,
        cancel: CancellationToken,
    ) -> Result<String, String> {
        let dyn_hosts: Arc<dyn HostDeployments> = hosts.clone();
        action(
            Some(dyn_hosts),
            &s.artifacts,
            KEY,
            &s.req,
            cancel,
            &CancellationToken::new(),
        )
        .await
    }

    #[tokio::test]
    async fn the_artifact_is_deployed_and_success_succeeds_the_action() {
        let s = setup();
        let hosts = Fake::new(HostDeploymentState::Succeeded);
        let out = run(&s, &hosts, CancellationToken::new()).await;
        assert_eq!(out, Ok("host deployment d-1 succeeded".to_string()));
        let created = hosts.created.lock().unwrap();
        let (_, r) = &created[0];
        assert_eq!((r.application.as_str(), r.group.as_str()), ("shop", "prod"));
        assert_eq!(r.started_by, format!("pipeline/{KEY}"));
        assert_eq!(
            r.dir,
            s.artifacts.path(&s.req.input_artifacts[0].1).unwrap()
        );
        assert_eq!(r.source, format!("artifact Src of pipeline/{KEY}"));
    }

    #[tokio::test]
    async fn a_failed_or_stopped_deployment_fails_the_action_with_its_reason() {
        let s = setup();
        let hosts = Fake::new(HostDeploymentState::Failed(
            "TooFewSucceeded; host a: AfterInstall failed".into(),
        ));
        assert_eq!(
            run(&s, &hosts, CancellationToken::new()).await,
            Err("host deployment d-1 failed: TooFewSucceeded; host a: AfterInstall failed".into())
        );
        let hosts = Fake::new(HostDeploymentState::Stopped("StopRequested".into()));
        assert_eq!(
            run(&s, &hosts, CancellationToken::new()).await,
            Err("host deployment d-1 stopped: StopRequested".into())
        );
        assert_eq!(
            action(
                None,
                &s.artifacts,
                KEY,
                &s.req,
                CancellationToken::new(),
                &CancellationToken::new()
            )
            .await,
            Err("host deployments are not available in this process".into())
        );
    }

    #[tokio::test]
    async fn a_reissued_attempt_waits_for_the_deployment_it_started() {
        let s = setup();
        let hosts = Fake::new(HostDeploymentState::Succeeded);
        run(&s, &hosts, CancellationToken::new()).await.unwrap();
        // The server restarted: the engine re-issues the same attempt.
        let out = run(&s, &hosts, CancellationToken::new()).await;
        assert_eq!(out, Ok("host deployment d-1 succeeded".to_string()));
        assert_eq!(hosts.created.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn stopping_the_execution_stops_the_deployment_and_a_shutdown_does_not() {
        let s = setup();
        let hosts = Fake::new(HostDeploymentState::InProgress);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let out = run(&s, &hosts, cancel).await;
        assert_eq!(out, Err("stopped; host deployment d-1 was stopped".into()));
        assert_eq!(*hosts.stopped.lock().unwrap(), ["d-1"]);

        let hosts = Fake::new(HostDeploymentState::InProgress);
        let shutdown = CancellationToken::new();
        let cancel = shutdown.child_token();
        shutdown.cancel();
        let dyn_hosts: Arc<dyn HostDeployments> = hosts.clone();
        let out = action(
            Some(dyn_hosts),
            &s.artifacts,
            KEY,
            &s.req,
            cancel,
            &shutdown,
        )
        .await;
        assert!(out.is_err());
        assert!(hosts.stopped.lock().unwrap().is_empty());
    }
}
