//! The HTTP server of the sample app: routing, injected faults and graceful shutdown.
//!
//! Built directly on hyper 1 and hyper-util's auto (HTTP/1 + h2c) connection
//! builder: one task per connection, no middleware stack, so the app stays a
//! fast, predictable backend for load and cutover tests.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rand::Rng;
use tokio::net::TcpListener;

use crate::SampleAppConfig;

/// Name of the response header that carries the app's version.
pub const VERSION_HEADER: &str = "x-app-version";

type Body = BoxBody<Bytes, Infallible>;

struct App {
    cfg: SampleAppConfig,
    version_header: HeaderValue,
}

/// Serves requests on `listener` until `shutdown` completes, then stops
/// accepting and lets in-flight requests finish for at most `cfg.grace_period`.
pub async fn serve(
    cfg: SampleAppConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let version_header = HeaderValue::from_str(&cfg.version)
        .unwrap_or_else(|_| HeaderValue::from_static(crate::config::UNKNOWN_VERSION));
    let grace_period = cfg.grace_period;
    let app = Arc::new(App {
        cfg,
        version_header,
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(error) => {
                        // Out of file descriptors or a connection reset before
                        // accept: back off briefly instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let service = hyper::service::service_fn(move |req| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(handle(&app, req).await) }
                });
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(error) = conn.await {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace_period) => {
            tracing::warn!(?grace_period, "grace period over; dropping remaining connections");
        }
    }
    Ok(())
}

async fn handle(app: &App, req: Request<Incoming>) -> Response<Body> {
    let mut response = route(app, &req).await;
    response
        .headers_mut()
        .insert(VERSION_HEADER, app.version_header.clone());
    response
}

async fn route(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if path == "/health" {
        return if app.cfg.healthy {
            text(StatusCode::OK, "ok\n")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n")
        };
    }
    if !app.cfg.latency.is_zero() {
        tokio::time::sleep(app.cfg.latency).await;
    }
    if app.cfg.fail_rate > 0.0 && rand::thread_rng().r#gen::<f64>() < app.cfg.fail_rate {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "injected failure\n");
    }
    let query = req.uri().query().unwrap_or("");
    match path {
        "/" => text(StatusCode::OK, format!("{}\n", app.cfg.version)),
        "/slow" => match query_u64(query, "ms", 1000) {
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, format!("{}\n", app.cfg.version))
            }
            Err(message) => text(StatusCode::BAD_REQUEST, message),
        },
        "/events" => {
            match (
                query_u64(query, "count", 10),
                query_u64(query, "interval_ms", 1000),
            ) {
                (Ok(count), Ok(interval_ms)) => {
                    events(app, count, Duration::from_millis(interval_ms))
                }
                (Err(message), _) | (_, Err(message)) => text(StatusCode::BAD_REQUEST, message),
            }
        }
        api if api.starts_with("/api/") => {
            // What a gateway in front told the app: the `x-user-*` headers (an authorizer's
            // `claimsToHeaders`), one per line after the version and path.
            let mut body = format!("{} {api}\n", app.cfg.version);
            for (name, value) in req.headers() {
                if name.as_str().starts_with("x-user-") {
                    body.push_str(&format!(
                        "{name}: {}\n",
                        String::from_utf8_lossy(value.as_bytes())
                    ));
                }
            }
            text(StatusCode::OK, body)
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A server-sent event stream of `count` events, one every `interval`
/// (the first one at once).
fn events(app: &App, count: u64, interval: Duration) -> Response<Body> {
    let version = app.cfg.version.clone();
    let stream = futures_util::stream::iter(0..count).then(move |seq| {
        let version = version.clone();
        async move {
            if seq > 0 {
                tokio::time::sleep(interval).await;
            }
            let event = format!("id: {seq}\ndata: {{\"seq\":{seq},\"version\":\"{version}\"}}\n\n");
            Ok::<_, Infallible>(Frame::data(Bytes::from(event)))
        }
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Reads `name` from a query string as a whole number, `default` when absent.
fn query_u64(query: &str, name: &str, default: u64) -> Result<u64, String> {
    let value = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value);
    match value {
        None => Ok(default),
        Some(value) => value
            .parse()
            .map_err(|_| format!("query parameter {name} must be a whole number, got {value:?}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::query_u64;

    #[test]
    fn query_values() {
        assert_eq!(query_u64("ms=250", "ms", 1), Ok(250));
        assert_eq!(query_u64("count=3&interval_ms=5", "interval_ms", 1), Ok(5));
        assert_eq!(query_u64("", "ms", 7), Ok(7));
        assert!(query_u64("ms=abc", "ms", 7).unwrap_err().contains("ms"));
    }
}
