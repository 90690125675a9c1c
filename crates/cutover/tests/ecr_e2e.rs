//! ECR's API on a real `cutover server`, driven by the aws CLI and boto3:
//! repositories created with the contract's command line, images pushed
//! under `/v2/` with the password `aws ecr get-login-password` prints,
//! described, listed, fetched and deleted through the CLI, an immutable
//! re-push refused with nothing changed, and a lifecycle policy whose run
//! deletes exactly what its preview listed. With Podman and skopeo
//! (required when `CUTOVER_CONTAINER_TESTS=1`), the contract's
//! `get-login-password | podman login` and `skopeo copy --dest-creds`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::aws::{AwsClients, error_code};
use common::registry::*;
use common::*;
use serde_json::{Value, json};

/// `aws ecr get-login-password`.
fn login_password(aws: &AwsClients) -> String {
    let out = aws.run(&["ecr", "get-login-password"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Pushes the blobs of an image of one layer holding `layer`; its
/// manifest's digest and bytes.
fn image(server: &Server, auth: &str, layer: &[u8]) -> (String, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = push_blob(server, auth, "web", config);
    let l = push_blob(server, auth, "web", layer);
    let manifest = image_manifest((&c, config.len()), &[(&l, layer.len())]);
    (digest(&manifest), manifest)
}

/// Pushes an image of one layer holding `layer` as `reference` (its own
/// digest when `None`: untagged); its digest and the answer.
fn push(server: &Server, auth: &str, reference: Option<&str>, layer: &[u8]) -> (String, Reply) {
    let (d, manifest) = image(server, auth, layer);
    let reply = request(
        server,
        "PUT",
        &format!("/v2/web/manifests/{}", reference.unwrap_or(&d)),
        &[("Authorization", auth), ("Content-Type", OCI_MANIFEST)],
        &manifest,
    );
    (d, reply)
}

fn digests(v: &Value, list: &str) -> Vec<String> {
    let mut d: Vec<String> = v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["imageDigest"].as_str().unwrap().to_string())
        .collect();
    d.sort();
    d.dedup();
    d
}

#[test]
fn ecr_api_through_the_aws_cli_from_create_to_lifecycle_run() {
    let server = Server::start();
    let aws = AwsClients::new(&server);
    let created = aws.json(&[
        "ecr",
        "create-repository",
        "--repository-name",
        "web",
        "--image-tag-mutability",
        "IMMUTABLE",
        "--image-scanning-configuration",
        "scanOnPush=true",
    ]);
    let repo = &created["repository"];
    assert_eq!(repo["repositoryUri"], format!("{}/web", server.addr));
    assert_eq!(repo["imageTagMutability"], "IMMUTABLE");
    assert_eq!(repo["imageScanningConfiguration"]["scanOnPush"], true);
    assert_eq!(repo["registryId"].as_str().unwrap().len(), 12);
    let again = aws.run(&["ecr", "create-repository", "--repository-name", "web"]);
    assert_eq!(error_code(&again), "RepositoryAlreadyExistsException");
    let missing = aws.run(&["ecr", "describe-images", "--repository-name", "nope"]);
    assert_eq!(error_code(&missing), "RepositoryNotFoundException");

    // The login password is a registry password of user AWS.
    let auth = basic(&login_password(&aws));
    let (d1, r) = push(&server, &auth, Some("v1"), b"one");
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let (d2, r) = push(&server, &auth, Some("v2"), b"two");
    assert_eq!(r.status, 201);
    let (d3, r) = push(&server, &auth, Some("v3"), b"three");
    assert_eq!(r.status, 201);
    let (d0, r) = push(&server, &auth, Some("unused"), b"zero");
    assert_eq!(r.status, 201);
    // Two untagged images: pushed by digest.
    let (d0b, r) = push(&server, &auth, None, b"untagged");
    assert_eq!(r.status, 201);
    let (d0c, r) = push(&server, &auth, None, b"untagged too");
    assert_eq!(r.status, 201);

    // The immutable re-push is refused, and the CLI's view is unchanged.
    let (other, refused) = push(&server, &auth, Some("v1"), b"another one");
    assert_eq!(refused.status, 400);
    let v1 = aws.json(&[
        "ecr",
        "describe-images",
        "--repository-name",
        "web",
        "--image-ids",
        "imageTag=v1",
    ]);
    assert_eq!(v1["imageDetails"][0]["imageDigest"], d1.as_str());
    assert_eq!(v1["imageDetails"][0]["imageTags"], json!(["v1"]));
    assert_eq!(
        v1["imageDetails"][0]["imageManifestMediaType"],
        OCI_MANIFEST
    );
    assert_eq!(v1["imageDetails"][0]["imageSizeInBytes"], 3);
    assert!(!v1["imageDetails"][0]["imagePushedAt"].is_null());
    let gone = aws.run(&[
        "ecr",
        "describe-images",
        "--repository-name",
        "web",
        "--image-ids",
        &format!("imageDigest={other}"),
    ]);
    assert_eq!(error_code(&gone), "ImageNotFoundException");

    let all = aws.json(&["ecr", "describe-images", "--repository-name", "web"]);
    let mut expect = vec![
        d0.clone(),
        d0b.clone(),
        d0c.clone(),
        d1.clone(),
        d2.clone(),
        d3.clone(),
    ];
    expect.sort();
    assert_eq!(digests(&all, "imageDetails"), expect);
    let untagged = aws.json(&[
        "ecr",
        "list-images",
        "--repository-name",
        "web",
        "--filter",
        "tagStatus=UNTAGGED",
    ]);
    let mut both = vec![d0b.clone(), d0c.clone()];
    both.sort();
    assert_eq!(digests(&untagged, "imageIds"), both);
    // The CLI pages through with maxResults of 2 and gets every id.
    let paged = aws.json(&[
        "ecr",
        "list-images",
        "--repository-name",
        "web",
        "--page-size",
        "2",
    ]);
    assert_eq!(paged["imageIds"].as_array().unwrap().len(), 6);
    let described = aws.json(&["ecr", "describe-repositories", "--repository-names", "web"]);
    assert_eq!(described["repositories"][0]["repositoryName"], "web");

    let got = aws.json(&[
        "ecr",
        "batch-get-image",
        "--repository-name",
        "web",
        "--image-ids",
        "imageTag=v2",
        "imageTag=nope",
    ]);
    let text = got["images"][0]["imageManifest"].as_str().unwrap();
    assert_eq!(digest(text.as_bytes()), d2);
    assert_eq!(got["failures"][0]["failureCode"], "ImageNotFound");

    let deleted = aws.json(&[
        "ecr",
        "batch-delete-image",
        "--repository-name",
        "web",
        "--image-ids",
        "imageTag=unused",
        "imageTag=never",
    ]);
    assert_eq!(deleted["imageIds"][0]["imageDigest"], d0.as_str());
    assert_eq!(deleted["failures"][0]["failureCode"], "ImageNotFound");
    assert_eq!(deleted["failures"][0]["imageId"]["imageTag"], "never");

    let not_empty = aws.run(&["ecr", "delete-repository", "--repository-name", "web"]);
    assert_eq!(error_code(&not_empty), "RepositoryNotEmptyException");
    // Scan on push (the repository was created with scanOnPush=true) ran:
    // this image's one layer is not a tar, so the scanner reads no file
    // system: the scan fails and says why, in ECR's shape.
    let mut scanned = Value::Null;
    wait_until(Duration::from_secs(60), || {
        scanned = aws.json(&[
            "ecr",
            "describe-image-scan-findings",
            "--repository-name",
            "web",
            "--image-id",
            "imageTag=v1",
        ]);
        scanned["imageScanStatus"]["status"] != "IN_PROGRESS"
    })
    .expect("the scan on push never ended");
    assert_eq!(scanned["imageScanStatus"]["status"], "FAILED", "{scanned}");
    assert!(
        scanned["imageScanStatus"]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("layer 0: ")),
        "{scanned}"
    );

    // Lifecycle: keep the newest untagged image and the newest `v` one.
    let policy = json!({"rules": [
        {"rulePriority": 1, "description": "untagged go",
         "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": "keep one v",
         "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 1},
         "action": {"type": "expire"}}]})
    .to_string();
    let bad = aws.run(&[
        "ecr",
        "put-lifecycle-policy",
        "--repository-name",
        "web",
        "--lifecycle-policy-text",
        &policy.replace("\"tagged\"", "\"sometimes\""),
    ]);
    assert_eq!(error_code(&bad), "InvalidParameterException");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("lifecyclePolicyText:1:"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let no_policy = aws.run(&["ecr", "get-lifecycle-policy", "--repository-name", "web"]);
    assert_eq!(error_code(&no_policy), "LifecyclePolicyNotFoundException");
    aws.json(&[
        "ecr",
        "put-lifecycle-policy",
        "--repository-name",
        "web",
        "--lifecycle-policy-text",
        &policy,
    ]);
    let stored = aws.json(&["ecr", "get-lifecycle-policy", "--repository-name", "web"]);
    assert_eq!(stored["lifecyclePolicyText"], policy.as_str());
    let started = aws.json(&[
        "ecr",
        "start-lifecycle-policy-preview",
        "--repository-name",
        "web",
    ]);
    assert_eq!(started["status"], "COMPLETE");
    let preview = aws.json(&[
        "ecr",
        "get-lifecycle-policy-preview",
        "--repository-name",
        "web",
    ]);
    let previewed = digests(&preview, "previewResults");
    let mut want = vec![d0b.clone(), d1.clone(), d2.clone()];
    want.sort();
    assert_eq!(previewed, want, "{preview}");
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 3);
    let priority_of = |d: &str| {
        preview["previewResults"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["imageDigest"] == d)
            .unwrap()["appliedRulePriority"]
            .clone()
    };
    assert_eq!(priority_of(&d0b), 1);
    assert_eq!(priority_of(&d1), 2);
    assert_eq!(
        preview["previewResults"][0]["action"]["type"], "EXPIRE",
        "{preview}"
    );

    // A run deletes exactly what the preview listed.
    let run = server.json(&["registry", "lifecycle"]);
    let runs = run["repositories"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{run}");
    let mut expired: Vec<String> = runs[0]["expired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap().to_string())
        .collect();
    expired.sort();
    assert_eq!(expired, previewed);
    let left = aws.json(&["ecr", "list-images", "--repository-name", "web"]);
    let mut kept = vec![d0c.clone(), d3.clone()];
    kept.sort();
    assert_eq!(digests(&left, "imageIds"), kept);
    assert!(
        !aws.json(&["ecr", "get-lifecycle-policy", "--repository-name", "web"])["lastEvaluatedAt"]
            .is_null()
    );
    // The deleted images' manifests are gone from /v2/ too.
    let a = [("Authorization", auth.as_str())];
    assert_eq!(
        request(&server, "HEAD", "/v2/web/manifests/v1", &a, b"").status,
        404
    );

    // boto3: the same API from the SDK.
    let out = aws.python(
        r#"
import boto3, sys
ecr = boto3.client("ecr")
token = ecr.get_authorization_token()["authorizationData"][0]
assert token["proxyEndpoint"] == sys.argv[1], token
images = ecr.describe_images(repositoryName="web")["imageDetails"]
print(",".join(sorted(i["imageDigest"] for i in images)))
layers = ecr.batch_check_layer_availability(repositoryName="web", layerDigests=["sha256:" + "0" * 64, "nope"])
print(len(layers["layers"]), sorted(f["failureCode"] for f in layers["failures"]))
"#,
        &[&server.url()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(kept.join(",").as_str()));
    assert_eq!(
        lines.next(),
        Some("0 ['InvalidLayerDigest', 'MissingLayerDigest']")
    );

    let forced = aws.json(&[
        "ecr",
        "delete-repository",
        "--repository-name",
        "web",
        "--force",
    ]);
    assert_eq!(forced["repository"]["repositoryName"], "web");
    assert_eq!(
        aws.json(&["ecr", "describe-repositories"])["repositories"],
        json!([])
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// The contract's lines: `get-login-password | podman login`, then
/// `skopeo copy --dest-creds AWS:$TOKEN`, seen by `describe-images`.
#[test]
fn the_contract_logs_podman_in_and_skopeo_copies_with_the_login_password() {
    if !client_or_skip("podman") || !client_or_skip("skopeo") {
        return;
    }
    let server = Server::start();
    let aws = AwsClients::new(&server);
    aws.json(&[
        "ecr",
        "create-repository",
        "--repository-name",
        "web",
        "--image-tag-mutability",
        "IMMUTABLE",
        "--image-scanning-configuration",
        "scanOnPush=true",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let host = server.addr.to_string();
    let authfile = tmp.path().join("auth.json");
    let password = login_password(&aws);
    let mut login = Command::new("podman");
    login
        .args([
            "login",
            "--tls-verify=false",
            "-u",
            "AWS",
            "--password-stdin",
        ])
        .arg("--authfile")
        .arg(&authfile)
        .arg(&host)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), password.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "podman login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An OCI layout of one image, copied with the login password.
    let layout = tmp.path().join("app");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = digest(bytes);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), bytes).unwrap();
        d
    };
    let layer = b"not really a tar, but a blob all the same".to_vec();
    let l = put(&layer);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = put(config);
    let manifest = image_manifest((&c, config.len()), &[(&l, layer.len())]);
    let m = put(&manifest);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": m,
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "app"}}]})
        .to_string(),
    )
    .unwrap();
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
        ])
        .arg(format!("AWS:{password}"))
        .arg(format!("oci:{}:app", layout.display()))
        .arg(format!("docker://{host}/web:1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let images = aws.json(&[
        "ecr",
        "describe-images",
        "--repository-name",
        "web",
        "--image-ids",
        "imageTag=1",
    ]);
    assert_eq!(images["imageDetails"][0]["imageDigest"], m.as_str());
    // The login podman stored reaches the registry too.
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg("--authfile")
        .arg(&authfile)
        .arg(format!("docker://{host}/web:1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect with podman's login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, manifest);
}
