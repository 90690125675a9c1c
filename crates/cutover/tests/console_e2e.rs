//! The web console in a real browser: Debian's chromium driven by
//! `playwright-core` (both installed by scripts/setup-browser.sh, which
//! scripts/test.sh runs) against a real `cutover server` on loopback, with a
//! blue/green service and a pipeline with a manual approval. The browser
//! scenarios live in tests/browser/console.js; this test sets the stage,
//! runs them, and checks their effects through the API. It fails, never
//! skips, when the browser is missing.
//!
//! Screenshots (the overview, a deployment mid-canary) are written under
//! `$CARGO_TARGET_TMPDIR/console-e2e/`; docs/ holds copies for the README.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Runs one scenario of tests/browser/console.js; panics with its output
/// when it fails (a console error, a missing control, a timeout).
fn browser(server: &Server, scenario: &str, args: &[&str]) -> serde_json::Value {
    let modules = std::env::var_os("CUTOVER_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser/node_modules")
        });
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is not installed at {}: run the tests with scripts/test.sh, or run scripts/setup-browser.sh and set CUTOVER_NODE_MODULES to the directory it prints",
        modules.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.js");
    let out = Command::new("node")
        .arg(script)
        .arg(scenario)
        .arg(server.url())
        .args(args)
        .env("NODE_PATH", &modules)
        .output()
        .expect("node is not installed (scripts/setup-browser.sh installs it)");
    assert!(
        out.status.success(),
        "browser scenario {scenario} failed:\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.lines().last().unwrap_or("null")).unwrap()
}

