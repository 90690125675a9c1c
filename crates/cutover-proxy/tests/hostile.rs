//! Hostile clients on raw loopback sockets (issue 14): silent, partial and preface-only
//! connections, the connection cap, Host smuggling, path-rule bypasses, oversized headers,
//! CONNECT, forwarding headers, a target that never answers, and the admin API's token.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use common::{Proxy, backend, mute_backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One listener forwarding to `blue`, with extra listener keys and a `/admin*` rule.
fn config(blue: &str, listener_extra: &str, group_extra: &str) -> String {
    format!(
        "admin: ADMIN
listeners:
  - name: prod
    address: LISTEN
{listener_extra}    rules:
      - conditions: [{{pathPattern: [\"/admin*\"]}}]
        action: {{fixedResponse: {{statusCode: 403, messageBody: denied}}}}
      - conditions: [{{host: [\"private.example\"]}}]
        action: {{fixedResponse: {{statusCode: 403, messageBody: private}}}}
    defaultAction:
      forward: [{{targetGroup: blue}}]
targetGroups:
  - name: blue
    targets: [\"{blue}\"]
{group_extra}"
    )
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one response with a `content-length` body from `s` (5 s at most).
async fn read_answer(s: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                let status = head[9..12].parse().unwrap();
                return Answer { status, head, body };
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline.into(), s.read(&mut chunk))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before a full answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends raw bytes on a new connection and reads one answer.
async fn raw(addr: std::net::SocketAddr, request: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    read_answer(&mut s).await
}

/// Waits until the server closes `s` (EOF or reset), at most `max`; returns when it did.
async fn closed_after(s: &mut TcpStream, max: Duration) -> Duration {
    let start = Instant::now();
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(max, s.read(&mut chunk)).await {
            Err(_) => panic!("not closed within {max:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn silent_partial_and_preface_only_sockets_are_closed_after_the_header_timeout() {
    let blue = backend("blue").await;
    let proxy = Proxy::start(&config(
        &blue.addr.to_string(),
        "    requestHeaderTimeoutSeconds: 0.5\n    idleTimeoutSeconds: 1\n",
        "",
    ))
    .await;
    let mut silent = TcpStream::connect(proxy.listen).await.unwrap();
    let mut partial = TcpStream::connect(proxy.listen).await.unwrap();
    partial
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: 1")
        .await
        .unwrap();
    let mut preface = TcpStream::connect(proxy.listen).await.unwrap();
    preface
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    // While they are held, normal requests succeed.
    let a = raw(
        proxy.listen,
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (200, "blue"));
    for (name, s) in [
        ("silent", &mut silent),
        ("partial", &mut partial),
        ("preface", &mut preface),
    ] {
        let t = closed_after(s, Duration::from_secs(5)).await;
        assert!(t < Duration::from_secs(3), "{name} closed after {t:?}");
    }
    // An idle keep-alive connection after a request is closed after the idle time too.
    let mut kept = TcpStream::connect(proxy.listen).await.unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut kept).await.status, 200);
    let t = closed_after(&mut kept, Duration::from_secs(5)).await;
    assert!(t >= Duration::from_millis(400), "closed too early: {t:?}");
}

#[tokio::test]
async fn a_keep_alive_connection_s_header_deadline_runs_from_its_last_exchange() {
    let blue = backend("blue").await;
    let proxy = Proxy::start(&config(
        &blue.addr.to_string(),
        "    requestHeaderTimeoutSeconds: 0.5\n    idleTimeoutSeconds: 5\n",
        "",
    ))
    .await;
    // Requests 0.3 s apart on one connection: 1.5 s in all, three times the
    // header timeout, and each arrives in time after the previous answer.
    let mut kept = TcpStream::connect(proxy.listen).await.unwrap();
    for i in 0..5 {
        kept.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_answer(&mut kept).await.status, 200, "request {i}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_connection_cap_refuses_the_next_connection_and_keeps_the_others() {
    let blue = backend("blue").await;
    let proxy = Proxy::start(&config(
        &blue.addr.to_string(),
        "    maxConnections: 2\n",
        "",
    ))
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(proxy.listen).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_answer(&mut s).await.status, 200);
        held.push(s);
    }
    let mut third = TcpStream::connect(proxy.listen).await.unwrap();
    let a = read_answer(&mut third).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("connection"), Some("close"));
    closed_after(&mut third, Duration::from_secs(2)).await;
    for s in &mut held {
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let a = read_answer(s).await;
        assert_eq!((a.status, a.body.as_str()), (200, "blue"));
    }
    let text = proxy.admin.prometheus().await.unwrap();
    assert!(
        text.contains("cutover_proxy_listener_rejected_connections_total{listener=\"prod\"} 1"),
        "{text}"
    );
    // Closing one makes room again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = TcpStream::connect(proxy.listen).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        if read_answer(&mut s).await.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no room after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ambiguous_host_headers_are_refused_and_connection_never_strips_host() {
    let blue = backend("blue").await;
    let proxy = Proxy::start(&config(&blue.addr.to_string(), "", "")).await;
    let l = proxy.listen;
    let a = raw(
        l,
        "GET / HTTP/1.1\r\nHost: public.example\r\nHost: private.example\r\n\r\n",
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "more than one Host header")
    );
    let a = raw(l, "GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!((a.status, a.body.as_str()), (400, "missing Host header"));
    let a = raw(l, "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n").await;
    assert_eq!(a.status, 400);
    let a = raw(
        l,
        "GET / HTTP/1.1\r\nHost: public.example\r\nConnection: host, x-a\r\nX-A: 1\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-seen-host"), Some("public.example"));
    assert_eq!(a.header("x-echo-x-a"), None);
    // The absolute-form authority wins over Host, for routing and forwarding.
    let a = raw(
        l,
        "GET http://private.example/ HTTP/1.1\r\nHost: public.example\r\n\r\n",
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (403, "private"));
    let a = raw(
        l,
        "GET http://other.example/x HTTP/1.1\r\nHost: private.example\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-seen-host"), Some("other.example"));
    assert_eq!(a.header("x-seen-path"), Some("/x"));
}

#[tokio::test]
async fn every_connection_header_is_honoured_and_connect_is_refused() {
    let blue = backend("blue").await;
    let proxy = Proxy::start(&config(&blue.addr.to_string(), "", "")).await;
    let a = raw(
        proxy.listen,
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a\r\nConnection: x-b\r\nX-A: 1\r\nX-B: 1\r\nX-C: 1\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        (a.header("x-echo-x-a"), a.header("x-echo-x-b")),
        (None, None)
    );
    assert_eq!(a.header("x-echo-x-c"), Some("1"));
    let a = raw(
        proxy.listen,
        "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 405);
    assert!(a.header("allow").is_some());
}

#[tokio::test]
async fn path_rules_cannot_be_bypassed_and_the_target_gets_the_normalised_path() {
    let blue = backend("blue").await;
    let proxy = Proxy::start(&config(&blue.addr.to_string(), "", "")).await;
    for path in [
        "/admin",
        "/%61dmin",
        "//admin",
        "/./admin",
        "/x/../admin",
        "/;/admin",
        "/admin;jsessionid=1",
        "/x/..;/admin",
        "/%2e/admin/users",
    ] {
        let a = raw(
            proxy.listen,
            &format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n"),
        )
        .await;
        assert_eq!((a.status, a.body.as_str()), (403, "denied"), "{path}");
    }
    for path in ["/../../etc/passwd", "/a/%2e%2e/%2e%2e/etc/passwd", "/%zz"] {
        let a = raw(
            proxy.listen,
            &format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n"),
        )
        .await;
        assert_eq!(a.status, 400, "{path}");
    }
    let a = raw(proxy.listen, "GET /ADMIN HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "blue"),
        "paths are case-sensitive"
    );
    let a = raw(
        proxy.listen,
        "GET /a//b/./c/../%7Ed%2F?q=/../x HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    assert_eq!(a.header("x-seen-path"), Some("/a/b/~d%2F?q=/../x"));
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let blue = backend("blue").await;
    let proxy = Proxy::start(&config(&blue.addr.to_string(), "", "")).await;
    let huge = "x".repeat(100 * 1024);
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nHost: a\r\nX-Huge: {huge}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let a = read_answer(&mut s).await;
    assert_eq!(a.status, 431);
    let line = "x".repeat(9 * 1024);
    let a = raw(
        proxy.listen,
        &format!("GET / HTTP/1.1\r\nHost: a\r\nX-Line: {line}\r\n\r\n"),
    )
    .await;
    assert_eq!(a.status, 431, "one 9 KiB line is over the 8 KiB default");
    let a = raw(
        proxy.listen,
        &format!("GET /{line} HTTP/1.1\r\nHost: a\r\n\r\n"),
    )
    .await;
    assert_eq!(a.status, 414);
    let ok = "x".repeat(4 * 1024);
    let a = raw(
        proxy.listen,
        &format!("GET / HTTP/1.1\r\nHost: a\r\nX-Ok: {ok}\r\n\r\n"),
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn forwarding_headers_are_replaced_unless_the_client_is_trusted() {
    let blue = backend("blue").await;
    let request = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Host: spoof\r\nX-Real-IP: 10.9.9.9\r\nForwarded: for=10.9.9.9\r\nX-Forwarded-Proto: https\r\n\r\n";
    let proxy = Proxy::start(&config(&blue.addr.to_string(), "", "")).await;
    let a = raw(proxy.listen, request).await;
    assert_eq!(a.header("x-seen-xff"), Some("127.0.0.1"));
    assert_eq!(a.header("x-seen-proto"), Some("http"));
    for h in [
        "x-echo-x-forwarded-host",
        "x-echo-x-real-ip",
        "x-echo-forwarded",
    ] {
        assert_eq!(a.header(h), None, "{h}");
    }
    let trusted = Proxy::start(&config(
        &blue.addr.to_string(),
        "    trustedProxies: [127.0.0.0/8]\n",
        "",
    ))
    .await;
    let a = raw(trusted.listen, request).await;
    assert_eq!(a.header("x-seen-xff"), Some("10.9.9.9, 127.0.0.1"));
    assert_eq!(a.header("x-seen-proto"), Some("https"));
    assert_eq!(a.header("x-echo-x-forwarded-host"), Some("spoof"));
    assert_eq!(a.header("x-echo-forwarded"), Some("for=10.9.9.9"));
}

#[tokio::test]
async fn a_target_that_never_answers_gets_504_counted_as_an_elb_error() {
    let (mute, task) = mute_backend(false).await;
    let proxy = Proxy::start(&config(
        &mute.to_string(),
        "",
        "    responseTimeoutSeconds: 0.5\n",
    ))
    .await;
    let start = Instant::now();
    let a = raw(proxy.listen, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(a.status, 504);
    let t = start.elapsed();
    assert!(
        t >= Duration::from_millis(450) && t < Duration::from_secs(3),
        "{t:?}"
    );
    let text = proxy.admin.prometheus().await.unwrap();
    assert!(
        text.contains("cutover_proxy_listener_elb_5xx_total{listener=\"prod\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("cutover_proxy_listener_elb_504_total{listener=\"prod\"} 1"),
        "{text}"
    );
    task.abort();

    // A body that stops flowing is cut after the same silence.
    let (stalls, task) = mute_backend(true).await;
    let proxy = Proxy::start(&config(
        &stalls.to_string(),
        "",
        "    responseTimeoutSeconds: 0.5\n",
    ))
    .await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let t = closed_after(&mut s, Duration::from_secs(5)).await;
    assert!(t < Duration::from_secs(3), "{t:?}");
    task.abort();
}

fn token_file(dir: &std::path::Path, mode: u32) -> std::path::PathBuf {
    let p = dir.join("admin.token");
    std::fs::write(&p, "s3cret-token\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

async fn start(
    dir: &std::path::Path,
    yaml: Option<&str>,
    admin: &str,
    token_file: Option<std::path::PathBuf>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), cutover_proxy::ProxyError>>,
) {
    let config_path = yaml.map(|y| {
        let p = dir.join("lb.yaml");
        std::fs::write(&p, y).unwrap();
        p
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = cutover_proxy::ProxyOptions {
        config_path,
        state_dir: Some(dir.join("state")),
        workers: 1,
        admin_address: Some(admin.to_owned()),
        admin_token_file: token_file,
        admin_address_file: Some(dir.join("admin.address")),
        clock: Default::default(),
    };
    let task = tokio::spawn(cutover_proxy::run(opts, async {
        let _ = rx.await;
    }));
    (tx, task)
}

#[tokio::test]
async fn a_token_file_protects_the_admin_api_and_is_never_echoed_or_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), 0o600);
    let (stop, task) = start(dir.path(), None, "127.0.0.1:0", Some(file)).await;
    let admin = common::admin_address(&dir.path().join("admin.address"), || None).await;
    let open = cutover_proxy::client::AdminClient::new(admin.to_string());
    let authed = open.clone().with_token("s3cret-token");
    authed
        .status()
        .await
        .expect("the proxy answers with the token");
    let e = open.status().await.unwrap_err().to_string();
    assert!(e.contains("401"), "{e}");
    let a = raw(
        admin,
        "GET /v1/status HTTP/1.1\r\nHost: a\r\nAuthorization: bEaReR s3cret-token\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 200, "the scheme is case-insensitive");

    // A PUT cannot set another token while the file's is in force, nor clear it by omission.
    let mut cfg = authed.get_config().await.unwrap().config;
    cfg.admin_token = Some("attacker".into());
    let e = authed.put_config(&cfg).await.unwrap_err().to_string();
    assert!(
        e.contains("adminToken: the admin token is set by --admin-token-file"),
        "{e}"
    );
    cfg.admin_token = None;
    authed.put_config(&cfg).await.unwrap();
    assert!(open.status().await.is_err());
    assert!(authed.status().await.is_ok());

    // The state directory and the persisted configuration are private.
    let state = dir.path().join("state");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("config.json")), 0o600);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_configured_token_is_redacted_and_a_round_trip_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "admin: 127.0.0.1:0\nadminToken: from-config\n";
    let (stop, task) = start(dir.path(), Some(yaml), "127.0.0.1:0", None).await;
    let admin = common::admin_address(&dir.path().join("admin.address"), || None).await;
    let authed =
        cutover_proxy::client::AdminClient::new(admin.to_string()).with_token("from-config");
    authed
        .status()
        .await
        .expect("the proxy answers with the token");
    let a = raw(
        admin,
        "GET /v1/config HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer from-config\r\n\r\n",
    )
    .await;
    assert!(!a.body.contains("from-config"), "{}", a.body);
    assert!(
        a.body.contains("\"adminToken\":\"<redacted>\""),
        "{}",
        a.body
    );
    let cfg = authed.get_config().await.unwrap().config;
    authed.put_config(&cfg).await.unwrap();
    assert!(
        authed.status().await.is_ok(),
        "the round trip kept the token"
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn unsafe_token_files_and_open_non_loopback_admin_addresses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), 0o644);
    let (_stop, task) = start(dir.path(), None, "127.0.0.1:0", Some(file)).await;
    let e = task.await.unwrap().unwrap_err().to_string();
    assert!(
        e.ends_with("admin.token is accessible by group or others (mode 0644); make it private with chmod 600"),
        "{e}"
    );
    // Refused before anything is bound: no token, admin on every interface.
    let (_stop, task) = start(dir.path(), None, "0.0.0.0:1", None).await;
    let e = task.await.unwrap().unwrap_err().to_string();
    assert!(
        e.contains("admin: the admin API address 0.0.0.0:1 is not loopback: it needs a token"),
        "{e}"
    );
}

/// Keep-alive connections give their buffers back between requests (`h1.rs`): the request
/// boundaries, pipelined bytes and `Connection` semantics must survive that hand-over.
#[tokio::test]
async fn keep_alive_pipelining_and_bodies_survive_the_idle_hand_over() {
    let blue = backend("blue").await;
    let proxy = Proxy::start(&config(&blue.addr.to_string(), "", "")).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    // Three pipelined requests in one write, answered in order.
    s.write_all(
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    for path in ["/a", "/b", "/c"] {
        let a = read_answer(&mut s).await;
        assert_eq!((a.status, a.header("x-seen-path")), (200, Some(path)));
    }
    // Idle past the linger time (the behaviour under test): the next request starts on a
    // connection whose hyper object was dropped.
    let linger = Duration::from_millis(200);
    tokio::time::sleep(linger).await;
    // A head split over writes, and a pipelined request cut in the middle of its head.
    s.write_all(b"GET /d HTTP/1.1\r\nHo").await.unwrap();
    tokio::task::yield_now().await;
    s.write_all(b"st: a\r\n\r\nGET /e HTTP/1.1\r\nHost")
        .await
        .unwrap();
    let a = read_answer(&mut s).await;
    assert_eq!((a.status, a.header("x-seen-path")), (200, Some("/d")));
    tokio::time::sleep(linger).await;
    s.write_all(b": a\r\n\r\n").await.unwrap();
    let a = read_answer(&mut s).await;
    assert_eq!((a.status, a.header("x-seen-path")), (200, Some("/e")));
    tokio::time::sleep(linger).await;
    // Requests with bodies (length and chunked), each followed by a pipelined request.
    s.write_all(
        b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /g HTTP/1.1\r\nHost: a\r\n\r\n\
          POST /h HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
          GET /i HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    for path in ["/f", "/g", "/h", "/i"] {
        let a = read_answer(&mut s).await;
        assert_eq!((a.status, a.header("x-seen-path")), (200, Some(path)));
    }
    // A body that smuggles a second request is refused, never forwarded as one.
    s.write_all(
        b"POST /j HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n\
          GET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    let a = read_answer(&mut s).await;
    assert_eq!(a.status, 400);
    closed_after(&mut s, Duration::from_secs(2)).await;

    // `Connection: close` and HTTP/1.0 without keep-alive close after the answer; HTTP/1.0
    // with keep-alive stays open.
    for (request, stays) in [
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
        ),
        ("GET / HTTP/1.0\r\nHost: a\r\n\r\n", false),
        (
            "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
    ] {
        let mut s = TcpStream::connect(proxy.listen).await.unwrap();
        for _ in 0..2 {
            s.write_all(request.as_bytes()).await.unwrap();
            assert_eq!(read_answer(&mut s).await.status, 200, "{request:?}");
            if !stays {
                closed_after(&mut s, Duration::from_secs(2)).await;
                break;
            }
        }
    }
}
