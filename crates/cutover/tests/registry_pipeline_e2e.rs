//! The registry end to end (issue 11's last "Done when"): a pipeline builds
//! an image, pushes it to the server's own registry, scans it and deploys
//! it by digest, under live traffic with no failed request.
//!
//! A real `cutover server` listens on one of the loopback ports the engine
//! pulls from over plain HTTP (`common::insecure_registry_port`), so its
//! `/v2/` registry is the engine's too. The stack declares the `web`
//! repository (IMMUTABLE, scan on push), a container service `web`
//! (blue/green behind a listener, first running the local
//! `cutover-sample:test`), a build project and a pipeline: Source → Build
//! (the buildspec asks `aws ecr describe-repositories` for the
//! `repositoryUri`, logs in with `aws ecr get-login-password | podman
//! login`, then `podman build` and `podman push`, and writes
//! `imagedefinitions.json` with the tag it pushed) → Scan
//! (`CutoverImageScan`, FailOn HIGH) → Deploy (`ECS`). The tasks then run
//! `127.0.0.1:PORT/web@sha256:...`, the digest `aws ecr describe-images`
//! gives for the pushed tag (in `/v1/tasks`' `imageDigest` and in the
//! engine's own inspect). A second commit whose image holds a package with
//! a HIGH advisory fails the pipeline at the Scan stage, and the service
//! keeps running the first digest.
//!
//! The build is a privileged CONTAINER build (`environment: {image:
//! cutover-builder:test, privilegedMode: true}`, the image of
//! scripts/build-builder-image.sh: sh, the podman CLI and the aws CLI): the
//! build container gets the server's engine socket with `CONTAINER_HOST`
//! and `DOCKER_HOST` naming it, so `podman` in the build is a remote client
//! of that engine, and host networking, so the build reaches the server's
//! AWS endpoint and the engine reaches its registry. After the push the
//! buildspec waits for the scan (`aws ecr wait image-scan-complete`) and
//! prints its findings (`aws ecr describe-image-scan-findings`), seed 000's
//! pattern; the `CutoverImageScan` stage is the gate.
//!
//! The build names the image in `imagedefinitions.json` in AWS's form,
//! `ACCOUNT.dkr.ecr.REGION.amazonaws.com/web:TAG`, as buildspecs written for
//! AWS do; the server maps its own account's names to its registry. Its
//! engine pulls from its own registry without any login (its client
//! configuration, `DOCKER_CONFIG`, is an empty directory here): the server
//! gives it a fresh registry token, as ECS's task execution role does.
//!
//! Needs Podman with `cutover-sample:test` and `cutover-builder:test`
//! (scripts/setup-podman.sh, build-test-images.sh, build-builder-image.sh)
//! and the aws CLI (scripts/setup-aws-clients.sh).
//! Skipped with a message when they are missing, unless
//! `CUTOVER_CONTAINER_TESTS=1`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::aws::AwsClients;
use common::*;
use cutover_scan::fixtures::{dpkg_paragraph, osv_record};

const IMAGE: &str = "cutover-sample:test";
const BUILDER: &str = "cutover-builder:test";
const HIGH: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N";

fn tools_or_skip() -> bool {
    let required = std::env::var("CUTOVER_CONTAINER_TESTS").is_ok_and(|v| v == "1");
    let ok = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let have = ok("podman", &["image", "inspect", IMAGE])
        && ok("podman", &["image", "inspect", BUILDER])
        && ok("aws", &["--version"]);
    if !have && required {
        panic!(
            "CUTOVER_CONTAINER_TESTS=1 but podman with {IMAGE} and {BUILDER} or the aws CLI is missing: run scripts/setup-podman.sh, build-test-images.sh, build-builder-image.sh and setup-aws-clients.sh"
        );
    }
    if !have {
        eprintln!("skipping: podman with {IMAGE} and {BUILDER} and the aws CLI are needed");
    }
    have
}

/// Seed 000's buildspec, run in the builder image: `podman` there is a
/// remote client of the server's engine (`CONTAINER_HOST`).
const BUILDSPEC: &str = r#"version: 0.2
env:
  exported-variables: [IMAGE_TAG]
