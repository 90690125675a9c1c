//! End to end: the real binary keeps N healthy copies of a service, replaces
//! a killed task, adopts tasks after a `kill -9` of the server, scales, logs,
//! and rejects a bad file without touching what is stored.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn keeps_desired_count_replaces_killed_tasks_and_adopts_after_server_crash() {
    let mut server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    write_stack(dir.path(), "v1", 2);
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("+ service web: create"));

    let tasks = wait_healthy(&server, "web", 2, Duration::from_secs(30));
    for t in &tasks {
        let (status, body) = http_get(t.endpoint.as_deref().unwrap(), "/").unwrap();
        assert_eq!((status, body.trim()), (200, "v1"));
    }

    // Applying the same file again changes nothing.
    let again = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(String::from_utf8_lossy(&again.stdout).contains("no changes"));

    // kill -9 of a task's process: a replacement runs within 2 s.
    let victim = tasks[0].clone();
    let killed_at = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &victim.pid.unwrap().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let replaced = wait_until(Duration::from_secs(5), || {
        let now = server.tasks("web");
        now.len() == 2
            && !now.iter().any(|t| t.id == victim.id)
            && now.iter().all(|t| t.status == "RUNNING")
    });
    let replaced = replaced.expect("no replacement within 5 s");
    eprintln!("replacement RUNNING after {:?}", killed_at.elapsed());
    assert!(
        replaced < Duration::from_secs(2),
        "replacement took {replaced:?}"
    );
    let stopped = server.json(&["tasks", "describe", &victim.id]);
    assert_eq!(stopped["task"]["lastStatus"], "STOPPED");
    assert_eq!(stopped["task"]["stopCode"], "EssentialContainerExited");

    // kill -9 of the server, then a restart: the same processes, adopted.
    let before = wait_healthy(&server, "web", 2, Duration::from_secs(30));
    server.kill9();
    for t in &before {
        assert!(alive(t.pid.unwrap()), "task {} died with the server", t.id);
    }
    server.spawn();
    // `spawn` returns once the server listens, after its adoption pass. The
    // 2 s are the behaviour under test: a window in which a duplicate start
    // or a replacement by the restarted service loop would show.
    std::thread::sleep(Duration::from_secs(2));
    let after = wait_healthy(&server, "web", 2, Duration::from_secs(30));
    let mut pids_before: Vec<_> = before.iter().map(|t| t.pid).collect();
    let mut pids_after: Vec<_> = after.iter().map(|t| t.pid).collect();
    pids_before.sort();
    pids_after.sort();
    assert_eq!(
        pids_before, pids_after,
        "tasks were not adopted as they were"
    );

    // Scale out and in.
    server.json(&["services", "scale", "web", "--desired", "3"]);
    wait_healthy(&server, "web", 3, Duration::from_secs(30));
    server.json(&["services", "scale", "web", "--desired", "1"]);
    wait_healthy(&server, "web", 1, Duration::from_secs(30));

    // Logs of the service carry the sample app's start line.
    let logs = server.cli(&["logs", "web"]);
    assert!(logs.status.success());
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("listening"),
        "{}",
        String::from_utf8_lossy(&logs.stdout)
    );

    // Delete: every task stops, then the service is gone.
    server.json(&["services", "delete", "web"]);
    let gone = wait_until(Duration::from_secs(20), || {
        !server
            .cli(&["services", "describe", "web"])
            .status
            .success()
    });
    assert!(gone.is_some(), "service was not removed");
    for t in &after {
        assert!(
            !alive(t.pid.unwrap()),
            "task {} still runs after delete",
            t.id
        );
    }
}

#[test]
fn a_rejected_apply_names_the_place_and_changes_nothing() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    write_stack(dir.path(), "v1", 1);
    let ok = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let before = server.json(&["services", "describe", "web"]);

    // A wrong type in the task definition, and a bigger desired count.
    let td = std::fs::read_to_string(dir.path().join("taskdef.json")).unwrap();
    std::fs::write(
        dir.path().join("taskdef.json"),
        td.replace("8080", "\"80a\""),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("stack.yaml"),
        "services:\n  web:\n    runtime: process\n    desiredCount: 5\n    taskDefinition: ./taskdef.json\n",
    )
    .unwrap();
    let bad = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("./taskdef.json:3:")
            && err.contains("containerDefinitions[0].portMappings[0].containerPort"),
        "{err}"
    );
    let after = server.json(&["services", "describe", "web"]);
    assert_eq!(
        before["service"]["desiredCount"],
        after["service"]["desiredCount"]
    );
    assert_eq!(
        before["service"]["taskDefinition"],
        after["service"]["taskDefinition"]
    );
    assert_eq!(
        before["service"]["generation"],
        after["service"]["generation"]
    );
    let revisions = server.json(&["task-definitions", "list"]);
    assert_eq!(revisions["taskDefinitions"].as_array().unwrap().len(), 1);
}
