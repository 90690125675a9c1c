//! The gate end to end against a real `cutover server`: advisories
//! imported from a directory of OSV records with `cutover vulnerabilities
//! import`, an image holding a package with a known advisory pushed over
//! raw HTTP to a scan-on-push repository, `cutover scan --fail-on HIGH`
//! exiting 1 on it, 0 on the fixed image and 2 on a missing one, and
//! `cutover vulnerabilities update` downloading an `all.zip` from a local
//! HTTP server (these machines have no internet).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use common::registry::*;
use common::*;
use cutover_scan::fixtures::{LayerBuilder, dpkg_paragraph, osv_record};
use cutover_store::registry::TagMutability;

const HIGH: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N";

#[allow(clippy::disallowed_methods)]
fn scan_on_push(server: &Server, repo: &str) {
    create_repository(server, repo, TagMutability::Mutable, false);
    cutover_store::Store::open(&server.data_dir.join("state.db"))
        .unwrap()
        .with(|c| cutover_store::registry::set_scan_on_push(c, repo, true))
        .unwrap();
}

fn debian_image(server: &Server, auth: &str, repo: &str, tag: &str, package: &str, version: &str) {
    let mut l = LayerBuilder::new();
    l.file("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n", 0o644)
        .file(
            "var/lib/dpkg/status",
            dpkg_paragraph(package, version, None).as_bytes(),
            0o644,
        );
    let layer = l.gzip();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = push_blob(server, auth, repo, config);
    let d = push_blob(server, auth, repo, &layer);
    let manifest = image_manifest((&c, config.len()), &[(&d, layer.len())]);
    let r = request(
        server,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Authorization", auth), ("Content-Type", OCI_MANIFEST)],
        &manifest,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Serves `body` at `path` (404 elsewhere) on a loopback port until the
/// test ends; its base URL.
fn serve(path: &'static str, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let found = line.split(' ').nth(1) == Some(path);
            let (status, body) = if found {
                ("200 OK", &body[..])
            } else {
                ("404 Not Found", &b""[..])
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(body);
        }
    });
    url
}

