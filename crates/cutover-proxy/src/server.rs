//! The running proxy: applies configurations atomically (bind, persist, swap, drain), runs the
//! listeners' accept loops, the health checkers and the metrics sampler, and reloads on SIGHUP.
//!
//! Start-up rule: when a configuration file is given it wins; otherwise the configuration last
//! persisted in the state directory (`<state-dir>/config.json`) is served with its version.
//! Every change is persisted there (temporary file, fsync, rename) before it takes effect and is
//! acknowledged, so a restarted proxy comes back with the last acknowledged configuration even
//! when the control plane is gone. Versions only grow, across restarts too. The state directory
//! is made private (0700) and `config.json` (which may hold `adminToken`) is written 0600,
//! whatever the umask.
//!
//! Every accept loop backs off on errors ([`crate::limits::AcceptGuard`]); listeners enforce
//! their connection cap and timeouts ([`crate::conn`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderValue;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{
    GroupHealth, HealthReport, ListenerStatus, Persisted, StatusReport, TargetHealth,
};
use crate::auth::TokenSource;
use crate::config::{self, ConfigError, HealthCheckConfig, ProxyConfig};
use crate::conn::{self, ActivityIo, ConnState};
use crate::health::{self, HealthTracker, Prober, TargetState};
use crate::limits::{self, AcceptGuard, LogLimiter};
use crate::metrics::{HostCounts, Metrics};
use crate::proxy::{self, ConnCtx};
use crate::routing::{self, GroupRt, ListenerLimits, ListenerRt, Snapshot};
use crate::target::{Target, Transport, UpstreamSettings};
use crate::{ProxyError, ProxyOptions, admin, h1, tls};

/// State shared by the request path, the admin API and the control tasks.
pub(crate) struct Shared {
    /// The configuration in force.
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Counters and the 1-second feed.
    pub(crate) metrics: Metrics,
    /// The wall clock of authorizers and throttles.
    pub(crate) clock: cutover_clock::SharedClock,
    /// JWK set caches by URI, kept across configuration changes while some rule names them.
    jwks: std::sync::Mutex<HashMap<String, Arc<crate::jwt::jwks::Jwks>>>,
    /// Prefix of generated request ids (random per process).
    pub(crate) id_prefix: String,
    /// Bearer token from `--admin-token-file` or the environment, fixed for the process's life;
    /// overrides the configuration's.
    pub(crate) fixed_token: Option<(String, TokenSource)>,
    /// Open downstream connections over all listeners (checked against the descriptor budget).
    downstream: AtomicUsize,
    /// When the proxy started.
    pub(crate) started: tokio::time::Instant,
    control: tokio::sync::Mutex<Control>,
    prober: Arc<dyn Prober>,
    state_dir: Option<PathBuf>,
    /// The configuration file reloaded on SIGHUP and `POST /v1/reload`.
    pub(crate) config_path: Option<PathBuf>,
    admin_override: Option<String>,
    admin_address_file: Option<PathBuf>,
    shutdown: CancellationToken,
}

/// What only configuration changes touch (serialised by the mutex).
struct Control {
    targets: HashMap<(String, String), Arc<Target>>,
    checks: HashMap<String, Option<HealthCheckConfig>>,
    draining: Vec<Arc<Target>>,
    listeners: HashMap<String, RunningListener>,
    admin: Option<(SocketAddr, CancellationToken)>,
}

struct RunningListener {
    addr: SocketAddr,
    tls: Option<config::TlsConfig>,
    stop: CancellationToken,
}

/// Why a change was rejected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// The configuration is invalid (located).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// Something outside the configuration failed: a bind, a certificate, the state directory.
    #[error("{0}")]
    Io(String),
}

impl Shared {
    /// The version in force.
    pub(crate) fn version(&self) -> u64 {
        self.snapshot.load().version
    }

