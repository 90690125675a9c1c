//! Test helpers: a small backend on an ephemeral port, a proxy started in-process, and an HTTP
//! client.
//!
//! Ports: a backend binds port 0 and keeps its listener; a proxy's admin API binds
//! `127.0.0.1:0` and reports the port in its `--admin-address-file`; a proxy listener, whose
//! address only a configuration file can name, gets a port from [`free_port`], held by this
//! process until it exits so that no other process can take it in between.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cutover_proxy::ProxyOptions;
use cutover_proxy::client::AdminClient;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A backend answering:
/// - `/health`: 200 (or the status given at start),
/// - `/slow?ms=N`: 200 after N ms,
/// - `/sse`: two events one second apart,
/// - `/ws`: a WebSocket echo,
/// - anything else: 200 with body = the backend's name, `x-seen-*` headers echoing the
///   request's host, path and forwarding headers, and `x-echo-<name>` for every request header.
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed()
}

pub async fn backend(name: &str) -> Backend {
    backend_with_health(name, 200).await
}

pub async fn backend_with_health(name: &str, health: u16) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = oneshot::channel::<()>();
    let owned = name.to_owned();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                r = listener.accept() => r.unwrap(),
                _ = &mut rx => return,
            };
            let name = owned.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let name = name.clone();
                    async move { Ok::<_, Infallible>(answer(&name, health, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Backend {
        addr,
        name: name.to_owned(),
        stop: Some(tx),
    }
}

async fn answer(name: &str, health: u16, mut req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/health" => {
            let mut r = Response::new(full("ok"));
            *r.status_mut() = StatusCode::from_u16(health).unwrap();
            r
        }
        "/slow" => {
            let ms: u64 = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            // The slowness is the behaviour: a request that stays in flight for `ms`.
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(full(name.to_owned()))
        }
        "/sse" => {
            let stream = futures_util::stream::unfold(0u32, |i| async move {
                if i >= 2 {
                    return None;
                }
                if i > 0 {
                    // The behaviour: events one second apart.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let frame = Frame::data(Bytes::from(format!("data: event {i}\n\n")));
                Some((Ok::<_, Infallible>(frame), i + 1))
            });
            let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
            r.headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            r
        }
        "/ws" => {
            let key = req
                .headers()
                .get("sec-websocket-key")
                .cloned()
                .unwrap_or_else(|| "".parse().unwrap());
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let upgraded = on.await.unwrap();
                let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-accept", accept)
                .body(Empty::new().boxed())
                .unwrap()
        }
        _ => {
            let mut r = Response::new(full(name.to_owned()));
            for (k, v) in req.headers() {
                if let Ok(n) = http::HeaderName::try_from(format!("x-echo-{k}")) {
                    r.headers_mut().append(n, v.clone());
                }
            }
            if let Some(pq) = req.uri().path_and_query()
                && let Ok(v) = http::HeaderValue::from_str(pq.as_str())
            {
                r.headers_mut().insert("x-seen-path", v);
            }
            for (from, to) in [
                ("host", "x-seen-host"),
                ("x-forwarded-for", "x-seen-xff"),
                ("x-forwarded-proto", "x-seen-proto"),
                ("x-forwarded-port", "x-seen-port"),
                ("x-request-id", "x-seen-request-id"),
            ] {
                if let Some(v) = req.headers().get(from) {
                    r.headers_mut().insert(to, v.clone());
                }
            }
            r
        }
    }
}

/// Sockets holding the ports [`free_port`] handed out, for the life of the test process.
static HELD: Mutex<Vec<tokio::net::TcpSocket>> = Mutex::new(Vec::new());

/// A loopback port that no other process can take: a socket of this process stays bound to it
/// with `SO_REUSEADDR` but never listens, until the process exits. The kernel hands it to no
/// other `bind(0)` nor outgoing connection; a connection to it is refused; and a server that
/// binds it with `SO_REUSEADDR` (tokio's, std's and the proxy's listeners all do) can listen
/// on it, again after a restart. For an address a configuration file must name.
pub fn free_port() -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let port = socket.local_addr().unwrap().port();
    HELD.lock().unwrap().push(socket);
    port
}

