//! The registry on a real data directory and store: chunked and resumed
//! uploads, digest verification, manifests and their references, immutable
//! tags, referrers, and garbage collection with its grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cutover_store::Store;
use cutover_store::registry::{self as rows, RepositoryRow, TagMutability};
use sha2::{Digest as _, Sha256};

use super::*;

struct Manual(AtomicU64);

impl cutover_clock::Clock for Manual {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    store: Arc<Store>,
    clock: Arc<Manual>,
    reg: Registry,
}

fn body(parts: &[&[u8]]) -> Body {
    let chunks: Vec<std::io::Result<Bytes>> = parts
        .iter()
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

fn digest_of(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

#[allow(clippy::disallowed_methods)]
fn fixture(mutability: TagMutability) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let store = Arc::new(Store::open(&dir.join("state.db")).unwrap());
    for name in ["web", "other"] {
        store
            .with(|c| {
                rows::create_repository(
                    c,
                    &RepositoryRow {
                        name: name.into(),
                        created_at_ms: 0,
                        tag_mutability: mutability,
                        scan_on_push: false,
                        anonymous_pull: false,
                        lifecycle_policy: None,
                    },
                )
            })
            .unwrap();
    }
    let clock = Arc::new(Manual(AtomicU64::new(1_000_000_000)));
    let reg = Registry::open(&dir, store.clone(), clock.clone()).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        store,
        clock,
        reg,
    }
}

fn code(r: Result<impl std::fmt::Debug>) -> ErrorCode {
    match r {
        Err(RegistryError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn read_all(b: BlobBody) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    b.file.take(b.len).read_to_end(&mut out).await.unwrap();
    out
}

fn image_manifest(config: &str, layers: &[(&str, usize)], subject: Option<&str>) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
        .collect();
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": layers,
    });
    if let Some(s) = subject {
        m["subject"] = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": s, "size": 1});
        m["artifactType"] = serde_json::json!("application/vnd.example.sig");
    }
    serde_json::to_vec(&m).unwrap()
}

const OCI: Option<&str> = Some("application/vnd.oci.image.manifest.v1+json");

#[tokio::test]
async fn a_chunked_upload_refuses_a_chunk_out_of_order_and_verifies_its_digest() {
    let f = fixture(TagMutability::Mutable);
    let id = f.reg.start_upload("web").await.unwrap().to_string();
    assert_eq!(
        f.reg
            .patch_upload("web", &id, Some((0, 2)), body(&[b"abc"]))
            .await
            .unwrap(),
        3
    );
    let out_of_order = f
        .reg
        .patch_upload("web", &id, Some((5, 6)), body(&[b"xy"]))
        .await;
    assert!(matches!(
        out_of_order,
        Err(RegistryError::RangeInvalid {
            start: 5,
            offset: 3
        })
    ));
    let short = f
        .reg
        .patch_upload("web", &id, Some((3, 9)), body(&[b"de"]))
        .await;
    assert_eq!(code(short), ErrorCode::SizeInvalid);
    let long = f
        .reg
        .patch_upload("web", &id, Some((3, 4)), body(&[b"de", b"fgh"]))
        .await;
    assert_eq!(code(long), ErrorCode::SizeInvalid);
    assert_eq!(
        f.reg.upload_offset("web", &id).await.unwrap(),
        3,
        "a refused chunk leaves nothing"
    );
    assert_eq!(
        code(f.reg.upload_offset("other", &id).await),
        ErrorCode::BlobUploadUnknown
    );
    assert_eq!(
        f.reg
            .patch_upload("web", &id, None, body(&[b"de", b"f"]))
            .await
            .unwrap(),
        6
    );
    let wrong = f
        .reg
        .finish_upload("web", &id, &digest_of(b"nope"), None, body(&[]))
        .await;
    assert_eq!(code(wrong), ErrorCode::DigestInvalid);
    let (d, size) = f
        .reg
        .finish_upload("web", &id, &digest_of(b"abcdefg"), None, body(&[b"g"]))
        .await
        .unwrap();
    assert_eq!((d.as_str(), size), (digest_of(b"abcdefg").as_str(), 7));
    assert_eq!(
        code(f.reg.upload_offset("web", &id).await),
        ErrorCode::BlobUploadUnknown
    );
    let whole = f.reg.open_blob("web", d.as_str(), None).await.unwrap();
    assert_eq!(read_all(whole).await, b"abcdefg");
    let part = f
        .reg
        .open_blob("web", d.as_str(), Some("bytes=2-4"))
        .await
        .unwrap();
    assert!(part.partial);
    assert_eq!(read_all(part).await, b"cde");
    assert!(matches!(
        f.reg.open_blob("web", d.as_str(), Some("bytes=7-")).await,
        Err(RegistryError::RangeNotSatisfiable { size: 7 })
    ));
    // Not in the other repository until mounted.
    assert_eq!(
        code(f.reg.blob_size("other", d.as_str()).await),
        ErrorCode::BlobUnknown
    );
    assert!(f.reg.mount("other", &d, "web").await.unwrap());
    assert_eq!(f.reg.blob_size("other", d.as_str()).await.unwrap().1, 7);
    assert!(
        !f.reg
            .mount("other", &Digest::parse(&digest_of(b"x")).unwrap(), "web")
            .await
            .unwrap()
    );
    // A cancelled upload is gone, its directory too.
    let id = f.reg.start_upload("web").await.unwrap().to_string();
    f.reg.cancel_upload("web", &id).await.unwrap();
    assert_eq!(
        code(f.reg.upload_offset("web", &id).await),
        ErrorCode::BlobUploadUnknown
    );
    assert!(!f.dir.join("registry/uploads").join(&id).exists());
}

