//! ECR's scanning operations and DescribeImages' scan fields over a fake
//! `Scans` (the scanning service is tested on its own), on the real store.

// The tests seed the store synchronously.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::ecr::Operation;
use cutover_aws::sigv4::Caller;
use cutover_scan::{CvssScore, Finding, Severity, SeverityCounts};
use cutover_store::registry::{self as rows, NewManifest, RepositoryRow, TagMutability};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::aws::wire::Call;
use crate::registry::scans::{ScanError, ScanReport, ScanStatus, Scans};
use crate::testing::Harness;

/// Scans asked for, and one finished report for every image asked.
#[derive(Default)]
struct FakeScans {
    started: Mutex<Vec<(String, String)>>,
    changed: Arc<Notify>,
}

fn finding() -> Finding {
    Finding {
        name: "CVE-2026-0001".into(),
        advisory_id: "DSA-1-1".into(),
        aliases: vec!["CVE-2026-0001".into()],
        package_name: "openssl".into(),
        package_version: "3.0.1-1".into(),
        ecosystem: "Debian:12".into(),
        fixed_version: Some("3.0.2-1".into()),
        severity: Severity::High,
        cvss: Some(CvssScore {
            score: 7.5,
            vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N".into(),
        }),
        summary: "a hole".into(),
        uri: "https://osv.dev/vulnerability/DSA-1-1".into(),
        path: "var/lib/dpkg/status".into(),
    }
}

#[async_trait]
impl Scans for FakeScans {
    async fn start(&self, repository: &str, digest: &str) -> Result<(), ScanError> {
        self.started
            .lock()
            .unwrap()
            .push((repository.into(), digest.into()));
        Ok(())
    }

