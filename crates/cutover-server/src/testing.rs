//! An in-process control plane for tests: the real store (SQLite in a
//! temporary directory), the real controller, deployer, pipelines and alarm
//! loop, over a recording fake runtime, a fake data plane and a clock that
//! follows tokio's paused time.
//!
//! Requests go through the real router (`tower::ServiceExt::oneshot`), so a
//! test drives the control plane exactly as the CLI does, minus the socket.
//! [`Harness::crash`] drops the whole control plane without a graceful stop
//! and assembles a new one over the same store, runtime and data plane (the
//! tasks and the proxy outlive a server crash in production too).

use crate::api::{self, AppState};
use crate::dataplane::fake::FakeDataPlane;
use crate::{Parts, assemble, controller};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use cutover_clock::{Clock, SharedClock, TokioClock};
use cutover_runtime::Runtime;
use cutover_runtime::fake::FakeRuntime;
use cutover_store::{DeploymentRow, Store, ops};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// A task definition `web` whose one container serves port 8080 with
/// `APP_VERSION=v1`; the fake runtime never runs its command.
pub(crate) const WEB_TASKDEF: &str = r#"{
  "family": "web",
  "containerDefinitions": [{
    "name": "web", "essential": true, "image": "local/web",
    "command": ["sleep", "3600"],
    "portMappings": [{"containerPort": 8080}],
    "environment": [{"name": "APP_VERSION", "value": "v1"}]
  }]
}"#;

/// A registry's tags for the image resolver: `image` (as written) to its
/// digest; an image with no entry fails to resolve ("manifest unknown").
/// Short names and paths are not registry references, as in production.
#[derive(Default)]
pub(crate) struct FakeResolver {
    tags: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// How many registry lookups were made.
    pub(crate) lookups: std::sync::atomic::AtomicUsize,
}

impl FakeResolver {
    /// Points `image` (`host/repo:tag`) at `digest`, as a push or re-tag does.
    pub(crate) fn tag(&self, image: &str, digest: &str) {
        self.tags
            .lock()
            .unwrap()
            .insert(image.to_string(), digest.to_string());
    }
}

#[async_trait::async_trait]
impl cutover_docker::ImageResolver for FakeResolver {
    async fn resolve(
        &self,
        image: &str,
    ) -> Result<Option<cutover_docker::PinnedImage>, cutover_docker::ResolveError> {
        let Some(r) = cutover_docker::ImageReference::parse(image) else {
            return Ok(None);
        };
        if let Some(digest) = r.digest {
            return Ok(Some(cutover_docker::PinnedImage {
                reference: image.to_string(),
                digest,
            }));
        }
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let digest = self.tags.lock().unwrap().get(image).cloned();
        match digest {
            Some(digest) => Ok(Some(cutover_docker::PinnedImage {
                reference: r.pinned(&digest),
                digest,
            })),
            None => Err(cutover_docker::ResolveError {
                image: image.to_string(),
                reason: "manifest unknown".into(),
            }),
        }
    }
}

/// 2026-01-01T00:00:00Z: the harness's clock starts here.
pub(crate) const EPOCH_MS: u64 = 1_767_225_600_000;

/// One control plane under test.
pub(crate) struct Harness {
    pub(crate) state: AppState,
    pub(crate) runtime: FakeRuntime,
    /// The registry's tags, as the image resolver sees them.
    pub(crate) resolver: Arc<FakeResolver>,
    pub(crate) dataplane: Arc<FakeDataPlane>,
    pub(crate) clock: Arc<TokioClock>,
    cancel: CancellationToken,
    dir: Arc<tempfile::TempDir>,
}

impl Harness {
    /// A fresh control plane. Call from a test on a paused runtime
    /// (`#[tokio::test(start_paused = true)]`).
    pub(crate) async fn start() -> Harness {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        let clock = Arc::new(TokioClock::new(EPOCH_MS));
        let now_clock = clock.clone();
        let runtime = FakeRuntime::new("process", Arc::new(move || now_clock.now_ms()));
        let dataplane = FakeDataPlane::new(store.clone(), clock.clone());
        let resolver = Arc::new(FakeResolver::default());
        Harness::assemble(dir, store, clock, runtime, dataplane, resolver).await
    }