/// Waits for the address file a proxy writes once its admin API is bound
/// (`admin_address_file`), polling every 5 ms for at most 10 s, and returns the address.
/// `failed` is asked at each poll whether the proxy already stopped (it then panics with why).
pub async fn admin_address(file: &Path, mut failed: impl FnMut() -> Option<String>) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            return text
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", file.display()));
        }
        if let Some(why) = failed() {
            panic!("the proxy stopped before binding its admin API: {why}");
        }
        assert!(
            Instant::now() < deadline,
            "the proxy wrote no admin address to {} within 10 s",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A running proxy.
pub struct Proxy {
    pub listen: SocketAddr,
    pub admin: AdminClient,
    pub admin_addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), cutover_proxy::ProxyError>>>,
    clock: cutover_proxy::ProxyClock,
}

impl Proxy {
    /// Writes `yaml` to `lb.yaml` in a temporary directory, with `LISTEN` replaced by a held
    /// loopback address ([`free_port`]) and `ADMIN` by `127.0.0.1:0` (the proxy reports the port
    /// it got), and starts a proxy on it, with `state/` as its state directory.
    pub async fn start(yaml: &str) -> Proxy {
        Self::start_with_clock(yaml, Default::default()).await
    }

    /// Like [`Proxy::start`], with the wall clock that authorizers and throttles read.
    pub async fn start_with_clock(yaml: &str, clock: cutover_proxy::ProxyClock) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let text = yaml
            .replace("LISTEN", &listen.to_string())
            .replace("ADMIN", "127.0.0.1:0");
        std::fs::write(dir.path().join("lb.yaml"), text).unwrap();
        let unbound = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut p = Proxy {
            listen,
            admin: AdminClient::new(format!("http://{unbound}")),
            admin_addr: unbound,
            dir,
            stop: None,
            task: None,
            clock,
        };
        p.launch(Some(p.config_path())).await;
        p
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("lb.yaml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Starts `run` (again), with or without the configuration file, and returns once the
    /// admin API is bound: `admin` and `admin_addr` then name the port it got this time.
    pub async fn launch(&mut self, config: Option<PathBuf>) {
        let address_file = self.dir.path().join("admin.address");
        let _ = std::fs::remove_file(&address_file);
        let (tx, rx) = oneshot::channel::<()>();
        let opts = ProxyOptions {
            config_path: config,
            state_dir: Some(self.state_dir()),
            workers: 1,
            admin_address: None,
            admin_token_file: None,
            admin_address_file: Some(address_file.clone()),
            clock: self.clock.clone(),
        };
        let task = tokio::spawn(cutover_proxy::run(opts, async {
            let _ = rx.await;
        }));
        self.stop = Some(tx);
        let addr = admin_address(&address_file, || {
            task.is_finished().then(|| "see the test output".to_owned())
        })
        .await;
        self.task = Some(task);
        self.admin_addr = addr;
        self.admin = AdminClient::new(format!("http://{addr}"));
    }

    /// Stops `run` and waits for it to return.
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }

    /// Waits until `group` reports `n` healthy targets.
    pub async fn wait_healthy(&self, group: &str, n: usize) {
        self.wait_for(&format!("{group} to have {n} healthy targets"), |h| {
            h.group(group).is_some_and(|g| g.healthy_host_count == n)
        })
        .await;
    }

    /// Polls the health report every 10 ms until `ok` holds; panics naming `what` after 10 s.
    pub async fn wait_for(
        &self,
        what: &str,
        mut ok: impl FnMut(&cutover_proxy::HealthReport) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let h = self.admin.health().await.unwrap();
            if ok(&h) {
                return;
            }
            assert!(Instant::now() < deadline, "waited 10 s for {what}: {h:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A plain HTTP/1.1 client.
pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Empty<Bytes>,
>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// Sends a GET with extra headers; returns status, headers and body text.
pub async fn get(
    client: &Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, String) {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = client.request(b.body(Empty::new()).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// A backend that accepts, reads, and never answers (or, with `head`, sends a head and a first
/// body chunk and then nothing).
pub async fn mute_backend(head: bool) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            if head {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst")
                    .await;
            }
            held.push(s);
        }
    });
    (addr, task)
}
