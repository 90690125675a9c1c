//! The runtime against a scripted engine on a unix socket: the parts a
//! real engine on a machine without a registry cannot show (negotiation
//! with a newer engine, registry credentials, pull progress, pull errors
//! and a stalled pull).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use cutover_docker::{DockerOptions, DockerRuntime, NetworkMode, PullProgress};
use cutover_runtime::{ContainerSpec, Runtime, RuntimeError, TaskSpec};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

type Body = BoxBody<Bytes, Infallible>;

/// What the fake engine saw.
#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    registry_auth: Vec<String>,
    pulled: bool,
}

struct FakeEngine {
    socket: PathBuf,
    seen: Arc<Mutex<Seen>>,
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn full(status: u16, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(body.to_owned()))
                .map_err(|e| match e {})
                .boxed(),
        )
        .unwrap()
}

fn streamed(events: Vec<&'static str>, then_hang: bool) -> Response<Body> {
    let frames = futures_util::stream::iter(
        events
            .into_iter()
            .map(|e| Ok::<_, Infallible>(Frame::data(Bytes::from(format!("{e}\r\n"))))),
    );
    let body: Body = if then_hang {
        BodyExt::boxed(StreamBody::new(
            frames.chain(futures_util::stream::pending()),
        ))
    } else {
        BodyExt::boxed(StreamBody::new(frames))
    };
    Response::builder().status(200).body(body).unwrap()
}

