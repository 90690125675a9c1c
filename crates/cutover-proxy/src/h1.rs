//! Plain HTTP/1 downstream connections that hold no user-space buffers while idle.
//!
//! Each request is first offered to the fast path ([`fast`]): a request without a body for a
//! plain HTTP/1.1 target is forwarded there on the bare sockets. Anything else (bodies,
//! upgrades, `Expect`, guarded rules, TLS or HTTP/2 targets, anything unusual) is handed back
//! untouched before a byte goes anywhere and served by hyper as follows.
//!
//! hyper keeps an 8 KiB read and an 8 KiB write buffer per HTTP/1 connection for the
//! connection's whole life. Here a keep-alive connection waits for its next request on the bare
//! socket ([`TcpStream::readable`]), and a hyper connection object (with its buffers) exists
//! only while a request is read and answered: when hyper is idle again it is shut down
//! gracefully, the socket taken back with `into_parts` (bytes hyper had read ahead of the next
//! request, as pipelined requests leave, are replayed first), and the object dropped. Every
//! request the fast path does not take is parsed and encoded by hyper, so its request-smuggling
//! checks, header limits, 100-continue and upgrades apply unchanged; the fast path parses with
//! `httparse`, the parser inside hyper, and takes only requests without a body.
//!
//! When is hyper idle? After a request without a body (`is_end_stream` on arrival, so hyper's
//! read side is at a message boundary) whose response body hyper has released and flushed
//! (the last write-side call on the socket was a completed flush), a pending hyper connection
//! can only be waiting for the next request's head: had it decided to close (`Connection:
//! close`, HTTP/1.0, an error) it would have finished in that same poll. Only then is it asked
//! to shut down, and only a shutdown asked for in that state keeps the socket open. After a
//! request with a body, hyper keeps serving the connection in the same object (holding its
//! buffers as before) until a request without a body ends an exchange. On a busy connection
//! (its last idle wait was under [`LINGER`], 100 ms) the object is dropped only after hyper has
//! been idle for `LINGER`, so it does not pay for a new one per request; otherwise at once.
//!
//! The next request's head must be complete within the listener's
//! `requestHeaderTimeoutSeconds` after the previous response (the keep-alive idle time, as
//! before): one timer per connection, reset per exchange, replaces hyper's per-request one.
//! A connection whose first bytes are (a prefix of) the HTTP/2 preface is served by hyper-util's
//! automatic HTTP/1-or-2 connection for its whole life, as are TLS connections.

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use http::Request;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::conn::ConnState;
use crate::proxy::{self, BodyError, ConnCtx, ProxyBody};
use deadline::Deadline;
use fast::Fast;

mod deadline;
mod fast;
mod heads;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long hyper must have been idle before the connection object of a busy connection (one
/// whose last idle wait was shorter than this) is dropped: it keeps its object and saves
/// rebuilding it per request; other connections give it back as soon as hyper is idle.
const LINGER: Duration = Duration::from_millis(100);

/// What the driver reads to know when hyper is idle (see the module header).
#[derive(Debug, Default)]
pub(crate) struct Exchanges {
    /// Request heads received (ever).
    heads: AtomicUsize,
    /// Requests whose response body hyper has not released yet.
    open: AtomicUsize,
    /// The last request came with a body.
    bodied: AtomicBool,
    /// The last write-side call on the socket was a completed flush.
    flushed: AtomicBool,
    /// The driver asked hyper to shut down an idle connection: keep the socket open.
    detaching: AtomicBool,
}

/// The socket as hyper sees it: bytes read ahead of the last request first, then the stream;
/// notes traffic and flushes in the connection's [`ConnState`].
pub(crate) struct H1Io {
    stream: TcpStream,
    state: Arc<ConnState>,
    rewind: Bytes,
    /// `TCP_NODELAY` is set. It is set before the connection's second write, not at accept: a
    /// connection answered in one write and closed (`Connection: close`) never needs it, and
    /// the first write cannot be held back by Nagle's algorithm (nothing is unacknowledged).
    nodelay: bool,
}

impl H1Io {
    pub(crate) fn new(stream: TcpStream, state: Arc<ConnState>) -> Self {
        H1Io {
            stream,
            state,
            rewind: Bytes::new(),
            nodelay: false,
        }
    }

    /// Sets `TCP_NODELAY` once, before a write that may follow another.
    fn nodelay(&mut self) {
        if !self.nodelay {
            self.nodelay = true;
            let _ = self.stream.set_nodelay(true);
        }
    }

    /// Puts `ahead` (read by hyper, not parsed) before what is left to replay.
    fn unread(&mut self, ahead: Bytes) {
        if ahead.is_empty() {
            // Even empty, it may point into hyper's read buffer: keeping it would keep that.
            return;
        }
        if self.rewind.is_empty() {
            self.rewind = ahead;
        } else {
            let mut joined = BytesMut::with_capacity(ahead.len() + self.rewind.len());
            joined.extend_from_slice(&ahead);
            joined.extend_from_slice(&self.rewind);
            self.rewind = joined.freeze();
        }
    }

    #[inline]
    fn wrote(&self, r: &Poll<io::Result<usize>>) {
        self.state.h1.flushed.store(false, Relaxed);
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) {
            self.state.touch();
        }
    }
}

impl AsyncRead for H1Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.rewind.is_empty() {
            let n = this.rewind.len().min(buf.remaining());
            buf.put_slice(&this.rewind[..n]);
            this.rewind.advance(n);
            if this.rewind.is_empty() {
                // Release the buffer it points into.
                this.rewind = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.touch();
        }
        r
    }
}

