//! The scanning service in process (paused clock, real store, registry and
//! router): scan on push finds a HIGH finding in an image holding a package
//! with a known advisory and none in the fixed image; importing advisories
//! rescans stored images; hostile input (a corrupt layer, an artifact,
//! malformed and oversized records, a body that is no zip) never crashes
//! and says why.

use std::io::Write;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use cutover_scan::fixtures::{LayerBuilder, dpkg_paragraph, osv_record};
use cutover_scan::{Finding, Severity};
use cutover_store::registry::{self as rows, RepositoryRow, TagMutability};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Digest as _;
use tower::ServiceExt;

use super::scans::{ScanReport, ScanStatus};
use crate::testing::Harness;

const HIGH: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

async fn request(
    h: &Harness,
    method: Method,
    path: &str,
    ctype: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let token = h.state.aws.keys.mint_registry_token(h.state.clock.now_ms());
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{token}"));
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:7070")
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", ctype)
        .body(Body::from(body))
        .unwrap();
    let resp = crate::api::router(h.state.clone(), None)
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

async fn repository(h: &Harness, name: &str, scan_on_push: bool) {
    let r = RepositoryRow {
        name: name.into(),
        created_at_ms: 0,
        tag_mutability: TagMutability::Mutable,
        scan_on_push,
        anonymous_pull: false,
        lifecycle_policy: None,
    };
    h.state
        .store
        .transact(move |c| rows::create_repository(c, &r))
        .await
        .unwrap();
}

async fn blob(h: &Harness, repo: &str, bytes: Vec<u8>) -> Value {
    let d = digest(&bytes);
    let size = bytes.len();
    let body: cutover_registry::Body =
        Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from(bytes))]));
    h.state.registry.put_blob(repo, &d, body).await.unwrap();
    json!({"digest": d, "size": size})
}

/// Pushes an image of `layers` as `repo:tag` through `/v2/`; its digest.
async fn push(
    h: &Harness,
    repo: &str,
    tag: &str,
    config_type: &str,
    layers: Vec<Vec<u8>>,
) -> String {
    let config = blob(
        h,
        repo,
        br#"{"architecture":"amd64","os":"linux"}"#.to_vec(),
    )
    .await;
    let mut descs = Vec::new();
    for l in layers {
        let mut d = blob(h, repo, l).await;
        d["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+gzip");
        descs.push(d);
    }
    let mut config = config;
    config["mediaType"] = json!(config_type);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descs,
    }))
    .unwrap();
    let (status, body) = request(
        h,
        Method::PUT,
        &format!("/v2/{repo}/manifests/{tag}"),
        OCI_MANIFEST,
        manifest.clone(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    digest(&manifest)
}

/// A Debian 12 layer with openssl at `version`.
fn debian_layer(version: &str) -> Vec<u8> {
    let mut l = LayerBuilder::new();
    l.file(
        "etc/os-release",
        b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian 12\"\n",
        0o644,
    )
    .file(
        "var/lib/dpkg/status",
        dpkg_paragraph("openssl", version, None).as_bytes(),
        0o644,
    );
    l.gzip()
}

fn zip_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

async fn import(h: &Harness, zip: Vec<u8>) -> (StatusCode, Value) {
    let (status, body) = request(
        h,
        Method::POST,
        "/v1/vulnerabilities/import",
        "application/zip",
        zip,
    )
    .await;
    (status, serde_json::from_slice(&body).unwrap())
}

fn openssl_advisory() -> Vec<u8> {
    osv_record(
        "DEBIAN-CVE-2024-0001",
        "CVE-2024-0001",
        "Debian:12",
        "openssl",
        "3.0.2-1",
        HIGH,
    )
    .into_bytes()
}

/// The scan's report once it is no longer in progress (woken by `changed`).
async fn finished(h: &Harness, repo: &str, digest: &str) -> ScanReport {
    let changed = h.state.scans.changed();
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let r = h
            .state
            .scans
            .report(repo, digest)
            .await
            .unwrap()
            .expect("a scan was started");
        if r.status != ScanStatus::InProgress {
            return r;
        }
        notified.await;
    }
}

