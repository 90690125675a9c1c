//! Real registry clients against a real `cutover server`: Podman logs in
//! with a registry token (ECR's `podman login -u AWS --password-stdin`),
//! pushes and pulls an image made here (no registry is reachable), and
//! skopeo copies a two-platform OCI index there and back, digests intact.
//!
//! Needs `podman` (scripts/setup-podman.sh) and `skopeo`
//! (scripts/setup-registry-clients.sh). When `CUTOVER_CONTAINER_TESTS=1`
//! (CI) a missing client fails the test; otherwise it is skipped.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::registry::*;
use common::*;
use cutover_store::registry::TagMutability;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A tar of one file holding `content`, made with the `tar` command.
fn layer_tar(dir: &Path, name: &str, content: &str) -> Vec<u8> {
    let root = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), content).unwrap();
    let tar = dir.join(format!("{name}.tar"));
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("hello.txt"));
    std::fs::read(tar).unwrap()
}

#[test]
fn podman_logs_in_with_a_token_then_pushes_and_pulls_an_image() {
    if !client_or_skip("podman") {
        return;
    }
    let server = Server::start();
    create_repository(&server, "web", TagMutability::Mutable, false);
    let tmp = tempfile::tempdir().unwrap();
    let authfile = tmp.path().join("auth.json");
    let host = server.addr.to_string();
    let tar = tmp.path().join("rootfs.tar");
    std::fs::write(
        &tar,
        layer_tar(tmp.path(), "rootfs", &format!("hello from {host}")),
    )
    .unwrap();
    let local = format!("localhost/cutover-registry-test-{}:1", server.addr.port());
    let id = stdout(&run(Command::new("podman")
        .arg("import")
        .arg(&tar)
        .arg(&local)));
    let remote = format!("{host}/web:1");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.args(args).arg("--authfile").arg(&authfile);
        c
    };
    // A wrong password is refused at login.
    let mut bad = podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "AWS",
        "--password-stdin",
        &host,
    ]);
    bad.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = bad.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"not-a-token").unwrap();
    assert!(!child.wait_with_output().unwrap().status.success());
    let mut login = podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "AWS",
        "--password-stdin",
        &host,
    ]);
    login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), token(&server).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "podman login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    run(&mut podman(&[
        "push",
        "--tls-verify=false",
        &local,
        &format!("docker://{remote}"),
    ]));
    run(Command::new("podman").args(["rmi", &local]));
    run(&mut podman(&["pull", "--tls-verify=false", &remote]));
    let pulled = stdout(&run(
        Command::new("podman").args(["image", "inspect", "--format", "{{.Id}}", &remote])
    ));
    let _ = Command::new("podman").args(["rmi", &remote]).output();
    assert_eq!(
        id.trim_start_matches("sha256:"),
        pulled.trim_start_matches("sha256:"),
        "the pulled image is the pushed one"
    );
}

/// Writes `bytes` into an OCI layout's blobs; its digest.
fn put(layout: &Path, bytes: &[u8]) -> String {
    let d = digest(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(d.trim_start_matches("sha256:")), bytes).unwrap();
    d
}

#[test]
fn skopeo_copies_a_multi_arch_index_there_and_back_with_its_digests() {
    if !client_or_skip("skopeo") {
        return;
    }
    let server = Server::start();
    create_repository(&server, "multi", TagMutability::Immutable, false);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("src");
    std::fs::create_dir_all(&layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut platforms = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = layer_tar(tmp.path(), arch, &format!("built for {arch}"));
        let l = put(&layout, &layer);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [l]},
        }))
        .unwrap();
        let c = put(&layout, &config);
        let manifest = image_manifest((&c, config.len()), &[(&l, layer.len())]);
        let m = put(&layout, &manifest);
        platforms.push(serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": m, "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": platforms,
    }))
    .unwrap();
    let index_digest = put(&layout, &index);
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest, "size": index.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"}}],
        }))
        .unwrap(),
    )
    .unwrap();
    let creds = format!("AWS:{}", token(&server));
    let remote = format!("docker://{}/multi:1", server.addr);
    let src = format!("oci:{}:multi", layout.display());
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &src,
        &remote,
    ]));
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &remote,
    ]));
    assert_eq!(
        raw.stdout, index,
        "the registry keeps the index's exact bytes"
    );
    let back = tmp.path().join("back");
    let dest = format!("oci:{}:multi", back.display());
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &remote,
        &dest,
    ]));
    let back_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    assert_eq!(back_index["manifests"][0]["digest"], index_digest);
    for p in &platforms {
        let d = p["digest"].as_str().unwrap().trim_start_matches("sha256:");
        assert!(
            back.join("blobs/sha256").join(d).exists(),
            "platform manifest {d} copied back"
        );
    }
    // Pushing the same index again to the immutable tag is fine; without credentials it is not.
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &src,
        &remote,
    ]));
    let anon = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-no-creds",
            &src,
            &remote,
        ])
        .output()
        .unwrap();
    assert!(!anon.status.success());
}
