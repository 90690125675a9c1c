//! The control plane: state store, reconcile loops and the HTTP API.
//!
//! [`run`] opens the data directory (taking an exclusive lock so two servers
//! never share it), adopts the tasks that kept running while no server was
//! up, starts one reconcile loop per service and serves the API until the
//! shutdown future resolves. Stopping the server never stops the tasks: they
//! belong to their runtime (a shim process per task for the process runtime)
//! and are adopted again at the next start.

mod alarms;
mod api;
mod apply;
/// Checking a stack with no server (`cutover validate`).
pub use apply::validate_offline as validate_stack_offline;
pub use hosts::bundles::pack_dir as pack_revision_dir;
mod aws;
mod console;
mod controller;
mod dataplane;
mod deploy;
mod detach;
mod files;
mod hosts;
mod https;
mod pins;
mod private;
mod registry;
mod taskdef;
#[cfg(test)]
mod testing;

use anyhow::Context;
use cutover_clock as clock;
use cutover_runtime::{ProcessRuntime, Runtime};
use cutover_store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How to run the control plane. (Its `Debug` never shows the token.)
#[derive(Clone)]
pub struct ServerConfig {
    /// Where state, task logs and images live.
    pub data_dir: PathBuf,
    /// API address; loopback by default.
    pub listen: SocketAddr,
    /// API token; required when `listen` is not a loopback address.
    pub token: Option<String>,
    /// The `cutover` binary that runs the data plane and the task shims
    /// (default: `$CUTOVER_BIN`, else this executable).
    pub cutover_bin: Option<PathBuf>,
    /// Container engine address for `runtime: docker` (default:
    /// `DOCKER_HOST`, else the usual Docker and Podman sockets).
    pub docker_host: Option<String>,
    /// Keep setuid and setgid bits of process-runtime images (off: they
    /// are stripped when an image is materialised).
    pub keep_setuid_images: bool,
    /// The AWS region builds and hooks are given (`AWS_REGION`); requests
    /// signed for any region are answered.
    pub aws_region: String,
    /// The runtime of services whose stack names none (default `process`).
    pub default_runtime: Option<String>,
    /// Admin addresses of one `cutover proxy` per cluster node, fed the same
    /// configuration as the local proxy (empty: the local proxy only).
    pub node_proxies: Vec<SocketAddr>,
    /// The admin token of the node proxies.
    pub node_proxy_token: Option<String>,
    /// Registries (`host` or `host:port`) whose tags are resolved over plain
    /// HTTP besides loopback ones (`cutover server --insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// PEM certificate chain and key: the whole listener (API, `/v2/`,
    /// console, AWS endpoint) then speaks HTTPS only.
    pub tls: Option<cutover_proxy::config::TlsConfig>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("cutover_bin", &self.cutover_bin)
            .field("docker_host", &self.docker_host)
            .field("keep_setuid_images", &self.keep_setuid_images)
            .field("aws_region", &self.aws_region)
            .field("default_runtime", &self.default_runtime)
            .field("node_proxies", &self.node_proxies)
            .field(
                "node_proxy_token",
                &self.node_proxy_token.as_ref().map(|_| "<redacted>"),
            )
            .field("insecure_registries", &self.insecure_registries)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Runs the control plane until `shutdown` resolves. `ready` receives the
/// bound API address once the server accepts connections.
pub async fn run(
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    if !cfg.listen.ip().is_loopback() && cfg.token.as_deref().is_none_or(str::is_empty) {
        anyhow::bail!(
            "refusing to listen on {} without an API token: set CUTOVER_TOKEN (or listen on 127.0.0.1)",
            cfg.listen
        );
    }
    // A bad certificate or key stops the start, naming the file.
    let tls = cfg
        .tls
        .as_ref()
        .map(cutover_proxy::tls_acceptor)
        .transpose()
        // The error's text already holds its cause: no chain to print.
        .map_err(|e| anyhow::anyhow!("cannot set up TLS on the listener: {e}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    private::private_dir(&cfg.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            cfg.data_dir.display()
        )
    })?;
    let lock = lock_data_dir(&cfg.data_dir)?;
    let db = cfg.data_dir.join("state.db");
    let store = Arc::new(Store::open(&db).context("cannot open the state store")?);
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        private::private_file(&cfg.data_dir.join(file))
            .with_context(|| format!("cannot make {file} private"))?;
    }
    let bin = match cfg
        .cutover_bin
        .clone()
        .or_else(|| std::env::var_os("CUTOVER_BIN").map(PathBuf::from))
    {
        Some(b) => b,
        None => std::env::current_exe().context("cannot find the cutover executable")?,
    };
    let process: Arc<dyn Runtime> = Arc::new(
        ProcessRuntime::new(cfg.data_dir.clone())
            .with_cutover_bin(bin.clone())
            .with_setuid_images(cfg.keep_setuid_images),
    );
    let mut runtimes = controller::Runtimes::from([(process.name().to_string(), process)]);
    let system_clock: clock::SharedClock = Arc::new(clock::SystemClock);
    // The engine pulls from this server's registry without a login: it is
    // given the listener and the key ring once they exist (below).
    let own_registry = registry::own::OwnRegistry::new(system_clock.clone());
    let engine = connect_docker(&cfg, own_registry.clone()).await;
    if let Some(docker) = &engine {
        // Builds that were running when the server went away are failed by
        // the pipelines; their containers go now.
        if let Err(e) = docker.remove_build_containers().await {
            tracing::warn!(error = %e, "cannot look for left-over build containers");
        }
        let docker: Arc<dyn Runtime> = docker.clone();
        runtimes.insert(docker.name().to_string(), docker);
    }
    if let Some(swarm) = connect_swarm(&cfg, engine.as_deref()).await {
        runtimes.insert(swarm.name().to_string(), swarm);
    }

    let default_runtime = cfg
        .default_runtime
        .clone()
        .unwrap_or_else(|| "process".into());
    if !runtimes.contains_key(&default_runtime) {
        anyhow::bail!(
            "the default runtime {default_runtime:?} is not available on this server (available: {})",
            runtimes.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }

    // Bound before the components start, so builds and hooks can be given
    // the endpoint (`AWS_ENDPOINT_URL`) from the first one on.
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let proxy =
        dataplane::ManagedProxy::start(store.clone(), system_clock.clone(), &cfg.data_dir, bin)
            .await
            .context("cannot start the data plane")?;
    let dataplane: dataplane::SharedDataPlane = if cfg.node_proxies.is_empty() {
        proxy.clone()
    } else {
        tracing::info!(nodes = ?cfg.node_proxies, "data plane: the local proxy and one per node");
        Arc::new(dataplane::FanOut::new(
            proxy.clone(),
            &cfg.node_proxies,
            cfg.node_proxy_token.as_deref().unwrap_or_default(),
        ))
    };
    let resolver = cutover_docker::RegistryResolver::new(cutover_docker::ResolverOptions {
        insecure_registries: cfg.insecure_registries.clone(),
        pull_credentials: Some(own_registry.clone()),
        ..cutover_docker::ResolverOptions::default()
    })
    .context("cannot set up the image resolver")?;
    let resolver = registry::own::OwnRegistryResolver {
        own: own_registry.clone(),
        inner: resolver,
    };
    let state = assemble(Parts {
        store,
        clock: system_clock,
        runtimes,
        dataplane: dataplane.clone(),
        data_dir: cfg.data_dir.clone(),
        engine,
        resolver: Arc::new(resolver),
        cancel: cancel.clone(),
        aws_endpoint: format!("{scheme}://{addr}"),
        aws_region: cfg.aws_region.clone(),
        default_runtime,
    })
    .await?;
    own_registry.attach(state.aws.clone());
    tokio::spawn(proxy.supervise(dataplane, state.controller.changed.clone(), cancel.clone()));
    let app = api::router(state, cfg.token.clone().filter(|t| !t.is_empty()));
    tracing::info!(%addr, %scheme, data_dir = %cfg.data_dir.display(), "cutover server ready");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    let stop = cancel.clone();
    let shutdown = async move {
        shutdown.await;
        stop.cancel();
    };
    match tls {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("API server failed")?,
        Some(acceptor) => axum::serve(
            https::TlsListener::new(listener, acceptor)?,
            https::mark_https(app),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("API server failed")?,
    }
    cancel.cancel();
    drop(lock);
    tracing::info!(
        "cutover server stopped; tasks keep running and will be adopted at the next start"
    );
    Ok(())
}

/// What the control plane is made of: its adapters (store, clock,
/// runtimes, data plane, container engine), chosen by the caller.
pub(crate) struct Parts {
    pub(crate) store: Arc<Store>,
    pub(crate) clock: clock::SharedClock,
    pub(crate) runtimes: controller::Runtimes,
    pub(crate) dataplane: dataplane::SharedDataPlane,
    pub(crate) data_dir: PathBuf,
    pub(crate) engine: Option<Arc<cutover_docker::DockerRuntime>>,
    /// Resolves image tags to digests when deployments start.
    pub(crate) resolver: pins::SharedResolver,
    pub(crate) cancel: CancellationToken,
    /// `AWS_ENDPOINT_URL` for builds and hooks: this server's listener.
    pub(crate) aws_endpoint: String,
    /// `AWS_REGION` for builds and hooks.
    pub(crate) aws_region: String,
    /// The runtime of a service whose stack names none.
    pub(crate) default_runtime: String,
}

/// Wires the control plane's components over `parts`: adoption and the
/// reconcile loops, the deployer (resuming unfinished deployments), the
/// pipelines and the alarm loop. `cutover server` calls it with the real
/// adapters; tests call it with fakes and a paused clock.
pub(crate) async fn assemble(parts: Parts) -> anyhow::Result<api::AppState> {
    let Parts {
        store,
        clock,
        runtimes,
        dataplane,
        data_dir,
        engine,
        resolver,
        cancel,
        aws_endpoint,
        aws_region,
        default_runtime,
    } = parts;
    let keys = aws::keys::KeyRing::load(store.clone())
        .await
        .context("cannot load the AWS access keys")?;
    let now = clock.now_ms();
    if let Err(e) = keys.prune(now).await {
        tracing::warn!(error = %e, "cannot prune expired access keys");
    }
    let aws = Arc::new(aws::Aws {
        keys,
        endpoint: aws_endpoint,
        region: aws_region,
    });
    let controller = controller::Controller::start(
        store.clone(),
        clock.clone(),
        runtimes,
        resolver,
        cancel.clone(),
    )
    .await
    .context("cannot adopt running tasks")?;
    let deployer = deploy::Deployer::start(
        store.clone(),
        controller.clone(),
        dataplane.clone(),
        aws.clone(),
        cancel.clone(),
    )
    .await
    .context("cannot resume deployments")?;
    let deployments = Arc::new(deploy::for_pipelines::PipelineDeployments {
        store: store.clone(),
        deployer: deployer.clone(),
    });
    let credentials = Arc::new(aws::build_credentials::ServerBuildCredentials {
        aws: aws.clone(),
        clock: clock.clone(),
    });
    let pipelines = cutover_ci::Pipelines::start(
        store.clone(),
        clock.clone(),
        deployments,
        credentials,
        &data_dir,
        engine,
        cancel.clone(),
    )
    .await
    .context("cannot resume pipelines")?;
    let registry = Arc::new(
        cutover_registry::Registry::open(&data_dir, store.clone(), clock.clone())
            .context("cannot open the registry's storage")?,
    );
    tokio::spawn(registry::collect_garbage(registry.clone(), cancel.clone()));
    let scanner = registry::scanning::ScanService::start(
        &data_dir,
        registry.clone(),
        clock.clone(),
        cancel.clone(),
    )
    .await
    .context("cannot start the scanning service")?;
    pipelines.set_image_scans(scanner.clone());
    let lifecycle = Arc::new(registry::lifecycle::Lifecycle::default());
    tokio::spawn(registry::lifecycle::schedule(
        store.clone(),
        lifecycle.clone(),
        clock.clone(),
        cancel.clone(),
    ));
    let (alarm_tx, alarm_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(alarms::run(
        store.clone(),
        clock.clone(),
        dataplane.clone(),
        deployer.clone(),
        alarm_rx,
        cancel.clone(),
    ));
    let fleet = Arc::new(hosts::agents::AgentFleet::new(
        store.clone(),
        clock.clone(),
        &aws.region,
        aws.keys.account(),
    ));
    let bundles = Arc::new(hosts::bundles::DirBundles::new(&data_dir));
    let host_deployer = hosts::deployer::HostDeployer::new(
        store.clone(),
        fleet.clone(),
        dataplane.clone(),
        clock.clone(),
        hosts::deployer::HostSettings::from_env(),
        cancel.clone(),
    );
    host_deployer
        .start()
        .await
        .context("cannot resume host deployments")?;
    pipelines.set_host_deployments(Arc::new(hosts::for_pipelines::PipelineHostDeployments {
        store: store.clone(),
        bundles: bundles.clone(),
        deployer: host_deployer.clone(),
    }));
    Ok(api::AppState {
        fleet,
        bundles,
        host_deployer,
        data_dir,
        store,
        started_at: clock.now_ms(),
        clock,
        controller,
        dataplane,
        deployer,
        pipelines,
        alarms: alarm_tx,
        aws,
        registry,
        default_runtime,
        scans: scanner.clone(),
        scanner,
        lifecycle,
    })
}

/// Connects the container runtime if an engine answers. Its containers are
/// labelled with this data directory's instance id (kept in
/// `<data_dir>/instance.id`), so a restarted server adopts exactly its own.
async fn connect_docker(
    cfg: &ServerConfig,
    credentials: Arc<dyn cutover_docker::PullCredentials>,
) -> Option<Arc<cutover_docker::DockerRuntime>> {
    let id_file = cfg.data_dir.join("instance.id");
    let instance = match std::fs::read_to_string(&id_file) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            if let Err(e) = std::fs::write(&id_file, &id) {
                tracing::warn!(error = %e, "cannot persist the instance id; runtime docker disabled");
                return None;
            }
            id
        }
    };
    let options = cutover_docker::DockerOptions {
        host: cfg.docker_host.clone(),
        instance,
        pull_credentials: Some(credentials),
        ..Default::default()
    };
    match cutover_docker::DockerRuntime::connect(options).await {
        Ok(rt) => {
            tracing::info!(engine = %rt.engine_info(), "container engine connected: runtime docker available");
            Some(Arc::new(rt))
        }
        Err(e) => {
            tracing::info!(reason = %e, "no container engine: runtime docker unavailable (services with runtime: docker are refused)");
            None
        }
    }
}

/// The Swarm runtime, when the engine found for `runtime: docker` is a
/// Docker Swarm manager; its services carry the same instance id.
async fn connect_swarm(
    cfg: &ServerConfig,
    engine: Option<&cutover_docker::DockerRuntime>,
) -> Option<Arc<dyn Runtime>> {
    let engine = engine?;
    let options = cutover_docker::DockerOptions {
        host: cfg.docker_host.clone(),
        instance: engine.instance().to_owned(),
        ..Default::default()
    };
    match cutover_docker::SwarmRuntime::connect(options).await {
        Ok(rt) => {
            tracing::info!(manager = %rt.engine_info().socket, "runtime swarm available");
            Some(Arc::new(rt))
        }
        Err(e) => {
            tracing::info!(reason = %e, "runtime swarm unavailable (services with runtime: swarm are refused)");
            None
        }
    }
}

/// Takes an exclusive lock on `<data_dir>/server.lock` for the server's life.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("server.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another cutover server is using the data directory {} (lock {})",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}
