//! Garbage collection, mark and sweep. Mark: every digest a manifest of
//! any repository is or references, and every blob linked within the
//! grace period (its manifest may be on its way). Sweep: every other blob
//! file, and its links. Uploads started more than
//! [`crate::STALE_UPLOAD_MS`] ago are removed first. The whole run holds
//! the registry's write lock, and a blob file is installed together with
//! its link (or its manifest row) under the read lock, so no file age is
//! needed: a file without a link is an orphan (a refused manifest's
//! bytes, a crash between install and link).

use std::time::{Duration, SystemTime};

use cutover_store::registry as rows;

use crate::error::{RegistryError, Result};
use crate::uploads::UploadInfo;
use crate::{GRACE_MS, Registry, STALE_UPLOAD_MS};

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Blob files deleted.
    pub blobs_deleted: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Stale uploads removed.
    pub uploads_removed: u64,
}

fn modified_ms(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

impl Registry {
    /// Removes stale uploads, then sweeps unreferenced blobs.
    pub async fn gc(&self) -> Result<GcReport> {
        let _exclusive = self.gc_lock.write().await;
        let now = self.now();
        let mut report = GcReport {
            uploads_removed: self.remove_stale_uploads(now).await?,
            ..GcReport::default()
        };
        let live = self
            .store
            .call(move |c| rows::live_digests(c, now.saturating_sub(GRACE_MS)))
            .await?;
        let blobs = self.root.join("blobs").join("sha256");
        let root = blobs.clone();
        // A directory walk of plain std calls, off the async workers.
        let files = tokio::task::spawn_blocking(move || walk(&root))
            .await
            .map_err(|e| RegistryError::io("walk", &blobs)(std::io::Error::other(e)))??;
        for (hex, path, size) in files {
            let digest = format!("sha256:{hex}");
            if live.contains(&digest) {
                continue;
            }
            tokio::fs::remove_file(&path)
                .await
                .map_err(RegistryError::io("delete", &path))?;
            let d = digest.clone();
            self.store.call(move |c| rows::forget_blob(c, &d)).await?;
            tracing::debug!(%digest, size, "registry gc: deleted a blob");
            report.blobs_deleted += 1;
            report.bytes_freed += size;
        }
        tracing::info!(?report, "registry garbage collection done");
        Ok(report)
    }

    /// Removes uploads started more than a day ago (and any directory in
    /// `uploads/` that is not an upload, once as old).
    async fn remove_stale_uploads(&self, now: u64) -> Result<u64> {
        let dir = self.root.join("uploads");
        let mut entries = tokio::fs::read_dir(&dir)
            .await
            .map_err(RegistryError::io("list", &dir))?;
        let mut removed = 0;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(RegistryError::io("list", &dir))?
        {
            let path = entry.path();
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            let started = match tokio::fs::read(path.join("info.json")).await {
                Ok(b) => serde_json::from_slice::<UploadInfo>(&b)
                    .map_or(modified_ms(&meta), |i| i.started_at_ms),
                Err(_) => modified_ms(&meta),
            };
            if now.saturating_sub(started) < STALE_UPLOAD_MS {
                continue;
            }
            let gone = if meta.is_dir() {
                tokio::fs::remove_dir_all(&path).await
            } else {
                tokio::fs::remove_file(&path).await
            };
            gone.map_err(RegistryError::io("delete", &path))?;
            if let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| uuid::Uuid::parse_str(n).ok())
            {
                self.sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
            removed += 1;
        }
        Ok(removed)
    }
}

/// Every blob file: (hex, path, size).
fn walk(root: &std::path::Path) -> Result<Vec<(String, std::path::PathBuf, u64)>> {
    let mut out = Vec::new();
    for prefix in std::fs::read_dir(root).map_err(RegistryError::io("list", root))? {
        let prefix = prefix.map_err(RegistryError::io("list", root))?.path();
        if !prefix.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&prefix).map_err(RegistryError::io("list", &prefix))? {
            let file = file.map_err(RegistryError::io("list", &prefix))?;
            let meta = file
                .metadata()
                .map_err(RegistryError::io("stat", &file.path()))?;
            if let Some(hex) = file.file_name().to_str() {
                out.push((hex.to_string(), file.path(), meta.len()));
            }
        }
    }
    Ok(out)
}

/// How often the server collects.
pub const GC_INTERVAL: Duration = Duration::from_secs(60 * 60);
