//! The HTTP/1 forwarding fast path: the common exchange (a request without a body, forwarded
//! to a plain HTTP/1.1 target) done on the bare sockets, with no per-message header map, no
//! channel between a client and a connection task, and buffers only while the exchange runs.
//!
//! A request takes this path only when nothing about it needs more than passing bytes on:
//! - HTTP/1.1, a method other than `CONNECT`, an origin-form target of RFC 3986 path and query
//!   characters whose path normalises to itself, one valid `Host`;
//! - no body and no hop-by-hop fields beyond `Connection: keep-alive` or `close`: no
//!   `Content-Length` other than `0`, no `Transfer-Encoding`, `Expect`, `Upgrade`, `TE`,
//!   `Trailer`, `Keep-Alive`, `Proxy-Connection` or `Proxy-Authenticate`;
//! - the head fits in one buffer (8 KiB) within the listener's size limits, 64 fields at most;
//! - a client outside `trustedProxies`, a rule with no authorizer or throttle, a `forward`
//!   action, and a target group on plain TCP, HTTP/1.1, without `maxConnectionsPerTarget`.
//!
//! Anything else is decided before a byte goes anywhere, and the bytes read go back to the
//! connection's replay buffer for hyper ([`super::serve`]), which parses and answers exactly as
//! before, errors included. So this path adds no grammar of its own for requests: `httparse` is
//! the parser hyper itself uses, and what it would refuse or treat specially never gets here.
//!
//! Forwarded heads carry the same fields as hyper's path ([`crate::headers`]): hop-by-hop
//! fields removed, the client's forwarding fields replaced, `X-Request-Id` added when missing.
//! A response head's fields are the target's, less hop-by-hop ones, with the framing fields
//! written by the proxy from how it delimits the body (never copied: a `Connection` naming
//! `Content-Length`, a repeated or a stray length cannot make the client read the body
//! differently). The body is passed on byte for byte: a `Content-Length` body by count, a
//! chunked body framing included (its end found by [`crate::chunked`]; trailers are not passed
//! on, as hyper's path does not send them either), a body without either until the target
//! closes (then the client's connection closes too). Interim `1xx` heads are dropped and
//! bounded together by the head size limit; status codes below 100 get 502. Writing the request
//! to the target is bounded by the response timeout like reading the answer. A target connection is
//! reused only when its response ended exactly where its framing said; a pooled one that turns
//! out closed before any response byte is replaced by a new connection for idempotent methods.
//! Response timeouts, the drain cut-off, retries on other targets when a connection cannot be
//! made, the proxy's own 502/503/504 answers and every metric are those of the hyper path.

use std::cell::RefCell;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::deadline::Deadline;
use super::heads::{BadHead, Framing, Head, MAX_RESPONSE_HEAD, Parse, Plan, plan, response_head};
use super::{H1Io, H2_PREFACE};
use crate::chunked::ChunkedEnd;
use crate::conn::Waiting;
use crate::proxy::{ActiveGuard, ConnCtx, Failure, MAX_ATTEMPTS};
use crate::routing::{self, ListenerRt};
use crate::target::Target;

/// What became of one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fast {
    /// Answered; the connection waits for the next request.
    KeepAlive,
    /// Answered, or ended past recovery: close the connection.
    Close,
    /// Not for this path: what was read is back in the replay buffer for hyper.
    Fallback,
    /// The connection opened with the HTTP/2 preface, now in the replay buffer.
    Http2,
}

/// A buffer's size as taken from the pool; request heads must fit in it.
const BUF: usize = 8 * 1024;
/// Buffers kept for reuse per worker thread.
const SPARE: usize = 64;
/// The buffer a body is copied through grows to this size for long bodies.
const BODY_BUF: usize = 64 * 1024;

