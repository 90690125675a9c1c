//! Upstream connections: HTTP/2 (`protocol: h2c`) to targets with gRPC unary and streaming
//! calls and their trailers passed through, the HTTP/2 connection shared and closed when idle,
//! and the HTTP/1 pool's idle timeout and per-target connection limit.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Proxy, backend, client, get};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, Infallible>;

/// A backend's address and the connections it accepted, saw end, and served a request other
/// than `/health` on.
struct CountingBackend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    proxied: Arc<AtomicUsize>,
}

/// An h2c (prior knowledge) backend:
/// - `/echo.Echo/Unary`: the request body back, then trailers `grpc-status: 0`;
/// - `/echo.Echo/Stream`: every request data frame back as it arrives, then the trailers;
/// - `/AWS.ALB/healthcheck`: a trailers-only gRPC answer, `grpc-status: 12` (UNIMPLEMENTED);
/// - anything else: `h2 <path>`;
///
/// each answer with `x-seen-te`, `x-seen-version` and `x-seen-authority` headers.
async fn h2_backend() -> CountingBackend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let proxied = Arc::new(AtomicUsize::new(0));
    let (a, c, p) = (accepted.clone(), closed.clone(), proxied.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            a.fetch_add(1, Ordering::SeqCst);
            let (c, p) = (c.clone(), p.clone());
            let used = Arc::new(std::sync::atomic::AtomicBool::new(false));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    if req.uri().path() != "/health" && !used.swap(true, Ordering::SeqCst) {
                        p.fetch_add(1, Ordering::SeqCst);
                    }
                    async move { Ok::<_, Infallible>(answer(req).await) }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    CountingBackend {
        addr,
        accepted,
        closed,
        proxied,
    }
}

fn grpc_trailers() -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from_static("0"));
    t.insert("grpc-message", HeaderValue::from_static("done"));
    t
}

async fn answer(req: Request<Incoming>) -> Response<Body> {
    let seen = |b: http::response::Builder| {
        b.header(
            "x-seen-te",
            req.headers()
                .get("te")
                .cloned()
                .unwrap_or(HeaderValue::from_static("-")),
        )
        .header("x-seen-version", format!("{:?}", req.version()))
        .header(
            "x-seen-authority",
            req.uri()
                .authority()
                .map_or("-".to_owned(), |a| a.to_string()),
        )
    };
    let builder = seen(Response::builder());
    match req.uri().path() {
        // An unknown gRPC method as gRPC servers answer it: trailers-only, UNIMPLEMENTED.
        "/AWS.ALB/healthcheck" => builder
            .header("content-type", "application/grpc")
            .header("grpc-status", "12")
            .body(Full::new(Bytes::new()).boxed())
            .unwrap(),
        "/echo.Echo/Unary" => {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let frames = futures_util::stream::iter([
                Ok(Frame::data(body)),
                Ok(Frame::trailers(grpc_trailers())),
            ]);
            builder
                .header("content-type", "application/grpc")
                .body(StreamBody::new(frames).boxed())
                .unwrap()
        }
        "/echo.Echo/Stream" => {
            let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
            let mut body = req.into_body();
            tokio::spawn(async move {
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data()
                        && tx.send(Ok(Frame::data(data))).await.is_err()
                    {
                        return;
                    }
                }
                let _ = tx.send(Ok(Frame::trailers(grpc_trailers()))).await;
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|f| (f, rx))
            });
            builder
                .header("content-type", "application/grpc")
                .body(StreamBody::new(stream).boxed())
                .unwrap()
        }
        path => {
            let text = format!("h2 {path}");
            builder.body(Full::new(Bytes::from(text)).boxed()).unwrap()
        }
    }
}

