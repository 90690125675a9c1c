//! The HTTP/1 forwarding fast path: the common exchange (a request without a body, forwarded
//! to a plain HTTP/1.1 target) done on the bare sockets, with no per-message header map, no
//! channel between a client and a connection task, and buffers only while the exchange runs.
//!
//! A request takes this path only when nothing about it needs more than passing bytes on:
//! - HTTP/1.1, a method other than `CONNECT`, an origin-form target of RFC 3986 path and query
//!   characters whose path normalises to itself, one valid `Host`;
//! - no body and no hop-by-hop fields beyond `Connection: keep-alive` or `close`: no
//!   `Content-Length` other than `0`, no `Transfer-Encoding`, `Expect`, `Upgrade`, `TE`,
//!   `Trailer`, `Keep-Alive` or `Proxy-*`;
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
//! Responses are passed on byte for byte after the head: a `Content-Length` body by count, a
//! chunked body framing included (its end found by [`crate::chunked`]), a body without either
//! until the target closes (then the client's connection closes too). A target connection is
//! reused only when its response ended exactly where its framing said; a pooled one that turns
//! out closed before any response byte is replaced by a new connection for idempotent methods.
//! Response timeouts, the drain cut-off, retries on other targets when a connection cannot be
//! made, the proxy's own 502/503/504 answers and every metric are those of the hyper path.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::H1Io;
use crate::chunked::ChunkedEnd;
use crate::conn::Waiting;
use crate::headers::{self, HOP_BY_HOP, UNTRUSTED_REPLACED};
use crate::normalize;
use crate::proxy::{ActiveGuard, ConnCtx, Failure, MAX_ATTEMPTS, push_request_id};
use crate::routing::{self, Action, GroupRt, ListenerRt};
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
}

/// A buffer's size as taken from the pool; request heads must fit in it.
const BUF: usize = 8 * 1024;
/// Request fields at most.
const MAX_REQUEST_FIELDS: usize = 64;
/// Response fields at most (hyper's default).
const MAX_RESPONSE_FIELDS: usize = 100;
/// The longest response head read (hyper's default buffer limit).
const MAX_RESPONSE_HEAD: usize = 8192 + 4096 * 100;
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

/// What the request's head decided.
struct Plan<'s> {
    groups: &'s [(Arc<GroupRt>, u32)],
    head: bool,
    idempotent: bool,
    close: bool,
}

