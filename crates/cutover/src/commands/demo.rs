//! `cutover demo`: the guided tour on the embedded defaults.
//!
//! It starts its own control plane (a temporary data directory unless one
//! is given), runs the built-in sample app v1 behind a listener whose
//! `/api/*` needs a JWT (`jwt.rs`: 401, 200 with the claim header the task
//! sees, 403 without the scope), drives steady traffic, deploys v2 with a short canary while showing the
//! lifecycle and the split the clients see, then deploys a v3 that fails
//! some requests and shows the alarm stopping it and the rollback. It ends
//! with a summary and removes everything it started.

use super::watch::{self, clock};
use crate::cli::{DemoArgs, Globals, Output};
use crate::client::Client;
use crate::feed::Feed;
use crate::output::wire;
use anyhow::{Context, bail};
use cutover_api::alarms::AlarmDescription;
use cutover_api::apply::{ApplyRequest, ApplyResponse};
use cutover_api::deployments::{CreateDeploymentRequest, DeploymentEnvelope};
use cutover_api::query::TaskListQuery;
use cutover_api::services::{Event, ServerStatus, ServiceEnvelope};
use cutover_api::stream::{StreamEvent, Topic};
use cutover_api::tasks::TaskList;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod jwt;

const STACK: &str = r#"services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:{PROD}
      testListener: 127.0.0.1:{TEST}
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
      deregistrationDelaySeconds: 2
{AUTH}    deployment:
      type: BLUE_GREEN
      config: Canary25Percent6Seconds
      terminationWaitSeconds: 3
      alarms: [web-5xx]
      autoRollback: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]
      hooks:
        AfterAllowTestTraffic: {command: ["sh", "-c", "curl -fs $CUTOVER_TEST_URL/health"], timeoutSeconds: 30}
deploymentConfigs:
  Canary25Percent6Seconds:
    trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 25, canaryIntervalSeconds: 6}}
alarms:
  web-5xx:
    metric: {name: HTTPCode_Target_5XX_Count, service: web}
    statistic: Sum
    periodSeconds: 1
    evaluationPeriods: 1
    threshold: 1
    comparisonOperator: GreaterThanOrEqualToThreshold
    treatMissingData: notBreaching
"#;

const TASKDEF: &str = r#"{"family": "web", "containerDefinitions": [{"name": "web", "image": "sample-app:v1",
  "command": ["cutover", "sample-app"], "environment": [{"name": "APP_VERSION", "value": "v1"}],
  "portMappings": [{"containerPort": 8080}],
  "healthCheck": {"command": ["CMD-SHELL", "curl -fs http://127.0.0.1:$PORT/health"], "interval": 1, "timeout": 1, "retries": 2}}]}
"#;

/// A loopback port held for the demo: a socket bound to it with
/// `SO_REUSEADDR` that never listens. Until it is dropped, no other process
/// gets the port from `bind(0)` or an outgoing connection, while the demo's
/// server and data plane, which bind with `SO_REUSEADDR` too, can listen on
/// it. So the ports the demo writes into its stack cannot be taken between
/// the choice and the bind.
struct HeldPort {
    _socket: tokio::net::TcpSocket,
    port: u16,
}

fn held_port() -> anyhow::Result<HeldPort> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let port = socket.local_addr()?.port();
    Ok(HeldPort {
        _socket: socket,
        port,
    })
}

fn tty() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
}