phases:
  pre_build:
    commands:
      - test -n "$CONTAINER_HOST"
      - URI=$(aws ecr describe-repositories --repository-names web --query 'repositories[0].repositoryUri' --output text)
      - aws ecr get-login-password | podman login --tls-verify=false -u AWS --password-stdin "${URI%%/*}"
  build:
    commands:
      - IMAGE_TAG=$(echo "$CODEBUILD_RESOLVED_SOURCE_VERSION" | cut -c1-12)
      - podman build -q -t "$URI:$IMAGE_TAG" .
      - podman push --tls-verify=false "$URI:$IMAGE_TAG"
  post_build:
    commands:
      - aws ecr wait image-scan-complete --repository-name web --image-id imageTag=$IMAGE_TAG
      - aws ecr describe-image-scan-findings --repository-name web --image-id imageTag=$IMAGE_TAG --query 'imageScanFindings.findingSeverityCounts' --output json
      - ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
      - printf '[{"name":"web","imageUri":"%s.dkr.ecr.%s.amazonaws.com/web:%s"}]' "$ACCOUNT" "$AWS_REGION" "$IMAGE_TAG" > imagedefinitions.json
artifacts:
  files:
    - imagedefinitions.json
"#;

const DOCKERFILE: &str = "FROM localhost/cutover-sample:test\nCOPY VERSION /VERSION\n";

/// The second commit's image also holds a Debian package inventory whose
/// openssl has the HIGH advisory the test imports.
const VULNERABLE_DOCKERFILE: &str = "FROM localhost/cutover-sample:test\nCOPY VERSION /VERSION\n\
     COPY os-release /etc/os-release\nCOPY status /var/lib/dpkg/status\n";

const PIPELINE: &str = r##"{"pipeline": {"name": "app", "pipelineType": "V2", "stages": [
 {"name": "Source", "actions": [{"name": "Source",
   "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "SourceArtifact"}]}]},
 {"name": "Build", "actions": [{"name": "Build", "namespace": "BuildVariables",
   "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
   "configuration": {"ProjectName": "image"}, "inputArtifacts": [{"name": "SourceArtifact"}], "outputArtifacts": [{"name": "BuildArtifact"}]}]},
 {"name": "Scan", "actions": [{"name": "Gate",
   "actionTypeId": {"category": "Test", "owner": "Custom", "provider": "CutoverImageScan", "version": "1"},
   "configuration": {"RepositoryName": "web", "ImageTag": "#{BuildVariables.IMAGE_TAG}", "FailOn": "HIGH"}}]},
 {"name": "Deploy", "actions": [{"name": "Deploy",
   "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
   "configuration": {"ClusterName": "default", "ServiceName": "web", "FileName": "imagedefinitions.json"},
   "inputArtifacts": [{"name": "BuildArtifact"}]}]}]}}"##;

/// The stack: the repository, the service, the build project and the
/// source; the pipeline too when `with_pipeline`.
fn stack(prod: u16, repo: &std::path::Path, with_pipeline: bool) -> String {
    let pipelines = if with_pipeline {
        "pipelines:\n  app: {file: ./pipeline.json}\n"
    } else {
        ""
    };
    format!(
        r#"imageRepositories:
  web:
    imageTagMutability: IMMUTABLE
    imageScanningConfiguration: {{scanOnPush: true}}
services:
  web:
    runtime: docker
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:{prod}
      healthCheck: {{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
      deregistrationDelaySeconds: 1
    deployment:
      type: BLUE_GREEN
      config: CodeDeployDefault.ECSAllAtOnce
      terminationWaitSeconds: 0
repositories:
  app: {{url: {repo}, pollIntervalSeconds: 1}}
buildProjects:
  image:
    environment: {{image: {BUILDER}, privilegedMode: true}}
{pipelines}"#,
        repo = repo.display(),
    )
}

const TASKDEF: &str = r#"{"family": "web", "containerDefinitions": [{"name": "web", "image": "cutover-sample:test", "essential": true,
  "portMappings": [{"containerPort": 8080, "protocol": "tcp"}], "stopTimeout": 2,
  "healthCheck": {"command": ["CMD-SHELL", "wget -qO- http://127.0.0.1:$PORT/health || exit 1"], "interval": 1, "timeout": 1, "retries": 2}}]}"#;

/// The newest execution of pipeline `app` other than `after`, once it ended.
fn ended_execution(server: &Server, after: Option<&str>) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(Duration::from_secs(120), || {
        let v = server.json(&["pipelines", "executions", "app"]);
        last = v["executions"][0].clone();
        last["id"].as_str().is_some_and(|id| Some(id) != after)
            && last["status"] != "InProgress"
            && last["status"] != "Stopping"
    })
    .unwrap_or_else(|| panic!("no execution ended: {last:#}\n{}", server.log()));
    last
}

