//! The request path: route a request against one snapshot, answer fixed responses and
//! redirects, forward to a target with the forwarding headers, retry on another target when a
//! connection could not be made, stream bodies both ways without buffering, and tunnel
//! WebSocket and other `Upgrade` connections.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::metrics::Counters;
use crate::routing::{self, Action};
use crate::server::Shared;
use crate::target::{InFlight, SendError, Upstream};

/// How many targets one request may try when connections fail (the first try included).
const MAX_ATTEMPTS: usize = 3;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Per-connection facts the request path needs.
pub(crate) struct ConnCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) listener: Arc<str>,
    pub(crate) client_ip: HeaderValue,
    pub(crate) port: HeaderValue,
    pub(crate) tls: bool,
}

/// The body of every response the proxy sends downstream.
pub(crate) enum ProxyBody {
    /// A body produced by the proxy.
    Full(Option<Bytes>),
    /// A target's body, streamed frame by frame.
    Upstream(Box<UpstreamBody>),
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
}

/// A target's response body: streams frames, gives the connection back to the pool at the
/// end, holds the target's in-flight count, and ends when the target's drain cuts it.
pub(crate) struct UpstreamBody {
    inner: Incoming,
    upstream: Option<Upstream>,
    guard: InFlight,
    cut: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
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
            Poll::Ready(Some(r)) => Poll::Ready(Some(r.map_err(BodyError::from))),
            Poll::Pending => {
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
    req: Request<Incoming>,
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
    match listener.route(req.uri(), req.headers()) {
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
        Action::Forward(groups) => Ok(forward(&ctx, groups, lc, req).await),
    }
}

async fn forward(
    ctx: &ConnCtx,
    groups: &[(Arc<routing::GroupRt>, u32)],
    lc: &Counters,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let upgrade = is_upgrade(req.headers());
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    prepare_request(ctx, &mut req, upgrade);

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
            r = target.send(req, downstream_upgrade.is_some()) => r,
            _ = target.cut.cancelled() => {
                gc.elb_5xx();
                lc.elb_5xx();
                return error_response(StatusCode::BAD_GATEWAY, "target deregistered");
            }
        };
        match sent {
            Ok((mut resp, upstream)) => {
                let status = resp.status();
                let elapsed = start.elapsed();
                gc.target_response(status.as_u16(), elapsed);
                lc.target_response(status.as_u16(), elapsed);
                if status == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(down) = downstream_upgrade {
                        let up = hyper::upgrade::on(&mut resp);
                        tokio::spawn(tunnel(down, up, guard));
                    }
                    strip_hop_by_hop(resp.headers_mut(), true);
                    return resp.map(|_| ProxyBody::Full(None));
                }
                strip_hop_by_hop(resp.headers_mut(), false);
                let (parts, inner) = resp.into_parts();
                let mut body = UpstreamBody {
                    inner,
                    upstream: Some(upstream),
                    guard,
                    cut: None,
                };
                if body.inner.is_end_stream() {
                    body.finish();
                }
                return Response::from_parts(parts, ProxyBody::Upstream(Box::new(body)));
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
                gc.elb_5xx();
                lc.elb_5xx();
                return error_response(StatusCode::BAD_GATEWAY, "target failed to answer");
            }
        }
    }
    lc.elb_5xx();
    if let Some(reason) = last_error {
        tracing::error!(listener = %ctx.listener, %reason, "no target could be reached");
        error_response(StatusCode::BAD_GATEWAY, "no target could be reached")
    } else {
        tracing::error!(listener = %ctx.listener, "no routable target in the forwarded target groups");
        error_response(StatusCode::SERVICE_UNAVAILABLE, "no healthy target")
    }
}

struct ActiveGuard<'a>(&'a Counters);

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

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v.as_bytes(), b"upgrade"))
}

fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Removes hop-by-hop headers, those named in `Connection` included; keeps `Connection:
/// upgrade` and `Upgrade` when the request or response is an upgrade.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    if let Some(conn) = headers.get(header::CONNECTION) {
        let named: Vec<HeaderName> = conn
            .as_bytes()
            .split(|&b| b == b',')
            .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
            .filter(|n| !(keep_upgrade && n == header::UPGRADE))
            .collect();
        for n in named {
            headers.remove(n);
        }
        if !keep_upgrade {
            headers.remove(header::CONNECTION);
        }
    }
    for name in [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    headers.remove(header::PROXY_AUTHENTICATE);
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    } else {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(0);

fn prepare_request(ctx: &ConnCtx, req: &mut Request<Incoming>, upgrade: bool) {
    // HTTP/2 requests carry the host in the URI: HTTP/1.1 targets need a Host header.
    if !req.headers().contains_key(header::HOST)
        && let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if let Ok(u) = pq.parse::<Uri>() {
            *req.uri_mut() = u;
        }
    }
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers, upgrade);
    match headers.get(&X_FORWARDED_FOR) {
        Some(prev) => {
            let mut v = Vec::with_capacity(prev.len() + 2 + ctx.client_ip.len());
            v.extend_from_slice(prev.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(ctx.client_ip.as_bytes());
            if let Ok(v) = HeaderValue::from_bytes(&v) {
                headers.insert(&X_FORWARDED_FOR, v);
            }
        }
        None => {
            headers.insert(&X_FORWARDED_FOR, ctx.client_ip.clone());
        }
    }
    headers.insert(
        &X_FORWARDED_PROTO,
        HeaderValue::from_static(if ctx.tls { "https" } else { "http" }),
    );
    headers.insert(&X_FORWARDED_PORT, ctx.port.clone());
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(&X_REQUEST_ID, new_request_id(&ctx.shared.id_prefix));
    }
}

fn new_request_id(prefix: &str) -> HeaderValue {
    let n = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    let id = format!("{prefix}-{n:012x}");
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("invalid"))
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
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn upgrade_headers_survive_an_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "upgrade");
    }
}
