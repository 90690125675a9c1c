//! The request path: route a request against one snapshot, answer fixed responses and
//! redirects, forward to a target with the forwarding headers, retry on another target when a
//! connection could not be made, stream bodies both ways without buffering, and tunnel
//! WebSocket and other `Upgrade` connections.
//!
//! Before routing, a request passes the checks of [`crate::headers`] and its path is normalised
//! ([`crate::normalize`]): rules match the normalised path and the target receives it. A target
//! that sends no response headers within its group's `responseTimeoutSeconds` gets the request
//! answered with 504 (counted as `HTTPCode_ELB_5XX_Count` and `HTTPCode_ELB_504_Count`); a
//! response body that stays silent that long is cut (streams with traffic live on).
//!
//! A rule's guard (its JWT authorizer, then its throttle) runs after routing and before the
//! action, in [`admit`]: a refused request is answered here and never forwarded.

use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::config::ThrottleKey;
use crate::conn::ConnState;
use crate::headers::{self, Peer};
use crate::metrics::Counters;
use crate::normalize::{self, BadPath};
use crate::routing::{self, Action, Guard};
use crate::server::Shared;
use crate::target::{InFlight, SendError, Target, Upstream};

/// How many targets one request may try when connections fail (the first try included).
pub(crate) const MAX_ATTEMPTS: usize = 3;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Per-connection facts the request path needs.
pub(crate) struct ConnCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) listener: Arc<str>,
    pub(crate) client_ip: HeaderValue,
    /// The client's address, for `trustedProxies`.
    pub(crate) peer_ip: IpAddr,
    pub(crate) port: HeaderValue,
    pub(crate) tls: bool,
    /// What the connection watchdog reads.
    pub(crate) state: Arc<ConnState>,
}

/// The body of every response the proxy sends downstream.
#[allow(clippy::large_enum_variant)] // lives in the connection's response slot, never moved much
pub(crate) enum ProxyBody {
    /// A body produced by the proxy.
    Full(Option<Bytes>),
    /// A target's body, streamed frame by frame (inline: no allocation per response).
    Upstream(UpstreamBody),
}

impl ProxyBody {
    fn full(b: impl Into<Bytes>) -> Self {
        ProxyBody::Full(Some(b.into()))
    }
}

/// Why a streamed body ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// The target's body failed.
    #[error("upstream body failed: {0}")]
    Upstream(#[from] hyper::Error),
    /// The target was drained and its deregistration delay elapsed.
    #[error("target deregistered and its deregistration delay elapsed")]
    Cut,
    /// The target sent nothing for its group's response timeout.
    #[error("target body silent for {0:?}")]
    Silent(Duration),
}

/// A target's response body: streams frames, gives the connection back to the pool at the
/// end, holds the target's in-flight count, and ends when the target's drain cuts it.
pub(crate) struct UpstreamBody {
    inner: Incoming,
    /// The HTTP/1 connection to give back (none for HTTP/2, which multiplexes).
    upstream: Option<Upstream>,
    guard: InFlight,
    cut: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// The longest silence allowed between two frames.
    idle: Duration,
    /// Armed on the first wait, pushed back by every frame.
    silence: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl UpstreamBody {
    fn finish(&mut self) {
        if let Some(up) = self.upstream.take() {
            self.guard.0.release(up);
        }
    }
}

impl UpstreamBody {
    fn poll_inner(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                self.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(r)) => {
                if let Some(s) = &mut self.silence {
                    s.as_mut().reset(tokio::time::Instant::now() + self.idle);
                }
                Poll::Ready(Some(r.map_err(BodyError::from)))
            }
            Poll::Pending => {
                let idle = self.idle;
                let silence = self
                    .silence
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if silence.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(BodyError::Silent(idle))));
                }
                let token = &self.guard.0.cut;
                let cut = self
                    .cut
                    .get_or_insert_with(|| Box::pin(token.clone().cancelled_owned()));
                ready!(cut.as_mut().poll(cx));
                Poll::Ready(Some(Err(BodyError::Cut)))
            }
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.finish();
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(u) => {
                // Drive the upstream connection in this task, then take what it delivered.
                if let Some(up) = &mut u.upstream {
                    up.poll_conn(cx);
                }
                u.poll_inner(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Upstream(u) => u.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::Upstream(u) => u.inner.size_hint(),
        }
    }
}

use std::future::Future as _;

