//! The managed `cutover proxy` process of a data directory.
//!
//! Who may drive the proxy, and how the server finds it again:
//! - **A token per proxy start.** Before starting a proxy the server writes
//!   a fresh random token to `proxy/admin.token` (0600, in the 0700 state
//!   directory) and passes the file with `--admin-token-file`, never on the
//!   command line. Every admin call carries it; the proxy refuses calls
//!   without it.
//! - **The kernel picks the admin port.** The proxy is started with
//!   `--admin-address 127.0.0.1:0 --admin-address-file proxy/admin.addr` and
//!   writes the address it bound, so there is no window in which another
//!   process could take a port chosen in advance.
//! - **Adoption checks identity.** After a server restart the proxy is
//!   adopted only if `proxy.pid` names a live process whose command line is
//!   `cutover proxy` with this state directory, and it answers the admin
//!   API with this directory's token. Anything else is not adopted: a hung
//!   proxy of ours is stopped and a new one started with a new token.
//! - **Upgrades drop nothing.** A proxy of ours started by a release without
//!   tokens (no token file) is adopted as it runs and locked at once: the
//!   server pushes its configuration with a fresh `adminToken`.

use super::{DataPlane, DataPlaneError, LeftOut, derive};
use anyhow::Context;
use cutover_clock::SharedClock;
use cutover_proxy::api::{HealthReport, StatusReport};
use cutover_proxy::client::AdminClient;
use cutover_proxy::metrics::MetricsFeed;
use cutover_store::Store;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

const TOKEN_FILE: &str = "admin.token";
const ADDR_FILE: &str = "admin.addr";
const PID_FILE: &str = "proxy.pid";

/// Where the running proxy answers, and how to talk to it.
#[derive(Clone)]
struct Endpoint {
    admin: SocketAddr,
    client: AdminClient,
}

/// Handle on the proxy process.
pub(crate) struct ManagedProxy {
    store: Arc<Store>,
    clock: SharedClock,
    /// Services left out of the last configuration derived.
    left_out: LeftOut,
    dir: PathBuf,
    bin: PathBuf,
    endpoint: std::sync::Mutex<Option<Endpoint>>,
    /// Serialises starts, and holds the last configuration pushed.
    last: Mutex<Option<(Value, u64)>>,
    starting: Mutex<()>,
}

#[async_trait::async_trait]
impl DataPlane for ManagedProxy {
    async fn sync(&self) -> Result<u64, DataPlaneError> {
        let mut last = self.last.lock().await;
        let ep = self.endpoint()?;
        let desired = derive(
            &self.store,
            &self.clock,
            &ep.admin.to_string(),
            &self.left_out,
        )
        .await
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
        let version = ep.client.put_config(&parsed).await?;
        tracing::debug!(
            version,
            took_ms = started.elapsed().as_millis() as u64,
            "data plane configuration in force"
        );
        *last = Some((desired, version));
        Ok(version)
    }

    async fn health(&self) -> Result<HealthReport, DataPlaneError> {
        Ok(self.endpoint()?.client.health().await?)
    }

    async fn status(&self) -> Result<StatusReport, DataPlaneError> {
        Ok(self.endpoint()?.client.status().await?)
    }

    async fn metrics_feed(&self, since_unix_sec: u64) -> Result<MetricsFeed, DataPlaneError> {
        Ok(self.endpoint()?.client.metrics_feed(since_unix_sec).await?)
    }

    fn admin(&self) -> String {
        self.endpoint()
            .map(|e| e.admin.to_string())
            .unwrap_or_else(|_| "not running".into())
    }
}

impl ManagedProxy {
    /// Adopts the running proxy of this data directory, or starts one.
    pub(crate) async fn start(
        store: Arc<Store>,
        clock: SharedClock,
        data_dir: &Path,
        bin: PathBuf,
    ) -> anyhow::Result<Arc<ManagedProxy>> {
        let dir = data_dir.join("proxy");
        crate::private::private_dir(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let dp = Arc::new(ManagedProxy {
            store,
            clock,
            left_out: LeftOut::default(),
            dir,
            bin,
            endpoint: std::sync::Mutex::new(None),
            last: Mutex::new(None),
            starting: Mutex::new(()),
        });
        dp.ensure_running().await?;
        Ok(dp)
    }

    /// The configuration this proxy acknowledged last.
    pub(crate) async fn current(&self) -> Option<Value> {
        self.last.lock().await.as_ref().map(|(c, _)| c.clone())
    }

    fn endpoint(&self) -> Result<Endpoint, DataPlaneError> {
        self.endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| DataPlaneError::Derive("the data plane is not running".into()))
    }

    fn set_endpoint(&self, ep: Option<Endpoint>) {
        *self.endpoint.lock().unwrap_or_else(|p| p.into_inner()) = ep;
    }

    /// Makes sure our proxy answers: the one we know, else the one of this
    /// directory that a previous server started, else a new one.
    pub(crate) async fn ensure_running(&self) -> anyhow::Result<()> {
        let _one = self.starting.lock().await;
        if let Ok(ep) = self.endpoint()
            && ep.client.status().await.is_ok()
        {
            return Ok(());
        }
        if let Some(ep) = self.adoptable().await {
            tracing::info!(admin = %ep.admin, "data plane adopted");
            self.set_endpoint(Some(ep));
            *self.last.lock().await = None;
            return Ok(());
        }
        self.set_endpoint(None);
        self.stop_stale();
        let ep = self.spawn().await?;
        tracing::info!(admin = %ep.admin, "data plane started");
        self.set_endpoint(Some(ep));
        *self.last.lock().await = None;
        Ok(())
    }

