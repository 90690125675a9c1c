//! The Docker runtime against a real engine (Podman or Docker).
//!
//! Needs an engine and the `cutover-sample:test` image
//! (`scripts/setup-podman.sh`, `scripts/build-test-images.sh`). Without
//! them each test says "skipping" and passes, unless
//! `CUTOVER_CONTAINER_TESTS=1` (set by CI), where it fails.

mod common;

use std::time::{Duration, Instant};

use common::{
    engine_kill, engine_or_skip, engine_with, http_get, read_log, sample_task, shell_task,
};
use cutover_docker::{DockerRuntime, REASON_OOM};
use cutover_runtime::{
    HealthCommand, ProbeOutcome, REASON_EXITED, REASON_STOPPED, Runtime, RuntimeError, TaskStatus,
};

fn container_id(handle: &cutover_runtime::TaskHandle) -> String {
    handle.detail["containerId"]
        .as_str()
        .expect("container id in the handle")
        .to_owned()
}

#[tokio::test]
async fn a_started_task_serves_its_version_and_passes_probes() {
    let Some((docker, _cleanup)) = engine_or_skip("serve").await else {
        return;
    };
    eprintln!("engine: {}", docker.engine_info());
    let handle = docker
        .start(&sample_task("serve-1", "v-docker-1"))
        .await
        .unwrap();
    assert_eq!(handle.runtime, "docker");
    let endpoint = handle.endpoint.expect("an endpoint for the container port");
    assert!(endpoint.ip().is_loopback(), "{endpoint}");

    let (status, body) = http_get(endpoint, "/").await;
    assert!(status.contains(" 200"), "{status}");
    assert_eq!(body, "v-docker-1\n");
    assert!(
        matches!(docker.status("serve-1").await.unwrap(), TaskStatus::Running(h) if h.endpoint == Some(endpoint))
    );

    let healthy = HealthCommand::Shell("wget -q -O /dev/null http://127.0.0.1:$PORT/health".into());
    assert_eq!(
        docker
            .health_probe("serve-1", &healthy, Duration::from_secs(5))
            .await
            .unwrap(),
        ProbeOutcome::Healthy
    );

    let failing = HealthCommand::Shell("echo not ready; echo details >&2; exit 3".into());
    match docker
        .health_probe("serve-1", &failing, Duration::from_secs(5))
        .await
        .unwrap()
    {
        ProbeOutcome::Unhealthy { exit_code, output } => {
            assert_eq!(exit_code, Some(3));
            assert_eq!(output, "not ready\ndetails\n");
        }
        other => panic!("expected unhealthy, got {other:?}"),
    }

    let argv = HealthCommand::Cmd(vec!["test".into(), "-d".into(), "/no/such/dir".into()]);
    assert!(matches!(
        docker
            .health_probe("serve-1", &argv, Duration::from_secs(5))
            .await
            .unwrap(),
        ProbeOutcome::Unhealthy {
            exit_code: Some(1),
            ..
        }
    ));

    let started = Instant::now();
    let slow = HealthCommand::Cmd(vec!["sleep".into(), "30".into()]);
    assert_eq!(
        docker
            .health_probe("serve-1", &slow, Duration::from_millis(500))
            .await
            .unwrap(),
        ProbeOutcome::TimedOut
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn stop_returns_at_once_and_the_graceful_exit_is_recorded() {
    let Some((docker, _cleanup)) = engine_or_skip("stop").await else {
        return;
    };
    docker.start(&sample_task("stop-1", "v1")).await.unwrap();
    http_get(
        docker.status("stop-1").await.map(running_endpoint).unwrap(),
        "/",
    )
    .await;

    let asked = Instant::now();
    docker.stop("stop-1").await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "stop blocked for {:?}",
        asked.elapsed()
    );

    let exit = tokio::time::timeout(Duration::from_secs(20), docker.wait("stop-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        exit.exit_code,
        Some(0),
        "the sample app exits 0 after SIGTERM: {exit:?}"
    );
    assert_eq!(exit.signal, None);
    assert!(!exit.oom_killed);
    assert_eq!(exit.reason, REASON_STOPPED);
    match docker.status("stop-1").await.unwrap() {
        // Podman may refine the finish time by a millisecond once it has
        // cleaned up; everything else is stable.
        TaskStatus::Exited(seen) => {
            assert_eq!(
                (seen.exit_code, &seen.reason),
                (exit.exit_code, &exit.reason)
            );
            assert!(seen.finished_at_unix_ms.abs_diff(exit.finished_at_unix_ms) < 1000);
        }
        other => panic!("expected an exited task, got {other:?}"),
    }

    // Stopping again does nothing; removing forgets the task.
    docker.stop("stop-1").await.unwrap();
    docker.remove("stop-1").await.unwrap();
    assert_eq!(docker.status("stop-1").await.unwrap(), TaskStatus::Gone);
    docker.remove("stop-1").await.unwrap();
}

fn running_endpoint(status: TaskStatus) -> std::net::SocketAddr {
    match status {
        TaskStatus::Running(handle) => handle.endpoint.expect("endpoint"),
        other => panic!("expected a running task, got {other:?}"),
    }
}

#[tokio::test]
async fn a_container_killed_through_the_engine_is_seen_by_wait() {
    let Some((docker, _cleanup)) = engine_or_skip("kill").await else {
        return;
    };
    let handle = docker.start(&sample_task("kill-1", "v1")).await.unwrap();
    let waiter = {
        let docker = std::sync::Arc::new(docker);
        let w = docker.clone();
        (tokio::spawn(async move { w.wait("kill-1").await }), docker)
    };
    let (waiter, docker) = waiter;
    // A cancelled wait leaves nothing behind.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), docker.wait("kill-1"))
            .await
            .is_err()
    );

    engine_kill(&docker.engine_info().socket, &container_id(&handle), "KILL").await;
    let exit = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(exit.exit_code, Some(137));
    assert_eq!(exit.signal, Some(9));
    assert!(!exit.oom_killed);
    assert_eq!(exit.reason, REASON_EXITED);
}

#[tokio::test]
async fn an_image_that_cannot_be_had_fails_the_start_quickly() {
    let Some((docker, _cleanup)) = engine_with("pull", |o| cutover_docker::DockerOptions {
        pull_idle_timeout: Duration::from_secs(20),
        ..o
    })
    .await
    else {
        return;
    };
    let mut spec = sample_task("pull-1", "v1");
    spec.container.image = Some("registry.invalid/cutover/does-not-exist:never".into());
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(60), docker.start(&spec))
        .await
        .expect("a pull that cannot work must not hang")
        .unwrap_err();
    match &err {
        RuntimeError::CannotStart { task_id, message } => {
            assert_eq!(task_id, "pull-1");
            assert!(
                message.starts_with("CannotPullContainerError: "),
                "{message}"
            );
            assert!(
                message.contains("registry.invalid/cutover/does-not-exist"),
                "{message}"
            );
        }
        other => panic!("expected CannotStart, got {other:?}"),
    }
    eprintln!("pull failed after {:?}: {err}", started.elapsed());
    assert_eq!(docker.status("pull-1").await.unwrap(), TaskStatus::Gone);
}

