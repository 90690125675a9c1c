//! The data plane as seen from the control plane: one `cutover proxy`
//! process per data directory, started detached so it outlives the server,
//! adopted when the server comes back, restarted if it dies, and fed the
//! configuration derived from the store.
//!
//! The proxy persists every configuration it acknowledges in its state
//! directory, so a restarted proxy serves the last one it had even before
//! the control plane is back.
//!
//! The rest of the control plane sees the data plane only through the
//! [`DataPlane`] trait, so the deployment driver and the alarm loop can be
//! tested in-process against a fake. [`DataPlane::sync`] is the only
//! writer: it serialises pushes, skips a push when nothing changed, and
//! returns the version the proxy acknowledged, so a deployment knows its
//! weight change is in force before its next step.

pub(crate) mod config;
#[cfg(test)]
pub(crate) mod fake;

use anyhow::Context;
use cutover_proxy::api::{HealthReport, StatusReport};
use cutover_proxy::client::AdminClient;
use cutover_proxy::metrics::MetricsFeed;
use cutover_store::{Store, ops};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Why the data plane could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DataPlaneError {
    /// The configuration derived from the store could not be built.
    #[error("cannot derive the data plane configuration: {0}")]
    Derive(String),
    /// The data plane refused the call or could not be reached.
    #[error("the data plane did not answer as expected: {0}")]
    Admin(#[from] cutover_proxy::client::ClientError),
}

/// What the control plane needs of a data plane.
#[async_trait::async_trait]
pub(crate) trait DataPlane: Send + Sync + 'static {
    /// Pushes the configuration derived from the store, if it changed, and
    /// returns the version in force once the data plane acknowledged it.
    async fn sync(&self) -> Result<u64, DataPlaneError>;
    /// Health of every target as the data plane sees it.
    async fn health(&self) -> Result<HealthReport, DataPlaneError>;
    /// Version, uptime and listeners.
    async fn status(&self) -> Result<StatusReport, DataPlaneError>;
    /// The completed one-second metric buckets after `since_unix_sec`.
    async fn metrics_feed(&self, since_unix_sec: u64) -> Result<MetricsFeed, DataPlaneError>;
    /// Where it is administered (the admin API's address), for people.
    fn admin(&self) -> String;
}

/// The data plane the control plane uses.
pub(crate) type SharedDataPlane = Arc<dyn DataPlane>;

/// Handle on the proxy process.
pub(crate) struct ManagedProxy {
    store: Arc<Store>,
    dir: PathBuf,
    bin: PathBuf,
    admin: SocketAddr,
    client: AdminClient,
    last: Mutex<Option<(Value, u64)>>,
}

#[async_trait::async_trait]
impl DataPlane for ManagedProxy {
    async fn sync(&self) -> Result<u64, DataPlaneError> {
        let mut last = self.last.lock().await;
        let desired = self
            .desired()
            .map_err(|e| DataPlaneError::Derive(format!("{e:#}")))?;
        if let Some((cfg, version)) = last.as_ref()
            && *cfg == desired
        {
            return Ok(*version);
        }
        let text =
            serde_json::to_string(&desired).map_err(|e| DataPlaneError::Derive(e.to_string()))?;
        let parsed = cutover_proxy::config::parse_json("desired.json", &text).map_err(|e| {
            DataPlaneError::Derive(format!("derived proxy configuration is invalid: {e}"))
        })?;
        let started = tokio::time::Instant::now();
        let version = self.client.put_config(&parsed).await?;
        tracing::debug!(
            version,
            took_ms = started.elapsed().as_millis() as u64,
            "data plane configuration in force"
        );
        *last = Some((desired, version));
        Ok(version)
    }

    async fn health(&self) -> Result<HealthReport, DataPlaneError> {
        Ok(self.client.health().await?)
    }

    async fn status(&self) -> Result<StatusReport, DataPlaneError> {
        Ok(self.client.status().await?)
    }

    async fn metrics_feed(&self, since_unix_sec: u64) -> Result<MetricsFeed, DataPlaneError> {
        Ok(self.client.metrics_feed(since_unix_sec).await?)
    }

    fn admin(&self) -> String {
        self.admin.to_string()
    }
}

impl ManagedProxy {
    /// Adopts the running proxy of this data directory, or starts one.
    pub(crate) async fn start(
        store: Arc<Store>,
        data_dir: &std::path::Path,
        bin: PathBuf,
    ) -> anyhow::Result<Arc<ManagedProxy>> {
        let dir = data_dir.join("proxy");
        crate::private::private_dir(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let addr_file = dir.join("admin.addr");
        let admin: SocketAddr = match std::fs::read_to_string(&addr_file) {
            Ok(s) => s
                .trim()
                .parse()
                .with_context(|| format!("corrupt {}", addr_file.display()))?,
            Err(_) => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port();
                let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
                std::fs::write(&addr_file, addr.to_string())?;
                addr
            }
        };
        let dp = Arc::new(ManagedProxy {
            store,
            dir,
            bin,
            admin,
            client: AdminClient::new(format!("http://{admin}")),
            last: Mutex::new(None),
        });
        dp.ensure_running().await?;
        Ok(dp)
    }

    /// Starts the proxy unless it already answers.
    pub(crate) async fn ensure_running(&self) -> anyhow::Result<()> {
        if self.client.status().await.is_ok() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("proxy.log"))?;
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.arg("proxy")
            .arg("--state-dir")
            .arg(&self.dir)
            .arg("--admin-address")
            .arg(self.admin.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group: a Ctrl-C or SIGTERM meant for the server
        // does not reach the data plane.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().with_context(|| {
            format!("cannot start the data plane ({} proxy)", self.bin.display())
        })?;
        std::fs::write(self.dir.join("proxy.pid"), child.id().to_string())?;
        // Reap it if it exits while we run, so it never lingers as a zombie.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        for _ in 0..250 {
            if self.client.status().await.is_ok() {
                tracing::info!(admin = %self.admin, "data plane started");
                *self.last.lock().await = None;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!(
            "the data plane did not answer on {} within 5 s; see {}",
            self.admin,
            self.dir.join("proxy.log").display()
        )
    }

    fn desired(&self) -> anyhow::Result<Value> {
        derive(&self.store, &self.admin.to_string())
    }

    /// Keeps the proxy alive and in sync: restarts it if it stopped
    /// answering, re-pushes the configuration every second (a no-op when
    /// unchanged).
    pub(crate) async fn supervise(
        self: Arc<Self>,
        changed: Arc<tokio::sync::Notify>,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if self.client.status().await.is_err() {
                tracing::warn!("data plane not answering; restarting it");
                if let Err(e) = self.ensure_running().await {
                    tracing::error!(error = %format!("{e:#}"), "cannot restart the data plane");
                    continue;
                }
            }
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %format!("{e:#}"), "cannot sync the data plane");
            }
        }
    }
}

/// The data plane configuration the store implies (as the JSON the admin
/// API takes), with `admin` as its admin address.
pub(crate) fn derive(store: &Store, admin: &str) -> anyhow::Result<Value> {
    let services = store.with(ops::list_services)?;
    let deployments = store.with(ops::unfinished_deployments)?;
    let mut tasks = Vec::new();
    for s in &services {
        tasks.push(store.with(|c| ops::list_tasks(c, Some(&s.name), false, u32::MAX))?);
    }
    let views: Vec<config::ServiceView<'_>> = services
        .iter()
        .zip(&tasks)
        .map(|(s, t)| config::ServiceView {
            service: s,
            tasks: t,
            deployment: deployments.iter().find(|d| d.service == s.name),
        })
        .collect();
    Ok(config::desired(admin, &views))
}