    /// The proxy a previous server started here, if it is really ours.
    async fn adoptable(&self) -> Option<Endpoint> {
        let pid = self.live_pid()?;
        let admin: SocketAddr = std::fs::read_to_string(self.dir.join(ADDR_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let Ok(token) = std::fs::read_to_string(self.dir.join(TOKEN_FILE)) else {
            return self.adopt_legacy(pid, admin).await;
        };
        let client = AdminClient::new(format!("http://{admin}")).with_token(token.trim());
        match client.status().await {
            Ok(_) => Some(Endpoint { admin, client }),
            Err(e) => {
                tracing::warn!(pid, %admin, error = %e, "the data plane process does not answer with this directory's token; not adopting it");
                None
            }
        }
    }

    /// A proxy of ours started by a release without admin tokens: adopted
    /// without a restart (so an upgrade drops no connection), and given a
    /// token at once through its configuration's `adminToken`.
    async fn adopt_legacy(&self, pid: i32, admin: SocketAddr) -> Option<Endpoint> {
        let open = AdminClient::new(format!("http://{admin}"));
        open.status().await.ok()?;
        let token = new_token();
        let token_file = self.dir.join(TOKEN_FILE);
        if let Err(e) = crate::private::write_secret(&token_file, token.as_bytes()) {
            tracing::warn!(error = %e, "cannot write the data plane token; not adopting the running proxy");
            return None;
        }
        let desired = derive(&self.store, &self.clock, &admin.to_string(), &self.left_out)
            .await
            .ok()?;
        let text = serde_json::to_string(&desired).ok()?;
        let mut config = cutover_proxy::config::parse_json("desired.json", &text).ok()?;
        config.admin_token = Some(token.clone());
        if let Err(e) = open.put_config(&config).await {
            tracing::warn!(pid, error = %e, "cannot give the running data plane a token; not adopting it");
            let _ = std::fs::remove_file(&token_file);
            return None;
        }
        let client = open.with_token(token);
        client.status().await.ok()?;
        tracing::info!(pid, %admin, "data plane of an earlier release adopted and given an admin token");
        Some(Endpoint { admin, client })
    }

    /// The pid of `proxy.pid` if it is a live `cutover proxy` of this state
    /// directory.
    fn live_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join(PID_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let dir = self.dir.as_os_str().as_encoded_bytes();
        let ours = args.iter().any(|a| *a == b"proxy")
            && args
                .windows(2)
                .any(|w| w[0] == b"--state-dir" && w[1] == dir);
        ours.then_some(pid)
    }

    /// Stops a proxy of ours that no longer answers, so a new one can bind
    /// the listeners.
    fn stop_stale(&self) {
        let Some(pid) = self.live_pid() else {
            return;
        };
        tracing::warn!(pid, "the data plane process hangs; stopping it");
        // Through kill(1): this crate has no unsafe code, libc's kill included.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }

    /// Starts a new proxy with a new token and learns its admin address.
    async fn spawn(&self) -> anyhow::Result<Endpoint> {
        let token = new_token();
        let token_file = self.dir.join(TOKEN_FILE);
        crate::private::write_secret(&token_file, token.as_bytes())
            .with_context(|| format!("cannot write {}", token_file.display()))?;
        let addr_file = self.dir.join(ADDR_FILE);
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("proxy.log"))?;
        crate::private::private_file(&self.dir.join("proxy.log"))?;
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.arg("proxy")
            .arg("--state-dir")
            .arg(&self.dir)
            .arg("--admin-address")
            .arg("127.0.0.1:0")
            .arg("--admin-address-file")
            .arg(&addr_file)
            .arg("--admin-token-file")
            .arg(&token_file)
            .env_clear()
            .envs(cutover_build::process::base_env())
            .envs(
                std::env::var("CUTOVER_LOG")
                    .ok()
                    .map(|v| ("CUTOVER_LOG", v)),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group: a Ctrl-C or SIGTERM meant for the server
        // does not reach the data plane.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().with_context(|| {
            format!("cannot start the data plane ({} proxy)", self.bin.display())
        })?;
        let pid = child.id();
        std::fs::write(self.dir.join(PID_FILE), pid.to_string())?;
        let mut answered = None;
        for _ in 0..250 {
            if let Ok(Some(status)) = child.try_wait() {
                anyhow::bail!(
                    "the data plane exited at start ({status}); see {}",
                    self.dir.join("proxy.log").display()
                );
            }
            if let Some(admin) = std::fs::read_to_string(&addr_file)
                .ok()
                .and_then(|s| s.trim().parse::<SocketAddr>().ok())
            {
                let client = AdminClient::new(format!("http://{admin}")).with_token(token.clone());
                if client.status().await.is_ok() {
                    answered = Some(Endpoint { admin, client });
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Reap it if it exits while we run, so it never lingers as a zombie.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        answered.ok_or_else(|| {
            anyhow::anyhow!(
                "the data plane did not answer within 5 s; see {}",
                self.dir.join("proxy.log").display()
            )
        })
    }

    /// Keeps the proxy alive and in sync: restarts it if it stopped
    /// answering, re-pushes the configuration every second (a no-op when
    /// unchanged).
    /// `dataplane` is what syncs: this proxy, or a fan-out over it.
    pub(crate) async fn supervise(
        self: Arc<Self>,
        dataplane: super::SharedDataPlane,
        changed: Arc<tokio::sync::Notify>,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if self.status().await.is_err() {
                tracing::warn!("data plane not answering; restarting it");
                if let Err(e) = self.ensure_running().await {
                    tracing::error!(error = %format!("{e:#}"), "cannot restart the data plane");
                    continue;
                }
            }
            if let Err(e) = dataplane.sync().await {
                tracing::warn!(error = %format!("{e:#}"), "cannot sync the data plane");
            }
        }
    }
}

/// 256 random bits from the OS, as hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}