#[tokio::test]
async fn a_command_that_cannot_run_fails_the_start_and_leaves_nothing() {
    let Some((docker, _cleanup)) = engine_or_skip("nostart").await else {
        return;
    };
    let mut spec = sample_task("nostart-1", "v1");
    spec.container.entry_point = vec!["/no/such/program".into()];
    let err = docker.start(&spec).await.unwrap_err();
    match &err {
        RuntimeError::CannotStart { message, .. } => {
            assert!(
                message.starts_with("CannotStartContainerError: "),
                "{message}"
            )
        }
        other => panic!("expected CannotStart, got {other:?}"),
    }
    assert_eq!(docker.status("nostart-1").await.unwrap(), TaskStatus::Gone);
    assert!(docker.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restarted_server_adopts_its_containers_without_duplicates() {
    let Some((first, _cleanup)) = engine_or_skip("adopt").await else {
        return;
    };
    let spec = sample_task("adopt-1", "v-adopt");
    let started = first.start(&spec).await.unwrap();
    drop(first);

    let instance = format!("test-{}-adopt", std::process::id());
    let second = DockerRuntime::connect(cutover_docker::DockerOptions::new(instance))
        .await
        .unwrap();
    let listed = second.list().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].task_id, "adopt-1");
    assert_eq!(listed[0].endpoint, started.endpoint);
    assert_eq!(container_id(&listed[0]), container_id(&started));

    let again = second.start(&spec).await.unwrap();
    assert_eq!(
        container_id(&again),
        container_id(&started),
        "start is idempotent per task id"
    );
    assert_eq!(second.list().await.unwrap().len(), 1);
    let (_, body) = http_get(again.endpoint.unwrap(), "/").await;
    assert_eq!(body, "v-adopt\n");

    // Another instance sees none of it.
    let Some((other, _other_cleanup)) = engine_or_skip("adopt-other").await else {
        return;
    };
    assert!(other.list().await.unwrap().is_empty());
    assert_eq!(other.status("adopt-1").await.unwrap(), TaskStatus::Gone);
}

