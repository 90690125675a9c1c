//! The HTTP/1 fast path (`h1/fast.rs`) against a scripted target on raw sockets: what the
//! client receives, byte for byte, for each response framing; what the target receives; when a
//! target connection is reused; and that requests the path does not take still get hyper's
//! answers on the same connection.
//!
//! Which path answered shows in the response head: the fast path passes the target's field
//! names as sent (`X-Case`), hyper's path writes them in lower case and adds `date`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Proxy, mute_backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A target answering by path (see [`script`]); counts the connections it accepted and keeps
/// the last request head it read.
struct Scripted {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    last_head: Arc<std::sync::Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the target sends for `path`, and whether it closes the connection after.
fn script(path: &str, head: &str) -> (Vec<u8>, bool) {
    let text: &[u8] = match path {
        "/cl" => b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello",
        "/chunked" => b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\ngrpc-status: 0\r\n\r\n",
        "/both" => b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "/interim" => b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "/nocontent" => b"HTTP/1.1 204 No Content\r\nX-Case: Kept\r\n\r\n",
        "/hop" => b"HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: secret\r\nProxy-Authenticate: Basic\r\nContent-Length: 2\r\n\r\nok",
        "/extra" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK",
        "/bad" => b"HTTP/1.1 abc\r\n\r\n",
        "/odd-status" => b"HTTP/1.1 042 Odd\r\nContent-Length: 2\r\n\r\nok",
        "/named-length" => b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2, 2\r\n\r\nok",
        "/gzip-te" => return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\nevil".to_vec(), true),
        "/flood" => return (b"HTTP/1.1 100 Continue\r\n\r\n".repeat(40_000), false),
        "/bare-lf" => b"HTTP/1.1 200 OK\nX-Case: Kept\nConnection: close-not\nContent-Length: 2\n\nok",
        "/until-close" => return (b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\n\r\nuntil the end".to_vec(), true),
        "/then-close" => return (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(), true),
        "/hang-up" => return (Vec::new(), true),
        "/big" => {
            let body = vec![b'x'; 200_000];
            let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            out.extend_from_slice(&body);
            return (out, false);
        }
        _ => {
            // Echo the head the target received.
            let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", head.len()).into_bytes();
            out.extend_from_slice(head.as_bytes());
            return (out, false);
        }
    };
    (text.to_vec(), false)
}

async fn scripted() -> Scripted {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let last_head = Arc::new(std::sync::Mutex::new(String::new()));
    let (a, h) = (accepted.clone(), last_head.clone());
    let task = tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            a.fetch_add(1, Ordering::SeqCst);
            let h = h.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    *h.lock().unwrap() = head.clone();
                    let (answer, close) = script(&path, &head);
                    if s.write_all(&answer).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    Scripted {
        addr,
        accepted,
        last_head,
        task,
    }
}

fn config(target: SocketAddr) -> String {
    format!(
        "admin: ADMIN
listeners:
  - name: prod
    address: LISTEN
    defaultAction:
      forward: [{{targetGroup: blue}}]
targetGroups:
  - name: blue
    targets: [\"{target}\"]
    responseTimeoutSeconds: 2
"
    )
}

/// Reads exactly `n` bytes (5 s at most).
async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("bytes within 5 s")
        .unwrap();
    buf
}

/// Sends `request` on `s` and checks the answer is exactly `expected`.
async fn exchange(s: &mut TcpStream, request: &str, expected: &[u8]) {
    s.write_all(request.as_bytes()).await.unwrap();
    let got = read_n(s, expected.len()).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "for {request:?}"
    );
}

/// Waits for EOF on `s` (2 s at most); fails if more bytes come.
async fn assert_closed(s: &mut TcpStream) {
    let mut b = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b))
        .await
        .expect("closed within 2 s")
        .unwrap_or(0);
    assert_eq!(
        n,
        0,
        "unexpected bytes: {:?}",
        String::from_utf8_lossy(&b[..n])
    );
}

