//! The data plane: an L7 load balancer with weighted target groups, health checks and draining.
//!
//! [`run`] serves the listeners and the admin API of a [`config::ProxyConfig`]; configuration
//! changes (a new file on SIGHUP, `PUT /v1/config`, weight and target changes) are compiled
//! into an immutable snapshot swapped atomically, so a request resolves its route against
//! exactly one configuration. [`client::AdminClient`] drives a running proxy and [`cli`] wraps
//! both for `cutover proxy`.
//!
//! Guarantees, each tested in this crate:
//! - a target known to be unhealthy or draining gets no new request; a request whose connection
//!   to a target failed before any byte was sent is retried on another target;
//! - a deregistered target keeps serving its in-flight requests, WebSockets and streams for up
//!   to its group's deregistration delay;
//! - when no target can be chosen the proxy answers 503 itself (counted as
//!   `HTTPCode_ELB_5XX_Count`, logged) instead of dropping the request; see [`routing`'s
//!   rules](crate#routing) below.
//!
//! # Routing
//! Among the groups of a forward with a non-zero weight, those with a routable target share the
//! traffic in proportion to their weights. When none has one, the forward fails open (like ALB)
//! to targets in `initial` or `unhealthy` state, never to draining ones. When there is no such
//! target either, the answer is 503 from the proxy.
//!
//! # Hostile clients
//! Every listener bounds what a client can hold: connections (`maxConnections`, and a
//! process-wide budget below the descriptor limit, which is raised to its hard limit at start),
//! time to the first request and between requests, idle time, header sizes; requests with
//! ambiguous `Host` headers, `CONNECT` and paths climbing above the root are refused; paths are
//! normalised before rules match; forwarding headers from untrusted clients are replaced; a
//! target that does not answer in time gets 504. See [`config::ListenerConfig`], the `conn`,
//! `headers` and `normalize` modules, and `limits` for the accept loops' back-off. The admin API
//! requires a bearer token whenever it listens beyond loopback (`auth`).
//!
//! # API gateway
//! A rule may carry a JWT `authorizer` (`jwt`) and a `throttle` (`throttle`), run in that order
//! after routing and before the action: a refused request (401, 403, 429, or 503 when no JWK set
//! could be fetched) never reaches a target. Rules may also match the client's address
//! (`sourceIp`). Rules without them pay nothing for them.
//!
//! # Health
//! A new target in a group with a health check starts `initial` and gets traffic after its
//! first passing probe; see [`health`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod health;
pub mod metrics;

mod admin;
mod auth;
mod chunked;
mod conn;
mod h1;
mod headers;
mod jwt;
mod limits;
mod normalize;
mod proxy;
mod routing;
mod server;
mod target;
mod throttle;
mod tls;

pub use api::HealthReport;
pub use config::ProxyConfig;
pub use tls::{TlsError, acceptor as tls_acceptor};

/// How to start the proxy.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// The YAML (or `.json`) configuration file; wins over the state directory at start and is
    /// reloaded on SIGHUP and `POST /v1/reload`.
    pub config_path: Option<PathBuf>,
    /// Where the last applied configuration is persisted (`config.json`); served at start when
    /// no configuration file is given.
    pub state_dir: Option<PathBuf>,
    /// Worker threads: 1 runs on a current-thread runtime (see [`cli`]); [`run`] itself uses
    /// whatever runtime it is awaited on.
    pub workers: usize,
    /// Admin API address overriding the configuration's `admin:` (used by `cutover server` to
    /// start a proxy with no configuration yet).
    pub admin_address: Option<String>,
    /// A file holding the admin API's bearer token (`--admin-token-file`); it must not be
    /// readable by group or others. Wins over `CUTOVER_PROXY_TOKEN` and `adminToken`.
    pub admin_token_file: Option<PathBuf>,
    /// Where to write the admin API's bound address (`--admin-address-file`), 0600, each time
    /// it binds: with `--admin-address 127.0.0.1:0` the kernel picks a free port, and whoever
    /// started the proxy reads it from there instead of guessing one that another process
    /// could take first.
    pub admin_address_file: Option<PathBuf>,
    /// The wall clock that authorizers (`exp`, `nbf`, JWK set refreshes) and throttles read.
    pub clock: ProxyClock,
}

/// The proxy's wall clock: the system's unless a test injects one.
#[derive(Clone)]
pub struct ProxyClock(pub cutover_clock::SharedClock);

impl Default for ProxyClock {
    fn default() -> Self {
        ProxyClock(Arc::new(cutover_clock::SystemClock))
    }
}

impl std::fmt::Debug for ProxyClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyClock({} ms)", self.0.now_ms())
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The admin token file is missing, empty, unreadable or not private.
    #[error("{0}")]
    Token(String),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A listener could not be bound, a certificate loaded or the state persisted.
    #[error("cannot start: {0}")]
    Start(String),
    /// There is no configuration, no persisted state and no admin address.
    #[error(
        "nothing to serve: give a configuration file, a state directory holding one, or an admin address"
    )]
    NothingToServe,
}

/// Serves listeners and the admin API until `shutdown` resolves; on SIGHUP reloads
/// `opts.config_path` when given. Health checks probe over HTTP.
pub async fn run(opts: ProxyOptions, shutdown: impl Future<Output = ()>) -> Result<(), ProxyError> {
    server::run_with(opts, Arc::new(health::HttpProber), shutdown).await
}

/// Like [`run`], with a custom health [`health::Prober`] (tests, or probing over another
/// transport).
pub async fn run_with_prober(
    opts: ProxyOptions,
    prober: Arc<dyn health::Prober>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    server::run_with(opts, prober, shutdown).await
}
