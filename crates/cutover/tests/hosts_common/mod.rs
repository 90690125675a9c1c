//! What the host-deployment end-to-end tests share: a real `cutover agent`
//! (with its own `--root` and `--target`) and revisions whose hooks run
//! the sample app on the host's port, and readers of the CLI's answers.
#![allow(dead_code, unreachable_pub)]

use crate::common::{BIN, Server, free_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A `cutover agent` and the sample app its hooks started, both killed on drop.
pub struct Agent {
    pub child: Child,
    pub root: tempfile::TempDir,
    pub port: u16,
}

impl Agent {
    pub fn start(server: &Server, name: &str, zone: &str) -> Agent {
        Agent::start_tagged(server, name, zone, "env=prod")
    }

    /// An agent with `--tags tags`.
    pub fn start_tagged(server: &Server, name: &str, zone: &str, tags: &str) -> Agent {
        let root = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::create_dir_all(root.path().join("run")).unwrap();
        let log = std::fs::File::create(root.path().join("agent.log")).unwrap();
        let child = Command::new(BIN)
            .args(["agent", "--server", &server.url(), "--name", name])
            .args(["--tags", tags, "--zone", zone])
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
    pub fn installed(&self) -> String {
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

pub const APPSPEC: &str = "version: 0.0
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

pub const STOP: &str = r#"#!/bin/sh
pid=$(cat "$RUN_DIR/app.pid" 2>/dev/null) || exit 0
kill "$pid" 2>/dev/null
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
rm -f "$RUN_DIR/app.pid"
echo "stopped $pid"
"#;

pub const START: &str = r#"#!/bin/sh
APP_VERSION=$(cat VERSION) nohup "$CUTOVER_BIN" sample-app >"$RUN_DIR/app.log" 2>&1 &
echo $! > "$RUN_DIR/app.pid"
echo "started $(cat VERSION) on $PORT"
"#;

/// Waits (up to 10 s) for the app to answer the revision's version.
pub const VALIDATE: &str = r#"#!/bin/sh
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
pub fn revision(dir: &Path, version: &str, fail_on: Option<&str>) -> PathBuf {
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

pub fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn deploy(server: &Server, rev: &Path) -> Output {
    deploy_to(server, "prod", rev, true)
}

/// `cutover deploy` of `rev` to group `group` of application `shop`.
pub fn deploy_to(server: &Server, group: &str, rev: &Path, wait: bool) -> Output {
    let mut args = vec![
        "deploy",
        "--application",
        "shop",
        "--deployment-group",
        group,
        "--revision",
        rev.to_str().unwrap(),
    ];
    if wait {
        args.push("--wait");
    }
    server.cli(&args)
}

/// The id of the deployment on the first line of `cutover deploy`'s
/// output (`deployment d-…: …` with `--wait`, `DEPLOYMENT  d-…` without).
pub fn announced_id(stdout: &str) -> String {
    stdout
        .lines()
        .next()
        .and_then(|l| l.split([' ', ':']).find(|w| w.starts_with("d-")))
        .unwrap_or_else(|| panic!("no deployment id in {stdout}"))
        .to_string()
}

/// Each host's event names, in order, from `deployments get ID -o json`.
pub fn events(server: &Server, id: &str) -> Vec<(String, String, Vec<String>)> {
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

pub fn position(events: &[String], name: &str) -> usize {
    events
        .iter()
        .position(|e| e == name)
        .unwrap_or_else(|| panic!("no {name} in {events:?}"))
}
