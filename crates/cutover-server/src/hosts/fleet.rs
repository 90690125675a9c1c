//! The seam between host deployments and host agents.
//!
//! [`Fleet`] is what the host-deployment driver needs of the agents: which
//! hosts are registered (tags, zone, target, when each last polled), a
//! durable queue of [`AgentCommand`]s per host, cancellation, and each
//! command's [`CommandResult`] once its agent reported it. [`BundleStore`]
//! keeps revisions' bundles content-addressed for the agents to download.
//! Both are traits so the driver is tested over a fake fleet, in
//! milliseconds, and the agents' side is tested without deployments.
//!
//! Invariants every implementation keeps:
//! - `dispatch` is durable (written to the store before it returns) and
//!   idempotent by command id: dispatching the same id again changes nothing.
//! - A result is recorded once per command id; a later report of the same id
//!   is ignored.
//! - `changed` wakes every waiter whenever a result is recorded or a host
//!   registers, polls after being offline, or is deregistered.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cutover_api::agents::{
    AgentCommand, AgentRegistration, BundleFormat, BundleRef, CommandResult,
};
use tokio::sync::Notify;

/// A registered host, as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    /// What the agent registered.
    pub(crate) registration: AgentRegistration,
    /// When it last polled (ms since the epoch, the server's clock).
    pub(crate) last_seen_ms: u64,
}

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FleetError {
    /// No registered host has this name.
    #[error("no host named {0:?} is registered")]
    UnknownHost(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] cutover_store::StoreError),
    /// Reading or writing a bundle failed.
    #[error("bundle: {0}")]
    Bundle(#[from] std::io::Error),
}

/// What host deployments need of the agents.
#[async_trait]
pub(crate) trait Fleet: Send + Sync {
    /// Every registered (not deregistered) host.
    async fn instances(&self) -> Result<Vec<Instance>, FleetError>;
    /// Queues `command` for `host`'s agent (durable, idempotent by id).
    async fn dispatch(&self, host: &str, command: AgentCommand) -> Result<(), FleetError>;
    /// Asks `host`'s agent to stop the command `id` (it reports `Cancelled`).
    async fn cancel(&self, host: &str, id: &str) -> Result<(), FleetError>;
    /// The result of command `id`, once its agent reported it.
    async fn result(&self, id: &str) -> Result<Option<CommandResult>, FleetError>;
    /// Notified whenever a result arrives or the set of hosts changes.
    fn changed(&self) -> Arc<Notify>;
}

/// Revisions' bundles, content-addressed.
#[async_trait]
pub(crate) trait BundleStore: Send + Sync {
    /// Stores the archive at `path` (its digest is computed while copying).
    async fn put_file(&self, path: PathBuf, format: BundleFormat) -> Result<BundleRef, FleetError>;
    /// Packs the directory at `dir` as a tar bundle and stores it (for
    /// server-side revisions: `git:REF` and pipeline artifacts; the CLI
    /// packs directories itself).
    async fn put_dir(&self, dir: PathBuf) -> Result<BundleRef, FleetError>;
    /// Where the stored bundle is, if it exists.
    #[cfg_attr(not(test), allow(dead_code))]
    async fn path(&self, bundle: &BundleRef) -> Result<Option<PathBuf>, FleetError>;
}