/// Serves the request whose bytes are in the replay buffer or arrive next (the caller saw the
/// socket readable), or hands it back (see the module header). `header_deadline` bounds the
/// wait for the rest of a partial head.
pub(crate) async fn exchange(
    io: &mut H1Io,
    ctx: &ConnCtx,
    mut header_deadline: std::pin::Pin<&mut Sleep>,
    closing: &CancellationToken,
) -> Fast {
    let mut inb = Buf::take();
    inb.0.extend_from_slice(&io.rewind);
    io.rewind = Bytes::new();
    let snapshot = ctx.shared.snapshot.load_full();
    let Some(listener) = snapshot.listener(&ctx.listener) else {
        return fallback(io, inb);
    };
    let mut out = Buf::take();
    let (plan, head_len) = loop {
        match plan(&inb.0, ctx, listener, &mut out.0) {
            Ok(p) => break p,
            Err(Parse::Fallback) => return fallback(io, inb),
            Err(Parse::Partial) if inb.0.len() >= BUF => return fallback(io, inb),
            Err(Parse::Partial) => {}
        }
        inb.room(BUF - inb.0.len());
        let read = tokio::select! {
            biased;
            r = io.stream.read_buf(&mut inb.0) => r,
            () = header_deadline.as_mut() => return Fast::Close,
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
    forward(io, ctx, listener, plan, inb, out, waiting, closing).await
}

/// Why a head gave no plan.
enum Parse {
    /// More bytes are needed.
    Partial,
    /// Not for this path.
    Fallback,
}

/// Gives the request back to hyper: the bytes read go before what is left to replay.
fn fallback(io: &mut H1Io, inb: Buf) -> Fast {
    if !inb.0.is_empty() {
        io.unread(Bytes::copy_from_slice(&inb.0));
    }
    Fast::Fallback
}

/// Host values up to this long are remembered once valid.
const HOST_CACHE_LEN: usize = 64;

thread_local! {
    /// The last valid `Host` values seen by this worker: checking one allocates (`http`'s
    /// authority parser takes owned bytes), and clients send the same few.
    static VALID_HOSTS: RefCell<[(u8, [u8; HOST_CACHE_LEN]); 4]> =
        const { RefCell::new([(0, [0; HOST_CACHE_LEN]); 4]) };
}

/// [`headers::valid_host_bytes`], remembered for the last four short values.
fn valid_host_cached(h: &[u8]) -> bool {
    if h.is_empty() || h.len() > HOST_CACHE_LEN {
        return headers::valid_host_bytes(h);
    }
    VALID_HOSTS.with_borrow_mut(|cache| {
        if cache
            .iter()
            .any(|(n, v)| usize::from(*n) == h.len() && &v[..h.len()] == h)
        {
            return true;
        }
        if !headers::valid_host_bytes(h) {
            return false;
        }
        cache.rotate_right(1);
        cache[0].0 = h.len() as u8;
        cache[0].1[..h.len()].copy_from_slice(h);
        true
    })
}

/// RFC 3986 `pchar`, `/` and `?`: the request-target bytes this path forwards as they are.
fn target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/?".contains(&b)
}

/// Reads a complete request head and, when this path may serve it, routes it and writes the
/// head the target receives into `out`. Returns the plan and the head's length.
fn plan<'s>(
    buf: &[u8],
    ctx: &ConnCtx,
    listener: &'s ListenerRt,
    out: &mut Vec<u8>,
) -> Result<(Plan<'s>, usize), Parse> {
    // Uninitialised: an initialised array costs a 2 KiB fill per request.
    let mut fields = [const { MaybeUninit::uninit() }; MAX_REQUEST_FIELDS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut req,
        buf,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(Parse::Partial),
        Err(_) => return Err(Parse::Fallback),
    };
    let limits = &listener.limits;
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Err(Parse::Fallback);
    };
    if method == "CONNECT"
        || head_len > limits.max_header_bytes
        || target.len() > limits.max_line_bytes
        || !target.starts_with('/')
        || !target.bytes().all(target_byte)
        || limits.trusts(ctx.peer_ip)
    {
        return Err(Parse::Fallback);
    }
    let mut host = None;
    let mut close = false;
    let mut has_id = false;
    for f in req.headers.iter() {
        let name = f.name;
        if name.len() + 2 + f.value.len() > limits.max_line_bytes {
            return Err(Parse::Fallback);
        }
        if name.eq_ignore_ascii_case("host") {
            if host.replace(f.value).is_some() {
                return Err(Parse::Fallback);
            }
        } else if name.eq_ignore_ascii_case("connection") {
            let v = f.value.trim_ascii();
            if v.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !v.eq_ignore_ascii_case(b"keep-alive") {
                return Err(Parse::Fallback);
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if f.value.trim_ascii() != b"0" {
                return Err(Parse::Fallback);
            }
        } else if name.eq_ignore_ascii_case("expect")
            || HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        {
            return Err(Parse::Fallback);
        } else if name.eq_ignore_ascii_case("x-request-id") {
            has_id = true;
        }
    }
    let host = match host {
        Some(h) if valid_host_cached(h) => std::str::from_utf8(h).ok(),
        _ => None,
    }
    .ok_or(Parse::Fallback)?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    match normalize::normalize(path, limits.merge_slashes) {
        Ok(n)
            if matches!(
                (&n.forward, &n.matched),
                (std::borrow::Cow::Borrowed(_), std::borrow::Cow::Borrowed(_))
            ) => {}
        _ => return Err(Parse::Fallback),
    }
    let (Action::Forward(groups), None) =
        listener.route(path, query, host, &*req.headers, ctx.peer_ip)
    else {
        return Err(Parse::Fallback);
    };

    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for f in req.headers.iter() {
        let n = f.name;
        if n.eq_ignore_ascii_case("connection")
            || UNTRUSTED_REPLACED.iter().any(|h| n.eq_ignore_ascii_case(h))
        {
            continue;
        }
        push_field(out, n.as_bytes(), f.value);
    }
    push_field(out, b"x-forwarded-for", ctx.client_ip.as_bytes());
    push_field(out, b"x-forwarded-proto", b"http");
    push_field(out, b"x-forwarded-port", ctx.port.as_bytes());
    if !has_id {
        out.extend_from_slice(b"x-request-id: ");
        push_request_id(out, &ctx.shared.id_prefix);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let plan = Plan {
        groups,
        head: method == "HEAD",
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        ),
        close,
    };
    Ok((plan, head_len))
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (`HEAD`, 204, 304).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the target closes.
    UntilClose,
}

