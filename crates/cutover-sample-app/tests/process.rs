//! The sample app as a real process: environment, start delay and SIGTERM.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::get;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(port: u16, envs: &[(&str, &str)], cwd: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cutover-sample-app"))
        .env_clear()
        .env("PORT", port.to_string())
        .envs(envs.iter().copied())
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls `GET /health` until it answers or `limit` passes.
async fn wait_ready(addr: SocketAddr, limit: Duration) -> Duration {
    let began = Instant::now();
    loop {
        if get(addr, "/health").await.is_ok() {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < limit,
            "sample app did not listen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn version_file_and_graceful_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("VERSION"), "2.4.1\n").unwrap();
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = spawn(port, &[], dir.path());
    wait_ready(addr, Duration::from_secs(10)).await;

    let answer = get(addr, "/").await.unwrap();
    assert_eq!(answer.body, "2.4.1\n");
    assert_eq!(answer.headers["x-app-version"], "2.4.1");

    let in_flight = tokio::spawn(async move { get(addr, "/slow?ms=500").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    sigterm(&child);
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.status, 200);
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (status, out)
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(0));
    let lines: Vec<&str> = status.1.lines().collect();
    assert_eq!(lines.len(), 2, "one line at start, one at stop: {lines:?}");
    assert!(lines[0].starts_with("sample-app 2.4.1 listening on 127.0.0.1:"));
    assert_eq!(lines[1], "sample-app 2.4.1 stopped by SIGTERM");
}

#[tokio::test]
async fn start_delay_postpones_listening() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let began = Instant::now();
    let mut child = spawn(
        port,
        &[("START_DELAY_MS", "600"), ("APP_VERSION", "d1")],
        dir.path(),
    );
    wait_ready(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
    )
    .await;
    assert!(began.elapsed() >= Duration::from_millis(600));
    sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[tokio::test]
async fn bad_fail_rate_is_an_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(free_port(), &[("FAIL_RATE", "often")], dir.path());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("FAIL_RATE"), "{err}");
}
