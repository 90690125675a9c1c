//! The data plane as seen from the control plane: one `cutover proxy`
//! process per data directory, started detached so it outlives the server,
//! adopted when the server comes back, restarted if it dies, and fed the
//! configuration derived from the store.
//!
//! The proxy persists every configuration it acknowledges in its state
//! directory, so a restarted proxy serves the last one it had even before
//! the control plane is back.
//!
//! [`DataPlane::sync`] is the only writer: it serialises pushes, skips a push
//! when nothing changed, and returns the version the proxy acknowledged, so
//! a deployment knows its weight change is in force before its next step.

pub(crate) mod config;

use crate::clock::now_ms;
use anyhow::Context;
use cutover_proxy::client::AdminClient;
use cutover_store::{Store, ops};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Handle on the proxy process.
pub(crate) struct DataPlane {
    store: Arc<Store>,
    dir: PathBuf,
    bin: PathBuf,
    admin: SocketAddr,
    client: AdminClient,
    last: Mutex<Option<(Value, u64)>>,
}

impl DataPlane {
    /// Adopts the running proxy of this data directory, or starts one.
    pub(crate) async fn start(
        store: Arc<Store>,
        data_dir: &std::path::Path,
        bin: PathBuf,
    ) -> anyhow::Result<Arc<DataPlane>> {
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
        let dp = Arc::new(DataPlane {
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

    /// The admin API address.
    pub(crate) fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// The admin client.
    pub(crate) fn client(&self) -> &AdminClient {
        &self.client
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

    /// Pushes the configuration derived from the store, if it changed, and
    /// returns the version in force.
    pub(crate) async fn sync(&self) -> anyhow::Result<u64> {
        let mut last = self.last.lock().await;
        let desired = self.desired()?;
        if let Some((cfg, version)) = last.as_ref()
            && *cfg == desired
        {
            return Ok(*version);
        }
        let text = serde_json::to_string(&desired)?;
        let parsed = cutover_proxy::config::parse_json("desired.json", &text)
            .map_err(|e| anyhow::anyhow!("derived proxy configuration is invalid: {e}"))?;
        let started = now_ms();
        let version = self
            .client
            .put_config(&parsed)
            .await
            .context("the data plane did not accept the configuration")?;
        tracing::debug!(
            version,
            took_ms = now_ms() - started,
            "data plane configuration in force"
        );
        *last = Some((desired, version));
        Ok(version)
    }

    fn desired(&self) -> anyhow::Result<Value> {
        let services = self.store.with(ops::list_services)?;
        let deployments = self.store.with(ops::unfinished_deployments)?;
        let mut tasks = Vec::new();
        for s in &services {
            tasks.push(
                self.store
                    .with(|c| ops::list_tasks(c, Some(&s.name), false, u32::MAX))?,
            );
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
        Ok(config::desired(&self.admin.to_string(), &views))
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
