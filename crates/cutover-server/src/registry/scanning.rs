//! The scanning service behind [`Scans`]: a queue of images and at most
//! [`WORKERS`] scans at once (CPU is scarce), scan on push, manual starts,
//! findings stored per manifest digest with the advisory database version
//! they were matched against, and continuous rescans: whenever the
//! advisory data changes (an import), every stored scan of another version
//! is queued again and its findings replaced when it ends.
//!
//! The advisory database is the file `<data>/advisories.db`, loaded at
//! start, replaced atomically by an import (`scanning_advisories.rs`).
//! A restart resumes the queue from the store: scans in progress and scans
//! of another version are queued again.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use cutover_api::registry::ScanStatus as Stored;
use cutover_clock::SharedClock;
use cutover_registry::{Registry, RegistryError};
use cutover_scan::{AdvisoryDb, SeverityCounts};
use cutover_store::Store;
use cutover_store::scans::{self as rows, AdvisoryMeta, ScanRow};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::scanning_image::{self, Read};
use super::scans::{ScanError, ScanReport, ScanStatus, Scans};

/// How many images are scanned at once.
pub(crate) const WORKERS: usize = 2;

/// ECR's description of a completed scan.
const COMPLETE: &str = "The scan was completed successfully.";

/// One image to scan.
#[derive(Debug)]
struct Job {
    repository: String,
    digest: String,
}

/// The advisory database in use and its metadata.
pub(crate) struct Loaded {
    pub(crate) db: Arc<AdvisoryDb>,
    pub(crate) meta: Option<AdvisoryMeta>,
}

/// The scanning service.
pub(crate) struct ScanService {
    pub(crate) registry: Arc<Registry>,
    pub(crate) store: Arc<Store>,
    pub(crate) clock: SharedClock,
    /// `<data>/advisories.db`.
    pub(crate) db_path: PathBuf,
    pub(crate) advisories: RwLock<Loaded>,
    /// Imports run one at a time.
    pub(crate) import_lock: tokio::sync::Mutex<()>,
    /// Digests queued or being scanned.
    queued: Mutex<HashSet<String>>,
    queue: mpsc::UnboundedSender<Job>,
    changed: Arc<Notify>,
}