#[tokio::test]
async fn an_upload_survives_a_restart_and_stale_ones_are_cleaned() {
    let f = fixture(TagMutability::Mutable);
    let id = f.reg.start_upload("web").await.unwrap().to_string();
    f.reg
        .patch_upload("web", &id, Some((0, 3)), body(&[b"half"]))
        .await
        .unwrap();
    let stale = f.reg.start_upload("web").await.unwrap().to_string();
    drop(f.reg);
    let reg = Registry::open(&f.dir, f.store.clone(), f.clock.clone()).unwrap();
    assert_eq!(reg.upload_offset("web", &id).await.unwrap(), 4);
    reg.patch_upload("web", &id, Some((4, 7)), body(&[b"done"]))
        .await
        .unwrap();
    let (d, _) = reg
        .finish_upload("web", &id, &digest_of(b"halfdone"), None, body(&[]))
        .await
        .unwrap();
    assert_eq!(
        read_all(reg.open_blob("web", d.as_str(), None).await.unwrap()).await,
        b"halfdone"
    );
    f.clock.0.fetch_add(STALE_UPLOAD_MS, Ordering::SeqCst);
    assert_eq!(reg.gc().await.unwrap().uploads_removed, 1);
    assert_eq!(
        code(reg.upload_offset("web", &stale).await),
        ErrorCode::BlobUploadUnknown
    );
}

