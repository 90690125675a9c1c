//! The process runtime end to end: real shims and real processes on loopback.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cutover_runtime::{
    ContainerSpec, HealthCommand, ProbeOutcome, ProcessRuntime, REASON_CANNOT_START, REASON_EXITED,
    REASON_LOST, REASON_STOPPED, Runtime, RuntimeError, TaskSpec, TaskStatus,
};
use futures_util::StreamExt;

fn runtime(data_dir: &Path) -> ProcessRuntime {
    ProcessRuntime::new(data_dir.to_owned())
        .with_shim_command(vec![env!("CARGO_BIN_EXE_cutover-runtime-shim").into()])
}

fn task(task_id: &str, command: &[&str]) -> TaskSpec {
    TaskSpec {
        task_id: task_id.to_owned(),
        service: "web".to_owned(),
        task_definition: "web:1".to_owned(),
        container: ContainerSpec {
            name: "app".to_owned(),
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            container_port: Some(8080),
            stop_timeout: Duration::from_secs(5),
            ..ContainerSpec::default()
        },
        labels: BTreeMap::new(),
        placement: Default::default(),
    }
}

fn sh(task_id: &str, script: &str) -> TaskSpec {
    task(task_id, &["sh", "-c", script])
}

fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Whether `pid` names a running (not zombie) process.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
            state != 'Z' && state != 'X'
        }
        Err(_) => false,
    }
}

async fn log_text(rt: &ProcessRuntime, task_id: &str, follow: bool) -> String {
    let mut stream = rt.logs(task_id, follow).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

/// Waits until the task's log contains `marker`: the script has installed
/// its signal traps (a stop sent before that would race the shell).
async fn wait_for_log(rt: &ProcessRuntime, task_id: &str, marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log_text(rt, task_id, false).await.contains(marker) {
        assert!(
            Instant::now() < deadline,
            "{task_id} never logged {marker:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn runs_a_process_with_its_port_and_records_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let handle = rt
        .start(&sh(
            "t1",
            r#"echo "port=$PORT host=$HOST task=$CUTOVER_TASK_ID"; echo oops >&2; exit 3"#,
        ))
        .await
        .unwrap();
    let endpoint = handle.endpoint.expect("a container port gives an endpoint");
    assert!(endpoint.ip().is_loopback());
    assert!(handle.pid.is_some());

    let exit = rt.wait("t1").await.unwrap();
    assert_eq!(exit.exit_code, Some(3));
    assert_eq!(exit.signal, None);
    assert_eq!(exit.reason, REASON_EXITED);
    assert!(matches!(rt.status("t1").await.unwrap(), TaskStatus::Exited(e) if e == exit));
    let log = log_text(&rt, "t1", false).await;
    assert!(
        log.contains(&format!("port={} host=127.0.0.1 task=t1", endpoint.port())),
        "{log}"
    );
    assert!(log.contains("oops"), "stderr goes to the same log: {log}");
}

#[tokio::test]
async fn stop_sends_sigterm_first() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    rt.start(&sh(
        "graceful",
        "trap 'echo bye; exit 0' TERM; echo up; while true; do sleep 0.05; done",
    ))
    .await
    .unwrap();
    wait_for_log(&rt, "graceful", "up").await;
    let began = Instant::now();
    rt.stop("graceful").await.unwrap();
    let exit = rt.wait("graceful").await.unwrap();
    assert!(began.elapsed() < Duration::from_secs(2));
    assert_eq!(exit.exit_code, Some(0));
    assert_eq!(exit.reason, REASON_STOPPED);
    assert!(log_text(&rt, "graceful", false).await.contains("bye"));
    rt.stop("graceful")
        .await
        .expect("stopping an exited task is a no-op");
    rt.stop("never-existed")
        .await
        .expect("stopping an unknown task is a no-op");
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_stop_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut spec = sh(
        "stubborn",
        "trap '' TERM; echo ready; while true; do sleep 0.05; done",
    );
    spec.container.stop_timeout = Duration::from_millis(600);
    rt.start(&spec).await.unwrap();
    wait_for_log(&rt, "stubborn", "ready").await;
    let began = Instant::now();
    rt.stop("stubborn").await.unwrap();
    let exit = rt.wait("stubborn").await.unwrap();
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(600),
        "killed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "killed too late: {took:?}");
    assert_eq!(exit.signal, Some(libc_sigkill()));
    assert_eq!(exit.exit_code, Some(128 + libc_sigkill()));
    assert_eq!(exit.reason, REASON_STOPPED);
}

fn libc_sigkill() -> i32 {
    9
}

#[tokio::test]
async fn kill_of_the_task_is_seen_by_wait_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let handle = rt.start(&task("victim", &["sleep", "30"])).await.unwrap();
    // Polled once, `wait` is parked on the shim's pidfd: it is waiting before the kill.
    let mut waiting = std::pin::pin!(rt.wait("victim"));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(waiting.as_mut().poll(cx))).await;
    assert!(
        first.is_pending(),
        "the task ended before the kill: {first:?}"
    );
    let killed_at = Instant::now();
    kill("-KILL", handle.pid.unwrap());
    let exit = waiting.await.unwrap();
    let seen_at = Instant::now();
    assert!(
        seen_at - killed_at < Duration::from_secs(1),
        "took {:?}",
        seen_at - killed_at
    );
    assert_eq!(exit.signal, Some(9));
    assert_eq!(exit.reason, REASON_EXITED);
}