/// Bold (1) or dim (2) text on a terminal; plain text elsewhere.
fn styled(code: u8, text: &str) -> String {
    if tty() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn step(n: u32, title: &str) {
    println!("\n{}", styled(1, &format!("{n}. {title}")));
}

/// One response seen by the traffic generator.
#[derive(Clone, Copy)]
struct Seen {
    at: Instant,
    wall: u64,
    status: u16,
    v: u8,
}

/// Steady traffic through the production listener: 4 keep-alive clients,
/// about 100 requests per second in all.
struct Traffic {
    seen: Arc<Mutex<Vec<Seen>>>,
    errors: Arc<Mutex<u64>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Traffic {
    fn start(url: String) -> anyhow::Result<Traffic> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(0));
        let stop = tokio_util::sync::CancellationToken::new();
        for _ in 0..4 {
            let client = reqwest::Client::builder().no_proxy().build()?;
            let (seen, errors, stop, url) =
                (seen.clone(), errors.clone(), stop.clone(), url.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    match client.get(&url).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body = r.text().await.unwrap_or_default();
                            let v = body.trim().trim_start_matches('v').parse().unwrap_or(0);
                            let s = Seen {
                                at: Instant::now(),
                                wall: crate::output::now_ms(),
                                status,
                                v,
                            };
                            seen.lock().unwrap_or_else(|p| p.into_inner()).push(s);
                        }
                        Err(_) => *errors.lock().unwrap_or_else(|p| p.into_inner()) += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
            });
        }
        Ok(Traffic { seen, errors, stop })
    }

    fn since(&self, t: Instant) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.at >= t)
            .copied()
            .collect()
    }

    fn errors(&self) -> u64 {
        *self.errors.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The split by version over the last second, as the clients see it.
fn split(traffic: &Traffic) -> String {
    let recent = traffic.since(Instant::now() - Duration::from_secs(1));
    let mut by: BTreeMap<u8, usize> = BTreeMap::new();
    let mut fails = 0;
    for s in &recent {
        if s.status >= 500 {
            fails += 1;
        } else {
            *by.entry(s.v).or_default() += 1;
        }
    }
    let total = recent.len().max(1);
    let mut parts: Vec<String> = by
        .iter()
        .map(|(v, n)| format!("v{v} {:>3}%", n * 100 / total))
        .collect();
    if fails > 0 {
        parts.push(format!("5xx {:>3}%", fails * 100 / total));
    }
    format!("{} req/s  [{}]", recent.len(), parts.join("  "))
}

/// The query of the `web` service's running tasks.
fn web_tasks() -> TaskListQuery {
    TaskListQuery {
        service: Some("web".into()),
        all: false,
        limit: None,
    }
}

/// A deployment of the service's current revision with the `web`
/// container's environment changed.
fn redeploy_with(env: &[(&str, &str)]) -> CreateDeploymentRequest {
    let vars = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CreateDeploymentRequest {
        service: "web".into(),
        task_definition: None,
        appspec: None,
        deployment_config: None,
        images: BTreeMap::new(),
        env: BTreeMap::from([("web".to_string(), vars)]),
        started_by: "demo".into(),
    }
}

async fn follow_with_split(
    client: &Client,
    id: &str,
    traffic: &Traffic,
) -> anyhow::Result<watch::Ending> {
    let mut seen = std::collections::HashSet::new();
    let mut feed = Feed::new(client, Topic::Deployment(id.to_string()));
    let second = Duration::from_secs(1);
    let mut split_tick = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
    loop {
        // `Feed::next` may be dropped and called again.
        let d = tokio::select! {
            d = watch::next_deployment(&mut feed) => d?,
            _ = split_tick.tick() => {
                println!(
                    "   {}",
                    styled(2, &format!("  clients see {}", split(traffic)))
                );
                continue;
            }
        };
        for e in d.events.iter().flatten() {
            if seen.insert(e.id) {
                println!("   {}  {}", clock(e.at), e.message);
            }
        }
        if d.finished_at.is_some() {
            return Ok(watch::Ending::of(d));
        }
    }
}

/// The demo's own control plane; stopping it stops the data plane too.
struct DemoServer {
    child: std::process::Child,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// The API port, held while the server runs (none with `--port`).
    _api_port: Option<HeldPort>,
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The data plane runs on its own so it survives control-plane
        // restarts; the demo owns it, so it stops it too.
        if let Ok(pid) = std::fs::read_to_string(self.data_dir.join("proxy/proxy.pid"))
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
}

async fn wait_healthy(client: &Client, n: u32) -> anyhow::Result<()> {
    let mut feed = Feed::new(client, Topic::Service("web".into()));
    let healthy = async {
        loop {
            let s = feed
                .next_of(|e| match e {
                    StreamEvent::Service(s) => Some(s),
                    _ => None,
                })
                .await?;
            if s.healthy_count == n && s.running_count == n {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), healthy)
        .await
        .map_err(|_| anyhow::anyhow!("service web did not reach {n} healthy tasks within 30 s"))?
}

async fn start_server(args: &DemoArgs) -> anyhow::Result<(DemoServer, Client, u16)> {
    let (tmp, data_dir) = match &args.data_dir {
        Some(d) => (None, d.clone()),
        None => {
            let t = tempfile::Builder::new().prefix("cutover-demo-").tempdir()?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    std::fs::create_dir_all(&data_dir)?;
    let held = if args.port == 0 {
        Some(held_port()?)
    } else {
        None
    };
    let api_port = held.as_ref().map_or(args.port, |h| h.port);
    println!(
        "State in {} (removed at the end unless you passed --data-dir).",
        data_dir.display()
    );
    step(
        1,
        "Start the control plane (it starts the data plane as its own process)",
    );
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let log = std::fs::File::create(data_dir.join("server.log"))?;
    let child = std::process::Command::new(&exe)
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{api_port}"),
            "--data-dir",
        ])
        .arg(&data_dir)
        .env("CUTOVER_BIN", &exe)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start `cutover server`")?;
    let server = DemoServer {
        child,
        data_dir: data_dir.clone(),
        _tmp: tmp,
        _api_port: held,
    };
    let client = Client::new(&Globals {
        server: format!("http://127.0.0.1:{api_port}"),
        token: None,
        ca_cert: None,
        output: Output::Table,
    })?;
    let up = Instant::now();
    while client.get::<ServerStatus>("/v1/status").await.is_err() {
        if up.elapsed() > Duration::from_secs(15) {
            bail!(
                "the demo's server did not start; see {}",
                data_dir.join("server.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "   control plane on http://127.0.0.1:{api_port} (ready in {} ms)",
        up.elapsed().as_millis()
    );
    Ok((server, client, api_port))
}

pub(crate) async fn run(_g: Globals, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // The sample task definition's health check is `curl`, as in the AWS
    // examples; say so plainly rather than failing later on unhealthy tasks.
    let curl = std::process::Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !curl.is_ok_and(|s| s.success()) {
        bail!("the demo's health check runs curl, which is not installed (apt-get install curl)");
    }
    println!(
        "{}: blue/green deployments of a real service under live traffic.",
        styled(1, "Cutover demo")
    );
    let (server, client, _) = start_server(&args).await?;
    // Held until the demo ends: the data plane's listeners bind them.
    let (prod_port, test_port) = (held_port()?, held_port()?);
    let (prod, test) = (prod_port.port, test_port.port);

    step(
        2,
        &format!(
            "Apply a stack: service `web` = 2 tasks of the sample app v1 behind 127.0.0.1:{prod}"
        ),
    );
    let issuer = jwt::Issuer::new(&server.data_dir)?;
    let stack = STACK
        .replace("{PROD}", &prod.to_string())
        .replace("{TEST}", &test.to_string())
        .replace("{AUTH}", &issuer.stack_keys());
    std::fs::write(server.data_dir.join("stack.yaml"), &stack)?;
    std::fs::write(server.data_dir.join("taskdef.json"), TASKDEF)?;
    let plan: ApplyResponse = client
        .post(
            "/v1/apply",
            &ApplyRequest {
                file: "stack.yaml".into(),
                stack: None,
                content: stack,
                files: BTreeMap::from([("./taskdef.json".to_string(), TASKDEF.to_string())]),
                dry_run: false,
            },
        )
        .await?;
    for p in &plan.plan {
        let (kind, name) = p.subject.kind_and_name();
        println!("   + {kind} {name}: {}", p.action.as_str());
    }
    let t0 = Instant::now();
    wait_healthy(&client, 2).await?;
    println!(
        "   2 tasks RUNNING and HEALTHY in {} ms",
        t0.elapsed().as_millis()
    );
    let tasks: TaskList = client.get_with("/v1/tasks", &web_tasks()).await?;
    super::tasks::print_tasks(&tasks.tasks);

    step(
        3,
        "Call /api/orders, which needs a JWT (an authorizer on /api/* in the stack)",
    );
    let jwt = jwt::tour(&issuer, prod).await?;

    step(4, "Drive steady traffic through the production listener");
    let traffic = Traffic::start(format!("http://127.0.0.1:{prod}/"))?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    println!("   clients see {}", split(&traffic));

    step(
        5,
        "Deploy v2 blue/green: test listener first, a hook, a 25% canary for 6 s, then 100%",
    );
    let v2_start = Instant::now();
    let resp: DeploymentEnvelope = client
        .post("/v1/deployments", &redeploy_with(&[("APP_VERSION", "v2")]))
        .await?;
    let id2 = resp.deployment.id;
    let end2 = follow_with_split(&client, &id2, &traffic).await?;
    let during_v2 = traffic.since(v2_start);
    let failed_v2 = during_v2.iter().filter(|s| s.status >= 500).count();
    println!(
        "   => deployment {id2} {}: {} requests during it, {failed_v2} failed",
        wire(&end2.status),
        during_v2.len()
    );
    if !end2.ok() {
        bail!("the v2 deployment did not succeed ({})", wire(&end2.status));
    }

    step(
        6,
        "Deploy v3, which fails 30% of requests: the 1-second alarm stops it and rolls back",
    );
    let v3_start = Instant::now();
    let resp: DeploymentEnvelope = client
        .post(
            "/v1/deployments",
            &redeploy_with(&[("APP_VERSION", "v3"), ("FAIL_RATE", "0.3")]),
        )
        .await?;
    let id3 = resp.deployment.id;
    let end3 = follow_with_split(&client, &id3, &traffic).await?;
    let during_v3 = traffic.since(v3_start);
    let first_5xx = during_v3.iter().find(|s| s.status >= 500).map(|s| s.wall);
    let events: &[Event] = end3.deployment.events.as_deref().unwrap_or_default();
    // The rollback is in force when the data plane acknowledged the flip
    // back: the last "traffic applied: 0%" line of the deployment.
    let rollback_at = events
        .iter()
        .rev()
        .find(|e| e.message.starts_with("traffic applied: 0%"))
        .map(|e| e.at);
    let alarm: AlarmDescription = client.get("/v1/alarms/web-5xx").await?;
    let alarm_at = alarm
        .history
        .iter()
        .rev()
        .find(|e| e.message.contains("-> ALARM"))
        .map(|e| e.at);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    println!("   clients see {}", split(&traffic));
    let final_version = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("http://127.0.0.1:{prod}/"))
        .send()
        .await?
        .text()
        .await?;
    traffic.stop.cancel();

    step(7, "Summary");
    let all = traffic.since(started);
    let injected = all.iter().filter(|s| s.status >= 500).count();
    let socket_errors = traffic.errors();
    println!(
        "   requests sent                        {}",
        all.len() as u64 + socket_errors
    );
    println!("   failed during the v2 canary          {failed_v2}");
    println!("   5xx from v3's injected failures      {injected}");
    println!("   connection errors                    {socket_errors}");
    println!(
        "   /api/orders: no token, token, scope  {} / {} / {}",
        jwt.without_token, jwt.with_token, jwt.without_scope
    );
    if let (Some(a), Some(r)) = (alarm_at, rollback_at) {
        println!(
            "   alarm -> rollback in force           {} ms",
            r.saturating_sub(a)
        );
    }
    if let (Some(f), Some(r)) = (first_5xx, rollback_at) {
        println!(
            "   first 5xx -> rollback in force       {} ms",
            r.saturating_sub(f)
        );
    }
    println!(
        "   v3 deployment                        {}{}",
        wire(&end3.status),
        if end3.rolled_back {
            ", rolled back"
        } else {
            ""
        }
    );
    println!(
        "   production now serves                {}",
        final_version.trim()
    );
    println!(
        "   tour time                            {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Clean up: stop the tasks, then the server and the data plane.
    let _ = client.delete::<ServiceEnvelope>("/v1/services/web").await;
    let gone = Instant::now();
    while gone.elapsed() < Duration::from_secs(10) {
        match client
            .get_with::<_, TaskList>("/v1/tasks", &web_tasks())
            .await
        {
            Ok(v) if v.tasks.is_empty() => break,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let log = server.data_dir.join("server.log");
    drop(server);
    let ok = end2.ok()
        && jwt.ok()
        && end3.rolled_back
        && failed_v2 == 0
        && socket_errors == 0
        && final_version.trim() == "v2";
    if !ok {
        eprintln!(
            "error: the tour did not go as expected; see {}",
            log.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
