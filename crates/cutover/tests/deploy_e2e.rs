//! End to end: blue/green deployments through the real binary under live
//! traffic: the demo tour (a JWT-protected route, a canary, then an alarm
//! rollback), and a `kill -9` of the control plane in the middle of a
//! canary, during which the data plane keeps serving and after which the
//! deployment resumes (and `cutover deployments watch`, reconnecting to the
//! feed, sees it end).

mod common;

use common::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[test]
fn the_demo_tour_succeeds_with_no_failed_request() {
    let out = std::process::Command::new(BIN)
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("failed during the v2 canary          0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("connection errors                    0"),
        "{stdout}"
    );
    assert!(stdout.contains("Stopped, rolled back"), "{stdout}");
    // The JWT-protected route: 401 without a token, 200 with one (the task sees its `sub`),
    // 403 without the route's scope.
    assert!(
        stdout.contains("/api/orders: no token, token, scope  401 / 200 / 403"),
        "{stdout}"
    );
    assert!(stdout.contains("the task saw x-user-id: alice"), "{stdout}");
    assert!(
        stdout.contains("production now serves                v2"),
        "{stdout}"
    );
}

fn write_bluegreen_stack(dir: &std::path::Path, prod: u16, test: u16) {
    write_stack(dir, "v1", 2);
    std::fs::write(
        dir.join("stack.yaml"),
        format!(
            r#"services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:{prod}
      testListener: 127.0.0.1:{test}
      healthCheck: {{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
      deregistrationDelaySeconds: 2
    deployment:
      type: BLUE_GREEN
      config: Canary20Percent6Seconds
      terminationWaitSeconds: 2
      autoRollback: [DEPLOYMENT_FAILURE]
deploymentConfigs:
  Canary20Percent6Seconds:
    trafficRouting: {{type: TimeBasedCanary, timeBasedCanary: {{canaryPercentage: 20, canaryIntervalSeconds: 6}}}}
"#
        ),
    )
    .unwrap();
}

#[test]
fn a_control_plane_crash_mid_canary_loses_no_request_and_the_deployment_resumes() {
    let mut server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (prod, test) = (free_port(), free_port());
    write_bluegreen_stack(dir.path(), prod, test);
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let healthy = wait_until(Duration::from_secs(30), || {
        let t = server.tasks("web");
        t.len() == 2 && t.iter().all(|t| t.health == "HEALTHY")
    });
    assert!(
        healthy.is_some(),
        "v1 never became healthy:\n{}",
        server.log()
    );
    wait_until(Duration::from_secs(10), || {
        http_get(&format!("127.0.0.1:{prod}"), "/").is_ok_and(|(s, b)| s == 200 && b.trim() == "v1")
    })
    .expect("the listener never served v1");

    let load = Load::start(format!("127.0.0.1:{prod}"), 4);
    let created = server.json(&["deploy", "web", "--env", "web:APP_VERSION=v2"]);
    let id = created["deployment"]["id"].as_str().unwrap().to_string();
    // A watcher on the live feed, connected (it printed a line) before the
    // crash; its lines are collected by a thread.
    let mut watch = std::process::Command::new(BIN)
        .args(["deployments", "watch", &id])
        .env("CUTOVER_SERVER", server.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (line_tx, lines) = std::sync::mpsc::channel();
    let watch_out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(watch_out).lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut watched = vec![
        lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the watcher printed nothing"),
    ];

    // Wait for the canary step, then kill the control plane.
    let at_canary = wait_until(Duration::from_secs(30), || {
        let d = server.json(&["deployments", "get", &id]);
        d["deployment"]["traffic"]["prodGreenPercent"] == 20
    });
    assert!(
        at_canary.is_some(),
        "canary never started: {:#}",
        server.json(&["deployments", "get", &id])
    );
    server.kill9();
    let down_at = Instant::now();
    // The data plane keeps serving both versions while no control plane runs:
    // 200 more answers, all successful, before the restart.
    let ok_at_kill = load.ok.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(20), || {
        load.ok.load(Ordering::Relaxed) >= ok_at_kill + 200
    })
    .expect("the data plane stopped serving while the control plane was down");
    let (ok_mid, failed_mid) = (
        load.ok.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
    );
    assert_eq!(
        failed_mid, 0,
        "requests failed while the control plane was down"
    );
    server.spawn();
    eprintln!("control plane down for {:?}", down_at.elapsed());

    let done = wait_until(Duration::from_secs(40), || {
        server.json(&["deployments", "get", &id])["deployment"]["finishedAt"].is_u64()
    });
    assert!(
        done.is_some(),
        "deployment did not finish after the restart:\n{}",
        server.log()
    );
    let d = server.json(&["deployments", "get", &id]);
    assert_eq!(d["deployment"]["status"], "Succeeded", "{d:#}");
    // The watcher reconnected and followed the deployment to its end.
    let exited = wait_until(Duration::from_secs(20), || {
        watch.try_wait().unwrap().is_some()
    });
    if exited.is_none() {
        let _ = watch.kill();
    }
    let status = watch.wait().unwrap();
    watched.extend(lines.iter());
    let watched = watched.join("\n");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watch.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{watched}\n{err}");
    assert!(
        watched.ends_with(&format!("deployment {id} Succeeded")),
        "{watched}"
    );
    assert!(
        watched.contains("traffic applied: 100% of production on green"),
        "{watched}"
    );
    // Some traffic after the end: 50 more answers.
    let ok_at_end = load.ok.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(20), || {
        load.ok.load(Ordering::Relaxed) >= ok_at_end + 50
    })
    .expect("the listener stopped serving after the deployment");
    let (ok, failed, versions) = load.finish();
    eprintln!("requests: {ok} ok, {failed} failed ({ok_mid} ok before the restart)");
    assert_eq!(failed, 0, "requests failed during the deployment");
    assert!(ok > 500, "too little traffic to mean anything: {ok}");
    assert!(versions.iter().any(|v| v == "v1") && versions.iter().any(|v| v == "v2"));
    assert_eq!(versions.last().map(String::as_str), Some("v2"));
    // Exactly the desired count runs afterwards: the original tasks are gone.
    let settled = wait_until(Duration::from_secs(15), || {
        let t = server.tasks("web");
        t.len() == 2 && t.iter().all(|t| t.status == "RUNNING")
    });
    assert!(settled.is_some(), "{:?}", server.tasks("web"));
}

#[test]
fn applying_a_new_revision_to_a_blue_green_service_deploys_it_blue_green() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (prod, test) = (free_port(), free_port());
    write_bluegreen_stack(dir.path(), prod, test);
    let stack = std::fs::read_to_string(dir.path().join("stack.yaml")).unwrap();
    std::fs::write(
        dir.path().join("stack.yaml"),
        stack.replace(
            "Canary20Percent6Seconds\n      terminationWaitSeconds: 2",
            "CodeDeployDefault.ECSAllAtOnce\n      terminationWaitSeconds: 0",
        ),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_healthy(&server, "web", 2, Duration::from_secs(30));

    let td = std::fs::read_to_string(dir.path().join("taskdef.json")).unwrap();
    std::fs::write(
        dir.path().join("taskdef.json"),
        td.replace("\"v1\"", "\"v2\""),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("taskDefinition web:1 -> web:2 by a blue/green deployment"),
        "{stdout}"
    );
    assert!(stdout.contains("deployment d-"), "{stdout}");

    let served = wait_until(Duration::from_secs(40), || {
        http_get(&format!("127.0.0.1:{prod}"), "/").is_ok_and(|(s, b)| s == 200 && b.trim() == "v2")
    });
    assert!(served.is_some(), "v2 never served:\n{}", server.log());
    let done = wait_until(Duration::from_secs(20), || {
        let v = server.json(&["deployments", "ls", "--service", "web"]);
        v["deployments"][0]["status"] == "Succeeded"
    });
    assert!(done.is_some(), "{:#}", server.json(&["deployments", "ls"]));
    let v = server.json(&["deployments", "ls", "--service", "web"]);
    assert_eq!(v["deployments"][0]["startedBy"], "apply of stack.yaml");
    assert_eq!(v["deployments"][0]["kind"], "BLUE_GREEN");
    let svc = server.json(&["services", "describe", "web"]);
    assert_eq!(svc["service"]["taskDefinition"], "web:2");
}

#[test]
fn a_deployment_alarm_stops_a_rolling_update_and_rolls_it_back() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    write_stack(dir.path(), "v1", 2);
    let prod = free_port();
    std::fs::write(
        dir.path().join("stack.yaml"),
        r#"services:
  web:
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:PROD
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
      deregistrationDelaySeconds: 1
    deployment:
      type: ROLLING
      minimumHealthyPercent: 100
      maximumPercent: 200
      alarms: [web-drill]
      autoRollback: [DEPLOYMENT_STOP_ON_ALARM]
alarms:
  web-drill:
    metric: {name: HTTPCode_Target_5XX_Count, service: web}
    statistic: Sum
    periodSeconds: 60
    evaluationPeriods: 1
    threshold: 1000000
    comparisonOperator: GreaterThanOrEqualToThreshold
    treatMissingData: notBreaching
"#
        .replace("PROD", &prod.to_string()),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_healthy(&server, "web", 2, Duration::from_secs(30));

    // A revision that takes a while to become healthy, so the drill lands
    // in the middle of the update.
    let created = server.json(&[
        "deploy",
        "web",
        "--env",
        "web:START_DELAY_MS=4000",
        "--env",
        "web:APP_VERSION=v2",
    ]);
    let id = created["deployment"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["deployment"]["kind"], "ROLLING");
    // The drill lands once the update started a task of the new revision
    // (which needs 4 s to answer), so in the middle of the update.
    let mut seen = serde_json::Value::Null;
    wait_until(Duration::from_secs(30), || {
        seen = server.json(&["tasks", "ls", "--service", "web"]);
        seen["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["taskDefinition"] == "web:2")
    })
    .unwrap_or_else(|| panic!("the update never started a web:2 task: {seen:#}"));
    assert!(
        server.json(&["deployments", "get", &id])["deployment"]["finishedAt"].is_null(),
        "the update ended before the drill"
    );
    server.json(&[
        "alarms",
        "set-state",
        "web-drill",
        "--state",
        "ALARM",
        "--reason",
        "drill",
    ]);
    // Generous: the other tests of this file run at the same time on 2
    // cores (a load generator among them); the stop itself takes ~1 s.
    let ended = wait_until(Duration::from_secs(60), || {
        server.json(&["deployments", "get", &id])["deployment"]["finishedAt"].is_u64()
    });
    assert!(
        ended.is_some(),
        "{:#}",
        server.json(&["deployments", "get", &id])
    );
    let d = server.json(&["deployments", "get", &id]);
    assert_eq!(d["deployment"]["status"], "Stopped", "{d:#}");
    assert_eq!(d["deployment"]["outcome"], "alarm web-drill fired");
    // Rolled back: the service runs the first revision again.
    assert_eq!(
        server.json(&["services", "describe", "web"])["service"]["taskDefinition"],
        "web:1"
    );
    let settled = wait_until(Duration::from_secs(30), || {
        let v = server.json(&["tasks", "ls", "--service", "web"]);
        let tasks = v["tasks"].as_array().unwrap().clone();
        tasks.len() == 2
            && tasks
                .iter()
                .all(|t| t["taskDefinition"] == "web:1" && t["lastStatus"] == "RUNNING")
    });
    assert!(
        settled.is_some(),
        "{:#}",
        server.json(&["tasks", "ls", "--service", "web"])
    );
}

#[test]
fn queued_deployments_can_be_stopped_and_an_alarm_already_firing_stops_a_new_one() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (prod, test) = (free_port(), free_port());
    write_bluegreen_stack(dir.path(), prod, test);
    let stack = std::fs::read_to_string(dir.path().join("stack.yaml")).unwrap();
    let stack = stack.replace(
        "      autoRollback: [DEPLOYMENT_FAILURE]\n",
        "      autoRollback: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]\n      alarms: [web-drill]\n",
    ) + r#"alarms:
  web-drill:
    metric: {name: HTTPCode_Target_5XX_Count, service: web}
    statistic: Sum
    periodSeconds: 60
    evaluationPeriods: 1
    threshold: 1000000
    comparisonOperator: GreaterThanOrEqualToThreshold
    treatMissingData: notBreaching
"#;
    std::fs::write(dir.path().join("stack.yaml"), stack).unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_healthy(&server, "web", 2, Duration::from_secs(30));

    // One running (a 6 s canary), one queued behind it, stopped while queued.
    let first = server.json(&["deploy", "web", "--env", "web:APP_VERSION=v2"]);
    let second = server.json(&["deploy", "web", "--env", "web:APP_VERSION=v3"]);
    let (first, second) = (
        first["deployment"]["id"].as_str().unwrap().to_string(),
        second["deployment"]["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        server.json(&["deployments", "get", &second])["deployment"]["status"],
        "Queued"
    );
    server.json(&["deployments", "stop", &second]);
    let d = server.json(&["deployments", "get", &second]);
    assert_eq!(d["deployment"]["status"], "Stopped", "{d:#}");
    assert_eq!(
        d["deployment"]["outcome"],
        "stopped by request while queued"
    );
    let done = wait_until(Duration::from_secs(40), || {
        server.json(&["deployments", "get", &first])["deployment"]["status"] == "Succeeded"
    });
    assert!(
        done.is_some(),
        "{:#}",
        server.json(&["deployments", "get", &first])
    );

    // An alarm of the deployment already in ALARM stops it before any
    // traffic moves, as CodeDeploy does.
    server.json(&[
        "alarms",
        "set-state",
        "web-drill",
        "--state",
        "ALARM",
        "--reason",
        "drill",
    ]);
    wait_until(Duration::from_secs(5), || {
        server.json(&["alarms", "ls"])["alarms"][0]["state"] == "ALARM"
    })
    .expect("the alarm never entered ALARM");
    let third = server.json(&["deploy", "web", "--env", "web:APP_VERSION=v4"]);
    let third = third["deployment"]["id"].as_str().unwrap().to_string();
    let ended = wait_until(Duration::from_secs(20), || {
        server.json(&["deployments", "get", &third])["deployment"]["finishedAt"].is_u64()
    });
    assert!(
        ended.is_some(),
        "{:#}",
        server.json(&["deployments", "get", &third])
    );
    let d = server.json(&["deployments", "get", &third]);
    assert_eq!(d["deployment"]["status"], "Stopped", "{d:#}");
    assert_eq!(
        http_get(&format!("127.0.0.1:{prod}"), "/")
            .unwrap()
            .1
            .trim(),
        "v2",
        "production must stay on v2"
    );
}
