//! The `Scans` the server uses until the scanning service is wired in:
//! nothing is ever scanned, so no image has a scan (ECR's API answers
//! `ScanNotFoundException`), and a requested scan ends at once as
//! `UNSUPPORTED_IMAGE`, saying why, instead of staying in progress.

use std::sync::Arc;

use async_trait::async_trait;
use cutover_scan::SeverityCounts;
use tokio::sync::Notify;

use super::scans::{ScanError, ScanReport, ScanStatus, Scans};

/// No scanner.
#[derive(Debug, Default)]
pub(crate) struct NoScanner {
    changed: Arc<Notify>,
    /// The images a scan was asked of (they report `UNSUPPORTED_IMAGE`).
    asked: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

#[async_trait]
impl Scans for NoScanner {
    async fn start(&self, repository: &str, digest: &str) -> Result<(), ScanError> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((repository.to_string(), digest.to_string()));
        self.changed.notify_waiters();
        Ok(())
    }

    async fn report(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ScanReport>, ScanError> {
        let asked = self
            .asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&(repository.to_string(), digest.to_string()));
        Ok(asked.then(|| ScanReport {
            status: ScanStatus::UnsupportedImage,
            description: "this server has no image scanner".into(),
            completed_at_ms: None,
            advisories_updated_at_ms: None,
            findings: Vec::new(),
            counts: SeverityCounts::default(),
        }))
    }

    fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}
