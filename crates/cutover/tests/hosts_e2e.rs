//! Host deployments end to end: a real `cutover server`, three real
//! `cutover agent` processes (tags env=prod, zones a, b, c, each with its
//! own `--root` and `--target`) behind a data-plane listener, and the CLI.
//! The revision is a directory whose hooks run the sample app
//! (`cutover sample-app`) on the host's port.
//!
//! - a revision whose appspec has a mistake: refused with its location.
//! - v1, then v2 under load through the listener, OneAtATime: zero failed
//!   requests; each host leaves the target group before ApplicationStop
//!   and returns after ValidateService.
//! - v3, whose ValidateService fails on h2: the deployment fails, and the
//!   automatic rollback restores v2 on every host.

mod common;

use common::{BIN, Load, Server, free_port, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const HOSTS: [(&str, &str); 3] = [("h1", "a"), ("h2", "b"), ("h3", "c")];

/// A `cutover agent` and the sample app its hooks started, both killed on drop.
struct Agent {
    child: Child,
    root: tempfile::TempDir,
    port: u16,
}

impl Agent {
    fn start(server: &Server, name: &str, zone: &str) -> Agent {
        let root = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::create_dir_all(root.path().join("run")).unwrap();
        let log = std::fs::File::create(root.path().join("agent.log")).unwrap();
        let child = Command::new(BIN)
            .args(["agent", "--server", &server.url(), "--name", name])
            .args(["--tags", "env=prod", "--zone", zone])
            .arg("--root")
            .arg(root.path())
            .args(["--target", &format!("127.0.0.1:{port}")])
            .args(["--env", &format!("PORT={port}")])
            .args(["--env", &format!("HOST_NAME={name}")])
            .args(["--env", &format!("CUTOVER_BIN={BIN}")])
            .arg("--env")
            .arg(format!("RUN_DIR={}", root.path().join("run").display()))
            .env("CUTOVER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent { child, root, port }
    }

    /// The version installed by the appspec's `files`.
    fn installed(&self) -> String {
        std::fs::read_to_string(self.root.path().join("srv/shop/VERSION"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(pid) = std::fs::read_to_string(self.root.path().join("run/app.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

const APPSPEC: &str = "version: 0.0
os: linux
files:
  - source: VERSION
    destination: /srv/shop
file_exists_behavior: OVERWRITE
hooks:
  ApplicationStop:
    - location: hooks/stop.sh
      timeout: 10
  ApplicationStart:
    - location: hooks/start.sh
      timeout: 10
  ValidateService:
    - location: hooks/validate.sh
      timeout: 15
";

const STOP: &str = r#"#!/bin/sh
pid=$(cat "$RUN_DIR/app.pid" 2>/dev/null) || exit 0
kill "$pid" 2>/dev/null
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
rm -f "$RUN_DIR/app.pid"
echo "stopped $pid"
"#;

const START: &str = r#"#!/bin/sh
APP_VERSION=$(cat VERSION) nohup "$CUTOVER_BIN" sample-app >"$RUN_DIR/app.log" 2>&1 &
echo $! > "$RUN_DIR/app.pid"
echo "started $(cat VERSION) on $PORT"
"#;

/// Waits (up to 10 s) for the app to answer the revision's version.
const VALIDATE: &str = r#"#!/bin/sh
want=$(cat VERSION)
i=0
while [ $i -lt 200 ]; do
  got=$(curl -fs "http://127.0.0.1:$PORT/" 2>/dev/null)
  [ "$got" = "$want" ] && { echo "serving $got"; exit 0; }
  sleep 0.05; i=$((i+1))
done
echo "expected $want, got '$got'"
exit 1
"#;

/// Writes revision `version` under `dir`; `fail_on` makes its
/// ValidateService fail on that host.
fn revision(dir: &Path, version: &str, fail_on: Option<&str>) -> PathBuf {
    let rev = dir.join(version);
    let validate = match fail_on {
        Some(h) => format!(
            "#!/bin/sh\n[ \"$HOST_NAME\" = {h} ] && {{ echo \"{version} is broken on $HOST_NAME\"; exit 1; }}\n{}",
            VALIDATE.trim_start_matches("#!/bin/sh\n")
        ),
        None => VALIDATE.to_string(),
    };
    for (path, text) in [
        ("appspec.yml", APPSPEC),
        ("VERSION", &format!("{version}\n")),
        ("hooks/stop.sh", STOP),
        ("hooks/start.sh", START),
        ("hooks/validate.sh", &validate),
    ] {
        let p = rev.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    rev
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn deploy(server: &Server, rev: &Path) -> Output {
    server.cli(&[
        "deploy",
        "--application",
        "shop",
        "--deployment-group",
        "prod",
        "--revision",
        rev.to_str().unwrap(),
        "--wait",
    ])
}

/// The id of the deployment `--wait` announced on its first line.
fn announced_id(stdout: &str) -> String {
    stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("deployment "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no deployment id in {stdout}"))
        .to_string()
}

/// Each host's event names, in order, from `deployments get ID -o json`.
fn events(server: &Server, id: &str) -> Vec<(String, String, Vec<String>)> {
    let v = server.json(&["deployments", "get", id]);
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["host"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
                t["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["event"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn position(events: &[String], name: &str) -> usize {
    events
        .iter()
        .position(|e| e == name)
        .unwrap_or_else(|| panic!("no {name} in {events:?}"))
}

#[test]
fn three_hosts_deploy_under_load_and_a_failed_validation_rolls_back() {
    let server = Server::start();
    let listener = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stack.yaml"),
        format!(
            "applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      prod:
        onPremisesTagFilters: [{{Key: env, Value: prod, Type: KEY_AND_VALUE}}]
        deploymentConfig: CodeDeployDefault.OneAtATime
        loadBalancer:
          listener: {listener}
          healthCheck: {{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
          deregistrationDelaySeconds: 1
        autoRollback: [DEPLOYMENT_FAILURE]
"
        ),
    )
    .unwrap();
    ok(
        &server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path())),
        "apply",
    );
    let agents: Vec<Agent> = HOSTS
        .iter()
        .map(|(name, zone)| Agent::start(&server, name, zone))
        .collect();
    wait_until(Duration::from_secs(20), || {
        let v = server.json(&["agents", "ls"]);
        v["agents"].as_array().is_some_and(|a| a.len() == 3)
    })
    .expect("three agents registered");

    // A mistake in the appspec is a located error before any host is touched.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("appspec.yml"), "version: 0.0\nos: windows\n").unwrap();
    let out = deploy(&server, &bad);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(stderr.contains("appspec.yml:2:"), "{stderr}");

    // v1: nothing ran before, so ApplicationStop is skipped everywhere.
    let v1 = revision(dir.path(), "v1", None);
    let out = ok(&deploy(&server, &v1), "deploy v1");
    assert!(out.contains("Succeeded"), "{out}");
    for a in &agents {
        assert_eq!(a.installed(), "v1");
        let (status, body) = common::http_get(&format!("127.0.0.1:{}", a.port), "/").unwrap();
        assert_eq!((status, body.trim()), (200, "v1"));
    }
    wait_until(Duration::from_secs(20), || {
        common::http_get(&listener, "/").is_ok_and(|(s, b)| s == 200 && b.trim() == "v1")
    })
    .expect("the listener serves v1");
    let described = server.json(&["agents", "describe", "h1"]);
    assert!(
        described.to_string().contains("sha256:"),
        "describe shows the last revision: {described}"
    );

    // v2 under load: no request fails.
    let load = Load::start(listener.clone(), 4);
    let v2 = revision(dir.path(), "v2", None);
    let out = ok(&deploy(&server, &v2), "deploy v2");
    wait_until(Duration::from_secs(10), || {
        load.last_version().as_deref() == Some("v2")
    })
    .expect("the listener serves v2");
    let (served, failed, bodies) = load.finish();
    eprintln!("v1 -> v2 under load: {served} requests served, {failed} failed");
    assert_eq!(failed, 0, "failed requests during v1 -> v2 ({served} ok)");
    assert!(bodies.iter().any(|b| b == "v1") && bodies.iter().any(|b| b == "v2"));
    let id = announced_id(&out);
    for (host, status, evs) in events(&server, &id) {
        assert_eq!(status, "Succeeded", "{host}: {evs:?}");
        assert!(position(&evs, "BlockTraffic") < position(&evs, "ApplicationStop"));
        assert!(position(&evs, "ValidateService") < position(&evs, "AllowTraffic"));
    }
    for a in &agents {
        assert_eq!(a.installed(), "v2");
    }

    // v3 fails its validation on h2: the deployment fails and rolls back.
    let v3 = revision(dir.path(), "v3", Some("h2"));
    let out = deploy(&server, &v3);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("rolled back by"), "{stdout}");
    let failed_id = announced_id(&stdout);
    let get = ok(&server.cli(&["deployments", "get", &failed_id]), "get");
    assert!(get.contains("v3 is broken on h2"), "{get}");
    let v = server.json(&["deployments", "get", &failed_id]);
    assert_eq!(v["status"], "Failed", "{v}");
    let rollback = v["rolledBackBy"].as_str().expect("a rollback").to_string();
    let r = server.json(&["deployments", "get", &rollback]);
    assert_eq!(r["status"], "Succeeded", "{r}");
    for a in &agents {
        assert_eq!(a.installed(), "v2");
        let (status, body) = common::http_get(&format!("127.0.0.1:{}", a.port), "/").unwrap();
        assert_eq!((status, body.trim()), (200, "v2"));
    }
    wait_until(Duration::from_secs(20), || {
        common::http_get(&listener, "/").is_ok_and(|(s, b)| s == 200 && b.trim() == "v2")
    })
    .expect("the listener serves v2 again");
}
