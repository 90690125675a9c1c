//! Test harness: runs the real `cutover` binary on loopback ports with a
//! temporary data directory, and talks to it with the CLI and plain HTTP.
//!
//! Ports: every port a test names (the server's API, which must stay the same
//! across a `kill -9` and restart, and the listeners of a stack file, which
//! only the file can name) comes from [`free_port`]: held by this test
//! process until it exits, so no other process can take it in between.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod aws;
pub mod registry;

pub const BIN: &str = env!("CARGO_BIN_EXE_cutover");

/// Sockets holding the ports [`free_port`] handed out, for the life of the test process.
static HELD: Mutex<Vec<tokio::net::TcpSocket>> = Mutex::new(Vec::new());

/// A loopback port that no other process can take: a socket of this process
/// stays bound to it with `SO_REUSEADDR` but never listens, until the process
/// exits. The kernel hands it to no other `bind(0)` nor outgoing connection, a
/// connection to it is refused, and a server binding it with `SO_REUSEADDR`
/// (tokio's and std's listeners, so `cutover server`, `cutover proxy` and the
/// sample app, all do) listens on it, again after a restart.
pub fn free_port() -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let port = socket.local_addr().unwrap().port();
    HELD.lock().unwrap().push(socket);
    port
}

/// The ports of loopback registries that the engine pulls from over plain
/// HTTP (`scripts/setup-podman.sh` marks 127.0.0.1:17070-17079 insecure).
pub const INSECURE_REGISTRY_PORTS: std::ops::RangeInclusive<u16> = 17070..=17079;

/// One of [`INSECURE_REGISTRY_PORTS`] for this test alone: an advisory lock
/// on a file per port, held while the returned guard lives, keeps other test
/// processes off it.
pub fn insecure_registry_port() -> (u16, std::fs::File) {
    for _ in 0..600 {
        for port in INSECURE_REGISTRY_PORTS {
            let file = std::fs::File::create(format!("/tmp/cutover-test-registry-{port}.lock"))
                .expect("lock file");
            if file.try_lock().is_ok() && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return (port, file);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no port of {INSECURE_REGISTRY_PORTS:?} became free within a minute");
}

/// A running `cutover server`.
pub struct Server {
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    pub child: Option<Child>,
    /// The CA of the server's certificate when it serves HTTPS (`url()` is
    /// then `https://`, and the CLI trusts it through `CUTOVER_CA_CERT`).
    pub ca_cert: Option<PathBuf>,
    /// Extra arguments and environment of every `cutover server` start.
    args: Vec<String>,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[], &[])
    }

    /// A server started (and restarted) with extra arguments and environment.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_on(free_port(), args, env)
    }

    /// A server on loopback port `port`, which the caller holds (one of
    /// [`INSECURE_REGISTRY_PORTS`] makes its registry pullable by the
    /// engine over plain HTTP).
    pub fn start_on(port: u16, args: &[&str], env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Server {
            data_dir: tmp.path().to_path_buf(),
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            child: None,
            ca_cert: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _tmp: Some(tmp),
        };
        s.spawn();
        s
    }

    /// Starts (again) the server process on the same data dir and (held) port;
    /// returns once the API accepts connections, so after the running tasks
    /// were adopted (the server adopts them before it listens).
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("server-test.log"))
            .unwrap();
        let child = Command::new(BIN)
            .args(["server", "--listen", &self.addr.to_string(), "--data-dir"])
            .arg(&self.data_dir)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("CUTOVER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_until(Duration::from_secs(20), || {
            TcpStream::connect(self.addr).is_ok()
        })
        .unwrap_or_else(|| panic!("server did not listen; log:\n{}", self.log()));
    }

    pub fn url(&self) -> String {
        let scheme = if self.ca_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server-test.log")).unwrap_or_default()
    }

    /// `kill -9` of the server process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_in(args, None)
    }

    pub fn cli_in(&self, args: &[&str], dir: Option<&Path>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env("CUTOVER_SERVER", self.url());
        if let Some(ca) = &self.ca_cert {
            cmd.env("CUTOVER_CA_CERT", ca);
        }
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.output().unwrap()
    }

    /// Runs the CLI with `--output json` and parses stdout, asserting success.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "cutover {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Live tasks of a service as (id, status, health, endpoint, pid).
    pub fn tasks(&self, service: &str) -> Vec<TaskInfo> {
        let v = self.json(&["tasks", "ls", "--service", service]);
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| TaskInfo {
                id: t["id"].as_str().unwrap().to_string(),
                status: t["lastStatus"].as_str().unwrap().to_string(),
                health: t["healthStatus"].as_str().unwrap().to_string(),
                endpoint: t["endpoint"].as_str().map(str::to_string),
                pid: t["handle"]["pid"].as_u64().map(|p| p as i32),
            })
            .collect()
    }
}

