//! Security end to end, against the real binary: who may call the API
//! (tokens from the flag and from a file, loopback names only without a
//! token), and what other local users can read of the data directory.

mod common;

use common::{BIN, wait_until};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server started with extra arguments, under umask 022 (the usual one),
/// so the test sees what a default user gets.
struct Running {
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Running {
    /// Starts the server again on the same address and data directory (the
    /// previous process must be gone), logging to `log` beside the data.
    fn respawn(&mut self, log: &str) {
        let log = std::fs::File::create(self.data.join("..").join(log)).unwrap();
        self.child = Command::new(BIN)
            .args(["server", "--listen", &self.addr.to_string(), "--data-dir"])
            .arg(&self.data)
            .env_remove("CUTOVER_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let up = wait_until(Duration::from_secs(20), || {
            TcpStream::connect(self.addr).is_ok()
        });
        assert!(up.is_some(), "the server did not come back");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        common::stop_data_plane(&self.data);
    }
}

fn spawn(extra: &str, env: &[(&str, &str)]) -> (Child, SocketAddr, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let log = std::fs::File::create(tmp.path().join("server.log")).unwrap();
    let script = format!("umask 022; exec \"$0\" server --listen {addr} --data-dir \"$1\" {extra}");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script, BIN])
        .arg(&data)
        .env_remove("CUTOVER_TOKEN")
        .env("CUTOVER_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().unwrap(), addr, data, tmp)
}

fn start(extra: &str, env: &[(&str, &str)]) -> Running {
    let (mut child, addr, data, tmp) = spawn(extra, env);
    let up = wait_until(Duration::from_secs(20), || {
        TcpStream::connect(addr).is_ok() || child.try_wait().unwrap().is_some()
    });
    let log = std::fs::read_to_string(tmp.path().join("server.log")).unwrap_or_default();
    assert!(
        up.is_some() && child.try_wait().unwrap().is_none(),
        "server did not start:\n{log}"
    );
    // The listener is bound before the data plane starts: wait for an
    // answer, which comes only once the server (and its proxy) is up.
    get(addr, &addr.to_string(), "");
    Running {
        child,
        addr,
        data,
        _tmp: tmp,
    }
}

/// Sends one raw request and returns the status code.
fn status(addr: SocketAddr, request: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

fn get(addr: SocketAddr, host: &str, extra: &str) -> u16 {
    status(
        addr,
        &format!("GET /v1/status HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"),
    )
}

#[test]
fn the_token_flag_protects_the_api() {
    let s = start("--token s3cret-flag", &[]);
    let host = s.addr.to_string();
    assert_eq!(get(s.addr, &host, ""), 401, "no token: refused");
    assert_eq!(get(s.addr, &host, "Authorization: Bearer wrong\r\n"), 401);
    assert_eq!(
        get(s.addr, &host, "Authorization: Bearer s3cret-flag\r\n"),
        200
    );
    assert_eq!(
        get(s.addr, &host, "Authorization: bearer s3cret-flag\r\n"),
        200,
        "the scheme is case-insensitive"
    );
    // With a token, any Host name works (it is how a remote CLI reaches it).
    assert_eq!(
        get(
            s.addr,
            "cutover.internal:7070",
            "Authorization: Bearer s3cret-flag\r\n"
        ),
        200
    );
}

#[test]
fn the_token_file_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cret-file\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut child, _, _, tmp) = spawn(&format!("--token-file {}", file.display()), &[]);
    let code = child.wait().unwrap();
    let log = std::fs::read_to_string(tmp.path().join("server.log")).unwrap();
    assert!(!code.success(), "a world-readable token file is refused");
    assert!(log.contains("chmod 600"), "{log}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = start(&format!("--token-file {}", file.display()), &[]);
    let host = s.addr.to_string();
    assert_eq!(get(s.addr, &host, ""), 401);
    assert_eq!(
        get(s.addr, &host, "Authorization: Bearer s3cret-file\r\n"),
        200
    );
}

