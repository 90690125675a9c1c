//! `cutover agents` and `cutover agent` as processes on loopback: keys
//! issued by the CLI, two agents registering with them, a forged and a
//! missing key refused, `-o json` being the server's answer, the server
//! killed and restarted while the agents long-poll (they carry on), a
//! re-registration with other tags, and a deregistration.
//! (Commands dispatched to agents are tested in the server's
//! `hosts::e2e_tests`, which drives the `Fleet` in process.)

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent(
    server: &Server,
    name: &str,
    key: Option<&str>,
    tags: &str,
    root: &std::path::Path,
) -> Agent {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "agent",
        "--server",
        &server.url(),
        "--name",
        name,
        "--tags",
        tags,
    ])
    .arg("--root")
    .arg(root)
    .env_remove("CUTOVER_AGENT_KEY")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if let Some(k) = key {
        cmd.env("CUTOVER_AGENT_KEY", k);
    }
    Agent(cmd.spawn().unwrap())
}

fn agents(server: &Server) -> serde_json::Value {
    server.json(&["agents", "ls"])["agents"].clone()
}

fn seen(server: &Server, name: &str) -> Option<(u64, bool)> {
    let v = server.json(&["agents", "describe", name]);
    Some((v["lastSeenMs"].as_u64()?, v["online"].as_bool()?))
}

#[test]
fn agents_register_with_keys_and_outlive_a_server_restart() {
    let mut server = Server::start();
    let out = server.cli(&["agents", "register", "h1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key1 = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key1.starts_with("cak_"), "{key1}");
    let key2 = server.json(&["agents", "register", "h2"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("h2.key");
    std::fs::write(&key_file, format!("{key2}\n")).unwrap();

    // A forged key, and no key for an agent that has one: refused, the
    // agent says so and exits.
    for key in [Some("cak_forged"), None] {
        let mut a = agent(&server, "h1", key, "env=prod", &dir.path().join("x"));
        let status = a.0.wait().unwrap();
        assert!(!status.success());
        let mut err = String::new();
        std::io::Read::read_to_string(a.0.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(err.contains("refused"), "{err}");
    }

    let _h1 = agent(
        &server,
        "h1",
        Some(&key1),
        "env=prod,zone=x",
        &dir.path().join("h1"),
    );
    let mut h2 = Command::new(BIN);
    h2.args([
        "agent",
        "--server",
        &server.url(),
        "--name",
        "h2",
        "--zone",
        "b",
    ])
    .arg("--key-file")
    .arg(&key_file)
    .arg("--root")
    .arg(dir.path().join("h2"))
    .env_remove("CUTOVER_AGENT_KEY")
    .stderr(Stdio::null());
    let _h2 = Agent(h2.spawn().unwrap());
    wait_until(Duration::from_secs(30), || {
        agents(&server).as_array().is_some_and(|a| {
            a.len() == 2 && a.iter().all(|h| h["online"] == true && h["version"] != "")
        })
    })
    .unwrap_or_else(|| panic!("agents never came online: {}", agents(&server)));
    let (status, body) = http_get(&server.addr.to_string(), "/v1/agents").unwrap();
    assert_eq!(status, 200);
    let raw: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed = server.json(&["agents", "ls"]);
    // Same hosts and registrations (lastSeenMs moves with every poll).
    for v in [&raw, &listed] {
        assert_eq!(v["agents"][0]["name"], "h1");
        assert_eq!(v["agents"][0]["tags"]["env"], "prod");
        assert_eq!(v["agents"][1]["zone"], "b");
    }

    // The server dies while both agents long-poll; once it is back they
    // poll it again.
    server.kill9();
    let before = seen_after_restart(&mut server);
    wait_until(Duration::from_secs(30), || {
        seen(&server, "h1").is_some_and(|(t, online)| online && t > before)
            && seen(&server, "h2").is_some_and(|(t, online)| online && t > before)
    })
    .unwrap_or_else(|| panic!("the agents did not come back: {}", agents(&server)));

    let gone = server.json(&["agents", "deregister", "h2"]);
    assert_eq!(gone["name"], "h2");
    let names: Vec<String> = agents(&server)
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["h1"]);
}

/// Starts the server again; returns the time (ms) just before it listens.
fn seen_after_restart(server: &mut Server) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    server.spawn();
    now
}