/// Reads hyper's answer to `/cl` (lower-case names and a `date`).
async fn read_hyper_answer(s: &mut TcpStream, what: &str) {
    let head_start = b"HTTP/1.1 200 OK\r\nx-case: Kept\r\ncontent-length: 5\r\ndate: ";
    assert_eq!(
        String::from_utf8_lossy(&read_n(s, head_start.len()).await),
        String::from_utf8_lossy(head_start),
        "{what:?}"
    );
    // The rest of the date line, the blank line and the body.
    let rest = read_n(s, "Mon, 07 Dec 2026 05:00:00 GMT\r\n\r\nhello".len()).await;
    assert!(
        rest.ends_with(b"GMT\r\n\r\nhello"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: app.example\r\n\r\n")
}

#[tokio::test]
async fn each_response_framing_reaches_the_client_byte_for_byte() {
    let t = scripted().await;
    let proxy = Proxy::start(&config(t.addr)).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    // Content-Length; the target's Connection and Keep-Alive are hop-by-hop.
    exchange(
        &mut s,
        &get("/cl"),
        b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\ncontent-length: 5\r\n\r\nhello",
    )
    .await;
    // Chunked, framing and extensions passed through; trailers are not (the client did not
    // ask for them with `TE: trailers`, as hyper's path would not send them).
    exchange(
        &mut s,
        &get("/chunked"),
        b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    // Both framings: chunked wins and Content-Length is not passed on.
    exchange(
        &mut s,
        &get("/both"),
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    )
    .await;
    // An interim 103 is dropped, as hyper's client drops it.
    exchange(
        &mut s,
        &get("/interim"),
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    exchange(
        &mut s,
        &get("/nocontent"),
        b"HTTP/1.1 204 No Content\r\nX-Case: Kept\r\n\r\n",
    )
    .await;
    // Fields named by Connection go with it.
    exchange(
        &mut s,
        &get("/hop"),
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    // The framing fields the client gets are the proxy's own: `Connection` cannot remove them,
    // a repeated length is written once, and a body delimited by the target's close has none.
    exchange(
        &mut s,
        &get("/named-length"),
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    // Bare LF line ends (accepted by the parser) are not passed on.
    exchange(
        &mut s,
        &get("/bare-lf"),
        b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    // HEAD: no body whatever the length says.
    exchange(
        &mut s,
        "HEAD /cl HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\ncontent-length: 5\r\n\r\n",
    )
    .await;
    // A long body, larger than any buffer.
    s.write_all(get("/big").as_bytes()).await.unwrap();
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 200000\r\n\r\n";
    assert_eq!(read_n(&mut s, head.len()).await, head);
    assert!(read_n(&mut s, 200_000).await.iter().all(|&b| b == b'x'));
    // A body delimited by the target's close: the client's connection closes after it.
    exchange(
        &mut s,
        &get("/until-close"),
        b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\nconnection: close\r\n\r\nuntil the end",
    )
    .await;
    assert_closed(&mut s).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    exchange(
        &mut s,
        &get("/gzip-te"),
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nokHTTP/1.1 200 OK\r\n\r\nevil",
    )
    .await;
    assert_closed(&mut s).await;
}

#[tokio::test]
async fn the_target_receives_the_forwarding_fields_and_none_of_the_client_s() {
    let t = scripted().await;
    let proxy = Proxy::start(&config(t.addr)).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    s.write_all(
        b"GET /echo?q=1 HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.9.9.9\r\n\
          X-Real-IP: 10.9.9.9\r\nForwarded: for=x\r\nX-Forwarded-Proto: https\r\nX-Custom: Value\r\n\r\n",
    )
    .await
    .unwrap();
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: ";
    assert_eq!(read_n(&mut s, head.len()).await, head);
    let seen = t.last_head.lock().unwrap().clone();
    let lines: Vec<&str> = seen.split("\r\n").collect();
    assert_eq!(lines[0], "GET /echo?q=1 HTTP/1.1");
    assert_eq!(lines[1], "Host: app.example");
    assert_eq!(lines[2], "X-Custom: Value");
    assert_eq!(lines[3], "x-forwarded-for: 127.0.0.1");
    assert_eq!(lines[4], "x-forwarded-proto: http");
    assert_eq!(
        lines[5],
        format!("x-forwarded-port: {}", proxy.listen.port())
    );
    assert!(lines[6].starts_with("x-request-id: "), "{seen}");
    assert_eq!(&lines[7..], ["", ""], "{seen}");
    // A request with bare LF line ends reaches the target with CRLF ones.
    let before = t.accepted.load(Ordering::SeqCst);
    s.write_all(b"GET /echo HTTP/1.1\nHost: a\nX-Custom: V\n\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = t.last_head.lock().unwrap().clone();
    assert!(
        seen.starts_with("GET /echo HTTP/1.1\r\nHost: a\r\nX-Custom: V\r\nx-forwarded-for: "),
        "{seen:?}"
    );
    assert!(!seen.replace("\r\n", "").contains('\n'), "{seen:?}");
    assert_eq!(t.accepted.load(Ordering::SeqCst), before);
    // A client's own request id is kept.
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Request-Id: mine\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = t.last_head.lock().unwrap().clone();
    let ids = seen
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("x-request-id:"))
        .count();
    assert_eq!(ids, 1, "{seen}");
    assert!(seen.contains("X-Request-Id: mine\r\n"), "{seen}");
}

#[tokio::test]
async fn target_connections_are_reused_only_after_a_cleanly_framed_response() {
    let t = scripted().await;
    let proxy = Proxy::start(&config(t.addr)).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    let ok = b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\ncontent-length: 5\r\n\r\nhello";
    for _ in 0..5 {
        exchange(&mut s, &get("/cl"), ok).await;
    }
    assert_eq!(
        t.accepted.load(Ordering::SeqCst),
        1,
        "one target connection for five requests"
    );
    // Bytes after the body: that connection is not reused.
    exchange(
        &mut s,
        &get("/extra"),
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    exchange(&mut s, &get("/cl"), ok).await;
    assert_eq!(t.accepted.load(Ordering::SeqCst), 2);
    // A target that closes after answering (its keep-alive ended): the next request gets a
    // new connection, and the client sees nothing of it.
    exchange(
        &mut s,
        &get("/then-close"),
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    exchange(&mut s, &get("/cl"), ok).await;
    assert_eq!(t.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn broken_targets_get_the_proxy_s_answers_and_the_client_keeps_its_connection() {
    let t = scripted().await;
    let proxy = Proxy::start(&config(t.addr)).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    let failed = b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 23\r\n\r\ntarget failed to answer";
    exchange(&mut s, &get("/bad"), failed).await;
    exchange(&mut s, &get("/odd-status"), failed).await;
    // Interim responses without end: refused once they add up to a head's limit, not kept.
    let start = Instant::now();
    exchange(&mut s, &get("/flood"), failed).await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    exchange(&mut s, &get("/hang-up"), failed).await;
    exchange(
        &mut s,
        &get("/cl"),
        b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\ncontent-length: 5\r\n\r\nhello",
    )
    .await;
    let text = proxy.admin.prometheus().await.unwrap();
    assert!(
        text.contains("cutover_proxy_listener_elb_5xx_total{listener=\"prod\"} 4"),
        "{text}"
    );

    // No target listening: 502 after the retries, and the connection stays usable.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_addr = gone.local_addr().unwrap();
    drop(gone);
    let proxy = Proxy::start(&config(gone_addr)).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    let unreachable = b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 26\r\n\r\nno target could be reached";
    exchange(&mut s, &get("/"), unreachable).await;
    // `Connection: close` is honoured on the proxy's own answers too.
    exchange(
        &mut s,
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 26\r\nconnection: close\r\n\r\nno target could be reached",
    )
    .await;
    assert_closed(&mut s).await;
}

#[tokio::test]
async fn requests_the_fast_path_does_not_take_get_hyper_s_answers_on_the_same_connection() {
    let t = scripted().await;
    let proxy = Proxy::start(&config(t.addr)).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    let fast = b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\ncontent-length: 5\r\n\r\nhello";
    exchange(&mut s, &get("/cl"), fast).await;
    // A body, a TE, a path to normalise, an absolute-form target: hyper answers (lower-case
    // names and a date), then the fast path takes the next plain request again.
    for request in [
        "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
        "GET /cl HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
        "GET /x/../cl HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://a/cl HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        s.write_all(request.as_bytes()).await.unwrap();
        read_hyper_answer(&mut s, request).await;
        if request.starts_with("POST") {
            // After a request with a body hyper serves the connection until a request without
            // one ends an exchange.
            s.write_all(get("/cl").as_bytes()).await.unwrap();
            read_hyper_answer(&mut s, "the GET after a POST").await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await; // past hyper's linger
        exchange(&mut s, &get("/cl"), fast).await;
    }
    // Pipelined plain requests in one write are answered in order by the fast path.
    let two = format!("{}{}", get("/cl"), get("/nocontent"));
    s.write_all(two.as_bytes()).await.unwrap();
    let mut expected = fast.to_vec();
    expected.extend_from_slice(b"HTTP/1.1 204 No Content\r\nX-Case: Kept\r\n\r\n");
    assert_eq!(read_n(&mut s, expected.len()).await, expected);
}

#[tokio::test]
async fn a_slow_target_gets_504_and_a_stalled_body_closes_the_client() {
    let (mute, task) = mute_backend(false).await;
    let timeout = |c: String| c.replace("responseTimeoutSeconds: 2", "responseTimeoutSeconds: 0.4");
    let proxy = Proxy::start(&timeout(config(mute))).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    let start = Instant::now();
    exchange(
        &mut s,
        &get("/"),
        b"HTTP/1.1 504 Gateway Timeout\r\ncontent-type: text/plain\r\ncontent-length: 29\r\n\r\ntarget did not answer in time",
    )
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(350),
        "{:?}",
        start.elapsed()
    );
    let text = proxy.admin.prometheus().await.unwrap();
    assert!(
        text.contains("cutover_proxy_listener_elb_504_total{listener=\"prod\"} 1"),
        "{text}"
    );
    task.abort();
    // A body that stops after its first bytes: cut after the same silence.
    let (stalls, task) = mute_backend(true).await;
    let proxy = Proxy::start(&timeout(config(stalls))).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    exchange(
        &mut s,
        &get("/stall"),
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst",
    )
    .await;
    assert_closed(&mut s).await;
    task.abort();
}

#[tokio::test]
async fn a_connection_opening_with_the_http2_preface_gets_http2_even_when_it_comes_in_pieces() {
    let t = scripted().await;
    let proxy = Proxy::start(&config(t.addr)).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The rest of the preface, then an empty SETTINGS frame.
    s.write_all(b"\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // The server's first frame is its SETTINGS (type 4 on stream 0).
    let frame = read_n(&mut s, 9).await;
    assert_eq!(frame[3], 4, "{frame:?}");
    assert_eq!(&frame[5..9], &[0, 0, 0, 0]);
}

#[tokio::test]
async fn a_head_arriving_in_pieces_is_routed_by_the_configuration_in_force_when_it_completes() {
    let (old, new) = (scripted().await, scripted().await);
    let yaml = format!(
        "admin: ADMIN
listeners:
  - name: prod
    address: LISTEN
    defaultAction:
      forward: [{{targetGroup: old, weight: 100}}, {{targetGroup: new, weight: 0}}]
targetGroups:
  - name: old
    targets: [\"{}\"]
    deregistrationDelaySeconds: 0
  - name: new
    targets: [\"{}\"]
",
        old.addr, new.addr
    );
    let proxy = Proxy::start(&yaml).await;
    let mut s = TcpStream::connect(proxy.listen).await.unwrap();
    exchange(
        &mut s,
        &get("/cl"),
        b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\ncontent-length: 5\r\n\r\nhello",
    )
    .await;
    assert_eq!(old.accepted.load(Ordering::SeqCst), 1);
    // The next head starts under one configuration, and the old group is emptied (its
    // target drained) before the head completes.
    s.write_all(b"GET /cl HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy
        .admin
        .set_weights("prod", None, &[("old", 0), ("new", 100)])
        .await
        .unwrap();
    proxy.admin.set_targets::<&str>("old", &[]).await.unwrap();
    s.write_all(b"st: a\r\n\r\n").await.unwrap();
    let ok = b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\ncontent-length: 5\r\n\r\nhello";
    assert_eq!(read_n(&mut s, ok.len()).await, ok);
    assert_eq!(
        new.accepted.load(Ordering::SeqCst),
        1,
        "routed by the new configuration"
    );
}