    async fn report(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ScanReport>, ScanError> {
        let asked = self
            .started
            .lock()
            .unwrap()
            .iter()
            .any(|(r, d)| r == repository && d == digest);
        let findings = vec![finding()];
        Ok(asked.then(|| ScanReport {
            status: ScanStatus::Complete,
            description: "The scan was completed successfully.".into(),
            completed_at_ms: Some(2_000),
            advisories_updated_at_ms: Some(1_000),
            counts: SeverityCounts::of(&findings),
            findings,
        }))
    }

    fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}

const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

async fn harness() -> (Harness, Arc<FakeScans>) {
    let mut h = Harness::start().await;
    let fake = Arc::new(FakeScans::default());
    h.state.scans = fake.clone();
    h.state
        .store
        .with(|c| {
            rows::create_repository(
                c,
                &RepositoryRow {
                    name: "web".into(),
                    created_at_ms: 1,
                    tag_mutability: TagMutability::Immutable,
                    scan_on_push: true,
                    anonymous_pull: false,
                    lifecycle_policy: None,
                },
            )?;
            rows::put_manifest(
                c,
                "web",
                &NewManifest {
                    digest: DIGEST.into(),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    size: 2,
                    image_size: 1234,
                    artifact_type: None,
                    subject: None,
                    annotations: BTreeMap::new(),
                    refs: Vec::new(),
                },
                Some("1"),
                1_500,
            )
        })
        .unwrap();
    (h, fake)
}

async fn ecr(h: &Harness, op: Operation, body: Value) -> Result<Value, AwsError> {
    let caller = Caller {
        access_key_id: "AKIATEST".into(),
        region: "us-east-1".into(),
        service: "ecr".into(),
    };
    let call = Call {
        st: &h.state,
        caller: &caller,
        request_id: "r-1",
    };
    super::call(&call, op, body.to_string().as_bytes())
        .await
        .map(|r| r.json())
}

#[tokio::test(start_paused = true)]
async fn scan_findings_take_ecr_basic_shape_after_a_scan_and_not_before() {
    let (h, fake) = harness().await;
    let id = json!({"repositoryName": "web", "imageId": {"imageTag": "1"}});
    let before = ecr(&h, Operation::DescribeImageScanFindings, id.clone())
        .await
        .unwrap_err();
    assert_eq!(before.code, "ScanNotFoundException");
    let images = ecr(
        &h,
        Operation::DescribeImages,
        json!({"repositoryName": "web"}),
    )
    .await
    .unwrap();
    assert!(images["imageDetails"][0].get("imageScanStatus").is_none());

    let started = ecr(&h, Operation::StartImageScan, id.clone())
        .await
        .unwrap();
    assert_eq!(started["imageScanStatus"]["status"], "IN_PROGRESS");
    assert_eq!(started["imageId"]["imageDigest"], DIGEST);
    assert_eq!(
        fake.started.lock().unwrap().as_slice(),
        [("web".to_string(), DIGEST.to_string())]
    );

    let found = ecr(&h, Operation::DescribeImageScanFindings, id)
        .await
        .unwrap();
    assert_eq!(found["imageScanStatus"]["status"], "COMPLETE");
    let f = &found["imageScanFindings"];
    assert_eq!(f["imageScanCompletedAt"], 2.0);
    assert_eq!(f["vulnerabilitySourceUpdatedAt"], 1.0);
    assert_eq!(f["findingSeverityCounts"], json!({"HIGH": 1}));
    assert_eq!(
        f["findings"][0],
        json!({
            "name": "CVE-2026-0001",
            "description": "a hole",
            "uri": "https://osv.dev/vulnerability/DSA-1-1",
            "severity": "HIGH",
            "attributes": [
                {"key": "package_name", "value": "openssl"},
                {"key": "package_version", "value": "3.0.1-1"},
                {"key": "CVSS3_SCORE", "value": "7.5"},
                {"key": "CVSS3_VECTOR", "value": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"},
            ],
        })
    );

    let images = ecr(
        &h,
        Operation::DescribeImages,
        json!({"repositoryName": "web"}),
    )
    .await
    .unwrap();
    let d = &images["imageDetails"][0];
    assert_eq!(d["imageScanStatus"]["status"], "COMPLETE");
    assert_eq!(
        d["imageScanFindingsSummary"]["findingSeverityCounts"],
        json!({"HIGH": 1})
    );
    assert_eq!(d["imageSizeInBytes"], 1234);
    assert_eq!(d["imagePushedAt"], 1.5);
}

#[tokio::test(start_paused = true)]
async fn scans_of_unknown_images_and_bad_ids_are_refused_as_ecr_does() {
    let (h, fake) = harness().await;
    let refused = |body: Value| ecr(&h, Operation::StartImageScan, body);
    let missing = refused(json!({"repositoryName": "web", "imageId": {"imageTag": "2"}}))
        .await
        .unwrap_err();
    assert_eq!(missing.code, "ImageNotFoundException");
    assert!(
        missing.message.contains("imageTag:'2'"),
        "{}",
        missing.message
    );
    let mismatch = refused(
        json!({"repositoryName": "web", "imageId": {"imageTag": "1", "imageDigest": format!("sha256:{}", "b".repeat(64))}}),
    )
    .await
    .unwrap_err();
    assert_eq!(mismatch.code, "ImageNotFoundException");
    let bad = refused(json!({"repositoryName": "web", "imageId": {"imageDigest": "md5:x"}}))
        .await
        .unwrap_err();
    assert_eq!(bad.code, "InvalidParameterException");
    let none = refused(json!({"repositoryName": "web", "imageId": {}}))
        .await
        .unwrap_err();
    assert_eq!(none.code, "InvalidParameterException");
    let repo = refused(json!({"repositoryName": "nope", "imageId": {"imageTag": "1"}}))
        .await
        .unwrap_err();
    assert_eq!(repo.code, "RepositoryNotFoundException");
    let other = refused(
        json!({"registryId": "000000000000", "repositoryName": "web", "imageId": {"imageTag": "1"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(other.code, "InvalidParameterException");
    assert!(fake.started.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_image_an_index_lists_is_not_deleted_until_the_index_is() {
    let (h, _) = harness().await;
    let index = format!("sha256:{}", "c".repeat(64));
    let stored = index.clone();
    h.state
        .store
        .with(move |c| {
            rows::put_manifest(
                c,
                "web",
                &NewManifest {
                    digest: stored,
                    media_type: "application/vnd.oci.image.index.v1+json".into(),
                    size: 2,
                    image_size: 0,
                    artifact_type: None,
                    subject: None,
                    annotations: BTreeMap::new(),
                    refs: vec![(DIGEST.into(), rows::RefKind::Manifest)],
                },
                Some("multi"),
                1_600,
            )
        })
        .unwrap();
    let delete = |id: Value| {
        ecr(
            &h,
            Operation::BatchDeleteImage,
            json!({"repositoryName": "web", "imageIds": [id]}),
        )
    };
    let refused = delete(json!({"imageDigest": DIGEST})).await.unwrap();
    assert_eq!(
        refused["failures"][0]["failureCode"],
        "ImageReferencedByManifestList"
    );
    assert_eq!(refused["imageIds"], json!([]));
    let gone = delete(json!({"imageTag": "multi"})).await.unwrap();
    assert_eq!(gone["imageIds"][0]["imageDigest"], index.as_str());
    let child = delete(json!({"imageTag": "1"})).await.unwrap();
    assert_eq!(
        child["imageIds"],
        json!([{"imageDigest": DIGEST, "imageTag": "1"}])
    );
}