/// Serves one downstream request.
pub(crate) async fn serve(
    ctx: Arc<ConnCtx>,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let snapshot = ctx.shared.snapshot.load_full();
    let Some(listener) = snapshot.listener(&ctx.listener) else {
        // The listener was removed; its connections are closing gracefully.
        let mut resp = error_response(StatusCode::SERVICE_UNAVAILABLE, "listener removed");
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(resp);
    };
    let lc = &listener.counters;
    let _waiting = ctx.state.request();
    let limits = &listener.limits;
    if let Err((status, message)) = headers::check_request(&mut req, limits.max_line_bytes) {
        lc.proxy_response();
        return Ok(refused(status, message));
    }
    let normalized = match normalize::normalize(req.uri().path(), limits.merge_slashes) {
        Ok(n) => n,
        Err(e) => {
            lc.proxy_response();
            let message = match e {
                BadPath::AboveRoot => "path climbs above the root",
                BadPath::BadEscape => "invalid percent escape in the path",
            };
            return Ok(refused(StatusCode::BAD_REQUEST, message));
        }
    };
    let matched = normalized.matched.into_owned_if_changed();
    let forward_path = normalized.forward.into_owned_if_changed();
    if let Some(p) = forward_path
        && !set_path(&mut req, &p)
    {
        // Never forward a path other than the one the rules matched.
        lc.proxy_response();
        return Ok(refused(StatusCode::BAD_REQUEST, "invalid request path"));
    }
    let path = matched.as_deref().unwrap_or(req.uri().path());
    let host = routing::request_host(req.uri(), req.headers());
    let (action, guard) = listener.route(path, req.uri().query(), host, req.headers(), ctx.peer_ip);
    if let Some(guard) = guard
        // Boxed: only guarded rules pay for the authorizer's future, in every connection's
        // request slot.
        && let Err(resp) = Box::pin(admit(&ctx, guard, lc, &mut req)).await
    {
        return Ok(resp);
    }
    match action {
        Action::Fixed {
            status,
            content_type,
            body,
        } => {
            lc.proxy_response();
            let mut resp = Response::new(ProxyBody::full(body.clone()));
            *resp.status_mut() = *status;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, content_type.clone());
            Ok(resp)
        }
        Action::Redirect {
            status,
            protocol,
            host,
            port,
            path,
            query,
        } => {
            lc.proxy_response();
            let proto = protocol
                .as_deref()
                .unwrap_or(if ctx.tls { "https" } else { "http" });
            let req_host = routing::strip_port(routing::request_host(req.uri(), req.headers()));
            let host = host.as_deref().unwrap_or(req_host);
            let mut location = format!("{proto}://{host}");
            if let Some(p) = port {
                location.push_str(&format!(":{p}"));
            }
            location.push_str(path.as_deref().unwrap_or(req.uri().path()));
            if let Some(q) = query.as_deref().or(req.uri().query())
                && !q.is_empty()
            {
                location.push('?');
                location.push_str(q);
            }
            let mut resp = Response::new(ProxyBody::Full(None));
            *resp.status_mut() = *status;
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
        Action::Forward(groups) => {
            let trusted = limits.trusts(ctx.peer_ip);
            Ok(forward(&ctx, groups, lc, req, trusted).await)
        }
    }
}

/// Runs a rule's authorizer, then its throttle: `Err` is the answer to a refused request,
/// which never reaches a target. On success the configured claims replace any client-sent
/// headers of the same names.
async fn admit(
    ctx: &ConnCtx,
    guard: &Guard,
    lc: &Counters,
    req: &mut Request<Incoming>,
) -> Result<(), Response<ProxyBody>> {
    let now_ms = ctx.shared.clock.now_ms();
    let mut claims = None;
    if let Some(a) = &guard.authorizer {
        for (_, h) in &a.claim_headers {
            req.headers_mut().remove(h);
        }
        match a.authorize(req.headers(), now_ms).await {
            Ok(c) => {
                for (claim, h) in &a.claim_headers {
                    if let Some(v) = c.text(claim).and_then(|v| HeaderValue::from_str(&v).ok()) {
                        req.headers_mut().insert(h.clone(), v);
                    }
                }
                claims = Some(c);
            }
            Err(denied) => {
                let (status, challenge) = a.refusal(denied);
                tracing::debug!(listener = %ctx.listener, ?denied, "authorizer refused a request");
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    lc.elb_5xx();
                } else {
                    lc.unauthorized();
                }
                let message = match status {
                    StatusCode::UNAUTHORIZED => "unauthorized",
                    StatusCode::FORBIDDEN => "forbidden",
                    _ => "the token issuer's keys are unavailable",
                };
                let mut resp = error_response(status, message);
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge);
                return Err(resp);
            }
        }
    }
    if let Some(t) = &guard.throttle {
        let key = match &t.key {
            ThrottleKey::SourceIp => t.hash(ctx.peer_ip),
            ThrottleKey::Header(name) => {
                t.hash(req.headers().get(name.as_str()).map(|v| v.as_bytes()))
            }
            ThrottleKey::Claim(name) => t.hash(claims.as_ref().and_then(|c| c.text(name))),
        };
        if let Err(wait) = t.take(key, now_ms) {
            lc.throttled();
            let mut resp = error_response(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return Err(resp);
        }
    }
    Ok(())
}