    /// A fresh control plane whose runtime pins image tags, as a container
    /// runtime does (see [`crate::pins`]).
    pub(crate) async fn start_pinning() -> Harness {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        let clock = Arc::new(TokioClock::new(EPOCH_MS));
        let now_clock = clock.clone();
        let runtime =
            FakeRuntime::new("process", Arc::new(move || now_clock.now_ms())).pinning_image_tags();
        let dataplane = FakeDataPlane::new(store.clone(), clock.clone());
        let resolver = Arc::new(FakeResolver::default());
        Harness::assemble(dir, store, clock, runtime, dataplane, resolver).await
    }

    async fn assemble(
        dir: Arc<tempfile::TempDir>,
        store: Arc<Store>,
        clock: Arc<TokioClock>,
        runtime: FakeRuntime,
        dataplane: Arc<FakeDataPlane>,
        resolver: Arc<FakeResolver>,
    ) -> Harness {
        let cancel = CancellationToken::new();
        let rt: Arc<dyn Runtime> = Arc::new(runtime.clone());
        let shared: SharedClock = clock.clone();
        let state = assemble(Parts {
            store,
            clock: shared,
            runtimes: controller::Runtimes::from([("process".to_string(), rt)]),
            dataplane: dataplane.clone(),
            data_dir: dir.path().to_path_buf(),
            engine: None,
            resolver: resolver.clone(),
            cancel: cancel.clone(),
            aws_endpoint: "http://127.0.0.1:7070".into(),
            aws_region: "us-east-1".into(),
            default_runtime: "process".into(),
        })
        .await
        .unwrap();
        Harness {
            state,
            runtime,
            resolver,
            dataplane,
            clock,
            cancel,
            dir,
        }
    }

    /// Kills the control plane at this instant (no graceful stop: its tasks
    /// are cancelled wherever they are) and starts a new one on the same
    /// store, with the same runtime and data plane.
    pub(crate) async fn crash(self) -> Harness {
        self.cancel.cancel();
        let (runtime, dataplane, clock, dir) = (
            self.runtime.clone(),
            self.dataplane.clone(),
            self.clock.clone(),
            self.dir.clone(),
        );
        let resolver = self.resolver.clone();
        let old_store = self.state.store.clone();
        drop(self);
        // Let the cancelled tasks observe the cancellation, and the store
        // calls already on the blocking pool land (a process that dies
        // never writes after its successor started): wait until nothing
        // but the data plane (which outlives the crash) and this function
        // holds the old store handle. Bounded, in case some task keeps it.
        for _ in 0..100_000 {
            tokio::task::yield_now().await;
            if Arc::strong_count(&old_store) <= 2 {
                break;
            }
        }
        drop(old_store);
        let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        Harness::assemble(dir, store, clock, runtime, dataplane, resolver).await
    }

    /// Milliseconds of the control plane's time since the harness started.
    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.clock.now_ms() - EPOCH_MS
    }

    /// The control plane's current Unix second.
    pub(crate) fn clock_sec(&self) -> u64 {
        self.clock.now_ms() / 1000
    }

    /// One API call through the real router.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let router = api::router(self.state.clone(), None);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:7070");
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = router.oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// `POST /v1/apply` of a stack with its files; panics unless accepted.
    pub(crate) async fn apply(&self, stack: &str, files: &[(&str, &str)]) -> Value {
        let files: serde_json::Map<String, Value> = files
            .iter()
            .map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string())))
            .collect();
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/apply",
                Some(json!({"file": "stack.yaml", "content": stack, "files": files})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "apply refused: {body:#}");
        body
    }

    /// The stored deployment `id`.
    // A test reading the store; the control plane under test is not blocked
    // by it for longer than one read.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn deployment(&self, id: &str) -> DeploymentRow {
        self.state
            .store
            .with(|c| ops::deployment(c, id))
            .unwrap()
            .unwrap_or_else(|| panic!("no deployment {id}"))
    }

    /// The newest deployment of `service`.
    // A test reading the store; the control plane under test is not blocked
    // by it for longer than one read.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn latest_deployment(&self, service: &str) -> Option<DeploymentRow> {
        self.state
            .store
            .with(|c| ops::list_deployments(c, Some(service), 1))
            .unwrap()
            .into_iter()
            .next()
    }

    /// Lets the control plane run for `d` of its (paused) time.
    pub(crate) async fn advance(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Advances in steps of `step` until `done` holds or `limit` of
    /// control-plane time has passed; returns whether it held.
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

    /// Where the store lives.
    #[allow(dead_code)]
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
