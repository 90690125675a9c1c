//! The image scan gate as a pipeline action (`Custom`/`CutoverImageScan`,
//! category `Test`), and its seam to the control plane: [`ImageScans`] is
//! what the action needs of the server's scanning service (scan an image
//! of its registry unless a current scan exists, and wait for it). The
//! server implements it; this crate never depends on the server. Without
//! one (standalone builds, tests that do not set it) the action fails and
//! says why.

use std::sync::Arc;

use async_trait::async_trait;
use cutover_pipeline::engine::ActionRequest;
use cutover_scan::{Severity, SeverityCounts};
use tokio_util::sync::CancellationToken;

/// An ended scan, as the gate reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageScanOutcome {
    /// Scanned: the findings counted by severity.
    Complete {
        /// The manifest digest scanned.
        digest: String,
        /// The findings by severity.
        counts: SeverityCounts,
    },
    /// Not an image the scanner reads, and why (the gate passes).
    Unsupported(String),
    /// The scan failed, and why (the gate fails).
    Failed(String),
}

/// The control plane's scanning service, as the gate uses it.
#[async_trait]
pub trait ImageScans: Send + Sync {
    /// Scans the image `reference` (a tag or digest) of `repository`
    /// unless a scan against the current advisories exists, and waits
    /// until it ends. `Err` when the image does not exist.
    async fn scan_and_wait(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<ImageScanOutcome, String>;
}

/// How long an action waits for the server to provide a service.
const SERVICE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A service the server sets just after start (scanning, host
/// deployments) once set, or `None` after [`SERVICE_WAIT`] (a process
/// without one).
pub(crate) async fn wait_for<T: ?Sized>(
    mut rx: tokio::sync::watch::Receiver<Option<Arc<T>>>,
) -> Option<Arc<T>> {
    let set = tokio::time::timeout(SERVICE_WAIT, rx.wait_for(Option::is_some)).await;
    set.ok()?.ok()?.clone()
}

/// Runs the gate action: the summary when it passes, why when it fails.
pub(crate) async fn action(
    scans: Option<&dyn ImageScans>,
    req: &ActionRequest,
    cancel: CancellationToken,
) -> Result<String, String> {
    let scans = scans.ok_or("image scanning is not available in this process")?;
    let cfg = &req.configuration;
    let repository = cfg
        .get("RepositoryName")
        .ok_or("the configuration does not name RepositoryName")?;
    let reference = cfg
        .get("ImageDigest")
        .or(cfg.get("ImageTag"))
        .map_or("latest", String::as_str);
    let fail_on: Severity = cfg
        .get("FailOn")
        .map_or("HIGH", String::as_str)
        .to_ascii_uppercase()
        .parse()
        .map_err(|e| format!("FailOn: {e}"))?;
    let image = format!("{repository}:{reference}");
    let outcome = tokio::select! {
        () = cancel.cancelled() => return Err("stopped".into()),
        o = scans.scan_and_wait(repository, reference) => o?,
    };
    match outcome {
        ImageScanOutcome::Complete { digest, counts } => {
            let n = counts.at_or_above(fail_on);
            let shown = counts
                .0
                .iter()
                .rev()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            if n > 0 {
                Err(format!(
                    "{image} ({digest}) has {n} finding(s) at or above {fail_on} ({shown})"
                ))
            } else {
                Ok(format!(
                    "{image} ({digest}): no finding at or above {fail_on}{}{shown}",
                    if shown.is_empty() { "" } else { "; " }
                ))
            }
        }
        ImageScanOutcome::Unsupported(why) => {
            Ok(format!("{image} is not an image the scanner reads: {why}"))
        }
        ImageScanOutcome::Failed(why) => Err(format!("the scan of {image} failed: {why}")),
    }
}