#[tokio::test]
async fn logs_with_and_without_follow_and_the_container_settings() {
    let Some((docker, _cleanup)) = engine_or_skip("logs").await else {
        return;
    };
    let mut spec = shell_task(
        "logs-1",
        "echo out $PWD $X; sleep 1; echo err >&2; sleep 0.3; exit 4",
    );
    spec.container.working_directory = Some("/tmp".into());
    spec.container
        .environment
        .push(("X".into(), "from-env".into()));
    docker.start(&spec).await.unwrap();

    let followed = tokio::time::timeout(
        Duration::from_secs(20),
        read_log(docker.logs("logs-1", true).await.unwrap()),
    )
    .await
    .expect("a followed log ends when the container exits");
    assert_eq!(followed, "out /tmp from-env\nerr\n");

    let exit = docker.wait("logs-1").await.unwrap();
    assert_eq!(exit.exit_code, Some(4));
    assert_eq!(exit.reason, REASON_EXITED);
    let snapshot = read_log(docker.logs("logs-1", false).await.unwrap()).await;
    assert_eq!(snapshot, followed);
    assert!(matches!(
        docker.logs("no-such-task", false).await,
        Err(RuntimeError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_running_log_snapshot_ends_at_the_current_end() {
    let Some((docker, _cleanup)) = engine_or_skip("snapshot").await else {
        return;
    };
    docker
        .start(&shell_task("snap-1", "echo first; sleep 60"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = tokio::time::timeout(
            Duration::from_secs(5),
            read_log(docker.logs("snap-1", false).await.unwrap()),
        )
        .await
        .expect("a snapshot of a running task's log ends");
        if text == "first\n" {
            break;
        }
        assert!(text.is_empty() && Instant::now() < deadline, "{text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The limit is enforced by the kernel on every engine; whether the engine
/// *reports* the OOM kill depends on it: Docker does, Podman 4.3 on a
/// cgroup v1 host with `cgroup_manager = "cgroupfs"` (these machines) does
/// not, and then the task reads as killed by SIGKILL.
#[tokio::test]
async fn a_task_over_its_memory_limit_is_killed() {
    let Some((docker, _cleanup)) = engine_or_skip("oom").await else {
        return;
    };
    let mut spec = shell_task("oom-1", "x=$(yes | head -c 268435456); echo survived ${#x}");
    spec.container.memory_mib = Some(16);
    docker.start(&spec).await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(60), docker.wait("oom-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.exit_code, Some(137), "{exit:?}");
    assert_eq!(exit.signal, Some(9));
    let log = read_log(docker.logs("oom-1", false).await.unwrap()).await;
    assert!(!log.contains("survived"), "{log}");
    let reported = if exit.oom_killed {
        REASON_OOM
    } else {
        REASON_EXITED
    };
    assert_eq!(exit.reason, reported);
    eprintln!(
        "engine {} reports the OOM kill: {}",
        docker.engine_info(),
        exit.oom_killed
    );
}

/// What Docker run with `--bridge=none` gets: the task on the host network,
/// listening itself on the port Cutover chose.
#[tokio::test]
async fn host_network_tasks_listen_on_the_chosen_port() {
    let Some((docker, _cleanup)) = engine_with("hostnet", |o| cutover_docker::DockerOptions {
        network: cutover_docker::NetworkMode::Host,
        ..o
    })
    .await
    else {
        return;
    };
    assert_eq!(
        docker.engine_info().network,
        cutover_docker::NetworkMode::Host
    );
    let handle = docker
        .start(&sample_task("hostnet-1", "v-host"))
        .await
        .unwrap();
    assert_eq!(handle.detail["network"], "host");
    let (_, body) = http_get(handle.endpoint.unwrap(), "/").await;
    assert_eq!(body, "v-host\n");
    let probe = HealthCommand::Shell("wget -q -O /dev/null http://127.0.0.1:$PORT/health".into());
    assert_eq!(
        docker
            .health_probe("hostnet-1", &probe, Duration::from_secs(5))
            .await
            .unwrap(),
        ProbeOutcome::Healthy
    );
}