/// `Some(owned)` when normalisation changed the path, `None` when it is the request's own.
trait OwnedIfChanged {
    fn into_owned_if_changed(self) -> Option<String>;
}

impl OwnedIfChanged for std::borrow::Cow<'_, str> {
    fn into_owned_if_changed(self) -> Option<String> {
        match self {
            std::borrow::Cow::Borrowed(_) => None,
            std::borrow::Cow::Owned(s) => Some(s),
        }
    }
}

/// Replaces the request's path, keeping its query (and scheme and authority, if any);
/// false (and the request untouched) when the result is not a valid URI.
fn set_path<B>(req: &mut Request<B>, path: &str) -> bool {
    let uri = req.uri();
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = http::uri::PathAndQuery::try_from(pq)
        && let Ok(u) = {
            parts.path_and_query = Some(pq);
            Uri::from_parts(parts)
        }
    {
        *req.uri_mut() = u;
        return true;
    }
    false
}

/// An answer to a request refused before routing; the connection is closed after it, since
/// the client's framing or intent is in doubt.
fn refused(status: StatusCode, message: &'static str) -> Response<ProxyBody> {
    let mut resp = error_response(status, message);
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE"),
        );
    }
    resp
}

async fn forward(
    ctx: &ConnCtx,
    groups: &[(Arc<routing::GroupRt>, u32)],
    lc: &Counters,
    mut req: Request<Incoming>,
    trusted: bool,
) -> Response<ProxyBody> {
    let upgrade = headers::is_upgrade(req.headers());
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    // `TE: trailers` (gRPC) is hop-by-hop but passed on to HTTP/2 targets.
    let te_trailers = req
        .headers()
        .get(header::TE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    let peer = Peer {
        ip: &ctx.client_ip,
        port: &ctx.port,
        tls: ctx.tls,
        trusted,
    };
    headers::prepare_request(&mut req, &peer, upgrade);
    if !req.headers().contains_key(&X_REQUEST_ID) {
        req.headers_mut()
            .insert(&X_REQUEST_ID, new_request_id(&ctx.shared.id_prefix));
    }

    let mut tried = [0usize; MAX_ATTEMPTS];
    let mut last_error = None;
    for attempt in 0..MAX_ATTEMPTS {
        let Some((group, target)) = routing::choose(groups, &tried[..attempt]) else {
            break;
        };
        tried[attempt] = Arc::as_ptr(&target) as usize;
        let gc = &group.counters;
        let guard = target.enter();
        gc.active.fetch_add(1, Ordering::Relaxed);
        let _active = ActiveGuard(gc);
        let start = tokio::time::Instant::now();
        let sent = tokio::select! {
            biased;
            r = target.send(req, downstream_upgrade.is_some(), te_trailers) => r,
            _ = target.cut.cancelled() => {
                return Failure::Deregistered.answer(Some((&target, gc)), lc);
            }
            _ = tokio::time::sleep(group.response_timeout) => {
                tracing::warn!(target_group = %group.name, target_addr = %target.address, timeout = ?group.response_timeout, "target sent no response headers in time");
                return Failure::Timeout.answer(Some((&target, gc)), lc);
            }
        };
        match sent {
            Ok((mut resp, upstream)) => {
                let status = resp.status();
                let elapsed = start.elapsed();
                target.counters.target_response(status.as_u16(), elapsed);
                gc.target_response(status.as_u16(), elapsed);
                lc.target_response(status.as_u16(), elapsed);
                if status == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(down) = downstream_upgrade {
                        let up = hyper::upgrade::on(&mut resp);
                        tokio::spawn(tunnel(down, up, guard));
                    }
                    headers::strip_hop_by_hop(resp.headers_mut(), true);
                    return resp.map(|_| ProxyBody::Full(None));
                }
                headers::strip_hop_by_hop(resp.headers_mut(), false);
                let (parts, inner) = resp.into_parts();
                let mut body = UpstreamBody {
                    inner,
                    upstream,
                    guard,
                    cut: None,
                    idle: group.response_timeout,
                    silence: None,
                };
                if body.inner.is_end_stream() {
                    body.finish();
                }
                return Response::from_parts(parts, ProxyBody::Upstream(body));
            }
            Err(SendError::NotSent(r, reason)) => {
                tracing::warn!(target_group = %group.name, target_addr = %target.address, %reason, "connect failed; retrying on another target");
                gc.retry();
                lc.retry();
                req = r;
                last_error = Some(reason);
            }
            Err(SendError::Failed(e)) => {
                tracing::warn!(target_group = %group.name, target_addr = %target.address, error = %e, "target failed to answer");
                return Failure::TargetFailed.answer(Some((&target, gc)), lc);
            }
        }
    }
    Failure::after_attempts(&ctx.listener, last_error.as_deref()).answer(None, lc)
}

