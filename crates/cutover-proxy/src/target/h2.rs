//! A target's HTTP/2 connection (`h2c`, or TLS with ALPN `h2`): made on first use, shared by every request
//! (multiplexed), made again when the target closed it, and forgotten after the group's idle
//! timeout (hyper then closes it once its last stream ended).

use std::sync::atomic::{AtomicU64, Ordering};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::time::Instant;

use super::{SendError, Target};

/// A target's HTTP/2 connection: its sender (absent until the first request, and again after
/// the idle timeout), a generation telling connections apart, and when it was last used.
#[derive(Default)]
pub(super) struct H2Slot {
    pub(super) sender: tokio::sync::Mutex<Option<(u64, http2::SendRequest<Incoming>)>>,
    generation: AtomicU64,
    /// Milliseconds since `created` at the last request.
    last_used: AtomicU64,
    created: std::sync::OnceLock<Instant>,
}

impl H2Slot {
    fn now_ms(&self) -> u64 {
        self.created.get_or_init(Instant::now).elapsed().as_millis() as u64
    }
}

impl Target {
    /// Sends `req` on the target's HTTP/2 connection; a request that never went out (the
    /// connection had closed) is tried once more on a new connection, then returned.
    pub(super) async fn send_h2(
        &self,
        mut req: Request<Incoming>,
        te_trailers: bool,
    ) -> Result<Response<Incoming>, SendError> {
        h2_request(
            &mut req,
            &self.address,
            self.settings.transport.tls(),
            te_trailers,
        );
        let mut fresh = false;
        loop {
            let mut sender = match self.h2_sender(fresh).await {
                Ok(s) => s,
                Err(reason) => return Err(SendError::NotSent(req, reason)),
            };
            self.h2.last_used.store(self.h2.now_ms(), Ordering::Relaxed);
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(resp),
                Err(mut e) => match e.take_message() {
                    // The connection closed before the request went out: one new connection.
                    Some(r) if !fresh => {
                        req = r;
                        fresh = true;
                    }
                    Some(r) => return Err(SendError::NotSent(r, e.into_error().to_string())),
                    None => return Err(SendError::Failed(e.into_error())),
                },
            }
        }
    }

    /// The HTTP/2 connection's sender, connecting when there is none (or `fresh` is asked).
    async fn h2_sender(&self, fresh: bool) -> Result<http2::SendRequest<Incoming>, String> {
        let mut slot = self.h2.sender.lock().await;
        if !fresh
            && let Some((_, s)) = slot.as_ref()
            && !s.is_closed()
        {
            return Ok(s.clone());
        }
        if self.is_draining() {
            return Err("target is draining".to_owned());
        }
        let stream = self.tcp(false).await?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2 handshake with {} failed: {e}", self.addr))?;
        let generation = self.h2.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *slot = Some((generation, sender.clone()));
        let (h2, idle, addr) = (self.h2.clone(), self.settings.idle_timeout, self.addr);
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            // Until idle: then the slot forgets the sender, and the connection ends once its
            // last stream did (hyper closes an HTTP/2 connection whose senders are all gone).
            let idle_wait = async {
                loop {
                    tokio::time::sleep(idle / 4).await;
                    let quiet = h2
                        .now_ms()
                        .saturating_sub(h2.last_used.load(Ordering::Relaxed));
                    if u128::from(quiet) >= idle.as_millis() {
                        let mut slot = h2.sender.lock().await;
                        if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
                            slot.take();
                        }
                        return;
                    }
                }
            };
            let r = tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = idle_wait => None,
            };
            let r = match r {
                Some(r) => r,
                None => conn.await,
            };
            if let Err(e) = r {
                tracing::debug!(target_addr = %addr, error = %e, "upstream HTTP/2 connection ended");
            }
        });
        Ok(sender)
    }
}

/// Turns a request prepared for HTTP/1.1 into an HTTP/2 one: version, an absolute URI (scheme
/// `https` over TLS) whose authority is the request's `Host` (else the target's address)
/// instead of a `Host` header, and `TE: trailers` when the client sent it.
fn h2_request(req: &mut Request<Incoming>, target: &str, tls: bool, te_trailers: bool) {
    *req.version_mut() = http::Version::HTTP_2;
    let host = req.headers_mut().remove(http::header::HOST);
    let authority = host
        .as_ref()
        .and_then(|h| http::uri::Authority::try_from(h.as_bytes()).ok())
        .or_else(|| http::uri::Authority::try_from(target).ok());
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.scheme = Some(if tls {
        http::uri::Scheme::HTTPS
    } else {
        http::uri::Scheme::HTTP
    });
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    if te_trailers {
        req.headers_mut()
            .insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    }
}
