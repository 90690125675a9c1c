//! End to end on loopback: the real router served on a socket (over the
//! real store, with a fake task runtime and data plane), two real `cutover
//! agent` processes with their keys, commands dispatched through the
//! [`Fleet`]: a bundle downloaded, installed and its scripts run; an agent
//! killed in the middle of a command and restarted reports it; the server
//! restarted while the agents long-poll, and they carry on.
//!
//! The agents are the `cutover` binary next to this test's executable
//! (`target/debug/cutover`, built by `cargo test --workspace` or `cargo
//! build -p cutover`), or `$CUTOVER_BIN`.

use super::fleet::{BundleStore, Fleet};
use crate::dataplane::fake::FakeDataPlane;
use crate::{Parts, api, assemble, controller};
use cutover_api::agents::{AgentCommand, BundleRef, CommandResult, CommandStatus};
use cutover_clock::SharedClock;
use cutover_runtime::Runtime;
use cutover_runtime::fake::FakeRuntime;
use cutover_spec::HostEvent;
use cutover_store::Store;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "e2e-token";

/// A control plane on its own runtime: dropping it is a crash.
struct Server {
    rt: tokio::runtime::Runtime,
    state: api::AppState,
}

impl Server {
    fn start(dir: &Path, addr: SocketAddr) -> (Server, SocketAddr) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = dir.to_path_buf();
        let (state, addr) = rt.block_on(async move {
            let store = Arc::new(Store::open(&dir.join("state.db")).unwrap());
            let clock: SharedClock = Arc::new(cutover_clock::SystemClock);
            let now = clock.clone();
            let runtime: Arc<dyn Runtime> =
                Arc::new(FakeRuntime::new("process", Arc::new(move || now.now_ms())));
            let cancel = CancellationToken::new();
            let state = assemble(Parts {
                store: store.clone(),
                clock: clock.clone(),
                runtimes: controller::Runtimes::from([("process".to_string(), runtime)]),
                dataplane: FakeDataPlane::new(store, clock),
                data_dir: dir,
                engine: None,
                resolver: Arc::new(crate::testing::FakeResolver::default()),
                cancel,
                aws_endpoint: "http://127.0.0.1:1".into(),
                aws_region: "us-east-1".into(),
                default_runtime: "process".into(),
            })
            .await
            .unwrap();
            // The crashed server's socket may take a moment to go.
            let mut tries = 0;
            let listener = loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(e) if tries < 100 => {
                        tries += 1;
                        tracing::debug!(error = %e, "address busy; binding again");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("cannot bind {addr}: {e}"),
                }
            };
            let addr = listener.local_addr().unwrap();
            let app = api::router(state.clone(), Some(TOKEN.into()));
            tokio::spawn(async move { axum::serve(listener, app).await });
            (state, addr)
        });
        (Server { rt, state }, addr)
    }

    fn crash(self) {
        self.rt.shutdown_timeout(Duration::from_secs(2));
    }

    /// Waits (on the fleet's notifications, 60 s at most) for `id`'s result.
    fn result(&self, id: &str) -> CommandResult {
        let fleet = self.state.fleet.clone();
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    let changed = fleet.changed();
                    let woken = changed.notified();
                    tokio::pin!(woken);
                    woken.as_mut().enable();
                    if let Some(r) = fleet.result(id).await.unwrap() {
                        return r;
                    }
                    woken.await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no result for {id}"))
        })
    }

    /// Waits for `host` to be registered and seen.
    fn wait_online(&self, host: &str) {
        let fleet = self.state.fleet.clone();
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    let changed = fleet.changed();
                    let woken = changed.notified();
                    tokio::pin!(woken);
                    woken.as_mut().enable();
                    if fleet
                        .view(host)
                        .await
                        .is_ok_and(|v| v.online && !v.registration.version.is_empty())
                    {
                        return;
                    }
                    woken.await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{host} never registered"))
        });
    }

    fn dispatch(&self, host: &str, command: AgentCommand) {
        self.rt
            .block_on(self.state.fleet.dispatch(host, command))
            .unwrap();
    }
}

