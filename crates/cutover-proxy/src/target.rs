//! One backend target: its health state, in-flight count, draining signal and upstream
//! connections: a keep-alive pool of HTTP/1.1 connections, or (`h2c`, or a `protocolVersion`
//! of `HTTP2` / `GRPC`) one multiplexed HTTP/2 connection; over TCP or, for `protocol: HTTPS`,
//! TLS (`transport.rs`).
//!
//! Both close a connection left unused for the group's `idleTimeoutSeconds`; HTTP/1 holds at
//! most `maxConnectionsPerTarget` connections (pooled or in use) per target, a request waiting
//! for a free one when all are busy (within the group's response timeout).
//!
//! The pool is ours rather than hyper-util's so that a request whose connection could not be
//! established (or whose pooled connection turned out closed before any byte was written) comes
//! back intact and can be retried on another target, which is what makes a target dying
//! between two health checks invisible to clients.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::TargetGroupConfig;
use crate::health::{HealthSink, TargetState};
use crate::metrics::Counters;
use h2::H2Slot;
pub use transport::Transport;
pub(crate) use transport::{Stream, host_of};

mod h2;
mod transport;

/// Keep at most this many idle connections per target.
const MAX_IDLE: usize = 1024;
/// Give up connecting to a target after this long (counts as a connect failure).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A registered target.
pub(crate) struct Target {
    /// The target group it belongs to.
    pub(crate) group: Arc<str>,
    /// The address as configured (`127.0.0.1:19001`).
    pub(crate) address: Arc<str>,
    /// The resolved address.
    pub(crate) addr: SocketAddr,
    probe_state: AtomicU8,
    draining: AtomicBool,
    reason: Mutex<String>,
    in_flight: AtomicUsize,
    idle: Notify,
    /// Cancelled when the deregistration delay is over: in-flight work is cut.
    pub(crate) cut: CancellationToken,
    pool: Mutex<Vec<(Upstream, Instant)>>,
    /// Idle connections of the HTTP/1 fast path (`crate::fast`): bare sockets, no buffers.
    raw: Mutex<Vec<(TcpStream, Instant)>>,
    /// How connections to this target are made and kept.
    pub(crate) settings: UpstreamSettings,
    /// Connection slots when `maxConnectionsPerTarget` is set.
    permits: Option<Arc<Semaphore>>,
    /// Signalled when a connection goes back to the pool (with `permits` only).
    released: Notify,
    /// The HTTP/2 connection of an `h2c` target.
    h2: Arc<H2Slot>,
    /// The running health-check task, if the group has a health check.
    pub(crate) checker: Mutex<Option<tokio::task::AbortHandle>>,
    /// This target's requests, 5xx and latency.
    pub(crate) counters: Arc<Counters>,
}

/// Why a request could not be sent to a target.
#[allow(clippy::large_enum_variant)] // returned once per request attempt, never stored
pub(crate) enum SendError {
    /// No byte of the request was written: it is returned for a retry elsewhere.
    NotSent(Request<Incoming>, String),
    /// The request may have reached the target: no retry.
    Failed(hyper::Error),
}

/// A target group's upstream connection settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UpstreamSettings {
    /// TCP or TLS, HTTP/1.1 or HTTP/2.
    pub(crate) transport: Transport,
    /// Unused connections are closed after this long.
    pub(crate) idle_timeout: Duration,
    /// Connections per target at most (HTTP/1).
    pub(crate) max_connections: Option<u32>,
}

impl UpstreamSettings {
    /// The settings of `tg`, whose connections `transport` makes.
    pub(crate) fn of(tg: &TargetGroupConfig, transport: Transport) -> Self {
        UpstreamSettings {
            transport,
            idle_timeout: tg.upstream_idle_timeout(),
            max_connections: tg.max_connections_per_target,
        }
    }
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            transport: Transport::default(),
            idle_timeout: Duration::from_secs_f64(
                crate::config::DEFAULT_UPSTREAM_IDLE_TIMEOUT_SECONDS,
            ),
            max_connections: None,
        }
    }
}

