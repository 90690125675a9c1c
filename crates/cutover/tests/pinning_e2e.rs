//! End to end with a real registry: Debian's `docker-registry` (CNCF
//! distribution) on a loopback port of this test, the test image pushed to
//! it with skopeo, a container service deployed from `web:v1`; then the tag
//! is moved to other content, and a scale-up and a rollback still run the
//! digest the first deployment pinned (checked in the engine's own inspect
//! of each container and in the digest each task reports).
//!
//! "Other content" is the same image pushed in the other manifest format
//! (Docker schema 2, then OCI): another manifest, so another digest, with no
//! image build. The registry listens on one of the loopback ports that
//! scripts/setup-podman.sh marks plain HTTP for the engine
//! (`common::insecure_registry_port`).
//!
//! Needs an engine with the `cutover-sample:test` image, `docker-registry`
//! and `skopeo` (scripts/setup-podman.sh, build-test-images.sh,
//! setup-docker-registry.sh). Skipped with a message when they are missing,
//! unless `CUTOVER_CONTAINER_TESTS=1`.

mod common;

use common::*;
use std::process::{Child, Command};
use std::time::Duration;

const IMAGE: &str = "cutover-sample:test";

fn tools_or_skip() -> bool {
    let required = std::env::var("CUTOVER_CONTAINER_TESTS").is_ok_and(|v| v == "1");
    let ok = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let have = ok("podman", &["image", "inspect", IMAGE])
        && ok("skopeo", &["--version"])
        && Command::new("docker-registry")
            .arg("--version")
            .output()
            .is_ok();
    if !have && required {
        panic!(
            "CUTOVER_CONTAINER_TESTS=1 but podman with {IMAGE}, skopeo or docker-registry is missing: run scripts/setup-podman.sh, build-test-images.sh and setup-docker-registry.sh"
        );
    }
    if !have {
        eprintln!("skipping: podman with {IMAGE}, skopeo and docker-registry are needed");
    }
    have
}

/// A `docker-registry` of this test, on a port the engine pulls from over
/// plain HTTP (held for this test alone).
struct Registry {
    child: Child,
    addr: String,
    _port: std::fs::File,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let (port, port_lock) = insecure_registry_port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("registry.err")).unwrap())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            addr,
            _port: port_lock,
            _dir: dir,
        };
        wait_until(Duration::from_secs(20), || {
            http_get(&registry.addr, "/v2/").is_ok_and(|(s, _)| s == 200)
        })
        .expect("docker-registry never answered");
        registry
    }

    /// Pushes the test image as `web:<tag>` in `format` (`v2s2` or `oci`);
    /// returns the manifest digest the registry now has for the tag.
    fn push(&self, tag: &str, format: &str) -> String {
        let dest = format!("docker://{}/web:{tag}", self.addr);
        let out = Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", "--format", format])
            .arg(format!("containers-storage:localhost/{IMAGE}"))
            .arg(&dest)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(&dest)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_stack(dir: &std::path::Path, image: &str) {
    std::fs::write(
        dir.join("stack.yaml"),
        "services:\n  web:\n    runtime: docker\n    desiredCount: 1\n    taskDefinition: ./taskdef.json\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("taskdef.json"),
        format!(
            r#"{{"family": "web", "containerDefinitions": [{{"name": "web", "image": "{image}", "essential": true,
  "environment": [{{"name": "APP_VERSION", "value": "v1"}}],
  "portMappings": [{{"containerPort": 8080}}], "stopTimeout": 2}}]}}"#
        ),
    )
    .unwrap();
}

/// The running tasks of `web` as (id, task definition, reported digest).
fn running(server: &Server) -> Vec<(String, String, String)> {
    let v = server.json(&["tasks", "ls", "--service", "web"]);
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["taskDefinition"].as_str().unwrap().to_string(),
                t["imageDigest"].as_str().unwrap_or("none").to_string(),
            )
        })
        .collect()
}

/// The image the engine created task `id`'s container from.
fn engine_image(id: &str) -> String {
    let out = Command::new("podman")
        .args(["inspect", "--format", "{{.ImageName}}"])
        .arg(format!("cutover-web-{id}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until `n` tasks of `revision` run, and checks that each reports
/// `digest` and that the engine created each from `repo@digest`.
fn assert_runs(server: &Server, registry: &Registry, revision: &str, n: usize, digest: &str) {
    let ok = wait_until(Duration::from_secs(90), || {
        let tasks = running(server);
        tasks.len() == n && tasks.iter().all(|(_, td, _)| td == revision)
    });
    assert!(
        ok.is_some(),
        "{n} tasks of {revision} never ran: {:?}\n{}",
        running(server),
        server.log()
    );
    let pinned = format!("{}/web@{digest}", registry.addr);
    for (id, _, reported) in running(server) {
        assert_eq!(reported, digest, "task {id}");
        assert_eq!(engine_image(&id), pinned, "task {id}");
    }
}

#[test]
fn a_moved_tag_changes_neither_a_scale_up_nor_a_rollback() {
    if !tools_or_skip() {
        return;
    }
    let registry = Registry::start();
    let d1 = registry.push("v1", "v2s2");
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    write_stack(dir.path(), &format!("{}/web:v1", registry.addr));
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_runs(&server, &registry, "web:1", 1, &d1);

    // The tag moves to other content; a scale-up runs the pinned digest.
    let d2 = registry.push("v1", "oci");
    assert_ne!(d1, d2, "the OCI push must give another manifest");
    let out = server.cli(&["services", "scale", "web", "--desired", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_runs(&server, &registry, "web:1", 2, &d1);

    // A deployment of another tag pins that tag's digest when it starts.
    let d3 = registry.push("v2", "oci");
    let image_v2 = format!("{}/web:v2", registry.addr);
    let out = server.cli(&[
        "deploy",
        "web",
        "--image",
        &format!("web={image_v2}"),
        "--wait",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_runs(&server, &registry, "web:2", 2, &d3);

    // The rollback restores web:1's pinned digest, not what v1 names now.
    let out = server.cli(&["deployments", "rollback", "web", "--wait"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_runs(&server, &registry, "web:1", 2, &d1);

    // A tag the registry does not have refuses the deployment.
    let out = server.cli(&[
        "deploy",
        "web",
        "--image",
        &format!("web={}/web:missing", registry.addr),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CannotPullContainerError"), "{err}");
}
