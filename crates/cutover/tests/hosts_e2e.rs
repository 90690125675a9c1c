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
mod hosts_common;

use common::{Load, Server, free_port, wait_until};
use hosts_common::{Agent, announced_id, deploy, events, ok, position, revision};
use std::time::Duration;

const HOSTS: [(&str, &str); 3] = [("h1", "a"), ("h2", "b"), ("h3", "c")];

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

    // The group's history, newest first: the rollback, v3, v2, v1.
    let (status, body) = common::http_get(
        &server.addr.to_string(),
        "/v1/host-deployments?application=shop&deploymentGroup=prod",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows = list["hostDeployments"].as_array().unwrap();
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(got.len(), 4, "{body}");
    assert_eq!(got[0], (rollback.as_str(), "Succeeded"), "{body}");
    assert_eq!(got[1], (failed_id.as_str(), "Failed"), "{body}");
    assert_eq!(got[2], (id.as_str(), "Succeeded"), "{body}");
    // The rollback redeploys only the hosts v3 reached (h1, h2).
    assert!(rows[1..].iter().all(|d| d["hosts"] == 3), "{body}");
    assert_eq!(rows[0]["hosts"], 2, "{body}");
}