impl Target {
    /// A new target in state `initial` (or `healthy` when its group has no health check).
    pub(crate) fn new(
        group: &str,
        address: &str,
        addr: SocketAddr,
        checked: bool,
        counters: Arc<Counters>,
        settings: UpstreamSettings,
    ) -> Arc<Self> {
        let (state, reason) = if checked {
            (TargetState::Initial, "waiting for the first health check")
        } else {
            (TargetState::Healthy, "health checks disabled")
        };
        let permits = settings
            .max_connections
            .map(|n| Arc::new(Semaphore::new(n as usize)));
        Arc::new(Target {
            group: group.into(),
            address: address.into(),
            addr,
            probe_state: AtomicU8::new(state.as_u8()),
            draining: AtomicBool::new(false),
            reason: Mutex::new(reason.to_owned()),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            cut: CancellationToken::new(),
            pool: Mutex::new(Vec::new()),
            raw: Mutex::new(Vec::new()),
            settings,
            permits,
            released: Notify::new(),
            h2: Arc::default(),
            checker: Mutex::new(None),
            counters,
        })
    }

    /// The health-check state (`initial`, `healthy`, `unhealthy`), ignoring draining.
    pub(crate) fn probe_state(&self) -> TargetState {
        TargetState::from_u8(self.probe_state.load(Ordering::Relaxed))
    }

    /// The state reported to operators.
    pub(crate) fn state(&self) -> TargetState {
        if self.is_draining() {
            TargetState::Draining
        } else {
            self.probe_state()
        }
    }

    /// The reason for the current state.
    pub(crate) fn reason(&self) -> String {
        self.reason.lock().unwrap().clone()
    }

    /// Whether the target may receive new requests in normal operation.
    #[inline]
    pub(crate) fn routable(&self) -> bool {
        self.probe_state.load(Ordering::Relaxed) == TargetState::Healthy.as_u8()
            && !self.is_draining()
    }

    /// Whether the target may receive new requests when a forward fails open.
    #[inline]
    pub(crate) fn fail_open_candidate(&self) -> bool {
        !self.is_draining()
    }

    #[inline]
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Requests (and tunnels) currently using this target.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Counts one request in flight until the returned guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Stops new requests and health checks, waits until in-flight work finished or `delay`
    /// elapsed, then cuts what is left and closes the pool.
    pub(crate) async fn drain(self: Arc<Self>, delay: Duration) {
        self.draining.store(true, Ordering::Release);
        *self.reason.lock().unwrap() = format!("deregistered; draining for up to {delay:?}");
        if let Some(h) = self.checker.lock().unwrap().take() {
            h.abort();
        }
        self.pool.lock().unwrap().clear();
        self.raw.lock().unwrap().clear();
        self.h2.sender.lock().await.take();
        let finished = async {
            loop {
                let notified = self.idle.notified();
                if self.in_flight() == 0 {
                    break;
                }
                notified.await;
            }
        };
        let left = match tokio::time::timeout(delay, finished).await {
            Ok(()) => 0,
            Err(_) => self.in_flight(),
        };
        self.cut.cancel();
        self.pool.lock().unwrap().clear();
        self.raw.lock().unwrap().clear();
        tracing::info!(target_group = %self.group, target_addr = %self.address, cut = left, "target drained");
    }

