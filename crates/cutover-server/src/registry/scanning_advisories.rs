//! The advisory database's updates: an OSV `all.zip` a client uploaded
//! (the server never reads a path a client names) is merged into the
//! database in use, which is saved atomically (written beside, renamed
//! over) and swapped in; when its version changed, every stored scan is
//! queued again (continuous rescans).

use std::sync::Arc;

use cutover_api::registry::{AdvisoryStatus, ImportResponse};
use cutover_scan::{DbBuilder, import_zip};
use cutover_store::scans::{self as rows, AdvisoryMeta};

use super::scanning::{Loaded, ScanService};

/// The most notes an import answers with.
const MAX_NOTES: usize = 100;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    /// The upload is not a readable zip archive.
    #[error("{0}")]
    Archive(#[from] cutover_scan::ScanError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] cutover_store::StoreError),
    /// The import task stopped.
    #[error("the import stopped: {0}")]
    Stopped(#[from] tokio::task::JoinError),
}

impl ScanService {
    /// Merges the OSV records of the zip archive `file` into the database.
    pub(crate) async fn import(&self, file: std::fs::File) -> Result<ImportResponse, ImportError> {
        let _one_at_a_time = self.import_lock.lock().await;
        let (current, _) = self.db();
        let path = self.db_path.clone();
        let (records, kept, notes, db) = tokio::task::spawn_blocking(move || {
            let imported = import_zip(std::io::BufReader::new(file))?;
            let mut builder = DbBuilder::from_db(&current);
            let kept = imported.records.iter().filter(|r| builder.add(r)).count();
            let db = builder.build();
            if db.version() != current.version() {
                db.save(&path)?;
            }
            Ok::<_, cutover_scan::ScanError>((imported.records.len(), kept, imported.notes, db))
        })
        .await??;
        let changed = db.version() != self.db().0.version();
        if changed {
            let meta = AdvisoryMeta {
                version: db.version().to_string(),
                advisories: db.len() as u64,
                updated_at_ms: self.clock.now_ms(),
            };
            let m = meta.clone();
            self.store
                .transact(move |c| rows::set_advisory_meta(c, &m))
                .await?;
            *self.advisories.write().unwrap_or_else(|e| e.into_inner()) = Loaded {
                db: Arc::new(db),
                meta: Some(meta),
            };
            tracing::info!(
                records,
                kept,
                "advisories imported; rescanning stored images"
            );
            self.rescan_stale().await?;
        }
        Ok(ImportResponse {
            records: records as u64,
            kept: kept as u64,
            skipped: (records - kept) as u64,
            notes: notes.into_iter().take(MAX_NOTES).collect(),
            status: self.status().await?,
            changed,
        })
    }

    /// The database's version, size and update time, with the ecosystems
    /// of the stored images.
    pub(crate) async fn status(&self) -> Result<AdvisoryStatus, cutover_store::StoreError> {
        let (db, updated_at_ms) = self.db();
        let image_ecosystems = self.store.call(rows::image_ecosystems).await?;
        Ok(AdvisoryStatus {
            version: db.version().to_string(),
            advisories: db.len() as u64,
            updated_at_ms,
            image_ecosystems,
            rescans_pending: self.pending() as u64,
        })
    }
}