fn config(target: SocketAddr, extra: &str) -> String {
    format!(
        "admin: ADMIN
listeners:
  - name: grpc
    address: LISTEN
    defaultAction: {{forward: [{{targetGroup: echo, weight: 1}}]}}
targetGroups:
  - name: echo
    targets: [\"{target}\"]
{extra}"
    )
}

/// An HTTP/2 (prior knowledge) client connection to the proxy.
async fn h2_client(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Body> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// A gRPC message: uncompressed flag, length, payload.
fn grpc_message(payload: &[u8]) -> Bytes {
    let mut m = vec![0u8];
    m.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    m.extend_from_slice(payload);
    Bytes::from(m)
}

fn grpc_request(proxy: &Proxy, method: &str, body: Body) -> Request<Body> {
    Request::post(format!("http://{}/echo.Echo/{method}", proxy.listen))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn grpc_unary_and_streaming_calls_pass_through_with_trailers() {
    let target = h2_backend().await;
    let check = "    healthCheck: {path: /health, intervalSeconds: 0.1, timeoutSeconds: 1, healthyThresholdCount: 1, unhealthyThresholdCount: 2, matcher: \"200-299\"}\n";
    let proxy = Proxy::start(&config(target.addr, &format!("    protocol: h2c\n{check}"))).await;
    // The health check speaks HTTP/2 to an h2c group (its own connection).
    proxy.wait_healthy("echo", 1).await;
    let mut grpc = h2_client(proxy.listen).await;

    // Unary: the message comes back, then the trailers.
    let message = grpc_message(b"hello");
    let req = grpc_request(&proxy, "Unary", Full::new(message.clone()).boxed());
    let resp = grpc.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-seen-te"], "trailers");
    assert_eq!(resp.headers()["x-seen-version"], "HTTP/2.0");
    assert_eq!(
        resp.headers()["x-seen-authority"],
        proxy.listen.to_string().as_str()
    );
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(collected.to_bytes(), message);
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "done");

    // Bidirectional streaming: each message is answered before the next one is sent, so
    // nothing is buffered on the way; the trailers follow the end of the client's stream.
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let req = grpc_request(&proxy, "Stream", StreamBody::new(stream).boxed());
    let resp = grpc.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    for word in ["one", "two", "three"] {
        let m = grpc_message(word.as_bytes());
        tx.send(Ok(Frame::data(m.clone()))).await.unwrap();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), m);
    }
    drop(tx);
    let trailers = loop {
        let frame = body.frame().await.expect("trailers").unwrap();
        if let Ok(t) = frame.into_trailers() {
            break t;
        }
    };
    assert_eq!(trailers["grpc-status"], "0");
    // Both calls on one upstream connection (health probes make their own).
    assert_eq!(target.proxied.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http1_clients_share_one_h2_connection_closed_after_the_idle_timeout() {
    let target = h2_backend().await;
    let proxy = Proxy::start(&config(
        target.addr,
        "    protocol: h2c\n    idleTimeoutSeconds: 0.4\n",
    ))
    .await;
    let http = client();
    for i in 0..5 {
        let (status, headers, body) = get(&http, &proxy.url(&format!("/n/{i}")), &[]).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, format!("h2 /n/{i}").as_str())
        );
        assert_eq!(headers["x-seen-version"], "HTTP/2.0");
        assert_eq!(headers["x-seen-te"], "-", "no TE: the client sent none");
    }
    assert_eq!(target.accepted.load(Ordering::SeqCst), 1);
    // Unused for the idle timeout, the connection is closed; the next request makes another.
    let deadline = Instant::now() + Duration::from_secs(10);
    while target.closed.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the idle h2 connection was not closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, body) = get(&http, &proxy.url("/again"), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "h2 /again"));
    assert_eq!(target.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn http1_requests_wait_for_a_connection_under_the_per_target_limit() {
    let blue = backend("blue").await;
    let proxy = Proxy::start(&config(blue.addr, "    maxConnectionsPerTarget: 1\n")).await;
    let http = client();
    let start = Instant::now();
    let url = proxy.url("/slow?ms=300");
    let (a, b) = tokio::join!(get(&http, &url, &[]), get(&http, &url, &[]));
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    // One upstream connection: the second request waited for the first.
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
}

/// An HTTP/1.1 backend answering `ok` to every request, counting connections accepted and
/// closed by the peer.
async fn counting_h1_backend() -> CountingBackend {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (a, c) = (accepted.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    CountingBackend {
        addr,
        accepted,
        closed,
        proxied: Arc::default(),
    }
}

#[tokio::test]
async fn pooled_http1_connections_are_closed_after_the_idle_timeout() {
    let target = counting_h1_backend().await;
    let proxy = Proxy::start(&config(target.addr, "    idleTimeoutSeconds: 0.3\n")).await;
    let http = client();
    for _ in 0..3 {
        let (status, _, body) = get(&http, &proxy.url("/"), &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }
    assert_eq!(
        target.accepted.load(Ordering::SeqCst),
        1,
        "one pooled connection"
    );
    // No more traffic: the sweep closes the pooled connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while target.closed.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the idle pooled connection was not closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, _) = get(&http, &proxy.url("/"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(target.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn grpc_groups_are_health_checked_with_grpc_calls_matched_by_grpc_code() {
    let target = h2_backend().await;
    let group = |check: &str| {
        format!(
            "    protocol: HTTP\n    protocolVersion: GRPC\n    healthCheck: {{{check}, intervalSeconds: 0.1, timeoutSeconds: 1, healthyThresholdCount: 1, unhealthyThresholdCount: 1}}\n"
        )
    };
    let reason = |h: &cutover_proxy::HealthReport| {
        h.group("echo")
            .map(|g| g.targets[0].reason.clone())
            .unwrap_or_default()
    };
    // ALB's default: UNIMPLEMENTED (12) from the probe's path means the server is up.
    let proxy = Proxy::start(&config(target.addr, &group("path: /AWS.ALB/healthcheck"))).await;
    proxy.wait_healthy("echo", 1).await;
    assert_eq!(
        reason(&proxy.admin.health().await.unwrap()),
        "grpc-status 12"
    );
    // A real method answering OK in its trailers.
    let proxy = Proxy::start(&config(
        target.addr,
        &group("path: /echo.Echo/Unary, grpcCode: \"0\""),
    ))
    .await;
    proxy.wait_healthy("echo", 1).await;
    assert_eq!(
        reason(&proxy.admin.health().await.unwrap()),
        "grpc-status 0"
    );
    // Codes outside the set, and HTTP answers without a gRPC status, fail.
    for (check, why) in [
        (
            "path: /AWS.ALB/healthcheck, grpcCode: \"0-11\"",
            "grpc-status 12 does not match 0-11",
        ),
        ("path: /plain", "HTTP status 200 without a grpc-status"),
    ] {
        let proxy = Proxy::start(&config(target.addr, &group(check))).await;
        proxy
            .wait_for(why, |h| {
                reason(h) == why && h.group("echo").is_some_and(|g| g.healthy_host_count == 0)
            })
            .await;
    }
}