#[test]
fn the_gate_fails_a_vulnerable_image_and_passes_the_fixed_one() {
    let server = Server::start();
    scan_on_push(&server, "web");
    let auth = basic(&token(&server));

    // Offline advisories: a directory of OSV records, one malformed.
    let osv = tempfile::tempdir().unwrap();
    std::fs::create_dir(osv.path().join("debian")).unwrap();
    std::fs::write(
        osv.path().join("debian/DEBIAN-CVE-2024-0001.json"),
        osv_record(
            "DEBIAN-CVE-2024-0001",
            "CVE-2024-0001",
            "Debian:12",
            "openssl",
            "3.0.2-1",
            HIGH,
        ),
    )
    .unwrap();
    std::fs::write(osv.path().join("broken.json"), "{\"id\": ").unwrap();
    let out = server.cli(&["vulnerabilities", "import", osv.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("2 records read, 1 kept") || text(&out).contains("1 kept"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("broken.json"), "{}", text(&out));

    debian_image(&server, &auth, "web", "1", "openssl", "3.0.1-1");
    let image = format!("{}/web:1", server.addr);
    let out = server.cli(&["scan", &image, "--fail-on", "HIGH"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("HIGH") && shown.contains("CVE-2024-0001") && shown.contains("3.0.2-1"),
        "{shown}"
    );
    // Below the threshold's reach: CRITICAL passes.
    let out = server.cli(&["scan", &image, "--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json = server.json(&["scan", &image]);
    assert_eq!(json["status"], "COMPLETE");
    assert_eq!(json["counts"]["HIGH"], 1);

    debian_image(&server, &auth, "web", "2", "openssl", "3.0.2-1");
    let out = server.cli(&[
        "scan",
        &format!("{}/web:2", server.addr),
        "--fail-on",
        "HIGH",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("COMPLETE: 0 finding(s)"),
        "{}",
        text(&out)
    );

    let out = server.cli(&[
        "scan",
        &format!("{}/web:nope", server.addr),
        "--fail-on",
        "HIGH",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not found"), "{}", text(&out));

    // Online: a new advisory for zlib from an all.zip served over HTTP.
    debian_image(&server, &auth, "web", "3", "zlib", "1.2.13-1");
    let out = server.cli(&[
        "scan",
        &format!("{}/web:3", server.addr),
        "--fail-on",
        "LOW",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(
        "DEBIAN-CVE-2024-0002.json",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(
        osv_record(
            "DEBIAN-CVE-2024-0002",
            "CVE-2024-0002",
            "Debian:12",
            "zlib",
            "1.3-1",
            HIGH,
        )
        .as_bytes(),
    )
    .unwrap();
    let source = serve("/Debian/all.zip", zip.finish().unwrap().into_inner());
    let out = server.cli(&["vulnerabilities", "update", "--source", &source]);
    assert!(out.status.success(), "{}", text(&out));
    // The import rescanned web:3; the gate waits for that scan.
    let out = server.cli(&[
        "scan",
        &format!("{}/web:3", server.addr),
        "--fail-on",
        "HIGH",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("CVE-2024-0002"), "{}", text(&out));
    let status = server.json(&["vulnerabilities", "status"]);
    assert_eq!(status["advisories"], 2);
    assert_eq!(status["imageEcosystems"], serde_json::json!(["Debian"]));
}

/// The status of the newest execution of `pipeline` once it ended.
fn ended_execution(server: &Server, pipeline: &str, after: usize) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(std::time::Duration::from_secs(30), || {
        let v = server.json(&["pipelines", "executions", pipeline]);
        let all = v["executions"].as_array().cloned().unwrap_or_default();
        if all.len() <= after {
            return false;
        }
        last = all
            .iter()
            .max_by_key(|e| e["startedAt"].as_u64())
            .cloned()
            .unwrap();
        last["status"] == "Succeeded" || last["status"] == "Failed"
    })
    .unwrap_or_else(|| panic!("no execution ended: {last}\n{}", server.log()));
    last
}

#[test]
fn the_gate_action_fails_a_pipeline_on_the_vulnerable_image_and_passes_the_fixed_one() {
    let server = Server::start();
    scan_on_push(&server, "web");
    let auth = basic(&token(&server));
    let osv = tempfile::tempdir().unwrap();
    std::fs::write(
        osv.path().join("a.json"),
        osv_record(
            "DEBIAN-CVE-2024-0001",
            "CVE-2024-0001",
            "Debian:12",
            "openssl",
            "3.0.2-1",
            HIGH,
        ),
    )
    .unwrap();
    let out = server.cli(&["vulnerabilities", "import", osv.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    debian_image(&server, &auth, "web", "release", "openssl", "3.0.1-1");

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    init_repo(&repo, &[("README.md", "hello\n")]);
    std::fs::write(
        root.join("pipeline.json"),
        r#"{"pipeline": {"name": "gated", "pipelineType": "V2", "stages": [
 {"name": "Source", "actions": [{"name": "Source",
   "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Out"}]}]},
 {"name": "Scan", "actions": [{"name": "Gate",
   "actionTypeId": {"category": "Test", "owner": "Custom", "provider": "CutoverImageScan", "version": "1"},
   "configuration": {"RepositoryName": "web", "ImageTag": "release", "FailOn": "HIGH"}}]}]}}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        format!(
            "services: {{}}\nrepositories:\n  app: {{url: {}, pollIntervalSeconds: 0}}\npipelines:\n  gated: {{file: pipeline.json}}\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(root));
    assert!(out.status.success(), "{}", text(&out));
    // The execution of the creation fails at the gate.
    let e = ended_execution(&server, "gated", 0);
    assert_eq!(e["status"], "Failed", "{e}");
    assert!(e.to_string().contains("at or above HIGH"), "{e}");

    // The tag now names the fixed image: the next execution passes.
    debian_image(&server, &auth, "web", "release", "openssl", "3.0.2-1");
    let out = server.cli(&["pipelines", "start", "gated"]);
    assert!(out.status.success(), "{}", text(&out));
    let e = ended_execution(&server, "gated", 1);
    assert_eq!(e["status"], "Succeeded", "{e}\n{}", server.log());
}