fn cutover_bin() -> PathBuf {
    if let Some(b) = std::env::var_os("CUTOVER_BIN") {
        return b.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("cutover");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (cargo build -p cutover) or set CUTOVER_BIN",
        bin.display()
    );
    bin
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent(addr: SocketAddr, name: &str, key: &str, root: &Path) -> Agent {
    Agent(
        Command::new(cutover_bin())
            .args([
                "agent",
                "--server",
                &format!("http://{addr}"),
                "--name",
                name,
            ])
            .args(["--tags", "env=prod", "--zone", "a", "--env", "PORT=9101"])
            .arg("--root")
            .arg(root)
            .env("CUTOVER_AGENT_KEY", key)
            .env("CUTOVER_LOG", "error")
            .spawn()
            .unwrap(),
    )
}

fn command(host: &str, event: HostEvent, attempt: u32, revision: &BundleRef) -> AgentCommand {
    AgentCommand {
        id: format!("d-1/{host}/{event}/{attempt}"),
        deployment_id: "d-1".into(),
        application: "shop".into(),
        deployment_group: "prod".into(),
        deployment_group_id: "g-1".into(),
        event,
        revision: Some(revision.clone()),
        file_exists_behavior: None,
    }
}

const APPSPEC: &str = "version: 0.0
os: linux
files:
  - source: site
    destination: /srv/shop
hooks:
  AfterInstall:
    - location: hooks/after.sh
      timeout: 10
  ApplicationStart:
    - location: hooks/slow.sh
      timeout: 120
";

#[test]
fn two_agents_install_survive_their_own_restart_and_the_servers() {
    let data = tempfile::tempdir().unwrap();
    let (server, addr) = Server::start(data.path(), "127.0.0.1:0".parse().unwrap());
    let rev = tempfile::tempdir().unwrap();
    for (path, text) in [
        ("appspec.yml", APPSPEC),
        ("site/index.html", "v1\n"),
        (
            "hooks/after.sh",
            "#!/bin/sh\necho \"$LIFECYCLE_EVENT $DEPLOYMENT_GROUP_NAME $PORT $(cat index.html 2>/dev/null || pwd)\"\n",
        ),
        (
            "hooks/slow.sh",
            "#!/bin/sh\necho $$ > marker.tmp && mv marker.tmp started.marker\nexec sleep 30\n",
        ),
    ] {
        let p = rev.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let bundle = server
        .rt
        .block_on(server.state.bundles.put_dir(rev.path().to_path_buf()))
        .unwrap();
    let keys: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| server.rt.block_on(server.state.fleet.issue_key(h)).unwrap())
        .collect();
    let roots = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut a1 = agent(addr, "h1", &keys[0], roots[0].path());
    let _a2 = agent(addr, "h2", &keys[1], roots[1].path());
    server.wait_online("h1");
    server.wait_online("h2");

    for (i, host) in ["h1", "h2"].into_iter().enumerate() {
        for event in [
            HostEvent::DownloadBundle,
            HostEvent::Install,
            HostEvent::AfterInstall,
        ] {
            server.dispatch(host, command(host, event, 1, &bundle));
            let r = server.result(&command(host, event, 1, &bundle).id);
            assert_eq!(r.status, CommandStatus::Succeeded, "{host} {event}: {r:?}");
            if event == HostEvent::AfterInstall {
                assert!(
                    r.output.starts_with("AfterInstall prod 9101 "),
                    "{}",
                    r.output
                );
            }
        }
        let installed = roots[i].path().join("srv/shop/index.html");
        assert_eq!(std::fs::read_to_string(installed).unwrap(), "v1\n");
    }

    // h1 is killed while its ApplicationStart runs, then restarted: it
    // reports that command cancelled instead of running it again.
    let start = command("h1", HostEvent::ApplicationStart, 1, &bundle);
    server.dispatch("h1", start.clone());
    let marker = roots[0]
        .path()
        .join(".cutover-agent/revisions")
        .join(bundle.digest.trim_start_matches("sha256:"))
        .join("started.marker");
    wait_for_file(&marker);
    drop(std::mem::replace(
        &mut a1,
        agent(addr, "h1", &keys[0], roots[0].path()),
    ));
    let r = server.result(&start.id);
    assert_eq!(r.status, CommandStatus::Cancelled, "{r:?}");
    assert!(r.error.unwrap().contains("restarted"));
    // The interrupted script went with it.
    let pid = std::fs::read_to_string(&marker).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the old script still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The server crashes while both agents long-poll; a new one starts on
    // the same address and store, and the agents carry on.
    server.crash();
    let (server, _) = Server::start(data.path(), addr);
    let again = command("h2", HostEvent::AfterInstall, 2, &bundle);
    server.dispatch("h2", again.clone());
    assert_eq!(server.result(&again.id).status, CommandStatus::Succeeded);
    let again = command("h1", HostEvent::AfterInstall, 2, &bundle);
    server.dispatch("h1", again.clone());
    assert_eq!(server.result(&again.id).status, CommandStatus::Succeeded);
    server.crash();
}

/// Waits for a file a script creates (bounded: 60 s).
fn wait_for_file(path: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
