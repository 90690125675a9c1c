//! Host deployments end to end, beyond the happy path: a real `cutover
//! server`, real `cutover agent` processes and the CLI.
//!
//! - a zonal deployment does zone a, waits its monitor time, then b and c
//!   (asserted from the events' timestamps);
//! - an agent killed (SIGKILL) while its host runs a hook fails its host,
//!   and the deployment fails by OneAtATime's rules;
//! - the server killed (SIGKILL) while a hook runs, restarted on the same
//!   data directory, resumes the deployment and finishes it;
//! - blue/green onto replacement agents under load: zero failed requests,
//!   and the original hosts' application is stopped.

mod common;
mod hosts_common;

use common::{Load, Server, free_port, wait_until};
use hosts_common::{Agent, announced_id, deploy_to, ok, revision};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const HOSTS: [(&str, &str); 3] = [("h1", "a"), ("h2", "b"), ("h3", "c")];

fn apply(server: &Server, dir: &Path, stack: &str) {
    std::fs::write(dir.join("stack.yaml"), stack).unwrap();
    ok(
        &server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir)),
        "apply",
    );
}

fn registered(server: &Server, n: usize) {
    wait_until(Duration::from_secs(20), || {
        let v = server.json(&["agents", "ls"]);
        v["agents"].as_array().is_some_and(|a| a.len() == n)
    })
    .expect("agents registered");
}

/// `deployments get ID -o json`.
fn get(server: &Server, id: &str) -> Value {
    server.json(&["deployments", "get", id])
}

/// The target `host` of a deployment view.
fn target<'a>(v: &'a Value, host: &str) -> &'a Value {
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["host"] == host)
        .unwrap_or_else(|| panic!("no {host} in {v}"))
}

/// (first start, last end) of `host`'s events, ms.
fn span(v: &Value, host: &str) -> (u64, u64) {
    let evs = target(v, host)["events"].as_array().unwrap();
    let start = evs.iter().filter_map(|e| e["startedAtMs"].as_u64()).min();
    let end = evs.iter().filter_map(|e| e["endedAtMs"].as_u64()).max();
    (start.unwrap(), end.unwrap())
}

/// A revision whose `event` hook on `host` (as `hooks/hang.sh`) records
/// its pid in `RUN_DIR/hang.pid` then waits for `RUN_DIR/release`.
fn hanging_revision(dir: &Path, version: &str, host: &str) -> std::path::PathBuf {
    let rev = revision(dir, version, None);
    let appspec = std::fs::read_to_string(rev.join("appspec.yml")).unwrap();
    let appspec = appspec.replace(
        "  ValidateService:\n",
        "  AfterInstall:\n    - location: hooks/hang.sh\n      timeout: 120\n  ValidateService:\n",
    );
    std::fs::write(rev.join("appspec.yml"), appspec).unwrap();
    let hang = format!(
        "#!/bin/sh\n[ \"$HOST_NAME\" = {host} ] || exit 0\necho $$ > \"$RUN_DIR/hang.pid\"\nwhile [ ! -e \"$RUN_DIR/release\" ]; do sleep 0.05; done\necho released\n"
    );
    let p = rev.join("hooks/hang.sh");
    std::fs::write(&p, hang).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    rev
}

fn wait_for_file(path: &Path) {
    wait_until(Duration::from_secs(20), || path.exists())
        .unwrap_or_else(|| panic!("{} never appeared", path.display()));
}

fn wait_ended(server: &Server, id: &str, limit: Duration) -> Value {
    let mut last = Value::Null;
    wait_until(limit, || {
        last = get(server, id);
        last["finishedAtMs"].is_u64()
    })
    .unwrap_or_else(|| panic!("deployment {id} did not end: {last}\n{}", server.log()));
    last
}