    /// Validates, binds, persists, then swaps in `config`; returns the new version once it is
    /// in force. On any error the running configuration stays.
    pub(crate) async fn apply(
        self: &Arc<Self>,
        config: ProxyConfig,
        source: &str,
    ) -> Result<u64, ApplyError> {
        config.validate().map_err(|e| ConfigError {
            file: source.to_owned(),
            location: None,
            path: e.path,
            message: e.message,
        })?;
        let refuse = |path: &str, message: String| {
            ApplyError::Invalid(ConfigError {
                file: source.to_owned(),
                location: None,
                path: path.to_owned(),
                message,
            })
        };
        if config.admin_token.as_deref() == Some(config::REDACTED) {
            return Err(refuse(
                "adminToken",
                format!(
                    "{:?} is the placeholder shown by GET /v1/config, not a token",
                    config::REDACTED
                ),
            ));
        }
        if let (Some((_, from)), Some(_)) = (&self.fixed_token, &config.admin_token) {
            tracing::warn!(%source, "adminToken is ignored: the token given by {} is in force", from.describe());
        }
        let mut control = self.control.lock().await;
        let version = self.version() + 1;

        // 1. Everything that can fail, before anything changes.
        let mut resolved = HashMap::new();
        for tg in &config.target_groups {
            for t in &tg.targets {
                if resolved.contains_key(t) {
                    continue;
                }
                let addr = tokio::net::lookup_host(t.as_str())
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        ApplyError::Io(format!("{source}: target {t:?} does not resolve"))
                    })?;
                resolved.insert(t.clone(), addr);
            }
        }
        let mut new_listeners = Vec::new();
        for l in &config.listeners {
            let addr: SocketAddr = l
                .address
                .parse()
                .map_err(|e| ApplyError::Io(format!("{source}: listener {}: {e}", l.name)))?;
            let keep = control
                .listeners
                .get(&l.name)
                .is_some_and(|r| r.addr == addr && r.tls == l.tls);
            if keep {
                continue;
            }
            let acceptor =
                match &l.tls {
                    Some(t) => Some(tls::acceptor(t).map_err(|e| {
                        ApplyError::Io(format!("{source}: listener {}: {e}", l.name))
                    })?),
                    None => None,
                };
            // A listener moving to an address another listener gives up in this change is bound
            // after that one stops; anything else must bind now.
            let freed = control
                .listeners
                .iter()
                .any(|(n, r)| r.addr == addr && n != &l.name);
            let socket = if freed {
                None
            } else {
                Some(bind(addr).await.map_err(|e| {
                    ApplyError::Io(format!(
                        "{source}: listener {}: cannot bind {addr}: {e}",
                        l.name
                    ))
                })?)
            };
            new_listeners.push((l.clone(), addr, acceptor, socket));
        }
        let admin_addr = match self.admin_override.as_deref().or(config.admin.as_deref()) {
            Some(a) => Some(
                a.parse::<SocketAddr>()
                    .map_err(|e| ApplyError::Io(format!("{source}: admin: {e}")))?,
            ),
            None => None,
        };
        if let Some(a) = admin_addr
            && !a.ip().to_canonical().is_loopback()
            && self.fixed_token.is_none()
            && config.admin_token.is_none()
        {
            return Err(refuse(
                "admin",
                format!(
                    "the admin API address {a} is not loopback: it needs a token \
                     (--admin-token-file, CUTOVER_PROXY_TOKEN or adminToken)"
                ),
            ));
        }
        let new_admin = match admin_addr {
            Some(a) if control.admin.as_ref().map(|(x, _)| *x) != Some(a) => Some((
                a,
                bind(a).await.map_err(|e| {
                    ApplyError::Io(format!("{source}: admin: cannot bind {a}: {e}"))
                })?,
            )),
            _ => None,
        };
        self.persist(version, &config)?;

        // 2. Targets: keep existing ones (with their health), create new ones.
        let used = config.used_groups();
        let mut keep_keys = HashSet::new();
        let mut groups = HashMap::new();
        for tg in &config.target_groups {
            let check_changed = control.checks.get(&tg.name) != Some(&tg.health_check);
            // An unreadable `caFile` breaks this group only (see `target/transport.rs`).
            let transport = Transport::of(&tg.connection());
            if let Some(e) = transport.error() {
                tracing::warn!(target_group = %tg.name, error = %e, "the target group's targets cannot be reached");
            }
            let mut targets = Vec::with_capacity(tg.targets.len());
            for t in &tg.targets {
                let key = (tg.name.clone(), t.clone());
                let addr = resolved[t];
                let settings = UpstreamSettings::of(tg, transport.clone());
                let existing = control
                    .targets
                    .get(&key)
                    .filter(|x| x.addr == addr && x.settings == settings)
                    .cloned();
                let target = match existing {
                    Some(x) if !check_changed => x,
                    Some(x) => {
                        self.start_checks(&x, tg.health_check.clone());
                        x
                    }
                    None => {
                        let x = Target::new(
                            &tg.name,
                            t,
                            addr,
                            tg.health_check.is_some(),
                            self.metrics.target(&tg.name, t),
                            settings,
                        );
                        self.start_checks(&x, tg.health_check.clone());
                        x
                    }
                };
                control.targets.insert(key.clone(), target.clone());
                keep_keys.insert(key);
                targets.push(target);
            }
            control
                .checks
                .insert(tg.name.clone(), tg.health_check.clone());
            let counters = self.metrics.group(&tg.name);
            groups.insert(
                tg.name.clone(),
                Arc::new(GroupRt::new(
                    &tg.name,
                    targets,
                    counters,
                    tg.response_timeout(),
                )),
            );
        }
        let old = self.snapshot.load_full();
        let delays: HashMap<&str, u64> = old
            .config
            .target_groups
            .iter()
            .map(|g| (g.name.as_str(), g.deregistration_delay_seconds))
            .chain(
                config
                    .target_groups
                    .iter()
                    .map(|g| (g.name.as_str(), g.deregistration_delay_seconds)),
            )
            .collect();
        let removed: Vec<(String, String)> = control
            .targets
            .keys()
            .filter(|k| !keep_keys.contains(*k))
            .cloned()
            .collect();
        let mut to_drain = Vec::new();
        for key in removed {
            if let Some(t) = control.targets.remove(&key) {
                let delay = delays
                    .get(key.0.as_str())
                    .copied()
                    .unwrap_or(config::DEFAULT_DEREGISTRATION_DELAY_SECONDS);
                to_drain.push((t, Duration::from_secs(delay)));
            }
        }
        control.checks.retain(|g, _| groups.contains_key(g));

        // 3. The snapshot, swapped in one store.
        let listeners = config
            .listeners
            .iter()
            .map(|l| ListenerRt {
                name: l.name.as_str().into(),
                rules: l
                    .rules
                    .iter()
                    .map(|r| routing::Rule {
                        conditions: r
                            .conditions
                            .iter()
                            .map(routing::Condition::compile)
                            .collect(),
                        guard: self.compile_guard(r),
                        action: routing::compile_action(&r.action, &groups),
                    })
                    .collect(),
                default_action: routing::compile_action(&l.default_action, &groups),
                counters: self.metrics.listener(&l.name),
                limits: ListenerLimits::compile(l),
            })
            .collect();
        let names: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
        let group_names: Vec<&str> = config
            .target_groups
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        self.metrics.retain(&names, &group_names, &keep_keys);
        self.retain_jwks(&config);
        let _ = used;
        self.snapshot.store(Arc::new(Snapshot {
            version,
            config: Arc::new(config.clone()),
            listeners,
            groups,
        }));

        // 4. Start and stop listeners, drain removed targets.
        let wanted: HashSet<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
        let moved: HashSet<String> = new_listeners.iter().map(|(l, ..)| l.name.clone()).collect();
        control.listeners.retain(|name, r| {
            let keep = wanted.contains(name.as_str()) && !moved.contains(name);
            if !keep {
                r.stop.cancel();
            }
            keep
        });
        for (l, addr, acceptor, socket) in new_listeners {
            let socket = match socket {
                Some(s) => s,
                None => match bind(addr).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(listener = %l.name, %addr, error = %e, "cannot bind a listener moved to a freed address");
                        continue;
                    }
                },
            };
            let stop = self.shutdown.child_token();
            tokio::spawn(accept_loop(
                self.clone(),
                l.name.as_str().into(),
                socket,
                acceptor,
                stop.clone(),
            ));
            tracing::info!(listener = %l.name, %addr, tls = l.tls.is_some(), "listener started");
            control.listeners.insert(
                l.name.clone(),
                RunningListener {
                    addr,
                    tls: l.tls.clone(),
                    stop,
                },
            );
        }
        match (admin_addr, new_admin) {
            (_, Some((addr, socket))) => {
                if let Some((_, old)) = control.admin.take() {
                    old.cancel();
                }
                if let Some(file) = &self.admin_address_file {
                    let bound = socket
                        .local_addr()
                        .map_err(|e| ApplyError::Io(format!("{source}: admin: {e}")))?;
                    write_file_atomic(file, bound.to_string().as_bytes()).map_err(|e| {
                        ApplyError::Io(format!("cannot write {}: {e}", file.display()))
                    })?;
                }
                let stop = self.shutdown.child_token();
                tokio::spawn(admin::serve(self.clone(), socket, stop.clone()));
                tracing::info!(%addr, "admin api started");
                control.admin = Some((addr, stop));
            }
            (None, None) => {
                if let Some((_, old)) = control.admin.take() {
                    old.cancel();
                }
            }
            _ => {}
        }
        for (t, delay) in to_drain {
            tracing::info!(target_group = %t.group, target_addr = %t.address, ?delay, "target deregistered; draining");
            control.draining.push(t.clone());
            tokio::spawn(t.drain(delay));
        }
        control.draining.retain(|t| !t.cut.is_cancelled());
        tracing::info!(version, source, "configuration in force");
        Ok(version)
    }

    /// A rule's authorizer and throttle; `None` when it has neither.
    fn compile_guard(&self, r: &config::RuleConfig) -> Option<Box<routing::Guard>> {
        if r.authorizer.is_none() && r.throttle.is_none() {
            return None;
        }
        let authorizer = r.authorizer.as_ref().map(|a| {
            let jwks = self
                .jwks
                .lock()
                .unwrap()
                .entry(a.jwks_uri.clone())
                .or_insert_with(|| {
                    Arc::new(crate::jwt::jwks::Jwks::new(&a.jwks_uri, self.clock.clone()))
                })
                .clone();
            crate::jwt::Authorizer::new(a, jwks)
        });
        Some(Box::new(routing::Guard {
            authorizer,
            throttle: r.throttle.as_ref().map(crate::throttle::Throttle::new),
        }))
    }

    /// Forgets the JWK sets no rule names any more.
    fn retain_jwks(&self, config: &ProxyConfig) {
        let used: HashSet<&str> = config
            .listeners
            .iter()
            .flat_map(|l| &l.rules)
            .filter_map(|r| r.authorizer.as_ref())
            .map(|a| a.jwks_uri.as_str())
            .collect();
        self.jwks
            .lock()
            .unwrap()
            .retain(|uri, _| used.contains(uri.as_str()));
    }

    fn start_checks(&self, target: &Arc<Target>, check: Option<HealthCheckConfig>) {
        if let Some(h) = target.checker.lock().unwrap().take() {
            h.abort();
        }
        if let Some(check) = check {
            let tracker = HealthTracker::new(
                check.healthy_threshold_count,
                check.unhealthy_threshold_count,
            );
            let task = tokio::spawn(health::run_checks(
                target.addr,
                crate::target::host_of(&target.address).to_owned(),
                target.settings.transport.clone(),
                check,
                tracker,
                self.prober.clone(),
                target.clone(),
            ));
            *target.checker.lock().unwrap() = Some(task.abort_handle());
        }
    }

    fn persist(&self, version: u64, config: &ProxyConfig) -> Result<(), ApplyError> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        let doc = Persisted {
            version,
            config: serde_json::to_value(config).map_err(|e| ApplyError::Io(e.to_string()))?,
        };
        let text = serde_json::to_vec_pretty(&doc).map_err(|e| ApplyError::Io(e.to_string()))?;
        write_atomic(&dir.join(STATE_FILE), &text).map_err(|e| {
            ApplyError::Io(format!(
                "cannot persist the configuration in {}: {e}",
                dir.display()
            ))
        })
    }

    /// Reloads the configuration file (SIGHUP, `POST /v1/reload`).
    pub(crate) async fn reload(self: &Arc<Self>) -> Result<u64, ApplyError> {
        let Some(path) = self.config_path.clone() else {
            return Err(ApplyError::Io(
                "no configuration file to reload: the proxy was started without --config".into(),
            ));
        };
        let config = load_file(&path).map_err(|e| match e {
            ProxyError::Config(c) => ApplyError::Invalid(c),
            other => ApplyError::Io(other.to_string()),
        })?;
        self.apply(config, &path.display().to_string()).await
    }

    /// Per-group host counts for metrics.
    pub(crate) fn host_counts(&self) -> HashMap<String, HostCounts> {
        let snap = self.snapshot.load();
        let used = snap.config.used_groups();
        snap.groups
            .values()
            .map(|g| {
                let mut h = HostCounts::default();
                for t in &g.targets {
                    match t.state() {
                        TargetState::Healthy => h.healthy += 1,
                        TargetState::Unhealthy => h.unhealthy += 1,
                        _ => {}
                    }
                    h.in_flight += t.in_flight() as u64;
                }
                let _ = used.contains(&*g.name);
                (g.name.to_string(), h)
            })
            .collect()
    }

    /// The health report of `GET /v1/health`.
    pub(crate) async fn health(&self) -> HealthReport {
        let control = self.control.lock().await;
        let snap = self.snapshot.load();
        let used = snap.config.used_groups();
        let target_groups = snap
            .config
            .target_groups
            .iter()
            .map(|tg| {
                let g = &snap.groups[&tg.name];
                let in_use = used.contains(tg.name.as_str());
                let draining = control.draining.iter().filter(|t| &*t.group == tg.name.as_str() && !t.cut.is_cancelled());
                let targets: Vec<TargetHealth> = g
                    .targets
                    .iter()
                    .chain(draining)
                    .map(|t| {
                        let mut state = t.state();
                        let mut reason = t.reason();
                        if !in_use && state != TargetState::Draining {
                            reason = format!("target group is not used by any listener; last check: {} ({reason})", state.as_str());
                            state = TargetState::Unused;
                        }
                        TargetHealth { address: t.address.to_string(), state, reason, in_flight: t.in_flight() }
                    })
                    .collect();
                GroupHealth {
                    name: tg.name.clone(),
                    healthy_host_count: g.targets.iter().filter(|t| t.state() == TargetState::Healthy).count(),
                    unhealthy_host_count: g.targets.iter().filter(|t| t.state() == TargetState::Unhealthy).count(),
                    targets,
                }
            })
            .collect();
        HealthReport {
            version: snap.version,
            target_groups,
        }
    }

    /// The report of `GET /v1/status`.
    pub(crate) fn status(&self) -> StatusReport {
        let snap = self.snapshot.load();
        StatusReport {
            version: snap.version,
            uptime_seconds: self.started.elapsed().as_secs(),
            listeners: snap
                .config
                .listeners
                .iter()
                .zip(&snap.listeners)
                .map(|(c, l)| ListenerStatus {
                    name: c.name.clone(),
                    address: c.address.clone(),
                    tls: c.tls.is_some(),
                    active_connections: l.counters.active.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }
}

const STATE_FILE: &str = "config.json";

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory.
/// The file is created 0600 and its directory made 0700, whatever the umask.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    // A leftover temporary file keeps its old mode: set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` if needed and makes it 0700.
/// One open downstream connection, counted in its listener's and the
/// process's totals until dropped.
struct OpenConnection {
    counters: Arc<crate::metrics::Counters>,
    shared: Arc<Shared>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.counters.active.fetch_sub(1, Ordering::Relaxed);
        self.shared.downstream.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes `bytes` to `path` atomically, 0600, never through a symlink, and
/// without touching the permissions of the directory it is in (which may be
/// anyone's: `/tmp`, the current directory).
fn write_file_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Reads and parses a YAML (or, by extension, JSON) configuration file.
pub(crate) fn load_file(path: &Path) -> Result<ProxyConfig, ProxyError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProxyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let name = path.display().to_string();
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        config::parse_json(&name, &text)
    } else {
        config::parse(&name, &text)
    };
    Ok(parsed?)
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// The connection builders for a listener's limits: hyper-util's automatic HTTP/1-or-2
/// connection (TLS and HTTP/2 prior knowledge), and plain HTTP/1 ([`h1`]), whose header
/// deadline is [`h1::serve`]'s own timer.
struct Builders {
    auto: auto::Builder<TokioExecutor>,
    h1: http1::Builder,
}

impl Builders {
    fn new(l: &ListenerLimits) -> Self {
        let max_buf = l.max_header_bytes.max(8192);
        let mut auto = auto::Builder::new(TokioExecutor::new());
        auto.http1()
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(l.header_timeout)
            .max_buf_size(max_buf);
        auto.http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .max_header_list_size(u32::try_from(l.max_header_bytes).unwrap_or(u32::MAX));
        let mut h1 = http1::Builder::new();
        h1.keep_alive(true).max_buf_size(max_buf);
        Builders { auto, h1 }
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    name: Arc<str>,
    socket: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) {
    // Cancelled when the listener stops: connections finish their request and close. Each
    // holds a receiver of `alive` until it ends, so `alive.closed()` waits for all of them.
    let closing = CancellationToken::new();
    let (alive, alive_rx) = tokio::sync::watch::channel(());
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let port = HeaderValue::from(port);
    let counters = shared.metrics.listener(&name);
    let mut guard = AcceptGuard::new(format!("listener {name}"));
    let rejected_log = LogLimiter::new(Duration::from_secs(1));
    // The builder follows the listener's limits, rebuilt only when they change.
    let mut seen_version = u64::MAX;
    let mut limits: Option<ListenerLimits> = None;
    let mut builders: Option<Arc<Builders>> = None;
    loop {
        let (stream, peer) = tokio::select! {
            r = socket.accept() => match r {
                Ok(x) => {
                    guard.succeeded();
                    x
                }
                Err(e) => {
                    tokio::select! {
                        _ = guard.failed(&e) => continue,
                        _ = stop.cancelled() => break,
                    }
                }
            },
            _ = stop.cancelled() => break,
        };
        {
            let snap = shared.snapshot.load();
            if snap.version != seen_version {
                seen_version = snap.version;
                if let Some(l) = snap.listener(&name)
                    && limits.as_ref() != Some(&l.limits)
                {
                    builders = Some(Arc::new(Builders::new(&l.limits)));
                    limits = Some(l.limits.clone());
                }
            }
        }
        let (Some(lim), Some(builders)) = (&limits, &builders) else {
            drop(stream);
            continue;
        };
        let open = usize::try_from(counters.active.load(Ordering::Relaxed)).unwrap_or(0);
        if open >= lim.max_connections
            || shared.downstream.load(Ordering::Relaxed) >= limits::downstream_budget()
        {
            counters.rejected_connection();
            if let Some(suppressed) = rejected_log.allow(tokio::time::Instant::now()) {
                tracing::warn!(listener = %name, open, max = lim.max_connections.min(limits::downstream_budget()), suppressed, "connection refused: too many connections");
            }
            conn::refuse(stream, tls.is_none());
            continue;
        }
        counters.active.fetch_add(1, Ordering::Relaxed);
        shared.downstream.fetch_add(1, Ordering::Relaxed);
        if tls.is_some() {
            // Plain connections set it before their second write (`h1::H1Io`).
            let _ = stream.set_nodelay(true);
        }
        let state = Arc::new(ConnState::default());
        let ctx = Arc::new(ConnCtx {
            shared: shared.clone(),
            listener: name.clone(),
            client_ip: ip_header(peer.ip()),
            peer_ip: peer.ip(),
            port: port.clone(),
            tls: tls.is_some(),
            state: state.clone(),
        });
        let (header_timeout, idle_timeout) = (lim.header_timeout, lim.idle_timeout);
        let counters = counters.clone();
        let builders = builders.clone();
        let (closing, alive) = (closing.clone(), alive_rx.clone());
        let tls = tls.clone();
        let shared = shared.clone();
        let task = async move {
            // Released however the task ends, a panic included, so a
            // failing connection never eats into the connection cap.
            let _open = OpenConnection {
                counters: counters.clone(),
                shared: shared.clone(),
            };
            let _alive = alive;
            let serve = async {
                match tls {
                    None => {
                        let io = h1::H1Io::new(stream, state.clone());
                        let h1 = h1::serve(io, ctx.clone(), &builders.h1, header_timeout, &closing);
                        match h1.await {
                            // Opened with the HTTP/2 preface.
                            Some(io) => {
                                Box::pin(serve_auto(&builders.auto, io, ctx, &closing)).await
                            }
                            None => Ok(()),
                        }
                    }
                    // Boxed: the handshake's state would otherwise size every connection's task.
                    Some(acceptor) => {
                        Box::pin(async {
                            match acceptor
                                .accept(ActivityIo::new(stream, state.clone()))
                                .await
                            {
                                Ok(s) => serve_auto(&builders.auto, s, ctx, &closing).await,
                                Err(e) => {
                                    tracing::debug!(error = %e, "tls handshake failed");
                                    Ok(())
                                }
                            }
                        })
                        .await
                    }
                }
            };
            let result = tokio::select! {
                r = serve => r,
                _ = conn::watchdog(&state, header_timeout, idle_timeout) => Ok(()),
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "downstream connection ended with an error");
            }
        };
        tokio::spawn(task);
    }
    drop(socket);
    tracing::info!(listener = %name, "listener stopped accepting; closing its connections gracefully");
    closing.cancel();
    drop(alive_rx);
    alive.closed().await;
}

/// The client's address as a header value (`X-Forwarded-For`), IPv4-mapped IPv6 as IPv4.
/// IPv4 is written digit by digit: `Display` through the formatting machinery was about
/// 1,300 instructions, 6% of a one-request connection.
fn ip_header(ip: std::net::IpAddr) -> HeaderValue {
    let ip = ip.to_canonical();
    let std::net::IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string())
            .unwrap_or(HeaderValue::from_static("unknown"));
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(octet).as_bytes();
        text[len..len + digits.len()].copy_from_slice(digits);
        len += digits.len();
    }
    HeaderValue::from_bytes(&text[..len]).unwrap_or(HeaderValue::from_static("unknown"))
}