#[tokio::test]
async fn manifests_need_their_blobs_immutable_tags_hold_and_referrers_filter() {
    let f = fixture(TagMutability::Immutable);
    let (config, _) = f
        .reg
        .put_blob("web", &digest_of(b"{}"), body(&[b"{}"]))
        .await
        .unwrap();
    let (layer, _) = f
        .reg
        .put_blob("web", &digest_of(b"layer"), body(&[b"layer"]))
        .await
        .unwrap();
    let missing = image_manifest(config.as_str(), &[(&digest_of(b"absent"), 6)], None);
    assert_eq!(
        code(f.reg.put_manifest("web", "1", OCI, body(&[&missing])).await),
        ErrorCode::ManifestBlobUnknown
    );
    let m1 = image_manifest(config.as_str(), &[(layer.as_str(), 5)], None);
    let (d1, _) = f
        .reg
        .put_manifest("web", "1", OCI, body(&[&m1]))
        .await
        .unwrap();
    assert_eq!(d1.as_str(), digest_of(&m1));
    // Same content again: fine. Other content: refused, nothing changed.
    f.reg
        .put_manifest("web", "1", OCI, body(&[&m1]))
        .await
        .unwrap();
    let m2 = image_manifest(config.as_str(), &[], None);
    let refused = f.reg.put_manifest("web", "1", OCI, body(&[&m2])).await;
    assert_eq!(code(refused), ErrorCode::TagInvalid);
    let got = f.reg.get_manifest("web", "1").await.unwrap();
    assert_eq!((got.bytes, got.stored.digest), (m1.clone(), d1.to_string()));
    assert_eq!(
        code(f.reg.stat_manifest("web", &digest_of(&m2)).await),
        ErrorCode::ManifestUnknown
    );
    // A digest reference must be the content's digest.
    assert_eq!(
        code(
            f.reg
                .put_manifest("web", &digest_of(b"x"), OCI, body(&[&m2]))
                .await
        ),
        ErrorCode::DigestInvalid
    );
    let huge = vec![b' '; MAX_MANIFEST + 1];
    assert_eq!(
        code(f.reg.put_manifest("web", "big", OCI, body(&[&huge])).await),
        ErrorCode::SizeInvalid
    );
    assert_eq!(
        code(
            f.reg
                .put_manifest("web", "bad", OCI, body(&[b"{\"schemaVersion\":"]))
                .await
        ),
        ErrorCode::ManifestInvalid
    );
    let sig = image_manifest(config.as_str(), &[], Some(d1.as_str()));
    let (_, subject) = f
        .reg
        .put_manifest("web", &digest_of(&sig), OCI, body(&[&sig]))
        .await
        .unwrap();
    assert_eq!(subject.as_deref(), Some(d1.as_str()));
    let all: serde_json::Value =
        serde_json::from_slice(&f.reg.referrers("web", d1.as_str(), None).await.unwrap()).unwrap();
    assert_eq!(all["manifests"][0]["digest"], digest_of(&sig));
    assert_eq!(
        all["manifests"][0]["artifactType"],
        "application/vnd.example.sig"
    );
    let none: serde_json::Value = serde_json::from_slice(
        &f.reg
            .referrers("web", d1.as_str(), Some("x/y"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(none["manifests"].as_array().map(Vec::len), Some(0));
    assert_eq!(f.reg.tags("web", 10, None).await.unwrap(), ["1"]);
    assert_eq!(
        code(f.reg.tags("nope", 10, None).await),
        ErrorCode::NameUnknown
    );
    assert_eq!(
        code(f.reg.tags("../x", 10, None).await),
        ErrorCode::NameInvalid
    );
}

#[tokio::test]
async fn gc_sweeps_unreferenced_blobs_after_the_grace_period_only() {
    let f = fixture(TagMutability::Mutable);
    let (config, _) = f
        .reg
        .put_blob("web", &digest_of(b"{}"), body(&[b"{}"]))
        .await
        .unwrap();
    let (layer, _) = f
        .reg
        .put_blob("web", &digest_of(b"layer"), body(&[b"layer"]))
        .await
        .unwrap();
    let (loose, _) = f
        .reg
        .put_blob("web", &digest_of(b"loose"), body(&[b"loose"]))
        .await
        .unwrap();
    let m = image_manifest(config.as_str(), &[(layer.as_str(), 5)], None);
    f.reg
        .put_manifest("web", "1", OCI, body(&[&m]))
        .await
        .unwrap();
    assert_eq!(
        f.reg.gc().await.unwrap().blobs_deleted,
        0,
        "within the grace period"
    );
    f.clock.0.fetch_add(GRACE_MS + 1, Ordering::SeqCst);
    let report = f.reg.gc().await.unwrap();
    assert_eq!((report.blobs_deleted, report.bytes_freed), (1, 5));
    assert_eq!(
        code(f.reg.blob_size("web", loose.as_str()).await),
        ErrorCode::BlobUnknown
    );
    assert!(f.reg.blob_size("web", layer.as_str()).await.is_ok());
    // Deleting the manifest releases its layer, config and bytes.
    f.reg.delete_manifest("web", &digest_of(&m)).await.unwrap();
    assert_eq!(f.reg.gc().await.unwrap().blobs_deleted, 3);
    assert_eq!(
        code(f.reg.get_manifest("web", "1").await),
        ErrorCode::ManifestUnknown
    );
}