async fn answer(
    req: Request<Incoming>,
    seen: Arc<Mutex<Seen>>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let mut s = seen.lock().unwrap();
    s.requests.push(format!("{} {path}?{query}", req.method()));
    if let Some(auth) = req.headers().get("x-registry-auth") {
        s.registry_auth.push(auth.to_str().unwrap().to_owned());
    }
    let response = match (req.method().as_str(), path.as_str()) {
        // Discovery asks in the oldest version it accepts.
        ("GET", "/v1.40/_ping") => full(200, "OK"),
        ("GET", "/v1.40/version") => full(
            200,
            r#"{"Version":"99.0.1","ApiVersion":"1.47","Components":[{"Name":"Engine","Version":"99.0.1"}]}"#,
        ),
        ("GET", "/v1.41/networks") => full(200, r#"[{"Name":"host","Driver":"host"}]"#),
        ("GET", p) if p.starts_with("/v1.41/images/") => {
            if s.pulled {
                full(200, "{}")
            } else {
                full(404, r#"{"message":"no such image"}"#)
            }
        }
        ("POST", "/v1.41/images/create") if query.contains("denied") => streamed(
            vec![
                r#"{"status":"Pulling from team/denied","id":"v1"}"#,
                r#"{"errorDetail":{"message":"pull access denied"},"error":"pull access denied"}"#,
            ],
            false,
        ),
        ("POST", "/v1.41/images/create") if query.contains("stall") => {
            streamed(vec![r#"{"status":"Pulling fs layer","id":"l1"}"#], true)
        }
        ("POST", "/v1.41/images/create") => {
            s.pulled = true;
            streamed(
                vec![
                    r#"{"status":"Pulling from team/app","id":"v1"}"#,
                    r#"{"status":"Downloading","id":"l1","progressDetail":{"current":512,"total":1024}}"#,
                    r#"{"status":"Pull complete","id":"l1","progressDetail":{}}"#,
                ],
                false,
            )
        }
        ("GET", "/v1.41/containers/json") => full(200, "[]"),
        ("POST", "/v1.41/containers/create") => full(
            500,
            r#"{"message":"the fake engine creates no containers"}"#,
        ),
        _ => full(404, r#"{"message":"not in the script"}"#),
    };
    Ok(response)
}

fn start_fake(name: &str) -> FakeEngine {
    let socket = std::env::temp_dir().join(format!(
        "cutover-fake-engine-{}-{name}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(req, seen.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    FakeEngine { socket, seen }
}

fn options(engine: &FakeEngine) -> DockerOptions {
    DockerOptions {
        host: Some(format!("unix://{}", engine.socket.display())),
        ..DockerOptions::new("fake")
    }
}

fn task(image: &str) -> TaskSpec {
    TaskSpec {
        task_id: "t1".into(),
        service: "web".into(),
        task_definition: "web:1".into(),
        container: ContainerSpec {
            name: "web".into(),
            image: Some(image.into()),
            container_port: Some(8080),
            ..ContainerSpec::default()
        },
        labels: Default::default(),
        placement: Default::default(),
    }
}

#[tokio::test]
async fn a_newer_engine_is_spoken_to_in_api_1_41_and_reported() {
    let engine = start_fake("negotiate");
    let docker = DockerRuntime::connect(options(&engine)).await.unwrap();
    let info = docker.engine_info();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("Docker", "99.0.1")
    );
    assert_eq!(info.api_version, "1.41");
    assert_eq!(
        info.network,
        NetworkMode::Host,
        "no bridge network: host mode"
    );
    assert_eq!(info.socket, format!("unix://{}", engine.socket.display()));
    assert_eq!(docker.name(), "docker");
    assert!(docker.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn pulls_carry_credentials_and_report_progress() {
    let engine = start_fake("pull");
    let config = std::env::temp_dir().join(format!(
        "cutover-fake-docker-config-{}.json",
        std::process::id()
    ));
    // Base64 of "user:s3cret???~~~": credentials whose JSON has `/` and `+`
    // in standard base64, which engines (base64url) would misread.
    std::fs::write(
        &config,
        r#"{"auths":{"registry.example.com":{"auth":"dXNlcjpzM2NyZXQ/Pz9+fn4="}}}"#,
    )
    .unwrap();
    let events: Arc<Mutex<Vec<PullProgress>>> = Arc::default();
    let sink = events.clone();
    let docker = DockerRuntime::connect(DockerOptions {
        docker_config: Some(config.clone()),
        pull_progress: Some(Arc::new(move |p: &PullProgress| {
            sink.lock().unwrap().push(p.clone())
        })),
        ..options(&engine)
    })
    .await
    .unwrap();

    let err = docker
        .start(&task("registry.example.com/team/app:v1"))
        .await
        .unwrap_err();
    let _ = std::fs::remove_file(&config);
    match err {
        RuntimeError::CannotStart { message, .. } => assert_eq!(
            message,
            "CannotCreateContainerError: the fake engine creates no containers"
        ),
        other => panic!("expected CannotStart, got {other:?}"),
    }
    let seen = engine.seen.lock().unwrap();
    assert!(
        seen.requests.contains(
            &"POST /v1.41/images/create?fromImage=registry.example.com%2Fteam%2Fapp&tag=v1&platform="
                .to_owned()
        ),
        "{:?}",
        seen.requests
    );
    assert_eq!(seen.registry_auth.len(), 1);
    let header = &seen.registry_auth[0];
    assert!(
        !header.contains(['+', '/']),
        "base64url, not base64: {header}"
    );
    let decoded = base64::engine::general_purpose::URL_SAFE
        .decode(header)
        .expect("base64url");
    let auth: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(
        auth,
        serde_json::json!({
            "username": "user", "password": "s3cret???~~~", "serveraddress": "registry.example.com",
            "auth": null, "email": null, "identitytoken": null, "registrytoken": null,
        })
    );
    let events = events.lock().unwrap();
    let statuses: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["Pulling from team/app", "Downloading", "Pull complete"]
    );
    assert_eq!(
        (
            events[1].layer.as_deref(),
            events[1].current,
            events[1].total
        ),
        (Some("l1"), Some(512), Some(1024))
    );
}

#[tokio::test]
async fn a_pull_error_event_stops_the_task_with_cannot_pull() {
    let engine = start_fake("denied");
    let docker = DockerRuntime::connect(DockerOptions {
        docker_config: Some("/nonexistent/config.json".into()),
        ..options(&engine)
    })
    .await
    .unwrap();
    let err = docker.start(&task("team/denied:v1")).await.unwrap_err();
    match err {
        RuntimeError::CannotStart { message, .. } => assert_eq!(
            message,
            "CannotPullContainerError: pull image team/denied:v1: pull access denied"
        ),
        other => panic!("expected CannotStart, got {other:?}"),
    }
    assert!(
        engine.seen.lock().unwrap().registry_auth.is_empty(),
        "no configuration, no credentials"
    );
}

#[tokio::test]
async fn a_stalled_pull_gives_up_after_the_idle_timeout() {
    let engine = start_fake("stall");
    let docker = DockerRuntime::connect(DockerOptions {
        pull_idle_timeout: Duration::from_millis(300),
        docker_config: Some("/nonexistent/config.json".into()),
        ..options(&engine)
    })
    .await
    .unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        docker.start(&task("team/stall:v1")),
    )
    .await
    .expect("the idle timeout ends the pull")
    .unwrap_err();
    match err {
        RuntimeError::CannotStart { message, .. } => assert_eq!(
            message,
            "CannotPullContainerError: pull image team/stall:v1: no progress from the engine for 300ms"
        ),
        other => panic!("expected CannotStart, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_engine_is_reported_with_what_was_tried() {
    let err = DockerRuntime::connect(DockerOptions {
        host: Some("unix:///nonexistent/engine.sock".into()),
        ..DockerOptions::new("fake")
    })
    .await
    .err()
    .expect("no engine there");
    assert_eq!(
        err.to_string(),
        "no container engine answers (tried unix:///nonexistent/engine.sock: no such socket)"
    );
    let err = DockerRuntime::connect(DockerOptions::new(""))
        .await
        .err()
        .expect("empty instance");
    assert!(
        err.to_string().contains("the instance id is empty"),
        "{err}"
    );
}
