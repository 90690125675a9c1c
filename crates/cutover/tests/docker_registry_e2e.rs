//! Docker's own client against the registry: a private `dockerd` (its own
//! socket, data and exec roots, no iptables, no bridge, the server's port as
//! an insecure registry) logs in with `aws ecr get-login-password | docker
//! login --username AWS --password-stdin`, loads the project's test image
//! (`podman save` of `cutover-sample:test`, made by
//! scripts/build-test-images.sh), pushes it, removes it, pulls it back, and
//! the digest Docker reports is the one ECR describes.
//!
//! Needs root, `dockerd` (Debian's docker.io, which scripts/test.sh
//! installs), Podman with the test image, and the aws CLI. When
//! `CUTOVER_CONTAINER_TESTS=1` (CI) any of them missing, or a dockerd that
//! does not start, fails the test; otherwise the test is skipped. The
//! daemon is stopped and its directories removed when the test ends, also
//! when it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::aws::AwsClients;
use common::*;

const IMAGE: &str = "cutover-sample:test";

fn required() -> bool {
    std::env::var("CUTOVER_CONTAINER_TESTS").is_ok_and(|v| v == "1")
}

/// Skips (or, when required, fails) the test with `why`.
fn unavailable(why: &str) -> bool {
    if required() {
        panic!("CUTOVER_CONTAINER_TESTS=1 but {why}");
    }
    eprintln!("skipping: {why} (set CUTOVER_CONTAINER_TESTS=1 to require it)");
    false
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A private Docker Engine, stopped and its directories removed on drop.
struct Dockerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Dockerd {
    /// Starts `dockerd` trusting `insecure` (host:port) over plain HTTP;
    /// returns once it answers.
    fn start(insecure: &str) -> Dockerd {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        for d in ["data", "exec", "config"] {
            std::fs::create_dir_all(p(d)).unwrap();
        }
        let log = std::fs::File::create(p("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--host")
            .arg(format!("unix://{}", p("docker.sock").display()))
            .args([
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--log-level=warn",
                "--insecure-registry",
                insecure,
            ])
            .arg("--data-root")
            .arg(p("data"))
            .arg("--exec-root")
            .arg(p("exec"))
            .arg("--pidfile")
            .arg(p("dockerd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dockerd: {e}"));
        let mut d = Dockerd {
            child: Some(child),
            dir,
        };
        let up = wait_until(Duration::from_secs(30), || {
            d.docker(&["version"])
                .output()
                .is_ok_and(|o| o.status.success())
                || d.exited()
        });
        if up.is_none() || d.exited() {
            panic!(
                "dockerd did not start; its log:\n{}",
                std::fs::read_to_string(d.path("dockerd.log")).unwrap_or_default()
            );
        }
        d
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// The docker CLI against this daemon, with a config directory of its own.
    fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env(
            "DOCKER_HOST",
            format!("unix://{}", self.path("docker.sock").display()),
        )
        .env("DOCKER_CONFIG", self.path("config"))
        .args(args);
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM lets dockerd stop its containerd and unmount its layers.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let stopped = wait_until(Duration::from_secs(20), || {
            child.try_wait().ok().flatten().is_some()
        });
        if stopped.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The TempDir removes the data and exec roots after this.
    }
}

/// Whether the test can run here (root, dockerd, the image in Podman).
fn prerequisites() -> bool {
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
    {
        return unavailable("dockerd needs root");
    }
    if !Command::new("dockerd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return unavailable("dockerd is missing (Debian's docker.io)");
    }
    if !Command::new("podman")
        .args(["image", "exists", IMAGE])
        .status()
        .is_ok_and(|s| s.success())
    {
        return unavailable("Podman has no cutover-sample:test: run scripts/build-test-images.sh");
    }
    true
}

/// `docker push`'s `TAG: digest: sha256:... size: N` line's digest.
fn pushed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split_once("digest: ").map(|(_, rest)| rest))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in docker push's output:\n{out}"))
        .to_string()
}

fn save_image(dir: &Path) -> PathBuf {
    let tar = dir.join("image.tar");
    run(Command::new("podman")
        .args(["save", "--format", "docker-archive", "-o"])
        .arg(&tar)
        .arg(IMAGE));
    tar
}

#[test]
fn docker_logs_in_with_ecr_password_then_pushes_and_pulls_the_test_image() {
    if !prerequisites() {
        return;
    }
    let server = Server::start();
    let host = server.addr.to_string();
    let docker = Dockerd::start(&host);
    let aws = AwsClients::new(&server);
    aws.json(&["ecr", "create-repository", "--repository-name", "sample"]);

    // aws ecr get-login-password | docker login --username AWS --password-stdin HOST
    let password = aws.run(&["ecr", "get-login-password"]);
    assert!(password.status.success());
    let mut login = docker
        .docker(&["login", "--username", "AWS", "--password-stdin", &host])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), &password.stdout).unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let tar = save_image(docker.dir.path());
    run(docker.docker(&["load", "-i"]).arg(&tar));
    let id = stdout(&run(&mut docker.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &format!("localhost/{IMAGE}"),
    ])));
    let remote = format!("{host}/sample:1");
    run(&mut docker.docker(&["tag", &format!("localhost/{IMAGE}"), &remote]));
    let pushed = pushed_digest(&stdout(&run(&mut docker.docker(&["push", &remote]))));
    let described = aws.json(&["ecr", "describe-images", "--repository-name", "sample"]);
    assert_eq!(described["imageDetails"][0]["imageDigest"], pushed.as_str());
    assert_eq!(described["imageDetails"][0]["imageTags"][0], "1");

    run(&mut docker.docker(&["rmi", &remote, &format!("localhost/{IMAGE}")]));
    run(&mut docker.docker(&["pull", &remote]));
    let (pulled_id, repo_digest) = {
        let out = stdout(&run(&mut docker.docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{index .RepoDigests 0}}",
            &remote,
        ])));
        let (a, b) = out.split_once(' ').unwrap();
        (a.to_string(), b.to_string())
    };
    assert_eq!(pulled_id, id, "the pulled image is the loaded one");
    assert_eq!(repo_digest, format!("{host}/sample@{pushed}"));
}