/// The running tasks of `web` as (id, reported image digest).
fn running(server: &Server) -> Vec<(String, String)> {
    let v = server.json(&["tasks", "ls", "--service", "web"]);
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["imageDigest"].as_str().unwrap_or("none").to_string(),
            )
        })
        .collect()
}

/// The engine's image id of `reference` (an image or a container).
fn engine_image_id(kind: &str, reference: &str) -> String {
    let format = if kind == "image" {
        "{{.Id}}"
    } else {
        "{{.Image}}"
    };
    let out = Command::new("podman")
        .args([kind, "inspect", "--format", format, reference])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Checks that exactly 2 tasks run, each reporting the digest of `image`
/// (`repo@digest`) and each a container of the image the engine has under
/// that digest. (Not the container's `ImageName`: the build left the
/// same image tagged in the engine's storage, and Podman 4.3 may name a
/// container created by digest after that tag.)
fn assert_runs(server: &Server, image: &str) {
    let digest = image.split_once('@').unwrap().1;
    let id = engine_image_id("image", image);
    assert!(!id.is_empty(), "the engine has no {image}");
    let tasks = running(server);
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    for (task, reported) in tasks {
        assert_eq!(reported, digest, "task {task}");
        let container = format!("cutover-web-{task}");
        assert_eq!(engine_image_id("container", &container), id, "task {task}");
    }
}

/// The digest the registry has for `web:tag`, and its scan status.
fn registry_digest(aws: &AwsClients, tag: &str) -> (String, String) {
    let v = aws.json(&[
        "ecr",
        "describe-images",
        "--repository-name",
        "web",
        "--image-ids",
        &format!("imageTag={tag}"),
    ]);
    let d = &v["imageDetails"][0];
    (
        d["imageDigest"].as_str().unwrap().to_string(),
        d["imageScanStatus"]["status"]
            .as_str()
            .unwrap_or("none")
            .to_string(),
    )
}

#[test]
fn a_pipeline_builds_pushes_scans_and_deploys_by_digest_with_no_failed_request() {
    if !tools_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let docker_config = root.join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let (port, _port_lock) = insecure_registry_port();
    let server = Server::start_on(
        port,
        &[],
        &[("DOCKER_CONFIG", docker_config.to_str().unwrap())],
    );
    let registry = format!("127.0.0.1:{port}");
    let aws = AwsClients::new(&server);

    // Advisories: one HIGH for openssl before 3.0.2-1, which the first
    // image does not hold.
    let osv = root.join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("DEBIAN-CVE-2024-0001.json"),
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
    let out = server.cli(&["vulnerabilities", "import", osv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let repo = root.join("repo");
    init_repo(
        &repo,
        &[
            ("VERSION", "v1\n"),
            ("Dockerfile", DOCKERFILE),
            ("buildspec.yml", BUILDSPEC),
        ],
    );
    let prod = free_port();
    std::fs::write(root.join("taskdef.json"), TASKDEF).unwrap();
    std::fs::write(root.join("pipeline.json"), PIPELINE).unwrap();
    let apply = |with_pipeline: bool| {
        std::fs::write(root.join("stack.yaml"), stack(prod, &repo, with_pipeline)).unwrap();
        let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(root));
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
    };
    apply(false);
    wait_healthy(&server, "web", 2, Duration::from_secs(60));
    let addr = format!("127.0.0.1:{prod}");
    wait_until(Duration::from_secs(15), || {
        http_get(&addr, "/").is_ok_and(|(s, _)| s == 200)
    })
    .expect("the listener never served the first image");

    // Under load, the pipeline is created: it runs once on the head.
    let load = Load::start(addr.clone(), 4);
    apply(true);
    let first = ended_execution(&server, None);
    assert_eq!(first["status"], "Succeeded", "{first:#}\n{}", server.log());
    let tag = first["outputVariables"]["BuildVariables"]["IMAGE_TAG"]
        .as_str()
        .unwrap_or_else(|| panic!("no IMAGE_TAG: {first:#}"))
        .to_string();
    wait_until(Duration::from_secs(10), || {
        load.last_version().as_deref() == Some("v1")
    })
    .expect("the load never saw v1");
    let (digest, scan) = registry_digest(&aws, &tag);
    assert_eq!(scan, "COMPLETE");
    let pinned = format!("{registry}/web@{digest}");
    assert_runs(&server, &pinned);

    // A commit whose image holds openssl 3.0.1-1: the gate stops it.
    commit(
        &repo,
        &[
            ("VERSION", "v2\n"),
            ("Dockerfile", VULNERABLE_DOCKERFILE),
            ("os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
            ("status", &dpkg_paragraph("openssl", "3.0.1-1", None)),
        ],
        "openssl 3.0.1",
    );
    let second = ended_execution(&server, first["id"].as_str());
    assert_eq!(second["status"], "Failed", "{second:#}\n{}", server.log());
    let text = second.to_string();
    assert!(text.contains("at or above HIGH"), "{second:#}");
    let bad_tag = second["outputVariables"]["BuildVariables"]["IMAGE_TAG"]
        .as_str()
        .unwrap_or_else(|| panic!("no IMAGE_TAG: {second:#}"))
        .to_string();
    let (bad_digest, _) = registry_digest(&aws, &bad_tag);
    assert_ne!(bad_digest, digest);
    let deployments = server.json(&["deployments", "ls", "--service", "web"]);
    assert!(
        !deployments.to_string().contains(&bad_tag),
        "the vulnerable image was deployed: {deployments:#}"
    );

    let (ok, failed, versions) = load.finish();
    eprintln!("load: {ok} requests answered, {failed} failed; {pinned} deployed");
    assert!(ok > 100, "too little traffic to mean anything: {ok}");
    assert_eq!(failed, 0, "{failed} failed requests of {}", ok + failed);
    assert!(
        versions.iter().all(|v| v == "unknown" || v == "v1"),
        "{:?}",
        versions
            .iter()
            .filter(|v| *v != "unknown" && *v != "v1")
            .take(3)
            .collect::<Vec<_>>()
    );
    assert_eq!(http_get(&addr, "/").unwrap().1.trim(), "v1");
    assert_runs(&server, &pinned);

    // The tags the build left in the engine's local storage.
    let _ = Command::new("podman")
        .args(["image", "untag"])
        .arg(format!("{registry}/web:{tag}"))
        .output();
    let _ = Command::new("podman")
        .args(["image", "rm"])
        .arg(format!("{registry}/web:{bad_tag}"))
        .output();
}

/// Issue 11, item 9: an image name of AWS's form,
/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG`, reaches this registry
/// through Podman's `registries.conf` rewrite (`[[registry]]` `prefix` and
/// `location`), written here in a private `CONTAINERS_REGISTRIES_CONF`.
/// The rewrite applies to pulls (and runs): the image is pushed to the
/// `repositoryUri`, logged in under the registry's own address, and pulled
/// by its AWS name.
#[test]
fn an_image_name_of_aws_form_pulls_from_the_registry_through_registries_conf() {
    if !tools_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start();
    let aws = AwsClients::new(&server);
    let uri = aws.json(&["ecr", "create-repository", "--repository-name", "web"])["repository"]
        ["repositoryUri"]
        .as_str()
        .unwrap()
        .to_string();
    let registry = uri.split_once('/').unwrap().0.to_string();
    let account = aws.json(&["sts", "get-caller-identity"])["Account"]
        .as_str()
        .unwrap()
        .to_string();
    let aws_name = format!("{account}.dkr.ecr.us-east-1.amazonaws.com");
    let conf = tmp.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"{aws_name}\"\nlocation = \"{registry}\"\ninsecure = true\n"
        ),
    )
    .unwrap();
    let auth = tmp.path().join("auth.json");
    std::fs::write(&auth, "{}").unwrap();
    let podman = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write as _;
        let mut child = Command::new("podman")
            .args(args)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .env("REGISTRY_AUTH_FILE", &auth)
            .env_remove("CONTAINER_HOST")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let out = aws.run(&["ecr", "get-login-password"]);
    let password = String::from_utf8(out.stdout).unwrap();
    podman(
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "AWS",
            "--password-stdin",
            &registry,
        ],
        Some(&password),
    );
    let pushed = format!("{uri}:aws");
    podman(&["push", "--tls-verify=false", IMAGE, &pushed], None);
    let (digest, _) = registry_digest(&aws, "aws");

    let by_aws_name = format!("{aws_name}/web:aws");
    podman(&["pull", "-q", &by_aws_name], None);
    let digests = podman(
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &by_aws_name,
        ],
        None,
    );
    assert!(
        digests.contains(&format!("\"{aws_name}/web@{digest}\"")),
        "{by_aws_name} is not {digest}: {digests}"
    );
    // The pull tagged IMAGE's own image (pushing changes no image id):
    // remove that one name, never every tag of it.
    let _ = Command::new("podman")
        .args(["image", "untag", &by_aws_name, &by_aws_name])
        .output();
}
