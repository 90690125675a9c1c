//! Descriptor exhaustion end to end (issue 14, findings 4 and 5): a proxy in a child process
//! with a 128-descriptor limit gets 300 connections on its admin port. Its accept loop must
//! back off (little CPU, a few log lines), and its health checks, failing with EMFILE, must
//! not mark the healthy target unhealthy. Once the connections close, the admin API answers
//! again.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the child: the directory holding `lb.yaml`.
const CHILD: &str = "CUTOVER_PROXY_EXHAUSTION_CHILD";
const TEST: &str = "descriptor_exhaustion_neither_spins_nor_floods_the_log_nor_flips_health";

/// The child's CPU time (user + system), from `/proc/<pid>/stat`.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

fn child(dir: &str) {
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = cutover_proxy::ProxyOptions {
        config_path: Some(std::path::Path::new(dir).join("lb.yaml")),
        state_dir: None,
        workers: 1,
        admin_address: None,
        admin_token_file: None,
        admin_address_file: Some(std::path::Path::new(dir).join("admin.address")),
        clock: Default::default(),
    };
    rt.block_on(cutover_proxy::run(opts, std::future::pending::<()>()))
        .unwrap();
}

#[test]
fn descriptor_exhaustion_neither_spins_nor_floods_the_log_nor_flips_health() {
    if let Ok(dir) = std::env::var(CHILD) {
        return child(&dir);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let blue = rt.block_on(common::backend("blue"));
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", common::free_port());
    std::fs::write(
        dir.path().join("lb.yaml"),
        format!(
            "admin: 127.0.0.1:0
listeners:
  - name: prod
    address: {listen}
    defaultAction: {{forward: [{{targetGroup: blue}}]}}
targetGroups:
  - name: blue
    targets: [\"{}\"]
    healthCheck: {{path: /health, intervalSeconds: 0.1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
",
            blue.addr
        ),
    )
    .unwrap();
    let log = dir.path().join("proxy.log");
    let exe = std::env::current_exe().unwrap();
    let proc = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 128 && exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, dir.path())
        .env_remove("CUTOVER_PROXY_TOKEN")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Killed however the test ends, a failed assertion included.
    let mut proc = KillOnDrop(proc);
    let pid = proc.0.id();
    // The child writes its admin address once bound.
    let address_file = dir.path().join("admin.address");
    let deadline = Instant::now() + Duration::from_secs(10);
    let admin = loop {
        if let Ok(text) = std::fs::read_to_string(&address_file) {
            break text.trim().to_owned();
        }
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!(
                "the child proxy exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the child proxy wrote no admin address"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let client = cutover_proxy::client::AdminClient::new(&admin);
    let healthy = |rt: &tokio::runtime::Runtime| {
        rt.block_on(client.health())
            .ok()
            .and_then(|h| h.group("blue").map(|g| g.healthy_host_count))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while healthy(&rt) != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the child proxy never got healthy"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // 300 connections to the admin port: far more than 128 descriptors.
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(std::net::TcpStream::connect(&admin).unwrap());
    }
    // The proxy runs out of descriptors accepting them: wait for its first complaint.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("accept failed")
    {
        assert!(
            Instant::now() < deadline,
            "the child proxy never failed to accept: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let lines_before = std::fs::read_to_string(&log)
        .unwrap()
        .matches("accept failed")
        .count();
    let cpu_before = cpu(pid);
    // The measurement window: CPU and log lines spent in 3 s of exhaustion.
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu(pid) - cpu_before;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.matches("accept failed").count() - lines_before;
    assert!(
        text.contains("Too many open files"),
        "descriptors were exhausted: {text}"
    );
    assert!(used < Duration::from_millis(600), "{used:?} of CPU in 3 s");
    assert!(lines <= 5, "{lines} accept-failure lines in 3 s");
    drop(held);

    // The admin API answers again and the target never left `healthy`.
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        if let Ok(h) = rt.block_on(client.health()) {
            break h;
        }
        assert!(Instant::now() < deadline, "the admin API never came back");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(health.group("blue").unwrap().healthy_host_count, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("health check could not run (local error); not counted"),
        "health checks met the exhaustion: {text}"
    );
    assert!(
        !text.contains("unhealthy"),
        "the target was marked unhealthy: {text}"
    );
    drop(proc);
}

/// A child process killed and reaped when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
