//! The pipelines service in-process for tests: the real store (SQLite in a
//! temporary directory), the real drivers, poller, git mirrors and builder
//! (builds on the host), a clock that follows tokio's paused time, and
//! deployments that refuse every request (the scenarios here deploy
//! nothing; deploy actions are covered end to end by `cutover`'s tests).
//!
//! [`Harness::apply`] does what the server's apply does for the pipeline
//! sections ([`config::check`], [`config::store`] and the stack record in
//! one transaction, then [`Pipelines::reload`]). [`Harness::crash`] drops
//! the whole service without a graceful stop and starts a new one over the
//! same store and data directory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cutover_api::apply::PlanItem;
use cutover_clock::{Clock, TokioClock};
use cutover_pipeline::engine::PipelineState;
use cutover_spec::diag::SourceMap;
use cutover_spec::doc::Path;
use cutover_store::{Store, ops, pipeline_ops};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::{self, StackInput};
use crate::{DeploymentRequest, DeploymentState, Deployments, DeploymentsError, Pipelines};

/// 2026-01-01T00:00:00Z: the harness's clock starts here.
pub(crate) const EPOCH_MS: u64 = 1_767_225_600_000;

/// Deployments of a control plane without services.
pub(crate) struct NoDeployments;

#[async_trait]
impl Deployments for NoDeployments {
    async fn current_task_definition(
        &self,
        service: &str,
    ) -> Result<(String, Value), DeploymentsError> {
        Err(DeploymentsError::ServiceNotFound(service.to_string()))
    }

    async fn started_by(
        &self,
        _service: &str,
        _started_by: &str,
    ) -> Result<Option<String>, DeploymentsError> {
        Ok(None)
    }

    async fn create(
        &self,
        request: DeploymentRequest,
    ) -> Result<(String, String), DeploymentsError> {
        Err(DeploymentsError::ServiceNotFound(request.service))
    }

    async fn state(&self, id: &str) -> Result<DeploymentState, DeploymentsError> {
        Err(DeploymentsError::DeploymentNotFound(id.to_string()))
    }
}

/// One pipelines service under test.
pub(crate) struct Harness {
    pub(crate) pipelines: Arc<Pipelines>,
    pub(crate) store: Arc<Store>,
    clock: Arc<TokioClock>,
    cancel: CancellationToken,
    dir: Arc<tempfile::TempDir>,
}

impl Harness {
    /// A fresh service. Call from a test on a paused runtime
    /// (`#[tokio::test(start_paused = true)]`).
    pub(crate) async fn start() -> Harness {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let clock = Arc::new(TokioClock::new(EPOCH_MS));
        Harness::assemble(dir, clock).await
    }

    async fn assemble(dir: Arc<tempfile::TempDir>, clock: Arc<TokioClock>) -> Harness {
        let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        let cancel = CancellationToken::new();
        let pipelines = Pipelines::start(
            store.clone(),
            clock.clone(),
            Arc::new(NoDeployments),
            Arc::new(crate::NoCredentials),
            dir.path(),
            None,
            cancel.clone(),
        )
        .await
        .unwrap();
        Harness {
            pipelines,
            store,
            clock,
            cancel,
            dir,
        }
    }

    /// Kills the service at this instant (no graceful stop: its tasks are
    /// cancelled wherever they are) and starts a new one on the same store.
    pub(crate) async fn crash(self) -> Harness {
        self.cancel.cancel();
        let (clock, dir) = (self.clock.clone(), self.dir.clone());
        let old_store = self.store.clone();
        drop(self);
        // Let the cancelled tasks observe the cancellation, and the store
        // calls already on the blocking pool land (a process that dies
        // never writes after its successor started): wait until only this
        // function holds the old store. Bounded, in case some task keeps it.
        for _ in 0..100_000 {
            tokio::task::yield_now().await;
            if Arc::strong_count(&old_store) <= 1 {
                break;
            }
        }
        drop(old_store);
        Harness::assemble(dir, clock).await
    }

    /// Stops the service's tasks (drivers, poller) as a shutdown does,
    /// keeping the service itself: an input to a pipeline then fails.
    pub(crate) async fn stop_tasks(&self) {
        self.cancel.cancel();
        self.advance(Duration::from_millis(10)).await;
    }