    /// Sends `req` on a pooled or new connection. Returns the response and the connection, to
    /// be given back with [`Target::release`] once the response body is complete.
    ///
    /// Ordinary requests drive their connection inline, in the downstream connection's task
    /// (no task hop per request); upgrades get a fresh connection driven by its own task, which
    /// hands the upgraded stream over after `101 Switching Protocols`.
    ///
    /// An HTTP/2 target gets the request on its HTTP/2 connection (made on first use, made again
    /// once if it turned out closed); `te_trailers` keeps the client's `TE: trailers` (gRPC).
    /// Upgrades always use HTTP/1.1.
    pub(crate) async fn send(
        &self,
        mut req: Request<Incoming>,
        upgrade: bool,
        te_trailers: bool,
    ) -> Result<(Response<Incoming>, Option<Upstream>), SendError> {
        if self.settings.transport.http2() && !upgrade {
            // Boxed, as is a new connection's handshake below: the pooled HTTP/1 path keeps
            // the request future (held per downstream connection) small.
            return Box::pin(self.send_h2(req, te_trailers))
                .await
                .map(|r| (r, None));
        }
        let permit = loop {
            if !upgrade {
                loop {
                    let pooled = self.pool.lock().unwrap().pop();
                    let Some((mut up, since)) = pooled else { break };
                    if since.elapsed() >= self.settings.idle_timeout || up.ready().await.is_err() {
                        continue;
                    }
                    match up.exchange(req).await {
                        Ok(resp) => return Ok((resp, Some(up))),
                        Err(mut e) => match e.take_message() {
                            // The pooled connection was closed by the target before we
                            // wrote: retry on a fresh connection to the same target.
                            Some(r) => req = r,
                            None => return Err(SendError::Failed(e.into_error())),
                        },
                    }
                }
            }
            let Some(permits) = &self.permits else {
                break None;
            };
            // At the limit: a new slot, or a connection given back to the pool, whichever
            // comes first.
            tokio::select! {
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => break Some(p),
                    Err(_) => return Err(SendError::NotSent(req, "target closed".to_owned())),
                },
                _ = self.released.notified(), if !upgrade => {}
            }
        };
        let mut up = match Box::pin(self.connect(upgrade)).await {
            Ok(s) => s,
            Err(reason) => return Err(SendError::NotSent(req, reason)),
        };
        up.permit = permit;
        match up.exchange(req).await {
            Ok(resp) => Ok((resp, Some(up))),
            Err(mut e) => match e.take_message() {
                Some(r) => Err(SendError::NotSent(r, e.into_error().to_string())),
                None => Err(SendError::Failed(e.into_error())),
            },
        }
    }

    async fn connect(&self, upgrade: bool) -> Result<Upstream, String> {
        let stream = self.tcp(true).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {} failed: {e}", self.addr))?;
        if upgrade {
            let addr = self.addr;
            tokio::spawn(async move {
                if let Err(e) = conn.with_upgrades().await {
                    tracing::debug!(target_addr = %addr, error = %e, "upstream connection ended");
                }
            });
            return Ok(Upstream {
                sender,
                conn: None,
                permit: None,
            });
        }
        Ok(Upstream {
            sender,
            conn: Some(Box::pin(conn)),
            permit: None,
        })
    }

    /// A new connection (TLS included) to the target; `http1` asks TLS for ALPN `http/1.1`.
    async fn tcp(&self, http1: bool) -> Result<transport::Stream, String> {
        let host = transport::host_of(&self.address);
        let connect = self.settings.transport.connect(self.addr, host, http1);
        self.bounded(connect).await
    }

    /// `connect`, within the connect timeout; its failure in words.
    async fn bounded<T>(
        &self,
        connect: impl Future<Output = std::io::Result<T>>,
    ) -> Result<T, String> {
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| format!("connect to {} timed out", self.addr))?
            .map_err(|e| format!("connect to {} failed: {e}", self.addr))
    }

    /// Puts an idle connection at the back of `pool` (the oldest are at the front), dropping
    /// those unused for the idle timeout; false when the pool is full or the target draining.
    fn give_back<C>(&self, pool: &Mutex<Vec<(C, Instant)>>, conn: C) -> bool {
        if self.is_draining() {
            return false;
        }
        let now = Instant::now();
        let mut pool = pool.lock().unwrap();
        self.drop_stale(&mut pool, now);
        if pool.len() >= MAX_IDLE {
            return false;
        }
        pool.push((conn, now));
        true
    }

    /// Returns a connection whose response was fully read to the pool.
    pub(crate) fn release(&self, up: Upstream) {
        if up.conn.is_none() || up.sender.is_closed() {
            return;
        }
        if self.give_back(&self.pool, up) && self.permits.is_some() {
            self.released.notify_one();
        }
    }
}