fn names(findings: &[Finding]) -> Vec<(&str, &str, Severity)> {
    findings
        .iter()
        .map(|f| (f.name.as_str(), f.package_name.as_str(), f.severity))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn scan_on_push_finds_the_advisory_and_the_fixed_image_passes() {
    let h = Harness::start().await;
    let (status, imported) = import(
        &h,
        zip_of(&[("DEBIAN-CVE-2024-0001.json", openssl_advisory())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{imported}");
    assert_eq!(
        (imported["kept"].as_u64(), imported["changed"].as_bool()),
        (Some(1), Some(true))
    );
    repository(&h, "web", true).await;
    let config = "application/vnd.oci.image.config.v1+json";
    let bad = push(&h, "web", "1", config, vec![debian_layer("3.0.1-1")]).await;
    let report = finished(&h, "web", &bad).await;
    assert_eq!(
        report.status,
        ScanStatus::Complete,
        "{}",
        report.description
    );
    assert_eq!(
        names(&report.findings),
        vec![("CVE-2024-0001", "openssl", Severity::High)]
    );
    assert_eq!(report.counts.at_or_above(Severity::High), 1);
    assert_eq!(report.findings[0].fixed_version.as_deref(), Some("3.0.2-1"));
    assert!(report.advisories_updated_at_ms.is_some());

    let good = push(&h, "web", "2", config, vec![debian_layer("3.0.2-1")]).await;
    let report = finished(&h, "web", &good).await;
    assert_eq!(report.status, ScanStatus::Complete);
    assert!(report.findings.is_empty());

    // The gate's view, by tag, through /v1.
    let (status, v) = h
        .call(
            Method::GET,
            "/v1/registry/scans?repository=web&reference=1&wait=5",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "COMPLETE");
    assert_eq!(v["counts"]["HIGH"], 1);
    assert_eq!(v["findings"][0]["packageName"], "openssl");
    let (status, v) = h
        .call(
            Method::GET,
            "/v1/registry/scans?repository=web&reference=nope",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    // A repository without scan on push scans on request only (findings
    // are kept per digest, so this is another image).
    repository(&h, "quiet", false).await;
    let d = push(&h, "quiet", "1", config, vec![debian_layer("3.0.0-1")]).await;
    assert!(h.state.scans.report("quiet", &d).await.unwrap().is_none());
    let (status, v) = h
        .call(
            Method::POST,
            "/v1/registry/scans",
            Some(json!({"repository": "quiet", "reference": "1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        finished(&h, "quiet", &d)
            .await
            .counts
            .at_or_above(Severity::High),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn importing_advisories_rescans_stored_images() {
    let h = Harness::start().await;
    repository(&h, "web", true).await;
    let d = push(
        &h,
        "web",
        "1",
        "application/vnd.oci.image.config.v1+json",
        vec![debian_layer("3.0.1-1")],
    )
    .await;
    let before = finished(&h, "web", &d).await;
    assert_eq!(before.status, ScanStatus::Complete);
    assert!(before.findings.is_empty());

    let changed = h.state.scans.changed();
    let notified = changed.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let (status, v) = import(&h, zip_of(&[("a.json", openssl_advisory())])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    notified.await;
    let after = finished(&h, "web", &d).await;
    assert_eq!(
        names(&after.findings),
        vec![("CVE-2024-0001", "openssl", Severity::High)]
    );

    // The same data again changes nothing and rescans nothing.
    let (_, v) = import(&h, zip_of(&[("a.json", openssl_advisory())])).await;
    assert_eq!(v["changed"], false);
    assert_eq!(v["status"]["rescansPending"], 0);
    let (status, v) = h.call(Method::GET, "/v1/vulnerabilities", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["advisories"], 1);
    assert_eq!(v["imageEcosystems"], json!(["Debian"]));

    // A restart loads the database from its file: nothing is stale.
    let version = v["version"].clone();
    let h = h.crash().await;
    let (_, v) = h.call(Method::GET, "/v1/vulnerabilities", None).await;
    assert_eq!(
        (v["version"].clone(), v["rescansPending"].clone()),
        (version, json!(0))
    );
    assert_eq!(finished(&h, "web", &d).await.findings.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn hostile_images_and_advisories_fail_clearly() {
    let h = Harness::start().await;
    repository(&h, "web", true).await;
    // A layer that claims gzip and is not.
    let mut corrupt = debian_layer("3.0.1-1");
    corrupt.truncate(corrupt.len() / 2);
    let d = push(
        &h,
        "web",
        "corrupt",
        "application/vnd.oci.image.config.v1+json",
        vec![corrupt],
    )
    .await;
    let r = finished(&h, "web", &d).await;
    assert_eq!(r.status, ScanStatus::Failed);
    assert!(r.description.contains("layer 0"), "{}", r.description);
    // An artifact is not an image.
    let d = push(
        &h,
        "web",
        "sbom",
        "application/vnd.example.sbom.v1+json",
        vec![debian_layer("1")],
    )
    .await;
    let r = finished(&h, "web", &d).await;
    assert_eq!(r.status, ScanStatus::UnsupportedImage);
    assert!(r.description.contains("artifact"), "{}", r.description);

    // Malformed records and a member far over the record limit are skipped
    // with notes; the good record is kept.
    let huge = vec![b' '; 20 << 20];
    let (status, v) = import(
        &h,
        zip_of(&[
            ("bad.json", b"{\"id\": 5".to_vec()),
            ("huge.json", huge),
            ("good.json", openssl_advisory()),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["kept"], 1);
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("bad.json") && notes.contains("huge.json"),
        "{notes}"
    );
    // A body that is no zip archive.
    let (status, v) = import(&h, b"not a zip".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("not an OSV archive"), "{v}");
    // Scans of unknown images are refused.
    assert!(
        h.state
            .scans
            .start("web", &digest(b"nothing"))
            .await
            .is_err()
    );
}
