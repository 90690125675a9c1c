//! `--output json` prints what the server answered: the CLI reads each
//! answer into its `cutover-api` type and prints that value, which must be
//! the same JSON as the server's bytes (scripts and bench tools read it).

mod common;

use common::*;
use std::time::Duration;

/// The server's own answer to `GET path`, parsed.
fn raw(server: &Server, path: &str) -> serde_json::Value {
    let (status, body) = http_get(&server.addr.to_string(), path).unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

#[test]
fn json_output_is_the_servers_answer() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    write_stack(dir.path(), "v1", 2);
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tasks = wait_healthy(&server, "web", 2, Duration::from_secs(30));
    let task = format!("/v1/tasks/{}", tasks[0].id);
    let checks: Vec<(Vec<&str>, &str)> = vec![
        (vec!["services", "ls"], "/v1/services"),
        (vec!["services", "describe", "web"], "/v1/services/web"),
        (vec!["tasks", "ls"], "/v1/tasks?all=false"),
        (vec!["tasks", "describe", &tasks[0].id], &task),
        (vec!["task-definitions", "list"], "/v1/task-definitions"),
        (
            vec!["task-definitions", "describe", "web"],
            "/v1/task-definitions/web",
        ),
        (vec!["deployments", "ls"], "/v1/deployments"),
        (vec!["alarms", "ls"], "/v1/alarms"),
        (vec!["pipelines", "ls"], "/v1/pipelines"),
        (vec!["builds", "ls"], "/v1/builds"),
    ];
    for (args, path) in checks {
        // The service may still be writing an event between the two reads:
        // a few attempts, each reading the server first.
        let mut last = None;
        let same = (0..5).any(|_| {
            let (server_json, cli_json) = (raw(&server, path), server.json(&args));
            let same = server_json == cli_json;
            last = Some((server_json, cli_json));
            same
        });
        let (s, c) = last.unwrap();
        assert!(
            same,
            "cutover {args:?} differs from GET {path}:\nserver: {s:#}\ncli: {c:#}"
        );
    }
}