/// The fast path's connections (`crate::fast`): bare plain-TCP sockets, pooled while idle.
impl Target {
    /// Whether the HTTP/1 fast path may send to this target: plain TCP and HTTP/1.1, and no
    /// `maxConnectionsPerTarget` (whose slots hyper's pool counts).
    pub(crate) fn raw_capable(&self) -> bool {
        let t = &self.settings.transport;
        !t.tls() && !t.http2() && self.permits.is_none()
    }

    /// The most recently used idle connection, if one is left within the idle timeout.
    pub(crate) fn take_raw(&self) -> Option<TcpStream> {
        let (stream, since) = self.raw.lock().unwrap().pop()?;
        (since.elapsed() < self.settings.idle_timeout).then_some(stream)
    }

    /// A new connection (TCP_NODELAY), within the connect timeout.
    pub(crate) async fn connect_raw(&self) -> Result<TcpStream, String> {
        let stream = self.bounded(TcpStream::connect(self.addr)).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Pools a connection whose response was read to its end.
    pub(crate) fn release_raw(&self, stream: TcpStream) {
        self.give_back(&self.raw, stream);
    }
}

type Conn = http1::Connection<TokioIo<transport::Stream>, Incoming>;

/// An upstream HTTP/1.1 connection: the request sender and, unless a task of its own drives
/// it, the connection future, polled by whoever uses the connection.
pub(crate) struct Upstream {
    sender: SendRequest<Incoming>,
    /// `None` once the connection finished, or when a spawned task drives it.
    conn: Option<Pin<Box<Conn>>>,
    /// Its slot under `maxConnectionsPerTarget`, released when the connection is dropped.
    permit: Option<OwnedSemaphorePermit>,
}

impl Target {
    /// Closes pooled connections unused for the idle timeout (called every second by the
    /// metrics sampler, so an unused pool empties without traffic too).
    pub(crate) fn prune_idle(&self) {
        let now = Instant::now();
        self.drop_stale(&mut self.pool.lock().unwrap(), now);
        self.drop_stale(&mut self.raw.lock().unwrap(), now);
    }

    /// The oldest pooled connections are at the front: drops those unused for the idle timeout.
    fn drop_stale<C>(&self, pool: &mut Vec<(C, Instant)>, now: Instant) {
        let stale = pool
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) >= self.settings.idle_timeout)
            .count();
        pool.drain(..stale);
    }
}

impl Upstream {
    /// Drives the connection's IO; forgets it once it finished.
    pub(crate) fn poll_conn(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = &mut self.conn
            && let Poll::Ready(r) = conn.as_mut().poll(cx)
        {
            if let Err(e) = r {
                tracing::debug!(error = %e, "upstream connection ended");
            }
            self.conn = None;
        }
    }

    /// Waits until the pooled connection can take a request; fails if it was closed.
    async fn ready(&mut self) -> Result<(), ()> {
        std::future::poll_fn(|cx| {
            self.poll_conn(cx);
            if self.conn.is_none() {
                return Poll::Ready(Err(()));
            }
            self.sender.poll_ready(cx).map_err(|_| ())
        })
        .await
    }

    /// Sends the request and drives the connection until the response head arrives.
    async fn exchange(
        &mut self,
        req: Request<Incoming>,
    ) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<Incoming>>> {
        let mut response = std::pin::pin!(self.sender.try_send_request(req));
        std::future::poll_fn(|cx| {
            self.poll_conn(cx);
            response.as_mut().poll(cx)
        })
        .await
    }
}

/// Holds one unit of a target's in-flight count.
pub(crate) struct InFlight(pub(crate) Arc<Target>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 && self.0.is_draining() {
            self.0.idle.notify_waiters();
        }
    }
}

impl HealthSink for Target {
    fn report(&self, state: TargetState, reason: &str, changed: bool) {
        self.probe_state.store(state.as_u8(), Ordering::Relaxed);
        let mut r = self.reason.lock().unwrap();
        if changed || *r != reason {
            reason.clone_into(&mut r);
        }
    }
}