impl ScanService {
    /// Loads the advisory database, starts the workers and queues the
    /// scans a restart interrupted or the data made stale.
    pub(crate) async fn start(
        data_dir: &std::path::Path,
        registry: Arc<Registry>,
        clock: SharedClock,
        cancel: CancellationToken,
    ) -> anyhow::Result<Arc<ScanService>> {
        let store = registry.store().clone();
        let db_path = data_dir.join("advisories.db");
        let db = if db_path.exists() {
            let p = db_path.clone();
            match tokio::task::spawn_blocking(move || AdvisoryDb::load(&p)).await? {
                Ok(db) => db,
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the advisory database; scanning with none until the next import");
                    AdvisoryDb::default()
                }
            }
        } else {
            AdvisoryDb::default()
        };
        let meta = store
            .call(rows::advisory_meta)
            .await?
            .filter(|m| m.version == db.version());
        let (tx, rx) = mpsc::unbounded_channel();
        let service = Arc::new(ScanService {
            registry,
            store,
            clock,
            db_path,
            advisories: RwLock::new(Loaded {
                db: Arc::new(db),
                meta,
            }),
            import_lock: tokio::sync::Mutex::new(()),
            queued: Mutex::new(HashSet::new()),
            queue: tx,
            changed: Arc::new(Notify::new()),
        });
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WORKERS {
            tokio::spawn(service.clone().work(rx.clone(), cancel.clone()));
        }
        service.rescan_stale().await?;
        Ok(service)
    }

    /// The advisory database in use.
    pub(crate) fn db(&self) -> (Arc<AdvisoryDb>, Option<u64>) {
        let l = self.advisories.read().unwrap_or_else(|e| e.into_inner());
        (l.db.clone(), l.meta.as_ref().map(|m| m.updated_at_ms))
    }

    /// The directory the advisory database lives in (uploads are kept there).
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self.db_path.parent().unwrap_or(std::path::Path::new("."))
    }

    /// How many images are queued or being scanned.
    pub(crate) fn pending(&self) -> usize {
        self.lock_queued().len()
    }

    fn lock_queued(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues every scan in progress or matched against another version.
    pub(crate) async fn rescan_stale(&self) -> Result<(), cutover_store::StoreError> {
        let version = self.db().0.version().to_string();
        let stale = self
            .store
            .call(move |c| rows::stale_scans(c, &version))
            .await?;
        for (digest, repository) in stale {
            match repository {
                Some(repository) => self.enqueue(repository, digest).await?,
                None => {
                    // No repository holds the image any more.
                    self.store
                        .call(move |c| rows::delete_scan(c, &digest))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Queues a scan unless one is queued or running; its row says
    /// IN_PROGRESS before the job is queued (the last findings stay).
    async fn enqueue(
        &self,
        repository: String,
        digest: String,
    ) -> Result<(), cutover_store::StoreError> {
        if !self.lock_queued().insert(digest.clone()) {
            return Ok(());
        }
        let d = digest.clone();
        if let Err(e) = self
            .store
            .transact(move |c| rows::mark_in_progress(c, &d))
            .await
        {
            self.lock_queued().remove(&digest);
            return Err(e);
        }
        let _ = self.queue.send(Job { repository, digest });
        Ok(())
    }

    /// Called when a manifest was put: scans it if its repository scans on push.
    pub(crate) async fn pushed(&self, repository: &str, digest: &str) {
        match self.registry.repository(repository).await {
            Ok(r) if r.scan_on_push => {
                if let Err(e) = self.start(repository, digest).await {
                    tracing::warn!(error = %e, repository, digest, "cannot queue the scan on push");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, repository, "cannot read the repository"),
        }
    }

    async fn work(
        self: Arc<Self>,
        rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
        cancel: CancellationToken,
    ) {
        loop {
            let job = tokio::select! {
                () = cancel.cancelled() => return,
                job = async { rx.lock().await.recv().await } => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            let (db, updated_at) = self.db();
            let row = self.scan(&job, &db, updated_at).await;
            let digest = job.digest.clone();
            match self.store.transact(move |c| rows::put_scan(c, &row)).await {
                Ok(()) => {}
                Err(e) => tracing::error!(error = %e, digest, "cannot store a scan"),
            }
            // The data changed while it ran: the findings are already stale.
            if self.db().0.version() != db.version() {
                let _ = self.queue.send(job);
                continue;
            }
            self.lock_queued().remove(&job.digest);
            self.changed.notify_waiters();
        }
    }

    async fn scan(&self, job: &Job, db: &AdvisoryDb, updated_at: Option<u64>) -> ScanRow {
        let mut row = ScanRow {
            digest: job.digest.clone(),
            status: Stored::Failed,
            description: String::new(),
            db_version: None,
            completed_at_ms: None,
            advisories_updated_at_ms: None,
            ecosystems: Vec::new(),
            findings: Vec::new(),
        };
        match scanning_image::read(&self.registry, &job.repository, &job.digest).await {
            Read::Inventory(inventory) => {
                row.findings = db.matches(&inventory);
                row.ecosystems = scanning_image::ecosystems(&inventory);
                row.status = Stored::Complete;
                row.description = COMPLETE.into();
                row.db_version = Some(db.version().to_string());
                row.completed_at_ms = Some(self.clock.now_ms());
                row.advisories_updated_at_ms = updated_at;
                tracing::info!(
                    digest = job.digest,
                    findings = row.findings.len(),
                    "image scanned"
                );
            }
            Read::Unsupported(why) => {
                row.status = Stored::UnsupportedImage;
                row.description = why;
            }
            Read::Failed(why) => {
                tracing::warn!(digest = job.digest, reason = why, "image scan failed");
                row.description = why;
            }
        }
        row
    }

    async fn exists(&self, repository: &str, digest: &str) -> Result<(), ScanError> {
        match self.registry.stat_manifest(repository, digest).await {
            Ok(_) => Ok(()),
            Err(RegistryError::Refused { .. }) => Err(ScanError::ImageNotFound {
                repository: repository.to_string(),
                digest: digest.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

fn seam_status(s: Stored) -> ScanStatus {
    match s {
        Stored::InProgress => ScanStatus::InProgress,
        Stored::Complete => ScanStatus::Complete,
        Stored::Failed => ScanStatus::Failed,
        Stored::UnsupportedImage => ScanStatus::UnsupportedImage,
    }
}

#[async_trait]
impl Scans for ScanService {
    async fn start(&self, repository: &str, digest: &str) -> Result<(), ScanError> {
        self.exists(repository, digest).await?;
        Ok(self
            .enqueue(repository.to_string(), digest.to_string())
            .await?)
    }

    async fn report(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ScanReport>, ScanError> {
        self.exists(repository, digest).await?;
        let d = digest.to_string();
        let row = self.store.call(move |c| rows::get_scan(c, &d)).await?;
        Ok(row.map(|r| ScanReport {
            status: seam_status(r.status),
            description: r.description,
            completed_at_ms: r.completed_at_ms,
            advisories_updated_at_ms: r.advisories_updated_at_ms,
            counts: SeverityCounts::of(&r.findings),
            findings: r.findings,
        }))
    }

    fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}

#[async_trait]
impl cutover_ci::ImageScans for ScanService {
    async fn scan_and_wait(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<cutover_ci::ImageScanOutcome, String> {
        let digest = self
            .registry
            .stat_manifest(repository, reference)
            .await
            .map_err(|e| format!("image {repository}:{reference}: {e}"))?
            .digest;
        let err = |e: ScanError| e.to_string();
        if self
            .report(repository, &digest)
            .await
            .map_err(err)?
            .is_none()
        {
            self.start(repository, &digest).await.map_err(err)?;
        }
        loop {
            // Registered before reading, so an end in between is not missed.
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let Some(r) = self.report(repository, &digest).await.map_err(err)? else {
                return Err(format!("the scan of {digest} was forgotten"));
            };
            match r.status {
                ScanStatus::InProgress => notified.await,
                ScanStatus::Complete => {
                    return Ok(cutover_ci::ImageScanOutcome::Complete {
                        digest,
                        counts: r.counts,
                    });
                }
                ScanStatus::Failed => {
                    return Ok(cutover_ci::ImageScanOutcome::Failed(r.description));
                }
                ScanStatus::UnsupportedImage => {
                    return Ok(cutover_ci::ImageScanOutcome::Unsupported(r.description));
                }
            }
        }
    }
}
