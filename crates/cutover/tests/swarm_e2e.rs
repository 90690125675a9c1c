//! End to end on a two-node Docker Swarm (issue 15): `scripts/swarm-up.sh`
//! makes the swarm (two engines in two network namespaces), a `cutover
//! proxy` runs on each node as a global Swarm service, and `cutover server`
//! drives a `runtime: swarm` service of 4 tasks spread over both nodes:
//! a blue/green deployment under load with zero failed requests and traffic
//! on both nodes, a drain of node 2 with zero failed requests, and a
//! `kill -9` of the control plane mid-deployment, which resumes.
//! `scripts/swarm-down.sh` runs at the end, also when the test fails.
//!
//! Needs root, Debian's docker.io (swarm-up installs it) and the
//! `cutover-sample:test` image in Podman (scripts/build-test-images.sh).
//! With `CUTOVER_CONTAINER_TESTS=1` (CI) anything missing fails the test;
//! otherwise it is skipped with a message.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const PROXY_ADMIN_PORT: u16 = 19990;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The swarm of `swarm-up.sh`, torn down by `swarm-down.sh` when dropped.
struct Swarm {
    vars: BTreeMap<String, String>,
}

impl Swarm {
    /// Runs swarm-up; `None` (skip) when it cannot and the tests are not required.
    fn up_or_skip() -> Option<Swarm> {
        let required = std::env::var("CUTOVER_CONTAINER_TESTS").is_ok_and(|v| v == "1");
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let usable = is_root
            && Command::new("podman")
                .args(["image", "exists", "cutover-sample:test"])
                .status()
                .is_ok_and(|s| s.success());
        if !usable {
            assert!(
                !required,
                "CUTOVER_CONTAINER_TESTS=1 but the swarm test cannot run: it needs root and the image cutover-sample:test in podman (scripts/build-test-images.sh)"
            );
            eprintln!(
                "skipping: not root or no cutover-sample:test image (set CUTOVER_CONTAINER_TESTS=1 to require it)"
            );
            return None;
        }
        let out = Command::new(root().join("scripts/swarm-up.sh"))
            .output()
            .unwrap();
        // Dropped from here on: swarm-down runs whatever happens next.
        let mut swarm = Swarm {
            vars: BTreeMap::new(),
        };
        assert!(
            out.status.success(),
            "swarm-up.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            for pair in line.trim_start_matches("export ").split_whitespace() {
                if let Some((k, v)) = pair.split_once('=') {
                    swarm.vars.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        Some(swarm)
    }

    fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("swarm-up.sh printed no {name}: {:?}", self.vars))
    }