#[test]
fn without_a_token_only_loopback_names_and_origins_are_served() {
    let s = start("", &[]);
    let host = s.addr.to_string();
    assert_eq!(get(s.addr, &host, ""), 200);
    assert_eq!(
        get(s.addr, &format!("localhost:{}", s.addr.port()), ""),
        200
    );
    // DNS rebinding: the browser sends the attacker's name.
    assert_eq!(
        get(s.addr, &format!("rebind.example:{}", s.addr.port()), ""),
        403
    );
    // A cross-site form posting to the loopback API.
    let body = "{}";
    let post = format!(
        "POST /v1/apply HTTP/1.1\r\nHost: {host}\r\nOrigin: https://evil.example\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(status(s.addr, &post), 403);
    let post = format!(
        "POST /v1/apply HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: cross-site\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(status(s.addr, &post), 403);
    // The CLI still works.
    let out = Command::new(BIN)
        .args(["services", "ls"])
        .env("CUTOVER_SERVER", format!("http://{}", s.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_data_directory_is_private_under_the_default_umask() {
    let s = start("", &[]);
    let host = s.addr.to_string();
    assert_eq!(get(s.addr, &host, ""), 200);
    assert_eq!(mode(&s.data), 0o700, "data directory");
    assert_eq!(mode(&s.data.join("state.db")), 0o600, "state.db");
    assert_eq!(mode(&s.data.join("proxy")), 0o700, "proxy state directory");
}

#[test]
fn the_managed_proxy_admin_api_needs_the_token_from_a_private_file() {
    let s = start("", &[]);
    let host = s.addr.to_string();
    assert_eq!(get(s.addr, &host, ""), 200);
    let proxy = s.data.join("proxy");
    let admin: SocketAddr = std::fs::read_to_string(proxy.join("admin.addr"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let token = std::fs::read_to_string(proxy.join("admin.token")).unwrap();
    assert!(token.len() >= 64, "a long random token");
    assert_eq!(mode(&proxy.join("admin.token")), 0o600);
    assert_eq!(mode(&proxy.join("config.json")), 0o600);
    // Unauthenticated: refused, and a PUT cannot re-route production.
    let admin_get = |auth: &str| {
        status(
            admin,
            &format!("GET /v1/config HTTP/1.1\r\nHost: {admin}\r\n{auth}Connection: close\r\n\r\n"),
        )
    };
    assert_eq!(admin_get(""), 401);
    assert_eq!(admin_get("Authorization: Bearer nope\r\n"), 401);
    assert_eq!(
        admin_get(&format!("Authorization: Bearer {}\r\n", token.trim())),
        200
    );
    let body = r#"{"admin":"0.0.0.0:1","listeners":[],"targetGroups":[]}"#;
    let put = format!(
        "PUT /v1/config HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(status(admin, &put), 401);
    // The token never appears on the proxy's command line.
    let pid = std::fs::read_to_string(proxy.join("proxy.pid")).unwrap();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(!cmdline.contains(token.trim()), "{cmdline}");
    assert!(cmdline.contains("--admin-token-file"), "{cmdline}");
}

#[test]
fn a_restarted_server_adopts_its_own_proxy_and_nothing_else() {
    let mut s = start("", &[]);
    let proxy = s.data.join("proxy");
    let pid = std::fs::read_to_string(proxy.join("proxy.pid")).unwrap();
    // kill -9 the server, start it again on the same data directory.
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    s.respawn("server2.log");
    let host = s.addr.to_string();
    assert_eq!(get(s.addr, &host, ""), 200);
    assert_eq!(
        std::fs::read_to_string(proxy.join("proxy.pid")).unwrap(),
        pid,
        "the same proxy process was adopted"
    );
    // A pid file naming something that is not our proxy is not adopted: the
    // server starts its own instead of trusting whatever answers.
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
    let mut impostor = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(proxy.join("proxy.pid"), impostor.id().to_string()).unwrap();
    s.respawn("server3.log");
    assert_eq!(get(s.addr, &host, ""), 200);
    let new_pid = std::fs::read_to_string(proxy.join("proxy.pid")).unwrap();
    assert_ne!(new_pid.trim(), impostor.id().to_string());
    assert_ne!(new_pid, pid);
    let _ = impostor.kill();
    let _ = impostor.wait();
}

#[test]
fn a_proxy_of_an_earlier_release_is_adopted_without_a_restart_and_locked() {
    // What the previous release left: a proxy started without a token on a
    // port chosen in advance, its pid and address in the state directory.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let proxy = data.join("proxy");
    std::fs::create_dir_all(&proxy).unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let mut legacy = Command::new(BIN)
        .args(["proxy", "--state-dir"])
        .arg(&proxy)
        .args(["--admin-address", &admin.to_string()])
        .env_remove("CUTOVER_PROXY_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(proxy.join("proxy.pid"), legacy.id().to_string()).unwrap();
    std::fs::write(proxy.join("admin.addr"), admin.to_string()).unwrap();
    let admin_get = |auth: &str| {
        status(
            admin,
            &format!("GET /v1/status HTTP/1.1\r\nHost: {admin}\r\n{auth}Connection: close\r\n\r\n"),
        )
    };
    let up = wait_until(Duration::from_secs(20), || {
        TcpStream::connect(admin).is_ok()
    });
    assert!(up.is_some());
    assert_eq!(admin_get(""), 200, "the legacy proxy is open");

    let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let mut server = Command::new(BIN)
        .args(["server", "--listen", &addr.to_string(), "--data-dir"])
        .arg(&data)
        .env_remove("CUTOVER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok());
    assert!(up.is_some());
    assert_eq!(get(addr, &addr.to_string(), ""), 200);
    assert!(
        legacy.try_wait().unwrap().is_none(),
        "the running proxy was adopted, not replaced"
    );
    assert_eq!(
        std::fs::read_to_string(proxy.join("proxy.pid")).unwrap(),
        legacy.id().to_string()
    );
    let token = std::fs::read_to_string(proxy.join("admin.token")).unwrap();
    assert_eq!(mode(&proxy.join("admin.token")), 0o600);
    assert_eq!(admin_get(""), 401, "locked at adoption");
    assert_eq!(
        admin_get(&format!("Authorization: Bearer {token}\r\n")),
        200
    );
    let _ = server.kill();
    let _ = server.wait();
    let _ = legacy.kill();
    let _ = legacy.wait();
}
