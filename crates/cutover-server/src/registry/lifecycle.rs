//! Lifecycle policies at work: which images a policy expires now
//! ([`expiring`], the one place `cutover_spec::ecr::evaluate` is called, so
//! ECR's preview and a run cannot disagree), the run that deletes them
//! ([`run`]: at start, then hourly, and on demand with
//! `POST /v1/registry/lifecycle`), and the previews ECR's
//! StartLifecyclePolicyPreview leaves for GetLifecyclePolicyPreview.
//!
//! A run deletes an expired image's manifest and tags in one store
//! transaction per run; its blobs stay for the registry's garbage
//! collection. Every run that deletes something is logged, image by image.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cutover_api::registry::{ExpiredImage, LifecycleRun, LifecycleRunResponse};
use cutover_clock::SharedClock;
use cutover_spec::ecr::{ImageInfo, LifecyclePolicy, evaluate, parse_lifecycle_policy};
use cutover_store::registry::{self as rows, ImageRow};
use cutover_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

/// How often the scheduled run comes (ECR evaluates "at least once within
/// 24 hours"; Cutover runs hourly).
pub(crate) const RUN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// The file name a policy's text is read under (its errors' prefix).
pub(crate) const POLICY_FILE: &str = "lifecyclePolicyText";

/// An image a policy expires, and the priority of the rule that does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expiring {
    /// The image.
    pub(crate) image: ImageRow,
    /// ECR's `appliedRulePriority`.
    pub(crate) rule_priority: u32,
}

/// The images `policy` expires in `repo` at `now_ms`, by rule priority.
/// A preview shows exactly this; a run deletes exactly this.
pub(crate) fn expiring(
    c: &rusqlite::Connection,
    repo: &str,
    policy: &LifecyclePolicy,
    now_ms: u64,
) -> Result<Vec<Expiring>, StoreError> {
    let images = rows::list_images(c, repo)?;
    let infos: Vec<ImageInfo<'_>> = images
        .iter()
        .map(|i| ImageInfo {
            digest: &i.digest,
            tags: &i.tags,
            pushed_at_ms: i.pushed_at_ms,
        })
        .collect();
    let expired = evaluate(policy, &infos, now_ms);
    let by_digest: HashMap<&str, &ImageRow> =
        images.iter().map(|i| (i.digest.as_str(), i)).collect();
    Ok(expired
        .into_iter()
        .filter_map(|e| {
            by_digest.get(e.digest.as_str()).map(|i| Expiring {
                image: (*i).clone(),
                rule_priority: e.rule_priority,
            })
        })
        .collect())
}

/// A preview of one policy text at one instant.
#[derive(Debug, Clone)]
pub(crate) struct Preview {
    /// The policy's text.
    pub(crate) text: String,
    /// What it expires.
    pub(crate) expiring: Vec<Expiring>,
}

/// The registry's lifecycle state kept in memory: the latest preview and
/// the latest evaluation time of each repository (ECR keeps a preview for
/// a while too; a restart forgets them, and the next run sets the times).
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    previews: Mutex<HashMap<String, Preview>>,
    evaluated: Mutex<HashMap<String, u64>>,
}

impl Lifecycle {
    /// Keeps `preview` as `repo`'s latest.
    pub(crate) fn set_preview(&self, repo: &str, preview: Preview) {
        lock(&self.previews).insert(repo.to_string(), preview);
    }

    /// `repo`'s latest preview.
    pub(crate) fn preview(&self, repo: &str) -> Option<Preview> {
        lock(&self.previews).get(repo).cloned()
    }

    /// When `repo`'s policy was last evaluated by a run.
    pub(crate) fn evaluated_at(&self, repo: &str) -> Option<u64> {
        lock(&self.evaluated).get(repo).copied()
    }

    /// Forgets a repository (deleted, or its policy replaced or removed).
    pub(crate) fn forget(&self, repo: &str) {
        lock(&self.previews).remove(repo);
        lock(&self.evaluated).remove(repo);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One run: every repository with a lifecycle policy loses, in one
/// transaction, exactly the images [`expiring`] lists at `now_ms`.
pub(crate) async fn run(
    store: &Arc<Store>,
    lifecycle: &Lifecycle,
    now_ms: u64,
) -> Result<LifecycleRunResponse, StoreError> {
    let runs = store
        .transact(move |c| {
            let mut runs = Vec::new();
            for repo in rows::list_repositories(c, None, usize::MAX)? {
                let Some(text) = &repo.lifecycle_policy else {
                    continue;
                };
                let policy = match parse_lifecycle_policy(POLICY_FILE, text) {
                    Ok(p) => p.value,
                    Err(e) => {
                        tracing::warn!(repository = %repo.name, error = %e, "stored lifecycle policy no longer reads; skipped");
                        continue;
                    }
                };
                let expired = expiring(c, &repo.name, &policy, now_ms)?;
                for e in &expired {
                    rows::delete_manifest(c, &repo.name, &e.image.digest)?;
                }
                runs.push(LifecycleRun {
                    repository: repo.name.clone(),
                    expired: expired
                        .into_iter()
                        .map(|e| ExpiredImage {
                            digest: e.image.digest,
                            tags: e.image.tags,
                            pushed_at_ms: e.image.pushed_at_ms,
                            rule_priority: e.rule_priority,
                        })
                        .collect(),
                });
            }
            Ok(runs)
        })
        .await?;
    for r in &runs {
        lock(&lifecycle.evaluated).insert(r.repository.clone(), now_ms);
        for e in &r.expired {
            tracing::info!(repository = %r.repository, digest = %e.digest, tags = ?e.tags, rule_priority = e.rule_priority, "lifecycle policy expired an image");
        }
    }
    Ok(LifecycleRunResponse {
        evaluated_at_ms: now_ms,
        repositories: runs,
    })
}

/// Runs every repository's lifecycle policy at start and then every
/// [`RUN_INTERVAL`].
pub(crate) async fn schedule(
    store: Arc<Store>,
    lifecycle: Arc<Lifecycle>,
    clock: SharedClock,
    cancel: CancellationToken,
) {
    loop {
        if let Err(e) = run(&store, &lifecycle, clock.now_ms()).await {
            tracing::warn!(error = %e, "lifecycle policy run failed");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(RUN_INTERVAL) => {}
        }
    }
}
