//! Docker Engine API runtime: tasks as containers on Docker or Podman.
//!
//! [`DockerRuntime`] implements [`cutover_runtime::Runtime`] for services
//! with `runtime: docker`. Each task is one container made from its essential
//! container definition (image, entry point, command, environment, working
//! directory, CPU and memory limits, stop timeout), labelled with the
//! service, task, revision and Cutover instance, and named
//! `cutover-<service>-<task id>`. Its container port is published on
//! `127.0.0.1:<host port>`, a free port Cutover picks; that address is the
//! task's endpoint for the load balancer. On an engine without a bridge
//! network (Docker run with `--bridge=none`) the container joins the host
//! network instead and gets `PORT=<host port>` to listen on.
//!
//! The engine is found at `DOCKER_HOST`, else at the usual Docker and Podman
//! sockets (see [`DockerOptions::host`]); [`DockerRuntime::engine_info`] says
//! which one answered. Images present in the engine are used as they are;
//! absent ones are pulled with credentials from `~/.docker/config.json`, and
//! an image that cannot be had fails the start with a
//! `CannotPullContainerError` reason. Health checks are run by Cutover
//! through the exec API, not by the engine (see [`DockerRuntime`]).
//!
//! After a restart of the server the runtime finds its containers again by
//! the `cutover.instance` label; the control plane decides what to adopt.
//!
//! [`SwarmRuntime`] implements the same trait for `runtime: swarm` over a
//! Docker Swarm manager: each task is a one-replica Swarm service.
//!
//! The API client is `bollard`; this crate keeps the engine discovery (which
//! sockets are trusted) and the reading of registry credentials.

mod auth;
mod container;
mod discovery;
mod error;
mod image;
mod probe;
mod reference;
mod resolve;
mod runtime;
mod swarm;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use auth::PullCredentials;
pub use container::{
    LABEL_INSTANCE, LABEL_SERVICE, LABEL_TASK, LABEL_TASK_DEFINITION, REASON_CANNOT_CREATE,
    REASON_CANNOT_PULL, REASON_OOM,
};
pub use error::DockerError;
pub use reference::{ImageReference, is_sha256_digest};
pub use resolve::{
    ImageResolver, MANIFEST_TYPES, PinnedImage, RegistryResolver, ResolveError, ResolverOptions,
    parse_challenge,
};
pub use runtime::{BuildContainerError, DockerRuntime, LABEL_BUILD, LABEL_BUILD_INSTANCE};
pub use swarm::{REASON_SWARM_MOVED, SwarmRuntime};

/// How task containers are networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Bridge when the engine has a bridge network, else host.
    #[default]
    Auto,
    /// The engine's bridge network, the container port published on
    /// `127.0.0.1:<host port>`.
    Bridge,
    /// The host's network; the task listens on `127.0.0.1:<host port>`
    /// itself (`PORT` and `HOST` say where).
    Host,
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Bridge => "bridge",
            Self::Host => "host",
        })
    }
}

/// One progress event of an image pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The image being pulled, as the task definition names it.
    pub image: String,
    /// The layer the event is about, if any.
    pub layer: Option<String>,
    /// The engine's status text ("Downloading", "Pull complete", ...).
    pub status: String,
    /// Bytes done, when the engine says.
    pub current: Option<u64>,
    /// Bytes in all, when the engine says.
    pub total: Option<u64>,
}

/// A callback that sees every pull progress event (for a progress display).
pub type ProgressFn = Arc<dyn Fn(&PullProgress) + Send + Sync>;

/// How to reach the engine and whose containers are whose.
#[derive(Clone)]
pub struct DockerOptions {
    /// The engine address (`unix:///path` or `tcp://host:port`); `None`
    /// means `DOCKER_HOST`, else the first of `/var/run/docker.sock`,
    /// `$XDG_RUNTIME_DIR/podman/podman.sock` and `/run/podman/podman.sock`
    /// that answers and is owned by root or this user.
    pub host: Option<String>,
    /// Id of this Cutover instance, written on every container as the
    /// `cutover.instance` label; [`cutover_runtime::Runtime::list`] sees only
    /// containers with this id.
    pub instance: String,
    /// Bridge, host, or decided from the engine's networks.
    pub network: NetworkMode,
    /// A pull fails when the engine reports no progress for this long.
    pub pull_idle_timeout: Duration,
    /// Docker client configuration with registry credentials; `None` means
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Asked for a registry's credentials before `docker_config`.
    pub pull_credentials: Option<Arc<dyn PullCredentials>>,
    /// Called with every pull progress event, besides the `tracing` events.
    pub pull_progress: Option<ProgressFn>,
}

impl DockerOptions {
    /// Options for instance `instance` with every other setting at its default.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            ..Self::default()
        }
    }
}

impl Default for DockerOptions {
    fn default() -> Self {
        Self {
            host: None,
            instance: String::new(),
            network: NetworkMode::Auto,
            pull_idle_timeout: Duration::from_secs(60),
            docker_config: None,
            pull_credentials: None,
            pull_progress: None,
        }
    }
}

impl fmt::Debug for DockerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerOptions")
            .field("host", &self.host)
            .field("instance", &self.instance)
            .field("network", &self.network)
            .field("pull_idle_timeout", &self.pull_idle_timeout)
            .field("docker_config", &self.docker_config)
            .field(
                "pull_credentials",
                &self.pull_credentials.as_ref().map(|_| "callback"),
            )
            .field(
                "pull_progress",
                &self.pull_progress.as_ref().map(|_| "callback"),
            )
            .finish()
    }
}

/// Which engine the runtime talks to, for `cutover server` to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// "Docker" or "Podman".
    pub name: String,
    /// The engine's version, e.g. "4.3.1".
    pub version: String,
    /// The API version in use, e.g. "1.41".
    pub api_version: String,
    /// Where the engine answered, e.g. "unix:///run/podman/podman.sock".
    pub socket: String,
    /// How task containers are networked (never [`NetworkMode::Auto`]).
    pub network: NetworkMode,
}

impl fmt::Display for EngineInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (API {}) at {}, {} network",
            self.name, self.version, self.api_version, self.socket, self.network
        )
    }
}
