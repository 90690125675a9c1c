//! Task start latency and scale-out, Docker runtime against process runtime.
//!
//! For each runtime: the time from `start()` to the first 200 on
//! `GET /health` of one sample-app task (median of several), the time to
//! scale from 0 to N healthy tasks, and this process's resident memory with
//! the N tasks running (the runtime's share of a server's memory). Driven by
//! `bench/containers.sh`, which prepares the engine and the image.
//!
//! usage: start_latency --cutover-bin PATH [--tasks N] [--rounds R] [--runtime docker|process|both]

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_docker::{DockerOptions, DockerRuntime};
use cutover_runtime::{ContainerSpec, ProcessRuntime, Runtime, TaskSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Args {
    cutover_bin: PathBuf,
    tasks: usize,
    rounds: usize,
    runtimes: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        cutover_bin: PathBuf::from("target/debug/cutover"),
        tasks: 50,
        rounds: 5,
        runtimes: vec!["process".into(), "docker".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--cutover-bin" => args.cutover_bin = PathBuf::from(value),
            "--tasks" => args.tasks = value.parse().expect("--tasks N"),
            "--rounds" => args.rounds = value.parse().expect("--rounds N"),
            "--runtime" if value == "both" => {}
            "--runtime" => args.runtimes = vec![value],
            other => panic!("unknown flag {other}"),
        }
    }
    args.cutover_bin =
        std::fs::canonicalize(&args.cutover_bin).expect("--cutover-bin names a file");
    args
}

fn spec(runtime: &str, task_id: &str) -> TaskSpec {
    let container = if runtime == "docker" {
        ContainerSpec {
            name: "web".into(),
            image: Some("cutover-sample:test".into()),
            container_port: Some(8080),
            stop_timeout: Duration::from_secs(5),
            ..ContainerSpec::default()
        }
    } else {
        ContainerSpec {
            name: "web".into(),
            command: vec!["cutover".into(), "sample-app".into()],
            container_port: Some(8080),
            stop_timeout: Duration::from_secs(5),
            ..ContainerSpec::default()
        }
    };
    TaskSpec {
        task_id: task_id.into(),
        service: "bench".into(),
        task_definition: "bench:1".into(),
        container,
        labels: BTreeMap::new(),
        placement: Default::default(),
    }
}

async fn healthy(addr: SocketAddr) {
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let _ = s.write_all(b"GET /health HTTP/1.0\r\n\r\n").await;
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            if buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start_healthy(rt: &Arc<dyn Runtime>, spec: TaskSpec) -> Duration {
    let t0 = Instant::now();
    let handle = rt.start(&spec).await.expect("start");
    healthy(handle.endpoint.expect("endpoint")).await;
    t0.elapsed()
}

async fn teardown(rt: &Arc<dyn Runtime>, ids: &[String]) {
    for id in ids {
        rt.stop(id).await.ok();
    }
    for id in ids {
        let _ = tokio::time::timeout(Duration::from_secs(30), rt.wait(id)).await;
        rt.remove(id).await.ok();
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let data_dir =
        std::env::temp_dir().join(format!("cutover-bench-containers-{}", std::process::id()));
    for name in &args.runtimes {
        let rt: Arc<dyn Runtime> = if name == "docker" {
            let docker =
                DockerRuntime::connect(DockerOptions::new(format!("bench-{}", std::process::id())))
                    .await
                    .expect("a container engine");
            println!("engine: {}", docker.engine_info());
            Arc::new(docker)
        } else {
            Arc::new(
                ProcessRuntime::new(data_dir.clone())
                    .with_cutover_bin(args.cutover_bin.clone())
                    .with_shim_command(vec![args.cutover_bin.clone().into(), "__shim".into()]),
            )
        };
        let mut singles = Vec::new();
        for round in 0..args.rounds {
            let id = format!("single-{round}");
            singles.push(start_healthy(&rt, spec(name, &id)).await);
            teardown(&rt, &[id]).await;
        }
        singles.sort();
        let median = singles[singles.len() / 2];

        let ids: Vec<String> = (0..args.tasks).map(|i| format!("scale-{i}")).collect();
        let t0 = Instant::now();
        let starts = ids.iter().map(|id| start_healthy(&rt, spec(name, id)));
        futures_util::future::join_all(starts).await;
        let scale = t0.elapsed();
        let rss = rss_kib();
        teardown(&rt, &ids).await;
        println!(
            "{name:8} start-to-healthy median {:>7.1} ms (of {}), scale 0->{} healthy {:>7.1} ms, runtime process RSS with {} tasks {} KiB",
            median.as_secs_f64() * 1000.0,
            args.rounds,
            args.tasks,
            scale.as_secs_f64() * 1000.0,
            args.tasks,
            rss
        );
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}
