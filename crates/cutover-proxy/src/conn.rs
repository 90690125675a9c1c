//! Downstream connection guards: an IO wrapper that notes traffic, the watchdog that closes
//! connections which never send a request or go idle, and the answer to connections over
//! the cap.
//!
//! Per listener (see [`crate::config::ListenerConfig`]):
//! - **first request**: a connection whose first request (headers complete; for TLS, after
//!   the handshake; for HTTP/2, after the preface and settings) has not arrived
//!   `requestHeaderTimeoutSeconds` after accept is closed: silent sockets, partial headers and
//!   a bare HTTP/2 preface included. On HTTP/1, every next request's headers must arrive within
//!   the same time after the previous response (on plain listeners the connection's one header
//!   timer in [`crate::h1`], on TLS hyper's header read timeout), which is also the keep-alive
//!   idle time between requests (as HAProxy's `timeout http-keep-alive` falls back to
//!   `timeout http-request`);
//! - **idle**: a connection with no request waiting for its response and no byte read or
//!   written for `idleTimeoutSeconds` is closed (ALB's idle timeout), HTTP/2 included;
//! - **cap**: at `maxConnections` open connections on a listener, or when all listeners
//!   together reach the descriptor budget ([`crate::limits::downstream_budget`]), a new
//!   connection is accepted and closed at once; a plain listener first writes a `503` with
//!   `Connection: close` (one non-blocking write, the request is never read). Accepting keeps
//!   the backlog moving, so the client learns at once instead of timing out, and the loop never
//!   spins. Each is counted as `RejectedConnectionCount`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the watchdog knows about one connection; updated by [`ActivityIo`] and the request
/// path.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Set by every read or write that moved bytes; cleared by the watchdog.
    activity: AtomicBool,
    /// Set when the first request's headers arrived.
    started: AtomicBool,
    /// Requests whose response head has not been produced yet.
    waiting: AtomicUsize,
    /// The HTTP/1 exchange state [`crate::h1`] reads to find when hyper is idle.
    pub(crate) h1: crate::h1::Exchanges,
}

impl ConnState {
    /// Notes traffic (for the idle check).
    #[inline]
    pub(crate) fn touch(&self) {
        self.activity.store(true, Ordering::Relaxed);
    }

    /// Marks a request as received until the returned guard drops (when its response head is
    /// ready).
    #[inline]
    pub(crate) fn request(&self) -> Waiting<'_> {
        self.started.store(true, Ordering::Relaxed);
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }
}

/// A request waiting for its response head.
pub(crate) struct Waiting<'a>(&'a ConnState);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.activity.store(true, Ordering::Relaxed);
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves when the connection must be closed: no first request within `header_timeout`, or
/// idle for `idle_timeout` (checked in quarters of it, so it fires between 1 and 1.25 times
/// `idle_timeout` after the last traffic).
pub(crate) async fn watchdog(state: &ConnState, header_timeout: Duration, idle_timeout: Duration) {
    tokio::time::sleep(header_timeout).await;
    if !state.started.load(Ordering::Relaxed) {
        tracing::debug!(
            ?header_timeout,
            "closing a connection that sent no complete request in time"
        );
        return;
    }
    let tick = idle_timeout / 4;
    let mut quiet = 0;
    loop {
        tokio::time::sleep(tick).await;
        let busy = state.activity.swap(false, Ordering::Relaxed)
            || state.waiting.load(Ordering::Relaxed) > 0;
        if busy {
            quiet = 0;
        } else {
            quiet += 1;
            if quiet >= 4 {
                tracing::debug!(?idle_timeout, "closing an idle connection");
                return;
            }
        }
    }
}

/// A stream that records traffic in a [`ConnState`].
pub(crate) struct ActivityIo<T> {
    inner: T,
    state: Arc<ConnState>,
}

impl<T> ActivityIo<T> {
    pub(crate) fn new(inner: T, state: Arc<ConnState>) -> Self {
        ActivityIo { inner, state }
    }

    #[inline]
    fn touch(&self) {
        self.state.touch();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ActivityIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ActivityIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The answer written to a connection over the cap on a plain listener.
pub(crate) const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain\r\ncontent-length: 21\r\nconnection: close\r\nretry-after: 1\r\n\r\n\
too many connections\n";

/// Refuses a connection over the cap: one non-blocking write of [`OVER_CAPACITY`] (plain
/// listeners), then close.
pub(crate) fn refuse(stream: tokio::net::TcpStream, plain: bool) {
    if plain {
        let _ = stream.try_write(OVER_CAPACITY);
    }
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_capacity_answer_is_well_formed() {
        let text = std::str::from_utf8(OVER_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_is_closed_at_the_header_timeout() {
        let state = ConnState::default();
        let start = tokio::time::Instant::now();
        watchdog(&state, Duration::from_secs(10), Duration::from_secs(60)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_closes_only_without_traffic_or_waiting_requests() {
        let state = Arc::new(ConnState::default());
        drop(state.request());
        let start = tokio::time::Instant::now();
        let s = state.clone();
        let dog = tokio::spawn(async move {
            watchdog(&s, Duration::from_secs(1), Duration::from_secs(4)).await;
        });
        // A request waits for its response for 30 s: the connection stays.
        let waiting = state.request();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!dog.is_finished());
        drop(waiting);
        dog.await.unwrap();
        let closed = start.elapsed();
        assert!(
            closed >= Duration::from_secs(34) && closed <= Duration::from_secs(36),
            "{closed:?}"
        );
    }
}
