//! Shared helpers of the container tests: finding an engine (or skipping,
//! or failing when CI asks for the tests), task specs, plain HTTP requests,
//! and cleanup of each test's containers.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_docker::{DockerOptions, DockerRuntime};
use cutover_runtime::{ContainerSpec, TaskSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The image `scripts/build-test-images.sh` builds.
pub const SAMPLE_IMAGE: &str = "cutover-sample:test";

/// Set to 1 by `.ci/run`: the tests must run for real there.
const REQUIRED: &str = "CUTOVER_CONTAINER_TESTS";

/// Removes every container of one test instance when dropped (also when the
/// test panics), so failed runs leave nothing behind.
pub struct Cleanup {
    instance: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let instance = self.instance.clone();
        let cleaner = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            rt.block_on(async move {
                let Ok(docker) = DockerRuntime::connect(DockerOptions::new(instance)).await else {
                    return;
                };
                for e in docker.stop_and_remove_all(Duration::from_secs(20)).await {
                    eprintln!("cleanup: {e:?}");
                }
            });
        });
        let _ = cleaner.join();
    }
}

/// A runtime on the local engine for test `name`, with its own instance id,
/// or `None` (after saying so) when no engine answers and the tests are not
/// required. When `CUTOVER_CONTAINER_TESTS=1`, a missing engine or test image
/// fails the test instead.
pub async fn engine_or_skip(name: &str) -> Option<(DockerRuntime, Cleanup)> {
    engine_with(name, |o| o).await
}

/// [`engine_or_skip`] with adjusted options.
pub async fn engine_with(
    name: &str,
    adjust: impl FnOnce(DockerOptions) -> DockerOptions,
) -> Option<(DockerRuntime, Cleanup)> {
    let required = std::env::var(REQUIRED).is_ok_and(|v| v == "1");
    let instance = format!("test-{}-{name}", std::process::id());
    let docker = match DockerRuntime::connect(adjust(DockerOptions::new(instance.clone()))).await {
        Ok(docker) => docker,
        Err(e) if required => panic!(
            "{REQUIRED}=1 but no container engine answers: {e} (run scripts/setup-podman.sh)"
        ),
        Err(e) => {
            eprintln!("skipping: no container engine ({e})");
            return None;
        }
    };
    match docker.image_exists(SAMPLE_IMAGE).await {
        Ok(true) => {}
        Ok(false) if required => panic!(
            "{REQUIRED}=1 but the engine has no {SAMPLE_IMAGE} (run scripts/build-test-images.sh)"
        ),
        Ok(false) => {
            eprintln!("skipping: no {SAMPLE_IMAGE} image (run scripts/build-test-images.sh)");
            return None;
        }
        Err(e) => panic!("cannot ask the engine for {SAMPLE_IMAGE}: {e}"),
    }
    Some((docker, Cleanup { instance }))
}

/// The service name of the tests' tasks: `web-<pid>`, so container names
/// (`cutover-<service>-<task id>`) never collide with another test run on
/// the same engine, nor with containers an interrupted run left behind.
pub fn test_service() -> String {
    format!("web-{}", std::process::id())
}

/// A task of the sample app answering `version` on `GET /`.
pub fn sample_task(task_id: &str, version: &str) -> TaskSpec {
    TaskSpec {
        task_id: task_id.into(),
        service: test_service(),
        task_definition: "web:1".into(),
        container: ContainerSpec {
            name: "web".into(),
            image: Some(SAMPLE_IMAGE.into()),
            environment: vec![("APP_VERSION".into(), version.into())],
            container_port: Some(8080),
            stop_timeout: Duration::from_secs(10),
            ..ContainerSpec::default()
        },
        labels: BTreeMap::new(),
        placement: Default::default(),
    }
}

/// A task of the sample image running `sh -c script` instead of the app.
pub fn shell_task(task_id: &str, script: &str) -> TaskSpec {
    let mut spec = sample_task(task_id, "shell");
    spec.container.command = vec!["sh".into(), "-c".into(), script.into()];
    spec.container.container_port = None;
    spec.container.stop_timeout = Duration::from_secs(2);
    spec
}

/// `GET path` over plain HTTP/1.0; the status line and body, retried until
/// the server listens (at most 15 s).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match try_get(addr, path).await {
            Ok(answer) => return answer,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("GET {path} at {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn try_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no complete answer: {text:?}")))?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}

/// Sends a signal to a container through the engine's own API (as an
/// operator's `docker kill` would), bypassing the runtime.
pub async fn engine_kill(socket: &str, container_id: &str, signal: &str) {
    let path = socket
        .strip_prefix("unix://")
        .expect("tests run against a unix socket");
    let mut stream = tokio::net::UnixStream::connect(path)
        .await
        .expect("engine socket");
    let request = format!(
        "POST /containers/{container_id}/kill?signal={signal} HTTP/1.0\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let answer = String::from_utf8_lossy(&raw);
    assert!(
        answer.starts_with("HTTP/1.1 204") || answer.starts_with("HTTP/1.0 204"),
        "kill: {answer}"
    );
}

/// A log stream read to its end, as text.
pub async fn read_log(mut stream: cutover_runtime::LogStream) -> String {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("log chunk"));
    }
    String::from_utf8_lossy(&out).into_owned()
}