/// Serves a connection with hyper-util's automatic HTTP/1-or-2 connection (TLS listeners, and
/// plain connections that open with the HTTP/2 preface); on `closing`, finishes in-flight
/// requests and closes.
async fn serve_auto<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    ctx: Arc<ConnCtx>,
    closing: &CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| proxy::serve(ctx.clone(), req));
    let mut conn =
        std::pin::pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
    tokio::select! {
        r = conn.as_mut() => r,
        () = closing.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

async fn sample_loop(shared: Arc<Shared>) {
    loop {
        let now = crate::metrics::unix_now();
        let next = Duration::from_secs(now.as_secs() + 1) - now;
        tokio::time::sleep(next + Duration::from_millis(2)).await;
        let second = crate::metrics::unix_now().as_secs().saturating_sub(1);
        shared.metrics.sample(second, &shared.host_counts());
        for group in shared.snapshot.load().groups.values() {
            for target in &group.targets {
                target.prune_idle();
            }
        }
    }
}

/// See [`crate::run`].
pub(crate) async fn run_with(
    opts: ProxyOptions,
    prober: Arc<dyn Prober>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    let nofile = limits::raise_nofile_limit();
    tracing::debug!(
        nofile,
        downstream_budget = limits::downstream_budget(),
        "descriptor limits"
    );
    let fixed_token = match &opts.admin_token_file {
        Some(path) => Some((
            crate::auth::read_token_file(path).map_err(ProxyError::Token)?,
            TokenSource::File,
        )),
        None => match std::env::var("CUTOVER_PROXY_TOKEN") {
            Ok(t) if !t.is_empty() => {
                crate::auth::check_token(&t)
                    .map_err(|m| ProxyError::Token(format!("CUTOVER_PROXY_TOKEN: {m}")))?;
                Some((t, TokenSource::Env))
            }
            _ => None,
        },
    };
    if let Some(dir) = &opts.state_dir {
        private_dir(dir).map_err(|e| {
            ProxyError::Start(format!(
                "cannot create the state directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let persisted = match &opts.state_dir {
        Some(dir) => read_state(dir)?,
        None => None,
    };
    let (initial, source, base_version) = match (&opts.config_path, persisted) {
        (Some(path), p) => (
            load_file(path)?,
            path.display().to_string(),
            p.map(|p| p.0).unwrap_or(0),
        ),
        (None, Some((version, config))) => (config, "state".to_owned(), version.saturating_sub(1)),
        (None, None) => (
            ProxyConfig {
                admin: None,
                admin_token: None,
                listeners: Vec::new(),
                target_groups: Vec::new(),
            },
            "empty".to_owned(),
            0,
        ),
    };
    if initial.admin.is_none() && opts.admin_address.is_none() && initial.listeners.is_empty() {
        return Err(ProxyError::NothingToServe);
    }
    let empty = ProxyConfig {
        admin: None,
        admin_token: None,
        listeners: Vec::new(),
        target_groups: Vec::new(),
    };
    let shutdown_token = CancellationToken::new();
    let shared = Arc::new(Shared {
        snapshot: ArcSwap::from_pointee(Snapshot {
            version: base_version,
            config: Arc::new(empty),
            listeners: Vec::new(),
            groups: HashMap::new(),
        }),
        metrics: Metrics::default(),
        clock: opts.clock.0.clone(),
        jwks: Default::default(),
        id_prefix: format!("{:08x}", rand_u32()),
        fixed_token,
        downstream: AtomicUsize::new(0),
        started: tokio::time::Instant::now(),
        control: tokio::sync::Mutex::new(Control {
            targets: HashMap::new(),
            checks: HashMap::new(),
            draining: Vec::new(),
            listeners: HashMap::new(),
            admin: None,
        }),
        prober,
        state_dir: opts.state_dir.clone(),
        config_path: opts.config_path.clone(),
        admin_override: opts.admin_address.clone(),
        admin_address_file: opts.admin_address_file.clone(),
        shutdown: shutdown_token.clone(),
    });
    shared.apply(initial, &source).await.map_err(|e| match e {
        ApplyError::Invalid(c) => ProxyError::Config(c),
        ApplyError::Io(m) => ProxyError::Start(m),
    })?;
    let sampler = tokio::spawn(sample_loop(shared.clone()));
    let hup = shared
        .config_path
        .is_some()
        .then(|| tokio::spawn(sighup_loop(shared.clone())));
    shutdown.await;
    tracing::info!("shutting down");
    shutdown_token.cancel();
    sampler.abort();
    if let Some(h) = hup {
        h.abort();
    }
    let control = shared.control.lock().await;
    for t in control.targets.values() {
        if let Some(h) = t.checker.lock().unwrap().take() {
            h.abort();
        }
    }
    Ok(())
}

async fn sighup_loop(shared: Arc<Shared>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match shared.reload().await {
            Ok(version) => tracing::info!(version, "reloaded on SIGHUP"),
            Err(e) => {
                tracing::error!(error = %e, "reload rejected; the running configuration stays in force")
            }
        }
    }
}

fn read_state(dir: &Path) -> Result<Option<(u64, ProxyConfig)>, ProxyError> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ProxyError::Read { path, source }),
    };
    let name = path.display().to_string();
    let doc: Persisted = config::deserialize(&name, &text, config::Format::Json)?;
    let config = config::parse_json(&name, &doc.config.to_string())?;
    Ok(Some((doc.version, config)))
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(crate::metrics::unix_now().as_nanos());
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::ip_header;

    #[test]
    fn client_addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
        ] {
            let addr: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(ip_header(addr).to_str().unwrap(), ip);
        }
        let mapped: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_header(mapped).to_str().unwrap(), "192.0.2.7");
    }
}