    /// Applies the pipeline sections of `stack`, named `file` by the
    /// client (no identity sent), with the files it references; panics
    /// unless valid. Returns the plan.
    pub(crate) async fn apply(
        &self,
        file: &str,
        stack: &str,
        files: &[(&str, &str)],
    ) -> Vec<PlanItem> {
        self.apply_as(file, None, stack, files).await
    }

    /// [`Harness::apply`] with the stack's identity the client sent.
    pub(crate) async fn apply_as(
        &self,
        file: &str,
        identity: Option<&str>,
        stack: &str,
        files: &[(&str, &str)],
    ) -> Vec<PlanItem> {
        let map = SourceMap::new(file, stack);
        let value = map.document().unwrap().to_json(&Path::root()).unwrap();
        let files: BTreeMap<String, String> = files
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let key = config::stack_key(file, identity);
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let declared = config::check(
            &StackInput {
                file,
                stack: &key,
                map: &map,
                repositories: value.get("repositories"),
                build_projects: value.get("buildProjects"),
                pipelines: value.get("pipelines"),
                files: &files,
                services: &BTreeSet::new(),
                applications: &BTreeMap::new(),
            },
            &mut errors,
            &mut warnings,
        );
        assert!(errors.is_empty(), "apply refused: {errors:?}");
        let now = self.clock.now_ms();
        let plan = self
            .store
            .transact(move |c| {
                let plan = config::store(c, &declared, now, false)?;
                ops::record_stack(c, now, &declared.stack, &value)?;
                Ok(plan)
            })
            .await
            .unwrap();
        self.pipelines.reload().await.unwrap();
        plan
    }

    /// The saved engine state of pipeline `name`, read at once.
    // A test reading the store; the service under test is not blocked by
    // it for longer than one read.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn state(&self, name: &str) -> Option<PipelineState> {
        let row = self
            .store
            .with(|c| pipeline_ops::pipeline(c, name))
            .unwrap()?;
        row.state.map(|s| serde_json::from_value(s).unwrap())
    }

    /// The commit recorded as acted on for `key` (a branch) of
    /// `repository`, read at once.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn head(&self, repository: &str, key: &str) -> Option<String> {
        self.store
            .with(|c| pipeline_ops::repository_head(c, repository, key))
            .unwrap()
    }

    /// The names of the stored pipelines, read at once.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn pipeline_names(&self) -> Vec<String> {
        self.store
            .with(pipeline_ops::list_pipelines)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect()
    }

    /// Milliseconds of the service's time since the harness started.
    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.clock.now_ms() - EPOCH_MS
    }

    /// Lets the service run for `d` of its (paused) time.
    pub(crate) async fn advance(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Advances in steps of `step` until `done` holds or `limit` of
    /// service time has passed; returns whether it held.
    pub(crate) async fn run_until(
        &self,
        limit: Duration,
        step: Duration,
        mut done: impl FnMut(&Harness) -> bool,
    ) -> bool {
        let until = self.elapsed_ms() + limit.as_millis() as u64;
        while self.elapsed_ms() <= until {
            if done(self) {
                return true;
            }
            self.advance(step).await;
        }
        done(self)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The local container engine with the test image, or `None` after saying
/// why it is skipped (a panic when `CUTOVER_CONTAINER_TESTS=1` requires it).
pub(crate) async fn container_engine(instance: &str) -> Option<Arc<cutover_docker::DockerRuntime>> {
    let required = std::env::var("CUTOVER_CONTAINER_TESTS").is_ok_and(|v| v == "1");
    let options = cutover_docker::DockerOptions::new(format!("{instance}-{}", std::process::id()));
    let engine = match cutover_docker::DockerRuntime::connect(options).await {
        Ok(engine) => Arc::new(engine),
        Err(e) if required => panic!("CUTOVER_CONTAINER_TESTS=1 but no container engine: {e}"),
        Err(e) => {
            eprintln!("skipping: no container engine ({e})");
            return None;
        }
    };
    if !engine.image_exists("cutover-sample:test").await.unwrap() {
        assert!(
            !required,
            "CUTOVER_CONTAINER_TESTS=1 but no cutover-sample:test image"
        );
        eprintln!("skipping: no cutover-sample:test image");
        return None;
    }
    Some(engine)
}