    /// `docker` against the manager; asserts success, returns stdout.
    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.var("DOCKER_HOST"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn nodes(&self) -> [String; 2] {
        [
            self.var("CUTOVER_SWARM_NODE1").to_owned(),
            self.var("CUTOVER_SWARM_NODE2").to_owned(),
        ]
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(host) = self.vars.get("DOCKER_HOST")
        {
            // What Swarm had, for the failure's reader.
            let out = Command::new("sh")
                .args([
                    "-c",
                    "docker service ls; docker service ps --no-trunc $(docker service ls -q)",
                ])
                .env("DOCKER_HOST", host)
                .output();
            if let Ok(out) = out {
                eprintln!(
                    "swarm at the failure:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let out = Command::new(root().join("scripts/swarm-down.sh")).output();
        if let Ok(out) = out
            && !out.status.success()
        {
            eprintln!("swarm-down.sh: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Stops the data plane of a server's data directory when dropped.
struct DataPlane(PathBuf);

impl Drop for DataPlane {
    fn drop(&mut self) {
        stop_data_plane(&self.0);
    }
}

fn write_stack(dir: &std::path::Path, prod: u16, test: u16) {
    std::fs::write(
        dir.join("stack.yaml"),
        format!(
            r#"services:
  web:
    runtime: swarm
    desiredCount: 4
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 0.0.0.0:{prod}
      testListener: 0.0.0.0:{test}
      healthCheck: {{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
      deregistrationDelaySeconds: 2
    deployment:
      type: BLUE_GREEN
      config: Canary20Percent6Seconds
      terminationWaitSeconds: 1
      autoRollback: [DEPLOYMENT_FAILURE]
deploymentConfigs:
  Canary20Percent6Seconds:
    trafficRouting: {{type: TimeBasedCanary, timeBasedCanary: {{canaryPercentage: 20, canaryIntervalSeconds: 6}}}}
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("taskdef.json"),
        r#"{"family": "web", "cpu": "256", "memory": "512",
  "containerDefinitions": [{"name": "web", "image": "cutover-sample:test", "essential": true,
  "entryPoint": ["/cutover"], "command": ["sample-app"],
  "environment": [{"name": "APP_VERSION", "value": "v1"}],
  "portMappings": [{"containerPort": 8080, "protocol": "tcp"}], "stopTimeout": 5,
  "healthCheck": {"command": ["CMD-SHELL", "wget -qO- http://127.0.0.1:$PORT/health || exit 1"], "interval": 1, "timeout": 1, "retries": 2}}]}
"#,
    )
    .unwrap();
}

/// The node addresses the healthy tasks of `web` run on.
fn task_nodes(server: &Server) -> Vec<String> {
    let mut nodes: Vec<String> = server
        .tasks("web")
        .iter()
        .filter_map(|t| {
            t.endpoint
                .as_deref()?
                .rsplit_once(':')
                .map(|(ip, _)| ip.to_owned())
        })
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

#[test]
fn a_swarm_service_is_spread_deployed_drained_and_resumed() {
    let Some(swarm) = Swarm::up_or_skip() else {
        return;
    };
    let nodes = swarm.nodes();

    // A data plane on every node: `cutover proxy` as a global service on
    // the node's network, with an admin token of its own.
    let token = "swarm-e2e-node-proxy-token";
    swarm.docker(&[
        "service",
        "create",
        "-d",
        "--name",
        "cutover-proxy",
        "--mode",
        "global",
        "--network",
        "host",
        "--env",
        &format!("CUTOVER_PROXY_TOKEN={token}"),
        "cutover-sample:test",
        "/cutover",
        "proxy",
        "--admin-address",
        &format!("0.0.0.0:{PROXY_ADMIN_PORT}"),
        "--state-dir",
        "/tmp/cutover-proxy",
    ]);
    for node in &nodes {
        let admin = format!("{node}:{PROXY_ADMIN_PORT}");
        wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&admin).is_ok()
        })
        .unwrap_or_else(|| panic!("no node proxy answers at {admin}"));
    }
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("node-proxy.token");
    std::fs::write(&token_file, token).unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let node_proxies = nodes
        .iter()
        .map(|n| format!("{n}:{PROXY_ADMIN_PORT}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut server = Server::start_with(
        &[
            "--node-proxy",
            &node_proxies,
            "--node-proxy-token-file",
            token_file.to_str().unwrap(),
        ],
        &[("DOCKER_HOST", swarm.var("DOCKER_HOST"))],
    );

    // The local data plane outlives the server by design: stopped when the
    // test ends, also when it fails.
    let _data_plane = DataPlane(server.data_dir.clone());

    let dir = tempfile::tempdir().unwrap();
    let (prod, test) = (free_port(), free_port());
    write_stack(dir.path(), prod, test);
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_healthy(&server, "web", 4, Duration::from_secs(60));
    assert_eq!(
        task_nodes(&server),
        nodes.to_vec(),
        "4 tasks not spread over both nodes"
    );
    // Every proxy serves the listener: the local one and each node's.
    let local = format!("127.0.0.1:{prod}");
    for addr in [
        local.clone(),
        format!("{}:{prod}", nodes[0]),
        format!("{}:{prod}", nodes[1]),
    ] {
        wait_until(Duration::from_secs(20), || {
            http_get(&addr, "/").is_ok_and(|(s, b)| s == 200 && b.trim() == "v1")
        })
        .unwrap_or_else(|| panic!("{addr} never served v1\n{}", server.log()));
    }

    // Blue/green under load through the local proxy: no request fails.
    let load = Load::start(local.clone(), 4);
    let out = server.cli(&["deploy", "web", "--env", "web:APP_VERSION=v2", "--wait"]);
    assert!(
        out.status.success(),
        "deployment failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        server.log()
    );
    wait_healthy(&server, "web", 4, Duration::from_secs(60));
    assert_eq!(
        task_nodes(&server),
        nodes.to_vec(),
        "the replacement tasks are not on both nodes"
    );
    let (ok, failed, bodies) = load.finish();
    assert_eq!(
        failed, 0,
        "{failed} requests failed during the deployment ({ok} ok)"
    );
    assert!(bodies.iter().any(|b| b == "v2"), "v2 never answered");
    for node in &nodes {
        let (status, body) = http_get(&format!("{node}:{prod}"), "/").unwrap();
        assert_eq!((status, body.trim()), (200, "v2"), "the proxy of {node}");
    }

    // Drain node 2 under load: its tasks move to node 1, no request fails.
    let node2 = swarm.docker(&[
        "node",
        "ls",
        "--filter",
        "node.label=cutover-node=node2",
        "-q",
    ]);
    let load = Load::start(local.clone(), 4);
    swarm.docker(&["node", "update", "--availability", "drain", &node2]);
    let moved = wait_until(Duration::from_secs(60), || {
        let t = server.tasks("web");
        t.len() == 4
            && t.iter().all(|t| t.health == "HEALTHY")
            && task_nodes(&server) == [nodes[0].clone()]
    });
    let (ok, failed, _) = load.finish();
    assert!(
        moved.is_some(),
        "tasks did not leave node 2: {:?}\n{}",
        server.tasks("web"),
        server.log()
    );
    assert_eq!(
        failed, 0,
        "{failed} requests failed during the drain ({ok} ok)"
    );
    swarm.docker(&["node", "update", "--availability", "active", &node2]);
    // The drain took node 2's data plane too (a global service): Swarm puts a
    // new one there, with no configuration, and the control plane pushes it
    // the configuration again; node 2 serves the listener once more.
    let node2_listener = format!("{}:{prod}", nodes[1]);
    wait_until(Duration::from_secs(60), || {
        http_get(&node2_listener, "/").is_ok_and(|(s, b)| s == 200 && b.trim() == "v2")
    })
    .unwrap_or_else(|| panic!("node 2's new data plane never served v2\n{}", server.log()));

    // kill -9 of the control plane mid-deployment: it resumes.
    let load = Load::start(local.clone(), 4);
    let created = server.json(&["deploy", "web", "--env", "web:APP_VERSION=v3"]);
    let id = created["deployment"]["id"].as_str().unwrap().to_string();
    let at_canary = wait_until(Duration::from_secs(60), || {
        server.json(&["deployments", "get", &id])["deployment"]["traffic"]["prodGreenPercent"] == 20
    });
    assert!(
        at_canary.is_some(),
        "canary never started: {:#}\n{}",
        server.json(&["deployments", "get", &id]),
        server.log()
    );
    server.kill9();
    server.spawn();
    let done = wait_until(Duration::from_secs(60), || {
        server.json(&["deployments", "get", &id])["deployment"]["finishedAt"].is_u64()
    });
    let (ok, failed, _) = load.finish();
    assert!(
        done.is_some(),
        "deployment did not finish after the restart:\n{}",
        server.log()
    );
    let d = server.json(&["deployments", "get", &id]);
    assert_eq!(d["deployment"]["status"], "Succeeded", "{d:#}");
    assert_eq!(
        failed, 0,
        "{failed} requests failed across the restart ({ok} ok)"
    );

    server.json(&["services", "delete", "web"]);
    wait_until(Duration::from_secs(60), || server.tasks("web").is_empty())
        .expect("the service's tasks did not stop");
    server.kill9();
}