#[test]
fn a_zonal_deployment_waits_each_zones_monitor_time() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    apply(
        &server,
        dir.path(),
        "applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      zonal:
        onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
        deploymentConfig: ZoneByZone
deploymentConfigs:
  ZoneByZone:
    computePlatform: Server
    minimumHealthyHosts: {type: HOST_COUNT, value: 0}
    zonalConfig: {firstZoneMonitorDurationInSeconds: 3, monitorDurationInSeconds: 2}
",
    );
    let _agents: Vec<Agent> = HOSTS
        .iter()
        .map(|(name, zone)| Agent::start(&server, name, zone))
        .collect();
    registered(&server, 3);
    let v1 = revision(dir.path(), "v1", None);
    let out = ok(&deploy_to(&server, "zonal", &v1, true), "deploy v1");
    let v = get(&server, &announced_id(&out));
    assert_eq!(v["status"], "Succeeded", "{v}");
    let (a, b, c) = (span(&v, "h1"), span(&v, "h2"), span(&v, "h3"));
    eprintln!("zone a {a:?}, zone b {b:?}, zone c {c:?}");
    assert!(
        b.0 >= a.1 + 3_000,
        "zone b started {} ms after zone a",
        b.0 - a.1
    );
    assert!(
        c.0 >= b.1 + 2_000,
        "zone c started {} ms after zone b",
        c.0 - b.1
    );
    assert_eq!(target(&v, "h1")["zone"], "a");
}

#[test]
fn a_killed_agent_fails_its_host_by_the_configurations_rules() {
    // A host is lost 25 s after its agent's last poll (its polls while a
    // hook runs come at most 20 s apart).
    let server = Server::start_with(&[], &[("CUTOVER_AGENT_LOST_AFTER_SECONDS", "25")]);
    let dir = tempfile::tempdir().unwrap();
    apply(
        &server,
        dir.path(),
        "applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      prod:
        onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
        deploymentConfig: CodeDeployDefault.OneAtATime
",
    );
    let mut agents: Vec<Agent> = HOSTS
        .iter()
        .map(|(name, zone)| Agent::start(&server, name, zone))
        .collect();
    registered(&server, 3);
    let rev = hanging_revision(dir.path(), "v1", "h2");
    let out = ok(&deploy_to(&server, "prod", &rev, false), "deploy");
    let id = announced_id(&out);
    let run = agents[1].root.path().join("run");
    wait_for_file(&run.join("hang.pid"));
    agents[1].child.kill().unwrap();
    agents[1].child.wait().unwrap();
    let hook = std::fs::read_to_string(run.join("hang.pid")).unwrap();
    let _ = std::process::Command::new("kill").arg(hook.trim()).status();
    let v = wait_ended(&server, &id, Duration::from_secs(40));
    // OneAtATime: every host but possibly the last must succeed; h2 is not
    // the last, so the deployment fails, and h3 is never touched.
    assert_eq!(v["status"], "Failed", "{v}");
    let h2 = target(&v, "h2");
    assert_eq!(h2["status"], "Failed", "{v}");
    assert!(
        h2.to_string().contains("stopped polling"),
        "h2 is lost: {h2}"
    );
    assert_eq!(target(&v, "h1")["status"], "Succeeded", "{v}");
    assert_eq!(target(&v, "h3")["status"], "Skipped", "{v}");
    assert_eq!(agents[0].installed(), "v1");
    assert_eq!(agents[2].installed(), "");
}