/// Why a forward got the proxy's own answer instead of a target's (both HTTP/1 paths and
/// HTTP/2 answer these alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The target was drained and its deregistration delay elapsed: 502.
    Deregistered,
    /// No response head within the group's response timeout: 504.
    Timeout,
    /// The request may have reached the target, which then failed: 502.
    TargetFailed,
    /// Every target tried refused the connection: 502.
    Unreachable,
    /// No target could be chosen: 503.
    NoTarget,
}

impl Failure {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::NoTarget => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Failure::Deregistered => "target deregistered",
            Failure::Timeout => "target did not answer in time",
            Failure::TargetFailed => "target failed to answer",
            Failure::Unreachable => "no target could be reached",
            Failure::NoTarget => "no healthy target",
        }
    }

    /// The failure when the attempts ran out (`last_error`: why the last connect failed, if
    /// any target was tried), logged.
    pub(crate) fn after_attempts(listener: &str, last_error: Option<&str>) -> Failure {
        if let Some(reason) = last_error {
            tracing::error!(%listener, %reason, "no target could be reached");
            Failure::Unreachable
        } else {
            tracing::error!(%listener, "no routable target in the forwarded target groups");
            Failure::NoTarget
        }
    }

    /// Counts the failure on the target and its group (when one was chosen) and the listener.
    pub(crate) fn count(self, at: Option<(&Target, &Counters)>, lc: &Counters) {
        let timeout = self == Failure::Timeout;
        let each = |c: &Counters| if timeout { c.elb_504() } else { c.elb_5xx() };
        if let Some((target, gc)) = at {
            each(&target.counters);
            each(gc);
        }
        each(lc);
    }

    fn answer(self, at: Option<(&Target, &Counters)>, lc: &Counters) -> Response<ProxyBody> {
        self.count(at, lc);
        error_response(self.status(), self.message())
    }
}

/// Holds one unit of a group's `active` count.
pub(crate) struct ActiveGuard<'a>(pub(crate) &'a Counters);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Copies bytes both ways between the upgraded downstream and upstream connections until
/// either side closes or the target's drain cuts the tunnel.
async fn tunnel(down: hyper::upgrade::OnUpgrade, up: hyper::upgrade::OnUpgrade, guard: InFlight) {
    let cut = guard.0.cut.clone();
    let (down, up) = match tokio::try_join!(down, up) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut down = TokioIo::new(down);
    let mut up = TokioIo::new(up);
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut down, &mut up) => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "tunnel ended with an error");
            }
        }
        _ = cut.cancelled() => {
            tracing::info!(target_addr = %guard.0.address, "tunnel cut after the deregistration delay");
        }
    }
    drop(guard);
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(0);

/// `<prefix>-<counter as at least 12 hex digits>`, built without `format!` (one allocation,
/// the header value's own).
fn new_request_id(prefix: &str) -> HeaderValue {
    let mut id = Vec::with_capacity(prefix.len() + 17);
    push_request_id(&mut id, prefix);
    HeaderValue::from_maybe_shared(Bytes::from(id)).unwrap_or(HeaderValue::from_static("invalid"))
}

/// Appends the next request id (`<prefix>-<counter as at least 12 hex digits>`) to `out`.
pub(crate) fn push_request_id(out: &mut Vec<u8>, prefix: &str) {
    let n = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    let digits = (16 - n.leading_zeros() as usize / 4).max(12);
    out.extend_from_slice(prefix.as_bytes());
    out.push(b'-');
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((n >> (i * 4)) & 0xf) as usize]);
    }
}

/// A response the proxy produced itself.
pub(crate) fn error_response(status: StatusCode, message: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::Full(Some(Bytes::from_static(
        message.as_bytes(),
    ))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

#[cfg(test)]
mod size_tests {
    use super::*;

    fn size_of_future<F, Fut>(_: F) -> usize
    where
        F: Fn(Arc<ConnCtx>, Request<Incoming>) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// hyper keeps a box the size of [`serve`]'s future in every downstream connection, idle
    /// ones included: rarely used parts (authorizers, HTTP/2 and new upstream connections) are
    /// boxed where they run. 4,056 bytes before that in this (unoptimised) build.
    #[test]
    fn the_request_future_held_per_connection_stays_small() {
        let serve = size_of_future(serve);
        assert!(serve <= 3 * 1024, "serve's future is {serve} bytes");
        let body = std::mem::size_of::<ProxyBody>();
        assert!(body <= 256, "ProxyBody is {body} bytes");
    }
}