/// Kills the data plane a server of `data_dir` started: it outlives the
/// server by design, so a test that starts a server owns it.
pub fn stop_data_plane(data_dir: &Path) {
    if let Ok(pid) = std::fs::read_to_string(data_dir.join("proxy/proxy.pid")) {
        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stop the tasks first so no process outlives the test.
        if self.child.is_some() {
            for svc in ["web", "api", "app"] {
                let _ = self.cli(&["services", "delete", svc]);
            }
            let _ = wait_until(Duration::from_secs(15), || {
                self.cli(&["tasks", "ls", "--output", "json"])
                    .stdout
                    .windows(6)
                    .all(|w| w != b"\"id\": ")
            });
        }
        self.kill9();
        stop_data_plane(&self.data_dir);
        // Whatever is left (a failed test): kill every shim of this data dir.
        let tasks = self.data_dir.join("tasks");
        if let Ok(entries) = std::fs::read_dir(&tasks) {
            for e in entries.flatten() {
                for f in ["task.pid", "shim.pid"] {
                    if let Ok(pid) = std::fs::read_to_string(e.path().join(f))
                        && let Some(pid) = pid
                            .split_whitespace()
                            .next()
                            .and_then(|p| p.parse::<i32>().ok())
                    {
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                }
            }
        }
        self.remove_containers();
    }
}

impl Server {
    /// Removes the containers the server left on its engine: the exited
    /// tasks it keeps for their logs, and anything a failed test left
    /// running. They carry the data dir's instance id, so other runs on the
    /// same engine are untouched.
    fn remove_containers(&self) {
        let Ok(instance) = std::fs::read_to_string(self.data_dir.join("instance.id")) else {
            return;
        };
        let host = self
            .args
            .iter()
            .position(|a| a == "--docker-host")
            .and_then(|i| self.args.get(i + 1))
            .cloned();
        let options = cutover_docker::DockerOptions {
            host,
            ..cutover_docker::DockerOptions::new(instance.trim())
        };
        let cleaner = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(docker) = cutover_docker::DockerRuntime::connect(options).await {
                    docker.stop_and_remove_all(Duration::from_secs(20)).await;
                }
            });
        });
        let _ = cleaner.join();
    }
}

#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub id: String,
    pub status: String,
    pub health: String,
    pub endpoint: Option<String>,
    pub pid: Option<i32>,
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs `cmd` (stdin closed) and fails the test, with its output, unless it
/// succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A minimal HTTP/1.1 GET; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Writes the stack and task definition of the foundation issue's contract
/// into `dir`, with the given version and desired count.
pub fn write_stack(dir: &Path, version: &str, desired: u32) {
    std::fs::write(
        dir.join("stack.yaml"),
        format!(
            "services:\n  web:\n    runtime: process\n    desiredCount: {desired}\n    taskDefinition: ./taskdef.json\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("taskdef.json"),
        format!(
            r#"{{"family": "web", "containerDefinitions": [{{"name": "web", "image": "sample-app:v1",
  "command": ["cutover", "sample-app"], "environment": [{{"name": "APP_VERSION", "value": "{version}"}}],
  "portMappings": [{{"containerPort": 8080}}],
  "healthCheck": {{"command": ["CMD-SHELL", "curl -fs http://127.0.0.1:$PORT/health"], "interval": 1, "timeout": 1, "retries": 2}}}}]}}
"#
        ),
    )
    .unwrap();
}

/// Whether a pid is alive.
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Waits until `service` has exactly `n` tasks, all RUNNING and HEALTHY, and
/// returns them; panics with the server log after `limit`.
pub fn wait_healthy(server: &Server, service: &str, n: usize, limit: Duration) -> Vec<TaskInfo> {
    let mut last = Vec::new();
    let ok = wait_until(limit, || {
        last = server.tasks(service);
        last.len() == n
            && last
                .iter()
                .all(|t| t.status == "RUNNING" && t.health == "HEALTHY")
    });
    assert!(
        ok.is_some(),
        "{service} never had {n} healthy tasks: {last:?}\nserver log:\n{}",
        server.log()
    );
    last
}

/// Keep-alive clients counting every outcome.
pub struct Load {
    pub ok: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
    versions: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: String, clients: usize) -> Load {
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let versions = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let (ok, failed, versions, stop, addr) = (
                    ok.clone(),
                    failed.clone(),
                    versions.clone(),
                    stop.clone(),
                    addr.clone(),
                );
                std::thread::spawn(move || {
                    let mut conn: Option<BufReader<TcpStream>> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let c = match conn.as_mut() {
                            Some(c) => c,
                            None => match TcpStream::connect(&addr) {
                                Ok(s) => {
                                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                                    conn.insert(BufReader::new(s))
                                }
                                Err(_) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                    // Pacing: retry the connection 100 times a second.
                                    std::thread::sleep(Duration::from_millis(10));
                                    continue;
                                }
                            },
                        };
                        match get(c, &addr) {
                            Some((200, body)) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                versions.lock().unwrap().push(body);
                            }
                            Some(_) | None => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                conn = None;
                            }
                        }
                        // Pacing: the load is one request every 5 ms per client.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        Load {
            ok,
            failed,
            versions,
            stop,
            threads,
        }
    }

    /// The body of the latest successful response.
    pub fn last_version(&self) -> Option<String> {
        self.versions.lock().unwrap().last().cloned()
    }

    /// Stops the clients; (ok, failed, bodies of the successful responses).
    pub fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let v = self.versions.lock().unwrap().clone();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            v,
        )
    }
}

/// One keep-alive GET; (status, trimmed body).
pub fn get(c: &mut BufReader<TcpStream>, host: &str) -> Option<(u16, String)> {
    write!(c.get_mut(), "GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").ok()?;
    let mut line = String::new();
    c.read_line(&mut line).ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        c.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    std::io::Read::read_exact(c, &mut body).ok()?;
    Some((status, String::from_utf8_lossy(&body).trim().to_string()))
}

/// A new git repository in `dir` on branch `main`, with `files` committed;
/// returns the commit id.
pub fn init_repo(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.email", "dev@example.com"]);
    git(dir, &["config", "user.name", "Dev"]);
    commit(dir, files, "first")
}

/// Writes `files` into the repository `dir` and commits them; returns the
/// commit id.
pub fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (p, text) in files {
        std::fs::write(dir.join(p), text).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Runs git in `dir`, panicking on failure; returns its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A raw HTTP POST of a JSON body with extra headers; returns (status, body).
pub fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
