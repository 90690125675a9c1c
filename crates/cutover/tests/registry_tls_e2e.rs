//! `cutover server --tls-cert --tls-key`: the whole listener speaks HTTPS
//! with a certificate the test makes (a CA and a leaf for 127.0.0.1, with
//! the `openssl` command). The CLI trusts it through `CUTOVER_CA_CERT`, the
//! aws CLI through `--ca-bundle` and `AWS_CA_BUNDLE`, skopeo through
//! `--dest-cert-dir`/`--src-cert-dir`; ECR's `repositoryUri` and
//! `proxyEndpoint` name the listener, and a push and pull over TLS keep the
//! image's digest. Bad certificate or key files stop the server with an
//! error naming the file.
//!
//! Needs `skopeo` (scripts/setup-registry-clients.sh; when
//! `CUTOVER_CONTAINER_TESTS=1` a missing one fails the test, otherwise it
//! is skipped) and the aws CLI (scripts/setup-aws-clients.sh).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::aws::AwsClients;
use common::registry::{OCI_MANIFEST, client_or_skip, digest, image_manifest};
use common::*;

/// The PEM files of a test CA and of a leaf it signed for 127.0.0.1.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_certs(dir: &Path) -> Certs {
    let p = |name: &str| dir.join(name);
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cutover test CA",
        ])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem")));
    run(Command::new("openssl")
        .args(["req", "-nodes", "-subj", "/CN=127.0.0.1"])
        .args(ec)
        .arg("-keyout")
        .arg(p("key.pem"))
        .arg("-out")
        .arg(p("leaf.csr")));
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("leaf.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("leaf.ext"))
        .arg("-out")
        .arg(p("cert.pem")));
    Certs {
        ca: p("ca.pem"),
        cert: p("cert.pem"),
        key: p("key.pem"),
    }
}

/// An OCI layout at `dir` holding one image tagged `app`; its manifest's digest.
fn oci_layout(dir: &Path) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = digest(bytes);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), bytes).unwrap();
        d
    };
    // A tar of one empty directory entry is enough for a layer skopeo copies.
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(11);
    header.set_mode(0o644);
    layer
        .append_data(&mut header, "hello.txt", &b"over https\n"[..])
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let l = put(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [l]},
    }))
    .unwrap();
    let c = put(&config);
    let manifest = image_manifest((&c, config.len()), &[(&l, layer.len())]);
    let m = put(&manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": m, "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": "app"}}],
        }))
        .unwrap(),
    )
    .unwrap();
    m
}

#[test]
fn the_whole_listener_speaks_https_to_the_cli_aws_and_skopeo() {
    if !client_or_skip("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let certs = make_certs(tmp.path());
    let cert = certs.cert.display().to_string();
    let key = certs.key.display().to_string();
    let mut server = Server::start_with(&["--tls-cert", &cert, "--tls-key", &key], &[]);
    server.ca_cert = Some(certs.ca.clone());
    let url = server.url();
    assert!(url.starts_with("https://"), "{url}");

    // Plain HTTP gets no answer; the CLI without the CA refuses the certificate.
    assert!(http_get(&server.addr.to_string(), "/v2/").map_or(true, |(status, _)| status != 200));
    let untrusted = Command::new(BIN)
        .args(["services", "ls", "--server", &url])
        .env_remove("CUTOVER_CA_CERT")
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(err.contains(&url), "{err}");

    // The CLI with the CA (CUTOVER_CA_CERT) makes a key; the aws CLI uses it over HTTPS.
    let aws = AwsClients::new(&server);
    aws.json(&["ecr", "create-repository", "--repository-name", "web"]);
    let ca = certs.ca.display().to_string();
    let described = aws.json(&[
        "ecr",
        "describe-repositories",
        "--endpoint-url",
        &url,
        "--ca-bundle",
        &ca,
    ]);
    assert_eq!(
        described["repositories"][0]["repositoryUri"],
        format!("{}/web", server.addr)
    );
    let auth = aws.json(&["ecr", "get-authorization-token"]);
    assert_eq!(auth["authorizationData"][0]["proxyEndpoint"], url);
    let password = aws.run(&["ecr", "get-login-password"]);
    assert!(password.status.success());
    let creds = format!("AWS:{}", String::from_utf8_lossy(&password.stdout).trim());

    // skopeo verifies the certificate: without the CA it refuses, with it
    // (a cert dir holding ca.crt) it pushes and pulls.
    let cert_dir = tmp.path().join("certs.d");
    std::fs::create_dir_all(&cert_dir).unwrap();
    std::fs::copy(&certs.ca, cert_dir.join("ca.crt")).unwrap();
    let layout = tmp.path().join("src");
    let manifest = oci_layout(&layout);
    let src = format!("oci:{}:app", layout.display());
    let remote = format!("docker://{}/web:1", server.addr);
    let refused = Command::new("skopeo")
        .args(["copy", "--dest-creds", &creds, &src, &remote])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success(), "skopeo trusted an unknown CA");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("certificate"), "{err}");
    run(Command::new("skopeo")
        .args(["copy", "--preserve-digests", "--dest-creds", &creds])
        .arg("--dest-cert-dir")
        .arg(&cert_dir)
        .args([&src, &remote]));
    let back = tmp.path().join("back");
    run(Command::new("skopeo")
        .args(["copy", "--preserve-digests", "--src-creds", &creds])
        .arg("--src-cert-dir")
        .arg(&cert_dir)
        .arg(&remote)
        .arg(format!("oci:{}:app", back.display())));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], manifest.as_str());
    let images = aws.json(&["ecr", "describe-images", "--repository-name", "web"]);
    assert_eq!(images["imageDetails"][0]["imageDigest"], manifest.as_str());
}

#[test]
fn bad_certificate_or_key_files_stop_the_server_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = make_certs(tmp.path());
    let missing = tmp.path().join("missing.pem");
    let garbage = tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "not a PEM file\n").unwrap();
    let start = |cert: &Path, key: &Path| {
        let out = Command::new(BIN)
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = start(&missing, &certs.key);
    assert!(
        err.contains(&format!("cannot read {}", missing.display())),
        "{err}"
    );
    let err = start(&garbage, &certs.key);
    assert!(
        err.contains(&format!("{}: no certificate found", garbage.display())),
        "{err}"
    );
    let err = start(&certs.cert, &garbage);
    assert!(
        err.contains(&format!("{}: no private key found", garbage.display())),
        "{err}"
    );
    // The CA's key does not match the leaf's certificate.
    let err = start(&certs.cert, &tmp.path().join("ca.key"));
    assert!(err.contains(&certs.cert.display().to_string()), "{err}");
}
