//! Test helpers: a small backend on an ephemeral port, a proxy started in-process, and an HTTP
//! client.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(full(name.to_owned()))
        }
        "/sse" => {
            let stream = futures_util::stream::unfold(0u32, |i| async move {
                if i >= 2 {
                    return None;
                }
                if i > 0 {
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

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running proxy.
pub struct Proxy {
    pub listen: SocketAddr,
    pub admin: AdminClient,
    pub admin_addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), cutover_proxy::ProxyError>>>,
}

impl Proxy {
    /// Writes `yaml` (with `LISTEN` and `ADMIN` replaced by free addresses) to `lb.yaml` in a
    /// temporary directory and starts a proxy on it, with `state/` as its state directory.
    pub async fn start(yaml: &str) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let text = yaml
            .replace("LISTEN", &listen.to_string())
            .replace("ADMIN", &admin_addr.to_string());
        std::fs::write(dir.path().join("lb.yaml"), text).unwrap();
        let mut p = Proxy {
            listen,
            admin: AdminClient::new(format!("http://{admin_addr}")),
            admin_addr,
            dir,
            stop: None,
            task: None,
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

    /// Starts `run` (again), with or without the configuration file.
    pub async fn launch(&mut self, config: Option<PathBuf>) {
        let (tx, rx) = oneshot::channel::<()>();
        let opts = ProxyOptions {
            config_path: config,
            state_dir: Some(self.state_dir()),
            workers: 1,
            admin_address: None,
            admin_token_file: None,
            admin_address_file: None,
        };
        self.task = Some(tokio::spawn(cutover_proxy::run(opts, async {
            let _ = rx.await;
        })));
        self.stop = Some(tx);
        for _ in 0..200 {
            if self.admin.status().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("proxy did not start");
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
        for _ in 0..500 {
            let h = self.admin.health().await.unwrap();
            if h.group(group).is_some_and(|g| g.healthy_host_count == n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{group} never had {n} healthy targets");
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