/// A response head read from a target and rewritten for the client into `out`.
#[derive(Debug)]
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    /// The target's connection may carry another request once the body ended.
    reusable: bool,
}

/// Why a response head could not be used.
enum BadHead {
    /// More bytes are needed.
    Partial,
    /// A `1xx` interim response of this many bytes, dropped (as hyper's client drops them).
    Interim(usize),
    /// Malformed, too large, or a `101` to a request that asked for no upgrade.
    Invalid(&'static str),
}

/// Reads a response head from `buf` and writes the client's version into `out`; `close`
/// makes it say `Connection: close`.
fn response_head(
    buf: &[u8],
    head_method: bool,
    close: &mut bool,
    out: &mut Vec<u8>,
) -> Result<Head, BadHead> {
    let mut fields = [const { MaybeUninit::uninit() }; MAX_RESPONSE_FIELDS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => {
            return Err(BadHead::Partial);
        }
        Ok(httparse::Status::Partial) => return Err(BadHead::Invalid("response head too large")),
        Err(_) => return Err(BadHead::Invalid("malformed response head")),
    };
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(BadHead::Invalid("malformed response head"));
    };
    if status == 101 {
        return Err(BadHead::Invalid("101 to a request without an upgrade"));
    }
    if (100..200).contains(&status) {
        return Err(BadHead::Interim(len));
    }
    let fields = &*resp.headers;
    let connection = || {
        fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("connection"))
    };
    let mut reusable = version == 1 && !connection().any(|f| headers::has_token(f.value, b"close"));
    // Whether `Connection` names fields to remove (more than `keep-alive` or `close`).
    let names_fields = connection().any(|f| {
        f.value.split(|&b| b == b',').any(|t| {
            let t = t.trim_ascii();
            !t.eq_ignore_ascii_case(b"keep-alive") && !t.eq_ignore_ascii_case(b"close")
        })
    });
    let mut chunked = None;
    let mut length: Option<u64> = None;
    for f in fields {
        if f.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = f.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if f.name.eq_ignore_ascii_case("content-length") {
            for v in f.value.split(|&b| b == b',') {
                let n = std::str::from_utf8(v.trim_ascii())
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(BadHead::Invalid("invalid Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(BadHead::Invalid("conflicting Content-Length"));
                }
                length = Some(n);
            }
        }
    }
    let framing = if head_method || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), l) => {
                // Both framings: the target's connection is in doubt (RFC 9112 6.3).
                reusable &= l.is_none();
                Framing::Chunked
            }
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    if framing == Framing::UntilClose {
        reusable = false;
        *close = true;
    }
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    // httparse reads exactly three digits.
    out.extend_from_slice(&[
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]);
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\r\n");
    for f in fields {
        let n = f.name;
        let hop = n.eq_ignore_ascii_case("connection")
            || HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h))
            || (names_fields && connection().any(|c| headers::has_token(c.value, n.as_bytes())))
            || (framing == Framing::Chunked && n.eq_ignore_ascii_case("content-length"));
        if !hop {
            push_field(out, n.as_bytes(), f.value);
        }
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if *close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Head {
        status,
        len,
        framing,
        reusable,
    })
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