/// A blue/green service `web` (a 20% canary held 12 s) and a pipeline `gated`
/// whose second stage waits for a manual approval, then writes `marker`.
fn write_stack(root: &Path, prod: u16, test: u16) -> PathBuf {
    common::write_stack(root, "v1", 2);
    let repo = root.join("repo");
    init_repo(&repo, &[("README.md", "hello\n")]);
    let marker = root.join("marker");
    std::fs::write(
        root.join("pipeline.json"),
        format!(
            r#"{{"pipeline": {{"name": "gated", "pipelineType": "V2", "stages": [
 {{"name": "Source", "actions": [{{"name": "Source",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
   "configuration": {{"RepositoryName": "app", "BranchName": "main"}}, "outputArtifacts": [{{"name": "Out"}}]}}]}},
 {{"name": "Gate", "actions": [{{"name": "Approve",
   "actionTypeId": {{"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}}}]}},
 {{"name": "Run", "actions": [{{"name": "Run",
   "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
   "configuration": {{"FunctionName": "echo done > {marker}"}}}}]}}]}}}}"#,
            marker = marker.display()
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
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
      deregistrationDelaySeconds: 1
    deployment:
      type: BLUE_GREEN
      config: Canary20Percent12Seconds
      terminationWaitSeconds: 1
deploymentConfigs:
  Canary20Percent12Seconds:
    trafficRouting: {{type: TimeBasedCanary, timeBasedCanary: {{canaryPercentage: 20, canaryIntervalSeconds: 12}}}}
repositories:
  app: {{url: {repo}, pollIntervalSeconds: 0}}
pipelines:
  gated: {{file: pipeline.json}}
"#,
            repo = repo.display()
        ),
    )
    .unwrap();
    marker
}

fn deployment(server: &Server, id: &str) -> serde_json::Value {
    server.json(&["deployments", "get", id])["deployment"].clone()
}

fn approval_waits(server: &Server) -> bool {
    let v = server.json(&["pipelines", "executions", "gated"]);
    v["executions"][0]["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == "Gate")
        .flat_map(|s| s["actions"].as_array().unwrap())
        .any(|a| a["status"] == "InProgress")
}

#[test]
fn the_console_follows_a_canary_live_rolls_back_and_approves_in_a_browser() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let (prod, test) = (free_port(), free_port());
    let marker = write_stack(tmp.path(), prod, test);
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(tmp.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_healthy(&server, "web", 2, Duration::from_secs(30));
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-e2e");
    std::fs::create_dir_all(&shots).unwrap();
    let shots_arg = shots.to_str().unwrap();

    // A canary's page advances live to the end (one document, no reload),
    // under a little traffic so its target groups' figures move.
    let load = Load::start(format!("127.0.0.1:{prod}"), 2);
    let id = server.json(&["deploy", "web", "--env", "web:APP_VERSION=v2"])["deployment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let watched = browser(&server, "watch", &[shots_arg, &id]);
    let seen: Vec<&str> = watched["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        seen.iter().any(|s| s.ends_with("@20")) && seen.iter().any(|s| s.starts_with("Succeeded")),
        "{seen:?}"
    );
    assert_eq!(deployment(&server, &id)["status"], "Succeeded");
    let (ok, failed, _) = load.finish();
    assert!(ok > 0 && failed == 0, "{ok} ok, {failed} failed");

    // Every page loads with no console error, every control has a name,
    // and nothing overflows a phone's width.
    wait_until(Duration::from_secs(20), || approval_waits(&server))
        .unwrap_or_else(|| panic!("the approval never waited\n{}", server.log()));
    let loaded = browser(
        &server,
        "pages",
        &[
            "/",
            "/services/web",
            &format!("/deployments/{id}"),
            "/pipelines/gated",
            "/alarms",
            "/hosts",
            "/registry",
        ],
    );
    assert_eq!(loaded["loaded"].as_array().unwrap().len(), 7);
    assert!(shots.join("console-deployment.png").is_file());

    // "Stop and roll back" during a canary rolls it back: checked through the API
    // and on the production listener.
    let id3 = server.json(&["deploy", "web", "--env", "web:APP_VERSION=v3"])["deployment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    browser(&server, "rollback", &[shots_arg, &id3]);
    assert!(shots.join("console-overview.png").is_file());
    wait_until(Duration::from_secs(30), || {
        deployment(&server, &id3)["finishedAt"].is_u64()
    })
    .unwrap_or_else(|| panic!("the stopped deployment never finished\n{}", server.log()));
    let d = deployment(&server, &id3);
    assert_eq!(d["status"], "Stopped", "{d:#}");
    assert_eq!(d["prodGreenPercent"], 0, "{d:#}");
    let (status, body) = http_get(&format!("127.0.0.1:{prod}"), "/").unwrap();
    assert_eq!((status, body.trim()), (200, "v2"));

    // Approving the manual approval lets the pipeline continue to the end.
    browser(&server, "approve", &["gated"]);
    let done = wait_until(Duration::from_secs(30), || {
        server.json(&["pipelines", "executions", "gated"])["executions"][0]["status"] == "Succeeded"
    });
    assert!(
        done.is_some(),
        "the pipeline did not continue\n{}",
        server.log()
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "done");
    eprintln!("screenshots in {}", shots.display());
}

/// An application `shop` whose group `prod` is the hosts tagged env=prod,
/// and a revision whose ApplicationStart waits for the file `$RELEASE`
/// (the browser scenario writes it once the page showed the host in
/// progress), then says hello.
fn write_host_stack(root: &Path) -> PathBuf {
    std::fs::write(
        root.join("stack.yaml"),
        "applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      prod:
        onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
        deploymentConfig: CodeDeployDefault.OneAtATime
",
    )
    .unwrap();
    let rev = root.join("rev");
    std::fs::create_dir_all(rev.join("hooks")).unwrap();
    std::fs::write(
        rev.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: hooks/start.sh\n      timeout: 30\n",
    )
    .unwrap();
    let start = rev.join("hooks/start.sh");
    std::fs::write(
        &start,
        "#!/bin/sh\ni=0\nwhile [ ! -f \"$RELEASE\" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\necho \"hello from $HOST_NAME\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&start, std::fs::Permissions::from_mode(0o755)).unwrap();
    rev
}

#[test]
fn the_hosts_pages_show_the_agents_and_a_host_deployment_advancing_live_in_a_browser() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let rev = write_host_stack(tmp.path());
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(tmp.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One real agent (the same binary), killed on drop.
    let root = tmp.path().join("host");
    let release = tmp.path().join("release");
    std::fs::create_dir_all(&root).unwrap();
    let child = Command::new(BIN)
        .args(["agent", "--server", &server.url(), "--name", "h1"])
        .args(["--tags", "env=prod", "--zone", "a", "--env", "HOST_NAME=h1"])
        .arg("--env")
        .arg(format!("RELEASE={}", release.display()))
        .arg("--root")
        .arg(&root)
        .env("CUTOVER_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(child);
    wait_until(Duration::from_secs(20), || {
        server.json(&["agents", "ls"])["agents"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    })
    .unwrap_or_else(|| panic!("the agent never registered\n{}", server.log()));

    let v = server.json(&[
        "deploy",
        "--application",
        "shop",
        "--deployment-group",
        "prod",
        "--revision",
        rev.to_str().unwrap(),
    ]);
    let id = v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v:#}"))
        .to_string();
    let watched = browser(&server, "hosts", &[&id, release.to_str().unwrap()]);
    let seen: Vec<&str> = watched["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        seen.iter().any(|s| s.starts_with("InProgress"))
            && seen.last().is_some_and(|s| s.starts_with("Succeeded")),
        "{seen:?}"
    );
    assert!(
        watched["output"]
            .as_str()
            .unwrap()
            .contains("hello from h1"),
        "{watched:#}"
    );
    let d = server.json(&["deployments", "get", &id]);
    assert_eq!(d["status"], "Succeeded", "{d:#}");
    browser(
        &server,
        "pages",
        &["/hosts", &format!("/host-deployments/{id}")],
    );
}

/// One raw HTTP/1.1 exchange: (status, head, body).
fn raw(addr: &str, request: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn form_post(addr: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{headers}\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn with_a_token_the_console_needs_the_cookie_and_refuses_forged_and_cross_origin_posts() {
    const TOKEN: &str = "s3cret-console-token";
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BIN)
        .args(["server", "--listen", &addr, "--token", TOKEN, "--data-dir"])
        .arg(tmp.path().join("data"))
        .env_remove("CUTOVER_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child, std::path::PathBuf);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            stop_data_plane(&self.1);
        }
    }
    let _kill = Kill(&mut child, tmp.path().join("data"));
    wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).is_ok()
    })
    .expect("the server did not start");
    let get = |path: &str, headers: &str| {
        raw(
            &addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n"),
        )
    };
    let hex_token: String = TOKEN.bytes().map(|b| format!("{b:02x}")).collect();

    // No cookie: pages send to the sign-in form, actions are refused.
    let (s, head, _) = get("/", "");
    assert_eq!(s, 303);
    assert!(head.contains("location: /sign-in?next=/"), "{head}");
    assert_eq!(get("/sign-in", "").0, 200);
    assert_eq!(
        form_post(&addr, "/services/web/rollback", "", "csrf=x").0,
        401
    );

    // A wrong token is refused and not echoed.
    let (s, _, body) = form_post(&addr, "/sign-in", "", "token=wr0ng-guess&next=/");
    assert_eq!(s, 401);
    assert!(!body.contains("wr0ng-guess"), "{body}");

    // The right one sets an HttpOnly, SameSite=Strict cookie...
    let (s, head, _) = form_post(
        &addr,
        "/sign-in",
        "",
        &format!("token={TOKEN}&next=/alarms"),
    );
    assert_eq!(s, 303, "{head}");
    assert!(head.contains("location: /alarms"), "{head}");
    let set = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = format!("Cookie: cutover_session={hex_token}\r\n");

    // ...that opens the pages, which never show the token.
    let (s, _, page) = get("/", &cookie);
    assert_eq!(s, 200);
    assert!(!page.contains(TOKEN) && !page.contains(&hex_token));
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a form with a CSRF token")
        .to_string();
    assert!(!csrf.is_empty());

    // A forged post: wrong or missing CSRF token, or another origin.
    let same = format!("{cookie}Origin: http://{addr}\r\n");
    assert_eq!(
        form_post(&addr, "/services/web/rollback", &same, "csrf=forged").0,
        403
    );
    assert_eq!(form_post(&addr, "/services/web/rollback", &same, "").0, 403);
    let evil = format!("{cookie}Origin: https://evil.example\r\n");
    let body = format!("csrf={csrf}");
    assert_eq!(
        form_post(&addr, "/services/web/rollback", &evil, &body).0,
        403
    );
    let cross = format!("{cookie}Sec-Fetch-Site: cross-site\r\n");
    assert_eq!(
        form_post(&addr, "/services/web/rollback", &cross, &body).0,
        403
    );
    // The genuine post reaches the action (which finds nothing to roll back).
    let (s, _, page) = form_post(&addr, "/services/web/rollback", &same, &body);
    assert_eq!(s, 400, "{page}");
    assert!(page.contains("has no succeeded deployment"), "{page}");

    // The /v1 API takes the cookie for reads only.
    assert_eq!(get("/v1/status", &cookie).0, 200);
    let (s, _, _) = raw(
        &addr,
        &format!(
            "POST /v1/services/web/rollback HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{cookie}Content-Length: 0\r\n\r\n"
        ),
    );
    assert_eq!(s, 401);
}