impl AsyncWrite for H1Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(&r);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            this.state.h1.flushed.store(true, Relaxed);
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state.h1.detaching.load(Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// A response body that tells the driver when hyper releases it.
pub(crate) struct TrackedBody {
    inner: ProxyBody,
    state: Arc<ConnState>,
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.state.h1.open.fetch_sub(1, Relaxed);
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = BodyError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How one hyper connection object ended.
enum Ended {
    /// hyper went idle and gave the socket back.
    Idle,
    /// Closed: by hyper, an error, an upgrade, the listener stopping or the header deadline.
    Closed,
}

/// Serves a plain connection until it closes (see the module header); returns it instead
/// when it opens with the HTTP/2 preface (its bytes kept for replay), for hyper-util's
/// automatic HTTP/1-or-2 connection.
pub(crate) async fn serve(
    mut io: H1Io,
    ctx: Arc<ConnCtx>,
    builder: &http1::Builder,
    header_timeout: Duration,
    closing: &CancellationToken,
) -> Option<H1Io> {
    let state = ctx.state.clone();
    let service_ctx = ctx.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let ctx = &service_ctx;
        let x = &ctx.state.h1;
        x.heads.fetch_add(1, Relaxed);
        x.open.fetch_add(1, Relaxed);
        x.bodied.store(!req.body().is_end_stream(), Relaxed);
        let ctx = ctx.clone();
        async move {
            let state = ctx.state.clone();
            let Ok(resp) = proxy::serve(ctx, req).await;
            Ok::<_, Infallible>(resp.map(|inner| TrackedBody { inner, state }))
        }
    });
    let mut timer = pin!(tokio::time::sleep(header_timeout));
    let mut deadline = Deadline::new(timer.as_mut());
    let mut linger = pin!(tokio::time::sleep(LINGER));
    let mut stop = pin!(closing.cancelled());
    // Whether the last idle wait was shorter than LINGER: only then does the next hyper
    // object linger (a connection that sends one request and idles gives its buffers back at
    // once).
    let mut busy = false;
    let mut first = true;
    loop {
        if io.rewind.is_empty() {
            // Idle: no buffer is held while waiting for the next request.
            let idle_since = tokio::time::Instant::now();
            tokio::select! {
                biased;
                r = io.stream.readable() => if r.is_err() { return None },
                () = deadline.passed() => {
                    tracing::debug!(?header_timeout, "closing a keep-alive connection: no request in time");
                    return None;
                }
                () = stop.as_mut() => return None,
            }
            busy = idle_since.elapsed() < LINGER;
        }
        let fast = fast::exchange(&mut io, &ctx, &mut deadline, first, closing).await;
        first = false;
        match fast {
            Fast::KeepAlive => {
                deadline.set(tokio::time::Instant::now() + header_timeout);
                if closing.is_cancelled() {
                    return None;
                }
                io.nodelay();
                continue;
            }
            Fast::Close => return None,
            Fast::Http2 => {
                io.nodelay();
                return Some(io);
            }
            Fast::Fallback => io.nodelay(),
        }
        let heads = state.h1.heads.load(Relaxed);
        let mut armed_at = heads;
        // Boxed: the connection's task stays small while it idles without one.
        let mut conn = Box::new(
            builder
                .serve_connection(TokioIo::new(io), &service)
                .with_upgrades(),
        );
        let mut lingering = heads;
        let mut asked = false;
        let mut detach = false;
        let ended = poll_fn(|cx| {
            loop {
                if let Poll::Ready(r) = Pin::new(&mut *conn).poll(cx) {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "downstream connection ended with an error");
                        return Poll::Ready(Ended::Closed);
                    }
                    return Poll::Ready(if detach { Ended::Idle } else { Ended::Closed });
                }
                let x = &state.h1;
                let now_heads = x.heads.load(Relaxed);
                if !asked {
                    if stop.as_mut().poll(cx).is_ready() {
                        asked = true;
                        Pin::new(&mut *conn).graceful_shutdown();
                        continue;
                    }
                    let quiet = x.open.load(Relaxed) == 0 && x.flushed.load(Relaxed);
                    let idle = quiet && !x.bodied.load(Relaxed);
                    if idle && now_heads != lingering {
                        // Idle from now: give the buffers back if no request follows soon.
                        lingering = now_heads;
                        if busy {
                            linger.as_mut().reset(tokio::time::Instant::now() + LINGER);
                        }
                    }
                    if idle
                        && now_heads == lingering
                        && now_heads != heads
                        && (!busy || linger.as_mut().poll(cx).is_ready())
                    {
                        // The idle wait that follows runs from the end of this exchange.
                        deadline.set(tokio::time::Instant::now() + header_timeout);
                        asked = true;
                        detach = true;
                        x.detaching.store(true, Relaxed);
                        Pin::new(&mut *conn).graceful_shutdown();
                        continue;
                    }
                    if quiet && now_heads != armed_at {
                        // An exchange ended and hyper serves on: the next head is due in time.
                        armed_at = now_heads;
                        deadline.set(tokio::time::Instant::now() + header_timeout);
                    }
                }
                if now_heads == armed_at && deadline.poll_passed(cx).is_ready() {
                    tracing::debug!(
                        ?header_timeout,
                        "closing a connection whose request head did not arrive in time"
                    );
                    return Poll::Ready(Ended::Closed);
                }
                return Poll::Pending;
            }
        })
        .await;
        state.h1.detaching.store(false, Relaxed);
        let (Ended::Idle, Some(parts)) = (ended, (*conn).into_parts()) else {
            return None;
        };
        io = parts.io.into_inner();
        // The header deadline runs on from the end of the last exchange.
        io.unread(parts.read_buf);
    }
}