/// Reads what the target sends next into `buf` (appending), before `deadline` and the drain.
async fn read_target(
    up: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    cut: &CancellationToken,
) -> Result<usize, Stop> {
    tokio::select! {
        biased;
        r = up.read_buf(buf) => match r {
            Ok(0) | Err(_) => Err(Stop::Closed),
            Ok(n) => Ok(n),
        },
        () = cut.cancelled() => Err(Stop::Cut),
        () = tokio::time::sleep_until(deadline) => Err(Stop::Silent),
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
    target.connect_raw().await.map(|s| (s, false))
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
    deadline: Instant,
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
        if up.write_all(&out.0).await.is_err() {
            if reused {
                continue;
            }
            return Attempt::Failed(Failure::TargetFailed);
        }
        let mut interim = 0;
        loop {
            if inb.0.len() > interim {
                let mut close = plan.close || closing.is_cancelled();
                match response_head(&inb.0[interim..], plan.head, &mut close, &mut out.0) {
                    Ok(head) => {
                        let body_at = interim + head.len;
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
                        continue;
                    }
                    Err(BadHead::Invalid(why)) => {
                        tracing::warn!(target_group = %target.group, target_addr = %target.address, why, "target sent an unusable response head");
                        return Attempt::Failed(Failure::TargetFailed);
                    }
                }
            }
            inb.room(4096);
            match read_target(&mut up, &mut inb.0, deadline, &target.cut).await {
                Ok(_) => {}
                Err(Stop::Closed) if reused && inb.0.is_empty() && plan.idempotent => break,
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
        let deadline = start + group.response_timeout;
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
                mut up,
                head,
                body_at,
                close,
            } => {
                let elapsed = start.elapsed();
                target.counters.target_response(head.status, elapsed);
                gc.target_response(head.status, elapsed);
                lc.target_response(head.status, elapsed);
                drop(waiting);
                let silence = group.response_timeout;
                let ended = pass_body(
                    io, &mut up, &target, &head, &mut inb, &mut out.0, body_at, silence,
                )
                .await;
                return match ended {
                    Some(reusable) => {
                        if reusable {
                            target.release_raw(up);
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

/// Sends the response head in `out` with the first body bytes (from `inb[body_at..]`), then
/// the rest of the body. `Some(reusable)` when the body ended as framed; `None` when either
/// side failed (close the client's connection, drop the target's).
#[allow(clippy::too_many_arguments)]
async fn pass_body(
    io: &mut H1Io,
    up: &mut TcpStream,
    target: &Target,
    head: &Head,
    inb: &mut Buf,
    out: &mut Vec<u8>,
    body_at: usize,
    silence: Duration,
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
        Framing::Chunked => match chunks.feed(first) {
            Ok(Some(end)) => {
                out.extend_from_slice(&first[..end]);
                reusable &= end == first.len();
                true
            }
            Ok(None) => {
                out.extend_from_slice(first);
                false
            }
            Err(_) => return None,
        },
        Framing::UntilClose => {
            out.extend_from_slice(first);
            false
        }
    };
    if io.stream.write_all(out).await.is_err() {
        return None;
    }
    io.state.touch();
    while !done {
        inb.0.clear();
        if matches!(head.framing, Framing::Length(n) if n > BUF as u64)
            || head.framing == Framing::UntilClose
        {
            inb.room(BODY_BUF);
        } else {
            inb.room(BUF);
        }
        let deadline = Instant::now() + silence;
        let n = match read_target(up, &mut inb.0, deadline, &target.cut).await {
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
            Framing::Chunked => match chunks.feed(part) {
                Ok(Some(end)) => {
                    reusable &= end == part.len();
                    done = true;
                    end
                }
                Ok(None) => part.len(),
                Err(_) => return None,
            },
            _ => part.len(),
        };
        if io.stream.write_all(&part[..keep]).await.is_err() {
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
    o.extend_from_slice(message.len().to_string().as_bytes());
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
