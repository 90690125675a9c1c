//! Issue 9 measurement: does `bollard` do, against the local engine, what
//! this crate's own client does for the runtime? Ping and version with API
//! negotiation, a pull with registry credentials, create/start/inspect a
//! container, an exec health check, logs, wait, stop and remove.
//!
//! Run: `cargo run -p cutover-docker --example bollard_spike [SOCKET]`
//! (default `/run/podman/podman.sock`, image `cutover-sample:test` from
//! `scripts/build-test-images.sh`). Prints one line per step, `ok` or the
//! error; exits non-zero when a step that must work fails.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::auth::DockerCredentials;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let socket = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/run/podman/podman.sock".into());
    let mut failed = 0;
    let mut step = |name: &str, result: Result<String, String>| match result {
        Ok(detail) => println!("ok    {name}: {detail}"),
        Err(e) => {
            failed += 1;
            println!("FAIL  {name}: {e}");
        }
    };

    let docker = Docker::connect_with_unix(&socket, 30, API_DEFAULT_VERSION).unwrap();
    let before = docker.client_version();
    let docker = match docker.negotiate_version().await {
        Ok(d) => d,
        Err(e) => {
            println!("FAIL  negotiate: {e}");
            std::process::exit(1);
        }
    };
    step(
        "negotiate",
        Ok(format!("{before} -> {}", docker.client_version())),
    );
    step("ping", docker.ping().await.map_err(|e| e.to_string()));
    step(
        "version",
        docker
            .version()
            .await
            .map(|v| {
                let components: Vec<String> = v
                    .components
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
                format!(
                    "{:?} api {:?} components {components:?}",
                    v.version, v.api_version
                )
            })
            .map_err(|e| e.to_string()),
    );
    step(
        "networks",
        docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map(|n| format!("{:?}", n.iter().map(|n| &n.name).collect::<Vec<_>>()))
            .map_err(|e| e.to_string()),
    );
    step(
        "inspect local image",
        docker
            .inspect_image("cutover-sample:test")
            .await
            .map(|i| format!("{:?}", i.id))
            .map_err(|e| e.to_string()),
    );
    let missing = docker.inspect_image("cutover-absent:none").await;
    step(
        "inspect absent image is a 404",
        match missing {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            }) => Ok(format!("{status_code} {message}")),
            other => Err(format!("{other:?}")),
        },
    );

    // A pull with credentials from a registry that does not answer: the
    // error must come back as a stream item, quickly.
    let started = Instant::now();
    let credentials = DockerCredentials {
        username: Some("u".into()),
        password: Some("p".into()),
        serveraddress: Some("127.0.0.1:9".into()),
        ..Default::default()
    };
    let pull = CreateImageOptionsBuilder::default()
        .from_image("127.0.0.1:9/nothing")
        .tag("v1")
        .build();
    let mut stream = docker.create_image(Some(pull), None, Some(credentials));
    let mut events = Vec::new();
    let mut error = None;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .ok()
        .flatten()
    {
        match item {
            Ok(info) => events.push(format!("{:?}/{:?}", info.status, info.error_detail)),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    step(
        "pull with auth from a dead registry fails",
        match error {
            Some(e) => Ok(format!(
                "{e} after {:?}, events {events:?}",
                started.elapsed()
            )),
            None => Err(format!("no error; events {events:?}")),
        },
    );

    // A task container, as the runtime creates it.
    let name = format!("bollard-spike-{}", std::process::id());
    let mut labels = HashMap::new();
    labels.insert("cutover.instance".to_owned(), "bollard-spike".to_owned());
    let body = ContainerCreateBody {
        image: Some("cutover-sample:test".into()),
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            "echo out-line; echo err-line >&2; exec sleep 1000".into(),
        ]),
        env: Some(vec!["HOST=0.0.0.0".into()]),
        labels: Some(labels),
        stop_timeout: Some(2),
        healthcheck: Some(bollard::models::HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }),
        exposed_ports: Some(vec!["8080/tcp".to_owned()]),
        host_config: Some(HostConfig {
            network_mode: Some("bridge".into()),
            port_bindings: Some(HashMap::from([(
                "8080/tcp".to_owned(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some("0".into()),
                }]),
            )])),
            memory: Some(128 << 20),
            memory_swap: Some(128 << 20),
            nano_cpus: Some(250_000_000),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body.clone(),
        )
        .await;
    let id = match created {
        Ok(c) => c.id,
        Err(e) => {
            println!("FAIL  create: {e}");
            std::process::exit(1);
        }
    };
    step("create", Ok(id.clone()));
    step(
        "create again: name conflict",
        match docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
        {
            Err(e) => Ok(e.to_string()),
            Ok(_) => Err("created twice".into()),
        },
    );
    step(
        "start",
        docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map(|()| String::new())
            .map_err(|e| e.to_string()),
    );
    step(
        "inspect",
        docker
            .inspect_container(
                &id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map(|i| {
                let s = i.state.unwrap_or_default();
                format!(
                    "status {:?} running {:?} pid {:?} started {:?}",
                    s.status, s.running, s.pid, s.started_at
                )
            })
            .map_err(|e| e.to_string()),
    );
    let filters = HashMap::from([("label", vec!["cutover.instance=bollard-spike"])]);
    step(
        "list by label",
        docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map(|l| format!("{} container(s)", l.len()))
            .map_err(|e| e.to_string()),
    );

    // Health check through exec, attached, as probe.rs does.
    let exec = docker
        .create_exec(
            &id,
            CreateExecOptions {
                cmd: Some(vec!["sh", "-c", "echo probing; exit 3"]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await;
    step(
        "exec probe",
        match exec {
            Err(e) => Err(e.to_string()),
            Ok(exec) => match docker.start_exec(&exec.id, None).await {
                Ok(StartExecResults::Attached { mut output, .. }) => {
                    let mut text = String::new();
                    while let Some(Ok(chunk)) = output.next().await {
                        text.push_str(&chunk.to_string());
                    }
                    let code = loop {
                        let state = docker.inspect_exec(&exec.id).await.unwrap();
                        if state.running != Some(true) && state.exit_code.is_some() {
                            break state.exit_code;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    };
                    if code == Some(3) && text.contains("probing") {
                        Ok(format!("exit {code:?} output {text:?}"))
                    } else {
                        Err(format!("exit {code:?} output {text:?}"))
                    }
                }
                Ok(StartExecResults::Detached) => Err("detached".into()),
                Err(e) => Err(e.to_string()),
            },
        },
    );

    // Logs, not following: stdout and stderr demultiplexed.
    let mut logs = docker.logs(
        &id,
        Some(
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .follow(false)
                .build(),
        ),
    );
    let mut seen = Vec::new();
    while let Some(item) = logs.next().await {
        match item {
            Ok(chunk) => seen.push(format!("{chunk:?}")),
            Err(e) => {
                seen.push(format!("error {e}"));
                break;
            }
        }
    }
    step(
        "logs",
        if seen.iter().any(|s| s.contains("out-line"))
            && seen.iter().any(|s| s.contains("err-line"))
        {
            Ok(format!("{seen:?}"))
        } else {
            Err(format!("{seen:?}"))
        },
    );

    // Stop in the background, wait for the exit.
    let stopper = docker.clone();
    let stop_id = id.clone();
    let stop = tokio::spawn(async move {
        stopper
            .stop_container(
                &stop_id,
                Some(StopContainerOptionsBuilder::default().t(2).build()),
            )
            .await
    });
    let mut wait = docker.wait_container(
        &id,
        Some(
            WaitContainerOptionsBuilder::default()
                .condition("not-running")
                .build(),
        ),
    );
    let waited = wait.next().await;
    step(
        "wait not-running",
        match waited {
            Some(Ok(w)) => Ok(format!("status code {}", w.status_code)),
            // bollard turns a non-zero exit status into this error.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { error, code })) => Ok(
                format!("exit code {code} (as DockerContainerWaitError {error:?})"),
            ),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("stream ended".into()),
        },
    );
    step(
        "stop",
        stop.await
            .unwrap()
            .map(|()| String::new())
            .map_err(|e| e.to_string()),
    );
    step(
        "remove",
        docker
            .remove_container(
                &id,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
            .map(|()| String::new())
            .map_err(|e| e.to_string()),
    );
    step(
        "inspect removed is a 404",
        match docker
            .inspect_container(
                &id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Err(bollard::errors::Error::DockerResponseServerError { status_code, .. }) => {
                Ok(status_code.to_string())
            }
            other => Err(format!("{other:?}")),
        },
    );
    println!("{failed} step(s) failed");
    std::process::exit(i32::from(failed > 0));
}
