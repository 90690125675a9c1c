//! The OCI registry (Distribution Spec 1.1) without HTTP: the server's
//! `/v2/` routes translate requests onto [`Registry`]'s operations.
//!
//! Storage:
//! - blobs are files named by their content, `<data>/registry/blobs/sha256/ab/<hex>`
//!   (a manifest's exact bytes are a blob too);
//! - an upload is a directory `<data>/registry/uploads/<uuid>/` holding
//!   `info.json` (its repository, when it started) and `data`; its offset
//!   is the length of `data`, so an upload survives a restart;
//! - metadata (repositories, manifests, tags, which blobs each repository
//!   holds) is in the SQLite store (`cutover_store::registry`).
//!
//! Invariants:
//! - a blob file is installed only after the SHA-256 of its bytes, computed
//!   while they were written, equals the digest the client claimed;
//! - no request body or blob is held in memory whole: bodies stream to
//!   disk, blobs stream from it (a manifest, at most 4 MiB, is read whole);
//! - a repository name, tag, digest or upload id reaches the file system
//!   or the store only after it matched the spec's grammar;
//! - garbage collection (mark and sweep, [`Registry::gc`]) holds the
//!   registry's write lock, and everything that makes a blob reachable
//!   (finishing an upload, a mount, a manifest put) its read lock, so a
//!   blob is never swept between its check and its use; blobs linked
//!   within the grace period are kept even when nothing references them.

mod blobs;
mod error;
mod gc;
mod manifests;
mod names;
pub mod route;
pub mod token;
mod uploads;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cutover_clock::SharedClock;
use cutover_store::Store;
use cutover_store::registry::{self as rows, RepositoryRow};
use futures_util::Stream;

pub use blobs::BlobBody;
pub use error::{ErrorCode, RegistryError, Result};
pub use gc::{GC_INTERVAL, GcReport};
pub use manifests::{MAX_MANIFEST, Manifest, StoredManifest};
pub use names::{Digest, MAX_NAME, Reference, check_name};
pub use uploads::parse_content_range;

/// A request body: chunks as they arrive.
pub type Body = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// How long an unreferenced blob is kept after it was pushed or linked,
/// so a manifest on its way finds it.
pub const GRACE_MS: u64 = 60 * 60 * 1000;

/// How old an unfinished upload is when it is removed.
pub const STALE_UPLOAD_MS: u64 = 24 * 60 * 60 * 1000;

/// The registry over a data directory and the store.
pub struct Registry {
    root: PathBuf,
    store: Arc<Store>,
    clock: SharedClock,
    /// Read: making a blob reachable; write: garbage collection.
    gc_lock: tokio::sync::RwLock<()>,
    /// The running SHA-256 of each upload seen since start.
    sessions: Mutex<HashMap<uuid::Uuid, Arc<tokio::sync::Mutex<Option<uploads::Hashing>>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("root", &self.root)
            .finish()
    }
}

impl Registry {
    /// The registry under `<data_dir>/registry` (created if missing).
    pub fn open(data_dir: &Path, store: Arc<Store>, clock: SharedClock) -> Result<Registry> {
        let root = data_dir.join("registry");
        for dir in [root.join("blobs").join("sha256"), root.join("uploads")] {
            std::fs::create_dir_all(&dir).map_err(RegistryError::io("create", &dir))?;
        }
        Ok(Registry {
            root,
            store,
            clock,
            gc_lock: tokio::sync::RwLock::new(()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The store the metadata lives in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The repository `name`: `NAME_INVALID` if the name breaks the
    /// grammar, `NAME_UNKNOWN` if no such repository exists (a push never
    /// creates one, as on ECR).
    pub async fn repository(&self, name: &str) -> Result<RepositoryRow> {
        let name = check_name(name)?.to_string();
        let shown = name.clone();
        self.store
            .call(move |c| rows::get_repository(c, &name))
            .await?
            .ok_or_else(|| {
                RegistryError::refused(
                    ErrorCode::NameUnknown,
                    format!("the repository {shown:?} does not exist"),
                )
            })
    }

    /// Repository names after `last`, at most `n` (the catalog).
    pub async fn catalog(&self, n: usize, last: Option<String>) -> Result<Vec<String>> {
        let repos = self
            .store
            .call(move |c| rows::list_repositories(c, last.as_deref(), n))
            .await?;
        Ok(repos.into_iter().map(|r| r.name).collect())
    }

    /// Tags of `repo` after `last`, at most `n`.
    pub async fn tags(&self, repo: &str, n: usize, last: Option<String>) -> Result<Vec<String>> {
        let repo = self.repository(repo).await?.name;
        Ok(self
            .store
            .call(move |c| rows::list_tags(c, &repo, last.as_deref(), n))
            .await?)
    }
}

#[cfg(test)]
mod tests;
