//! The admin API (JSON under `/v1/`, Prometheus text at `/metrics`), served over HTTP/1.1 on
//! the `admin:` address. Every change answers `{version}` only once the new snapshot is
//! persisted and in force; a rejected change answers 400 with a located message and leaves the
//! running configuration untouched.
//!
//! Authentication (see [`crate::auth`] for where the token comes from): with a token in force
//! every request needs `Authorization: Bearer <token>` (scheme in any case, token compared in
//! constant time). No answer and no log line carries the token: `GET /v1/config` shows a
//! configured `adminToken` as `"<redacted>"`. A `PUT /v1/config` that omits `adminToken` or
//! sends `"<redacted>"` keeps the configuration's token; one that sets `adminToken` while a
//! token from `--admin-token-file` or `CUTOVER_PROXY_TOKEN` is in force is refused (400): that
//! token cannot be replaced or cleared through the API.
//!
//! The accept loop backs off on errors ([`crate::limits::AcceptGuard`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{ConfigResponse, ErrorResponse, TargetsRequest, VersionResponse, WeightsRequest};
use crate::config::{self, Format, ProxyConfig, REDACTED, WeightedGroup};
use crate::limits::AcceptGuard;
use crate::server::{ApplyError, Shared};

/// Request bodies larger than this are rejected.
const MAX_BODY: usize = 4 << 20;
/// Source name of request bodies in error messages.
const REQUEST: &str = "<request>";

/// Accepts admin connections until `stop` is cancelled. (Boxed: the admin API applies
/// configurations, and applying one may start the admin API.)
pub(crate) fn serve(
    shared: Arc<Shared>,
    socket: TcpListener,
    stop: CancellationToken,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(accept(shared, socket, stop))
}

async fn accept(shared: Arc<Shared>, socket: TcpListener, stop: CancellationToken) {
    let mut guard = AcceptGuard::new("admin");
    loop {
        let (stream, _) = tokio::select! {
            r = socket.accept() => match r {
                Ok(x) => {
                    guard.succeeded();
                    x
                }
                Err(e) => {
                    tokio::select! {
                        _ = guard.failed(&e) => continue,
                        _ = stop.cancelled() => return,
                    }
                }
            },
            _ = stop.cancelled() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}

/// An admin answer that is not a success.
struct ApiError(StatusCode, String);

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Invalid(c) => ApiError(StatusCode::BAD_REQUEST, c.to_string()),
            ApplyError::Io(m) => ApiError(StatusCode::BAD_REQUEST, m),
        }
    }
}

impl From<config::ConfigError> for ApiError {
    fn from(e: config::ConfigError) -> Self {
        ApiError(StatusCode::BAD_REQUEST, e.to_string())
    }
}

type AdminResponse = Response<Full<Bytes>>;

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> AdminResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let result = match authorize(shared, &req) {
        Ok(()) => route(shared, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(resp) => resp,
        Err(ApiError(status, error)) => {
            tracing::warn!(%method, %path, status = status.as_u16(), %error, "admin request rejected");
            json(status, &ErrorResponse { error })
        }
    }
}