#[test]
fn a_killed_server_resumes_the_deployment_on_restart() {
    let mut server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    apply(
        &server,
        dir.path(),
        "applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      prod:
        onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
        deploymentConfig: CodeDeployDefault.OneAtATime
",
    );
    let agents: Vec<Agent> = HOSTS
        .iter()
        .map(|(name, zone)| Agent::start(&server, name, zone))
        .collect();
    registered(&server, 3);
    let rev = hanging_revision(dir.path(), "v1", "h2");
    let out = ok(&deploy_to(&server, "prod", &rev, false), "deploy");
    let id = announced_id(&out);
    let run = agents[1].root.path().join("run");
    wait_for_file(&run.join("hang.pid"));
    server.kill9();
    server.spawn();
    std::fs::write(run.join("release"), "").unwrap();
    let v = wait_ended(&server, &id, Duration::from_secs(40));
    assert_eq!(v["status"], "Succeeded", "{v}");
    for (t, a) in v["targets"].as_array().unwrap().iter().zip(&agents) {
        assert_eq!(t["status"], "Succeeded", "{t}");
        let names: Vec<&str> = t["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "an event ran twice: {names:?}");
        assert_eq!(a.installed(), "v1");
    }
}

#[test]
fn blue_green_onto_replacement_agents_under_load_fails_no_request() {
    let server = Server::start();
    let listener = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    // The replacement hosts are those tagged `color=<replacement>`: blue for
    // the first deployment, green for the second.
    let stack = |replacement: &str| {
        format!(
            "applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      bg:
        onPremisesTagFilters: [{{Key: env, Value: prod, Type: KEY_AND_VALUE}}]
        deploymentConfig: CodeDeployDefault.AllAtOnce
        loadBalancer:
          listener: {listener}
          healthCheck: {{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
          deregistrationDelaySeconds: 1
        autoRollback: [DEPLOYMENT_FAILURE]
        blueGreen:
          replacementTagFilters: [{{Key: color, Value: {replacement}, Type: KEY_AND_VALUE}}]
          trafficConfig: Canary50Percent2Seconds
          terminationWaitMinutes: 0
deploymentConfigs:
  Canary50Percent2Seconds:
    trafficRouting: {{type: TimeBasedCanary, timeBasedCanary: {{canaryPercentage: 50, canaryIntervalSeconds: 2}}}}
"
        )
    };
    apply(&server, dir.path(), &stack("blue"));
    let blue: Vec<Agent> = [("h1", "a"), ("h2", "b")]
        .iter()
        .map(|(n, z)| Agent::start_tagged(&server, n, z, "env=prod,color=blue"))
        .collect();
    let green: Vec<Agent> = [("g1", "a"), ("g2", "b")]
        .iter()
        .map(|(n, z)| Agent::start_tagged(&server, n, z, "color=green"))
        .collect();
    registered(&server, 4);
    let v1 = revision(dir.path(), "v1", None);
    let out = ok(&deploy_to(&server, "bg", &v1, true), "deploy v1");
    assert!(out.contains("Succeeded"), "{out}");
    wait_until(Duration::from_secs(20), || {
        common::http_get(&listener, "/").is_ok_and(|(s, b)| s == 200 && b.trim() == "v1")
    })
    .expect("the listener serves v1");

    apply(&server, dir.path(), &stack("green"));
    let load = Load::start(listener.clone(), 4);
    let v2 = revision(dir.path(), "v2", None);
    let out = ok(&deploy_to(&server, "bg", &v2, true), "deploy v2");
    wait_until(Duration::from_secs(10), || {
        load.last_version().as_deref() == Some("v2")
    })
    .expect("the listener serves v2");
    let (served, failed, bodies) = load.finish();
    eprintln!("blue/green v1 -> v2 under load: {served} requests served, {failed} failed");
    assert_eq!(failed, 0, "failed requests during blue/green ({served} ok)");
    assert!(bodies.iter().any(|b| b == "v1") && bodies.iter().any(|b| b == "v2"));
    let v = get(&server, &announced_id(&out));
    assert_eq!(v["status"], "Succeeded", "{v}");
    for a in &green {
        assert_eq!(a.installed(), "v2");
    }
    // The originals left and their application was stopped.
    for (a, h) in blue.iter().zip(["h1", "h2"]) {
        assert_eq!(a.installed(), "v1");
        let evs = target(&v, h)["events"].to_string();
        assert!(evs.contains("ApplicationStop"), "{h}: {evs}");
        assert!(
            common::http_get(&format!("127.0.0.1:{}", a.port), "/").is_err(),
            "{h} still serves"
        );
    }
}