thread_local! {
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer from the worker's spares, given back when dropped (unless it grew).
struct Buf(Vec<u8>);

impl Buf {
    fn take() -> Buf {
        Buf(SPARES
            .with_borrow_mut(Vec::pop)
            .unwrap_or_else(|| Vec::with_capacity(BUF)))
    }

    /// Room for at least `n` more bytes.
    fn room(&mut self, n: usize) {
        if self.0.capacity() - self.0.len() < n {
            self.0.reserve(n);
        }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if self.0.capacity() == BUF {
            let mut v = std::mem::take(&mut self.0);
            v.clear();
            SPARES.with_borrow_mut(|s| {
                if s.len() < SPARE {
                    s.push(v);
                }
            });
        }
    }
}

/// Serves the request whose bytes are in the replay buffer or arrive next (the caller saw the
/// socket readable), or hands it back (see the module header). `deadline` holds the next head's
/// deadline, which bounds the wait for the rest of a partial head; the response's deadlines
/// are put in force there in turn.
pub(crate) async fn exchange(
    io: &mut H1Io,
    ctx: &ConnCtx,
    deadline: &mut Deadline<'_>,
    first: bool,
    closing: &CancellationToken,
) -> Fast {
    let mut inb = Buf::take();
    inb.0.extend_from_slice(&io.rewind);
    io.rewind = Bytes::new();
    let mut out = Buf::take();
    let mut snapshot;
    let (plan, head_len, listener) = loop {
        // A connection's first bytes may be (the start of) the HTTP/2 preface.
        let h2 = first && H2_PREFACE.starts_with(&inb.0[..inb.0.len().min(H2_PREFACE.len())]);
        if h2 && inb.0.len() >= H2_PREFACE.len() {
            fallback(io, inb);
            return Fast::Http2;
        }
        if !h2 {
            // The configuration in force once the head is complete routes the request, not the
            // one in force when its first bytes came (a client writing a head in pieces, or
            // slowly, would otherwise be sent to targets drained meanwhile).
            snapshot = ctx.shared.snapshot.load_full();
            // A listener being removed: hyper's path answers.
            let Some(listener) = snapshot.listener(&ctx.listener) else {
                return fallback(io, inb);
            };
            match plan(&inb.0, ctx, listener, &mut out.0) {
                Ok((p, len)) => break (p, len, listener),
                Err(Parse::Fallback) => return fallback(io, inb),
                Err(Parse::Partial) if inb.0.len() >= BUF => return fallback(io, inb),
                Err(Parse::Partial) => {}
            }
        }
        inb.room(BUF - inb.0.len());
        let read = tokio::select! {
            biased;
            r = io.stream.read_buf(&mut inb.0) => r,
            () = deadline.passed() => return Fast::Close,
        };
        match read {
            Ok(0) | Err(_) => return Fast::Close,
            Ok(_) => ctx.state.touch(),
        }
    };
    // Pipelined bytes after the head wait in the replay buffer for the next exchange.
    if inb.0.len() > head_len {
        io.unread(Bytes::copy_from_slice(&inb.0[head_len..]));
        inb.0.truncate(head_len);
    }
    let waiting = ctx.state.request();
    forward(
        io, ctx, listener, plan, inb, out, waiting, deadline, closing,
    )
    .await
}

/// Gives the request back to hyper: the bytes read go before what is left to replay.
fn fallback(io: &mut H1Io, inb: Buf) -> Fast {
    if !inb.0.is_empty() {
        io.unread(Bytes::copy_from_slice(&inb.0));
    }
    Fast::Fallback
}

/// Why waiting on a target stopped.
enum Stop {
    /// The target closed, or the socket failed.
    Closed,
    /// Silent for the group's response timeout.
    Silent,
    /// Drained: the deregistration delay elapsed.
    Cut,
}

/// Reads what the target sends next into `buf` (appending), before the deadline in force and
/// the drain.
async fn read_target(
    up: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: &mut Deadline<'_>,
    cut: &CancellationToken,
) -> Result<usize, Stop> {
    tokio::select! {
        biased;
        r = up.read_buf(buf) => match r {
            Ok(0) | Err(_) => Err(Stop::Closed),
            Ok(n) => Ok(n),
        },
        () = cut.cancelled() => Err(Stop::Cut),
        () = deadline.passed() => Err(Stop::Silent),
    }
}

/// A pooled connection that has not been closed by its target (as far as the socket shows
/// without waiting), else a new one.
async fn connection(target: &Target) -> Result<(TcpStream, bool), String> {
    while let Some(s) = target.take_raw() {
        let mut cx = Context::from_waker(Waker::noop());
        match s.poll_read_ready(&mut cx) {
            // Nothing to read: open. Readiness on an idle connection means EOF or stray bytes.
            Poll::Pending => return Ok((s, true)),
            Poll::Ready(_) => {
                let mut probe = [0u8; 1];
                if matches!(s.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                {
                    return Ok((s, true));
                }
            }
        }
    }
    // Boxed: a new connection's future (the connect and its timeout) would otherwise size
    // every connection's task, which is copied whole when the task is spawned.
    Box::pin(target.connect_raw()).await.map(|s| (s, false))
}

/// What one attempt on one target came to.
enum Attempt {
    /// No connection could be made: another target may be tried.
    NotConnected(String),
    /// The proxy answers this failure.
    Failed(Failure),
    /// A response head, rewritten for the client in `out`; its body starts at `inb[body_at..]`.
    Head {
        up: TcpStream,
        head: Head,
        body_at: usize,
        close: bool,
    },
}

/// Sends the request head in `out` to `target` and reads the response head. A pooled
/// connection closed under us is replaced (for idempotent requests once a byte was written).
/// `out` keeps the request head until a response head replaces it ([`response_head`] writes
/// only on success), so a replaced connection gets it again.
async fn attempt(
    target: &Target,
    plan: &Plan<'_>,
    deadline: &mut Deadline<'_>,
    inb: &mut Buf,
    out: &mut Buf,
    closing: &CancellationToken,
) -> Attempt {
    loop {
        let (mut up, reused) = match connection(target).await {
            Ok(c) => c,
            Err(reason) => return Attempt::NotConnected(reason),
        };
        inb.0.clear();
        // Bounded like the response: a target that never reads must not hold us forever.
        let wrote = tokio::select! {
            biased;
            r = up.write_all(&out.0) => r.is_ok(),
            () = target.cut.cancelled() => return Attempt::Failed(Failure::Deregistered),
            () = deadline.passed() => return Attempt::Failed(Failure::Timeout),
        };
        if !wrote {
            if reused {
                continue;
            }
            return Attempt::Failed(Failure::TargetFailed);
        }
        // Interim (1xx) heads are dropped from the buffer as they come; together they may not
        // exceed what one head may (hyper's client keeps them in its bounded buffer too).
        let mut interim = 0;
        loop {
            if !inb.0.is_empty() {
                let mut close = plan.close || closing.is_cancelled();
                match response_head(&inb.0, plan.head, &mut close, &mut out.0) {
                    Ok(head) => {
                        let body_at = head.len;
                        return Attempt::Head {
                            up,
                            head,
                            body_at,
                            close,
                        };
                    }
                    Err(BadHead::Partial) => {}
                    Err(BadHead::Interim(n)) => {
                        interim += n;
                        inb.0.drain(..n);
                        if interim > MAX_RESPONSE_HEAD {
                            tracing::warn!(target_group = %target.group, target_addr = %target.address, "target sent too many interim responses");
                            return Attempt::Failed(Failure::TargetFailed);
                        }
                        continue;
                    }
                    Err(BadHead::Invalid(why)) => {
                        tracing::warn!(target_group = %target.group, target_addr = %target.address, why, "target sent an unusable response head");
                        return Attempt::Failed(Failure::TargetFailed);
                    }
                }
            }
            inb.room(4096);
            let silent = interim == 0 && inb.0.is_empty();
            match read_target(&mut up, &mut inb.0, deadline, &target.cut).await {
                Ok(_) => {}
                // A pooled connection the target closed before answering: another one.
                Err(Stop::Closed) if reused && silent && plan.idempotent => break,
                Err(Stop::Closed) => return Attempt::Failed(Failure::TargetFailed),
                Err(Stop::Silent) => return Attempt::Failed(Failure::Timeout),
                Err(Stop::Cut) => return Attempt::Failed(Failure::Deregistered),
            }
        }
    }
}

/// Forwards a planned request (its head for the target in `out`) and passes the response on.
#[allow(clippy::too_many_arguments)]
async fn forward(
    io: &mut H1Io,
    ctx: &ConnCtx,
    listener: &ListenerRt,
    plan: Plan<'_>,
    mut inb: Buf,
    mut out: Buf,
    waiting: Waiting<'_>,
    deadline: &mut Deadline<'_>,
    closing: &CancellationToken,
) -> Fast {
    let lc = &listener.counters;
    let mut tried = [0usize; MAX_ATTEMPTS];
    let mut last_error = None;
    for attempt_no in 0..MAX_ATTEMPTS {
        let Some((group, target)) = routing::choose(plan.groups, &tried[..attempt_no]) else {
            break;
        };
        if !target.raw_capable() {
            // Nothing was sent yet: hyper's path takes the request from the start.
            return fallback(io, inb);
        }
        tried[attempt_no] = Arc::as_ptr(&target) as usize;
        let gc = &group.counters;
        let _in_flight = target.enter();
        gc.active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _active = ActiveGuard(gc);
        let start = Instant::now();
        deadline.set(start + group.response_timeout);
        match attempt(&target, &plan, deadline, &mut inb, &mut out, closing).await {
            Attempt::NotConnected(reason) => {
                tracing::warn!(target_group = %group.name, target_addr = %target.address, %reason, "connect failed; retrying on another target");
                gc.retry();
                lc.retry();
                last_error = Some(reason);
            }
            Attempt::Failed(f) => {
                if f == Failure::Timeout {
                    tracing::warn!(target_group = %group.name, target_addr = %target.address, timeout = ?group.response_timeout, "target sent no response headers in time");
                }
                f.count(Some((&target, gc)), lc);
                drop(waiting);
                return answer(io, f, plan.close).await;
            }
            Attempt::Head {
                up,
                head,
                body_at,
                close,
            } => {
                let elapsed = start.elapsed();
                target.counters.target_response(head.status, elapsed);
                gc.target_response(head.status, elapsed);
                lc.target_response(head.status, elapsed);
                drop(waiting);
                let mut up = Body {
                    stream: up,
                    target: &target,
                    silence: group.response_timeout,
                };
                let ended =
                    pass_body(io, &mut up, &head, &mut inb, &mut out.0, body_at, deadline).await;
                return match ended {
                    Some(reusable) => {
                        if reusable {
                            target.release_raw(up.stream);
                        }
                        if close { Fast::Close } else { Fast::KeepAlive }
                    }
                    None => Fast::Close,
                };
            }
        }
    }
    let f = Failure::after_attempts(&ctx.listener, last_error.as_deref());
    f.count(None, lc);
    drop(waiting);
    answer(io, f, plan.close).await
}

/// The target connection a response body comes from.
struct Body<'t> {
    stream: TcpStream,
    target: &'t Target,
    /// The longest silence allowed between two reads (the group's response timeout).
    silence: Duration,
}

/// Sends the response head in `out` with the first body bytes (from `inb[body_at..]`), then
/// the rest of the body. `Some(reusable)` when the body ended as framed; `None` when either
/// side failed (close the client's connection, drop the target's).
#[allow(clippy::too_many_arguments)]
async fn pass_body(
    io: &mut H1Io,
    up: &mut Body<'_>,
    head: &Head,
    inb: &mut Buf,
    out: &mut Vec<u8>,
    body_at: usize,
    deadline: &mut Deadline<'_>,
) -> Option<bool> {
    let mut reusable = head.reusable;
    let first = &inb.0[body_at..];
    let mut left = 0u64;
    let mut chunks = ChunkedEnd::default();
    let mut done = match head.framing {
        Framing::Empty => {
            reusable &= first.is_empty();
            true
        }
        Framing::Length(n) => {
            let take = first.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            out.extend_from_slice(&first[..take]);
            reusable &= take == first.len();
            left = n - take as u64;
            left == 0
        }
        Framing::Chunked => {
            let fed = chunks.feed(first).ok()?;
            out.extend_from_slice(&first[..fed.pass]);
            // Trailers are not passed on: the body ends with the empty line after the last chunk.
            fed.end.is_some_and(|end| {
                out.extend_from_slice(b"\r\n");
                reusable &= end == first.len();
                true
            })
        }
        Framing::UntilClose => {
            out.extend_from_slice(first);
            false
        }
    };
    if io.stream.write_all(out).await.is_err() {
        return None;
    }
    io.state.touch();
    if !done {
        // More writes follow the first one: Nagle's algorithm must not hold them back.
        io.nodelay();
    }
    while !done {
        inb.0.clear();
        if matches!(head.framing, Framing::Length(n) if n > BUF as u64)
            || head.framing == Framing::UntilClose
        {
            inb.room(BODY_BUF);
        } else {
            inb.room(BUF);
        }
        deadline.set(Instant::now() + up.silence);
        let n = match read_target(&mut up.stream, &mut inb.0, deadline, &up.target.cut).await {
            Ok(n) => n,
            Err(Stop::Closed) if head.framing == Framing::UntilClose => return Some(false),
            Err(_) => return None,
        };
        let part = &inb.0[..n];
        let keep = match head.framing {
            Framing::Length(_) => {
                let take = part.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                left -= take as u64;
                reusable &= take == part.len();
                done = left == 0;
                take
            }
            Framing::Chunked => {
                let fed = chunks.feed(part).ok()?;
                if let Some(end) = fed.end {
                    reusable &= end == part.len();
                    done = true;
                    // The last piece and the final empty line in one write.
                    out.clear();
                    out.extend_from_slice(&part[..fed.pass]);
                    out.extend_from_slice(b"\r\n");
                }
                fed.pass
            }
            _ => part.len(),
        };
        let last = done && head.framing == Framing::Chunked;
        let bytes = if last { &out[..] } else { &part[..keep] };
        if !bytes.is_empty() && io.stream.write_all(bytes).await.is_err() {
            return None;
        }
        io.state.touch();
    }
    Some(reusable)
}

/// Writes the proxy's own answer for `f`; the connection stays open unless the client asked
/// to close it.
async fn answer(io: &mut H1Io, f: Failure, close: bool) -> Fast {
    let status = f.status();
    let message = f.message();
    let mut out = Buf::take();
    let o = &mut out.0;
    o.extend_from_slice(b"HTTP/1.1 ");
    o.extend_from_slice(status.as_str().as_bytes());
    o.push(b' ');
    o.extend_from_slice(status.canonical_reason().unwrap_or_default().as_bytes());
    o.extend_from_slice(b"\r\ncontent-type: text/plain\r\ncontent-length: ");
    o.extend_from_slice(itoa::Buffer::new().format(message.len()).as_bytes());
    if close {
        o.extend_from_slice(b"\r\nconnection: close");
    }
    o.extend_from_slice(b"\r\n\r\n");
    o.extend_from_slice(message.as_bytes());
    if io.stream.write_all(o).await.is_err() || close {
        return Fast::Close;
    }
    io.state.touch();
    Fast::KeepAlive
}
