//! The sample app as a real process: environment, start delay and SIGTERM. Each runs on
//! `PORT=0` and the test reads the bound address from the app's first stdout line.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{get, get_first_frame};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Starts the app on port 0: the kernel picks the port, the app prints it.
fn spawn(envs: &[(&str, &str)], cwd: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cutover-sample-app"))
        .env_clear()
        .env("PORT", "0")
        .envs(envs.iter().copied())
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Reads the app's first stdout line, printed once it listens (`... listening on ADDR (pid
/// N)`), within `limit`; returns the address, the line and the rest of stdout.
async fn listening(
    child: &mut Child,
    limit: Duration,
) -> (SocketAddr, String, Lines<BufReader<ChildStdout>>) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(limit, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("sample app did not listen within {limit:?}"))
        .unwrap()
        .expect("the sample app printed a line when listening");
    let addr = line
        .split_once(" listening on ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (addr, line, lines)
}

fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn version_file_and_graceful_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("VERSION"), "2.4.1\n").unwrap();
    let mut child = spawn(&[], dir.path());
    let (addr, first, mut lines) = listening(&mut child, Duration::from_secs(10)).await;
    assert!(
        first.starts_with("sample-app 2.4.1 listening on 127.0.0.1:"),
        "{first}"
    );

    let answer = get(addr, "/").await.unwrap();
    assert_eq!(answer.body, "2.4.1\n");
    assert_eq!(answer.headers["x-app-version"], "2.4.1");

    // In flight from its first event until its second, 500 ms later.
    let in_flight = get_first_frame(addr, "/events?count=2&interval_ms=500")
        .await
        .unwrap();
    sigterm(&child);
    assert_eq!(in_flight.status, 200);
    let body = in_flight.finish().await.unwrap();
    assert_eq!(body.matches("data: ").count(), 2, "{body}");
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push(line);
    }
    assert_eq!(
        rest,
        ["sample-app 2.4.1 stopped by SIGTERM"],
        "one line at start, one at stop"
    );
}

#[tokio::test]
async fn start_delay_postpones_listening() {
    let dir = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let mut child = spawn(
        &[("START_DELAY_MS", "600"), ("APP_VERSION", "d1")],
        dir.path(),
    );
    let (addr, _, _) = listening(&mut child, Duration::from_secs(10)).await;
    assert!(began.elapsed() >= Duration::from_millis(600));
    assert_eq!(get(addr, "/health").await.unwrap().status, 200);
    sigterm(&child);
    assert_eq!(child.wait().await.unwrap().code(), Some(0));
}

#[tokio::test]
async fn bad_fail_rate_is_an_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(&[("FAIL_RATE", "often")], dir.path());
    let status = child.wait().await.unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("FAIL_RATE"), "{err}");
}