fn authorize(shared: &Shared, req: &Request<Incoming>) -> Result<(), ApiError> {
    let snap = shared.snapshot.load();
    let Some(token) = shared
        .fixed_token
        .as_ref()
        .map(|(t, _)| t.as_str())
        .or(snap.config.admin_token.as_deref())
    else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if crate::auth::bearer_matches(given, token) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".into(),
        ))
    }
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Result<AdminResponse, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method().clone(), segments.as_slice()) {
        (Method::GET, ["metrics"]) => {
            let text = shared
                .metrics
                .prometheus(shared.version(), &shared.host_counts());
            let mut resp = Response::new(Full::new(Bytes::from(text)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            Ok(resp)
        }
        (Method::GET, ["v1", "config"]) => {
            let snap = shared.snapshot.load();
            let mut config = (*snap.config).clone();
            if config.admin_token.is_some() {
                config.admin_token = Some(REDACTED.to_owned());
            }
            Ok(json(
                StatusCode::OK,
                &ConfigResponse {
                    version: snap.version,
                    config,
                },
            ))
        }
        (Method::PUT, ["v1", "config"]) => {
            let text = body_text(req).await?;
            let mut config = config::parse_json(REQUEST, &text)?;
            keep_token(shared, &mut config)?;
            let version = shared.apply(config, REQUEST).await?;
            Ok(json(StatusCode::OK, &VersionResponse { version }))
        }
        (Method::PUT, ["v1", "listeners", name, "weights"]) => {
            let name = decode(name);
            let text = body_text(req).await?;
            let body: WeightsRequest = config::deserialize(REQUEST, &text, Format::Json)?;
            let mut config = (*shared.snapshot.load().config).clone();
            set_weights(&mut config, &name, &body)?;
            let version = shared.apply(config, REQUEST).await?;
            Ok(json(StatusCode::OK, &VersionResponse { version }))
        }
        (Method::PUT, ["v1", "target-groups", name, "targets"]) => {
            let name = decode(name);
            let text = body_text(req).await?;
            let body: TargetsRequest = config::deserialize(REQUEST, &text, Format::Json)?;
            let mut config = (*shared.snapshot.load().config).clone();
            let group = config
                .target_groups
                .iter_mut()
                .find(|g| g.name == name)
                .ok_or_else(|| {
                    ApiError(StatusCode::NOT_FOUND, format!("no target group {name:?}"))
                })?;
            group.targets = body.targets;
            let version = shared.apply(config, REQUEST).await?;
            Ok(json(StatusCode::OK, &VersionResponse { version }))
        }
        (Method::POST, ["v1", "reload"]) => {
            let version = shared.reload().await?;
            Ok(json(StatusCode::OK, &VersionResponse { version }))
        }
        (Method::GET, ["v1", "health"]) => Ok(json(StatusCode::OK, &shared.health().await)),
        (Method::GET, ["v1", "status"]) => Ok(json(StatusCode::OK, &shared.status())),
        (Method::GET, ["v1", "metrics", "feed"]) => {
            let since = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("since="))
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        ApiError(
                            StatusCode::BAD_REQUEST,
                            format!("since: invalid unix time {v:?}"),
                        )
                    })
                })
                .transpose()?
                .unwrap_or(0);
            Ok(json(StatusCode::OK, &shared.metrics.feed(since)))
        }
        _ => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no route for {} {path}", req.method()),
        )),
    }
}

/// The token rules of a `PUT /v1/config` (see the module documentation).
fn keep_token(shared: &Shared, config: &mut ProxyConfig) -> Result<(), ApiError> {
    match config.admin_token.as_deref() {
        None | Some(REDACTED) => {
            config
                .admin_token
                .clone_from(&shared.snapshot.load().config.admin_token);
            Ok(())
        }
        Some(_) => match &shared.fixed_token {
            Some((_, from)) => Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "{REQUEST}: adminToken: the admin token is set by {} and cannot be changed through the admin API",
                    from.describe()
                ),
            )),
            None => Ok(()),
        },
    }
}

/// Applies a weights request to a configuration copy.
fn set_weights(
    config: &mut ProxyConfig,
    listener: &str,
    body: &WeightsRequest,
) -> Result<(), ApiError> {
    let l = config
        .listeners
        .iter_mut()
        .find(|l| l.name == listener)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no listener {listener:?}")))?;
    let action = match body.rule {
        None => &mut l.default_action,
        Some(i) => {
            let n = l.rules.len();
            &mut l
                .rules
                .get_mut(i)
                .ok_or_else(|| {
                    ApiError(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "{REQUEST}: rule: listener {listener:?} has {n} rules, no rule {i}"
                        ),
                    )
                })?
                .action
        }
    };
    let forward = action.forward.as_mut().ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{REQUEST}: rule: the action of listener {listener:?} is not a forward"),
        )
    })?;
    for (group, weight) in &body.weights {
        match forward.iter_mut().find(|w| &w.target_group == group) {
            Some(w) => w.weight = *weight,
            None => forward.push(WeightedGroup {
                target_group: group.clone(),
                weight: *weight,
            }),
        }
    }
    Ok(())
}

async fn body_text(req: Request<Incoming>) -> Result<String, ApiError> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("{REQUEST}: cannot read the body: {e}"),
            )
        })?
        .to_bytes();
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{REQUEST}: the body is not UTF-8"),
        )
    })
}

fn json(status: StatusCode, value: &impl Serialize) -> AdminResponse {
    let body =
        serde_json::to_vec(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes());
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Decodes `%XX` escapes of a path segment.
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