#[tokio::test]
async fn kill_of_the_shim_kills_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let handle = rt.start(&task("orphan", &["sleep", "30"])).await.unwrap();
    let task_pid = handle.pid.unwrap();
    let shim_pid = handle.detail["shimPid"].as_u64().unwrap() as u32;
    kill("-KILL", shim_pid);
    let began = Instant::now();
    while running(task_pid) {
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "task {task_pid} outlived its shim"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let exit = tokio::time::timeout(Duration::from_secs(2), rt.wait("orphan"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.reason, REASON_LOST);
    assert!(matches!(
        rt.status("orphan").await.unwrap(),
        TaskStatus::Exited(_)
    ));
}

#[tokio::test]
async fn a_new_runtime_adopts_running_tasks_without_duplicating_them() {
    let dir = tempfile::tempdir().unwrap();
    let spec = task("adopted", &["sleep", "30"]);
    let first = runtime(dir.path()).start(&spec).await.unwrap();

    // A restarted server: a fresh runtime on the same data directory.
    let rt = runtime(dir.path());
    let listed = rt.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].task_id, "adopted");
    assert_eq!(listed[0].pid, first.pid);
    assert_eq!(listed[0].endpoint, first.endpoint);
    let again = rt.start(&spec).await.unwrap();
    assert_eq!(again.pid, first.pid, "start is idempotent per task id");
    assert!(
        matches!(rt.status("adopted").await.unwrap(), TaskStatus::Running(h) if h.pid == first.pid)
    );
    assert_eq!(rt.list().await.unwrap().len(), 1);

    rt.stop("adopted").await.unwrap();
    assert_eq!(rt.wait("adopted").await.unwrap().reason, REASON_STOPPED);
}

#[tokio::test]
async fn exec_failure_is_a_clear_error_and_a_recorded_exit() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let err = rt
        .start(&task("broken", &["/nonexistent/bin/app"]))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::CannotStart { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("/nonexistent/bin/app"), "{message}");
    assert!(message.contains(REASON_CANNOT_START), "{message}");
    match rt.status("broken").await.unwrap() {
        TaskStatus::Exited(exit) => {
            assert!(
                exit.reason.starts_with("CannotStartContainerError: "),
                "{}",
                exit.reason
            );
            assert_eq!(exit.exit_code, None);
        }
        other => panic!("expected an exited task, got {other:?}"),
    }
}

#[tokio::test]
async fn health_probes_see_the_task_port_and_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let handle = rt.start(&task("probed", &["sleep", "30"])).await.unwrap();
    let port = handle.endpoint.unwrap().port();
    let timeout = Duration::from_secs(5);

    let cmd = HealthCommand::Cmd(vec![
        "sh".into(),
        "-c".into(),
        format!("test \"$PORT\" = {port}"),
    ]);
    assert_eq!(
        rt.health_probe("probed", &cmd, timeout).await.unwrap(),
        ProbeOutcome::Healthy
    );

    let shell = HealthCommand::Shell(format!("test \"$PORT\" = {port} && echo down && exit 4"));
    assert_eq!(
        rt.health_probe("probed", &shell, timeout).await.unwrap(),
        ProbeOutcome::Unhealthy {
            exit_code: Some(4),
            output: "down\n".into()
        }
    );

    let began = Instant::now();
    let hung = HealthCommand::Shell("sleep 10".into());
    let outcome = rt
        .health_probe("probed", &hung, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(outcome, ProbeOutcome::TimedOut);
    assert!(began.elapsed() < Duration::from_secs(2));
    rt.stop("probed").await.unwrap();
    rt.wait("probed").await.unwrap();
}

#[tokio::test]
async fn logs_once_and_following() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    rt.start(&sh(
        "chatty",
        "echo one; sleep 0.3; echo two; sleep 0.3; echo three",
    ))
    .await
    .unwrap();
    wait_for_log(&rt, "chatty", "one").await;
    let now = log_text(&rt, "chatty", false).await;
    assert_eq!(
        now, "one\n",
        "without follow the stream ends at the current end"
    );
    let followed = tokio::time::timeout(Duration::from_secs(5), log_text(&rt, "chatty", true))
        .await
        .expect("following ends once the task exited");
    assert_eq!(followed, "one\ntwo\nthree\n");
}

