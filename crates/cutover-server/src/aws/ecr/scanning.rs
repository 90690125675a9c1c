//! ECR's basic scanning over the `Scans` seam: StartImageScan,
//! DescribeImageScanFindings (ECR's basic-scanning shape: each finding's
//! `name`, `uri`, `severity` and the attributes `package_name`,
//! `package_version`, `CVSS3_SCORE`, `CVSS3_VECTOR`), and the scan fields
//! of DescribeImages. An image never scanned has no scan:
//! `ScanNotFoundException`, as on ECR.

use std::collections::BTreeMap;

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::Timestamp;
use cutover_aws::shapes::ecr::{
    Attribute, DescribeImageScanFindingsRequest, DescribeImageScanFindingsResponse,
    FindingSeverity, ImageIdentifier, ImageScanFinding, ImageScanFindings,
    ImageScanFindingsSummary, ImageScanStatus, ScanStatus, StartImageScanRequest,
    StartImageScanResponse, errors,
};
use cutover_scan::{Finding, Severity, SeverityCounts};

use super::{one_image, page, repository, shown};
use crate::aws::wire::{Call, internal};
use crate::registry::scans::{self, ScanError, ScanReport};

fn scan_failed(e: &ScanError) -> AwsError {
    internal(e, "ask the image scanner")
}

fn status(s: scans::ScanStatus) -> ScanStatus {
    match s {
        scans::ScanStatus::InProgress => ScanStatus::InProgress,
        scans::ScanStatus::Complete => ScanStatus::Complete,
        scans::ScanStatus::Failed => ScanStatus::Failed,
        scans::ScanStatus::UnsupportedImage => ScanStatus::UnsupportedImage,
    }
}

fn severity(s: Severity) -> FindingSeverity {
    match s {
        Severity::Undefined => FindingSeverity::Undefined,
        Severity::Informational => FindingSeverity::Informational,
        Severity::Low => FindingSeverity::Low,
        Severity::Medium => FindingSeverity::Medium,
        Severity::High => FindingSeverity::High,
        Severity::Critical => FindingSeverity::Critical,
    }
}

/// ECR's `findingSeverityCounts`.
fn counts(c: &SeverityCounts) -> BTreeMap<String, i32> {
    c.0.iter()
        .map(|(s, n)| (s.as_str().to_string(), *n as i32))
        .collect()
}

fn scan_status(r: &ScanReport) -> ImageScanStatus {
    ImageScanStatus {
        status: Some(status(r.status)),
        description: Some(r.description.clone()),
    }
}

/// DescribeImages' `imageScanStatus` and `imageScanFindingsSummary` of an
/// image (both absent when it was never scanned).
pub(super) async fn summary(
    call: &Call<'_>,
    repo: &str,
    digest: &str,
) -> Result<(Option<ImageScanStatus>, Option<ImageScanFindingsSummary>), AwsError> {
    let Some(r) = call
        .st
        .scans
        .report(repo, digest)
        .await
        .map_err(|e| scan_failed(&e))?
    else {
        return Ok((None, None));
    };
    let summary = r.completed_at_ms.map(|done| ImageScanFindingsSummary {
        image_scan_completed_at: Some(Timestamp::from_millis(done)),
        vulnerability_source_updated_at: r.advisories_updated_at_ms.map(Timestamp::from_millis),
        finding_severity_counts: Some(counts(&r.counts)),
    });
    Ok((Some(scan_status(&r)), summary))
}

pub(super) async fn start(
    call: &Call<'_>,
    req: StartImageScanRequest,
) -> Result<StartImageScanResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let image = one_image(call, &repo, &req.image_id).await?;
    call.st
        .scans
        .start(&repo.name, &image.digest)
        .await
        .map_err(|e| scan_failed(&e))?;
    Ok(StartImageScanResponse {
        registry_id: Some(call.account().to_string()),
        repository_name: Some(repo.name),
        image_id: Some(ImageIdentifier {
            image_digest: Some(image.digest),
            image_tag: req.image_id.image_tag,
        }),
        image_scan_status: Some(ImageScanStatus {
            status: Some(ScanStatus::InProgress),
            description: Some("The scan is in progress".into()),
        }),
    })
}

/// One finding in ECR's basic-scanning shape.
fn finding(f: &Finding) -> ImageScanFinding {
    let mut attributes = vec![
        attribute("package_name", &f.package_name),
        attribute("package_version", &f.package_version),
    ];
    if let Some(cvss) = &f.cvss
        && cvss.vector.starts_with("CVSS:3")
    {
        attributes.push(attribute("CVSS3_SCORE", &format!("{:.1}", cvss.score)));
        attributes.push(attribute("CVSS3_VECTOR", &cvss.vector));
    }
    ImageScanFinding {
        name: Some(f.name.clone()),
        description: (!f.summary.is_empty()).then(|| f.summary.clone()),
        uri: Some(f.uri.clone()),
        severity: Some(severity(f.severity)),
        attributes: Some(attributes),
    }
}

fn attribute(key: &str, value: &str) -> Attribute {
    Attribute {
        key: Some(key.into()),
        value: Some(value.into()),
    }
}

pub(super) async fn findings(
    call: &Call<'_>,
    req: DescribeImageScanFindingsRequest,
) -> Result<DescribeImageScanFindingsResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let image = one_image(call, &repo, &req.image_id).await?;
    let report = call
        .st
        .scans
        .report(&repo.name, &image.digest)
        .await
        .map_err(|e| scan_failed(&e))?
        .ok_or_else(|| {
            AwsError::client(
                errors::SCAN_NOT_FOUND_EXCEPTION,
                format!(
                    "Image scan does not exist for the image with '{}' in the repository with name '{}' in the registry with id '{}'",
                    shown(&req.image_id),
                    repo.name,
                    call.account()
                ),
            )
        })?;
    let (shown_findings, next) = page(
        report.findings.iter().map(finding).collect(),
        req.max_results,
        1000,
        req.next_token.as_deref(),
    )?;
    let scan_findings = report.completed_at_ms.map(|done| ImageScanFindings {
        image_scan_completed_at: Some(Timestamp::from_millis(done)),
        vulnerability_source_updated_at: report
            .advisories_updated_at_ms
            .map(Timestamp::from_millis),
        finding_severity_counts: Some(counts(&report.counts)),
        findings: Some(shown_findings),
        enhanced_findings: None,
    });
    Ok(DescribeImageScanFindingsResponse {
        registry_id: Some(call.account().to_string()),
        repository_name: Some(repo.name),
        image_id: Some(ImageIdentifier {
            image_digest: Some(image.digest),
            image_tag: req.image_id.image_tag,
        }),
        image_scan_status: Some(scan_status(&report)),
        image_scan_findings: scan_findings,
        next_token: next,
    })
}