#[tokio::test]
async fn remove_needs_an_exited_task_and_keeps_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    rt.start(&sh("short", "echo hello; sleep 30"))
        .await
        .unwrap();
    assert!(matches!(
        rt.remove("short").await,
        Err(RuntimeError::StillRunning { .. })
    ));
    wait_for_log(&rt, "short", "hello").await;
    rt.stop("short").await.unwrap();
    rt.wait("short").await.unwrap();
    rt.remove("short").await.unwrap();
    assert_eq!(rt.status("short").await.unwrap(), TaskStatus::Gone);
    assert!(rt.list().await.unwrap().is_empty());
    assert_eq!(log_text(&rt, "short", true).await, "hello\n");
    rt.remove("short").await.expect("removing twice is a no-op");
}

#[tokio::test]
async fn foreign_image_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut spec = task("foreign", &["sleep", "30"]);
    spec.container.image = Some("public.ecr.aws/nginx/nginx:1.27".into());
    let handle = rt.start(&spec).await.unwrap();
    assert!(matches!(
        rt.status("foreign").await.unwrap(),
        TaskStatus::Running(_)
    ));
    let warnings = handle.detail["warnings"].as_array().unwrap();
    assert!(warnings[0].as_str().unwrap().contains("nginx:1.27"));
    rt.stop("foreign").await.unwrap();
    rt.wait("foreign").await.unwrap();
}

/// Writes a small app tree: `srv/run.sh` printing its directory and `srv/VERSION`.
fn write_app(root: &Path) {
    std::fs::create_dir_all(root.join("srv")).unwrap();
    std::fs::write(
        root.join("srv/run.sh"),
        "#!/bin/sh\necho \"cwd=$(pwd) version=$(cat VERSION)\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("srv/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(root.join("srv/VERSION"), "9.9\n").unwrap();
}

async fn run_image(
    rt: &ProcessRuntime,
    task_id: &str,
    image: String,
) -> (String, serde_json::Value) {
    let mut spec = task(task_id, &["./run.sh"]);
    spec.container.image = Some(image);
    spec.container.working_directory = Some("/srv".into());
    let handle = rt.start(&spec).await.unwrap();
    assert_eq!(rt.wait(task_id).await.unwrap().exit_code, Some(0));
    (log_text(rt, task_id, false).await, handle.detail)
}

fn assert_read_only_root(cwd: &str) {
    let cwd = Path::new(cwd);
    for path in [
        cwd.to_owned(),
        cwd.join("run.sh"),
        cwd.join("VERSION"),
        cwd.parent().unwrap().to_owned(),
    ] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o222, 0, "{} is writable ({mode:o})", path.display());
    }
}

#[tokio::test]
async fn directory_image_is_a_read_only_root() {
    let dir = tempfile::tempdir().unwrap();
    let app = tempfile::tempdir().unwrap();
    write_app(app.path());
    let rt = runtime(dir.path());
    let (log, detail) = run_image(&rt, "dir-image", app.path().display().to_string()).await;
    let digest = detail["imageDigest"].as_str().unwrap();
    let cwd = detail["cwd"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"));
    assert!(cwd.ends_with("/rootfs/srv"));
    assert!(cwd.starts_with(dir.path().join("images").to_str().unwrap()));
    assert_eq!(log, format!("cwd={cwd} version=9.9\n"));
    assert_read_only_root(cwd);

    // The same content is materialised once.
    let (_, again) = run_image(
        &rt,
        "dir-image-2",
        format!("file://{}", app.path().display()),
    )
    .await;
    assert_eq!(again["imageDigest"], detail["imageDigest"]);
    assert_eq!(
        std::fs::read_dir(dir.path().join("images"))
            .unwrap()
            .count(),
        1
    );
}

#[tokio::test]
async fn tar_gz_image_is_a_read_only_root() {
    let dir = tempfile::tempdir().unwrap();
    let app = tempfile::tempdir().unwrap();
    write_app(&app.path().join("tree"));
    let archive = app.path().join("app.tar.gz");
    {
        let file = std::fs::File::create(&archive).unwrap();
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.append_dir_all(".", app.path().join("tree")).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let rt = runtime(dir.path());
    let (log, detail) = run_image(&rt, "tar-image", archive.display().to_string()).await;
    let cwd = detail["cwd"].as_str().unwrap();
    assert_eq!(log, format!("cwd={cwd} version=9.9\n"));
    assert_read_only_root(cwd);
}

#[tokio::test]
async fn missing_image_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut spec = task("no-image", &["./run.sh"]);
    spec.container.image = Some("/nonexistent/app.tar.gz".into());
    let err = rt.start(&spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Image { .. }), "{err:?}");
    assert_eq!(rt.status("no-image").await.unwrap(), TaskStatus::Gone);
}
