//! The OCI registry's HTTP side under `/v2/`, on the API's listener: paths
//! are read by `cutover_registry::route`, every operation is
//! `cutover_registry::Registry`'s, and this module only checks who calls
//! (`auth.rs`), streams bodies in and out, and writes the spec's answers
//! (`reply.rs`). No body size limit applies here: bodies stream to disk.

mod auth;
pub(crate) mod lifecycle;
pub(crate) mod own;
mod reply;
pub(crate) mod scanning;
mod scanning_advisories;
mod scanning_image;
#[cfg(test)]
mod scanning_tests;
pub(crate) mod scans;

pub(crate) use scanning_advisories::ImportError;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use cutover_registry::route::{self, Route};
use cutover_registry::{Digest, ErrorCode, RegistryError, parse_content_range};
use futures_util::TryStreamExt;

use crate::api::AppState;
use auth::Caller;
use reply::{error, registry_error, value};

/// The most entries a page of tags or of the catalog holds when the
/// client gives no `n`.
const DEFAULT_PAGE: usize = 1000;

/// The `/v2/` routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/v2", any(handle))
        .route("/v2/", any(handle))
        .route("/v2/{*rest}", any(handle))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Collects the registry's garbage at start (stale uploads from before a
/// restart go at once) and then every [`cutover_registry::GC_INTERVAL`].
pub(crate) async fn collect_garbage(
    registry: std::sync::Arc<cutover_registry::Registry>,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        if let Err(e) = registry.gc().await {
            tracing::warn!(error = %e, "registry garbage collection failed");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(cutover_registry::GC_INTERVAL) => {}
        }
    }
}

fn stream(body: Body) -> cutover_registry::Body {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

fn with_api_version(mut r: Response) -> Response {
    r.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

async fn handle(
    State(st): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_string();
    let Some(route) = route::parse(&path) else {
        return with_api_version(error(ErrorCode::NameUnknown, "no such registry path"));
    };
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let allowed = match auth::caller(&st, &headers) {
        Caller::Authenticated => true,
        Caller::Refused => false,
        Caller::Anonymous => match auth::pulled_repository(&method, &route) {
            // A repository that does not exist or forbids anonymous pulls
            // answers the same challenge: its existence is not revealed.
            Some(name) => st
                .registry
                .repository(name)
                .await
                .is_ok_and(|r| r.anonymous_pull),
            None => false,
        },
    };
    if !allowed {
        return with_api_version(error(
            ErrorCode::Unauthorized,
            "authentication required: log in with user AWS and a registry token",
        ));
    }
    let out = dispatch(&st, &method, route, &query, &headers, body).await;
    with_api_version(out.unwrap_or_else(registry_error))
}

async fn dispatch(
    st: &AppState,
    method: &Method,
    route: Route<'_>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    let reg = &st.registry;
    let head = method == Method::HEAD;
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let content_range = || {
        headers
            .get(header::CONTENT_RANGE)
            .map(|v| parse_content_range(v.to_str().unwrap_or("")))
            .transpose()
    };
    Ok(match (method.clone(), route) {
        (Method::GET | Method::HEAD, Route::Base) => axum::Json(reply::Empty {}).into_response(),
        (Method::GET, Route::Catalog) => {
            let n = page_size(query)?;
            let page = reg.catalog(n, query.get("last").cloned()).await?;
            let link = reply::link_next("/v2/_catalog", n, &page);
            paged(reply::Catalog { repositories: page }, link)
        }
        (Method::GET, Route::Tags { name }) => {
            let n = page_size(query)?;
            let tags = reg.tags(name, n, query.get("last").cloned()).await?;
            let link = reply::link_next(&format!("/v2/{name}/tags/list"), n, &tags);
            paged(reply::TagList { name, tags }, link)
        }
        (Method::GET | Method::HEAD, Route::Manifest { name, reference }) => {
            let (stored, bytes) = if head {
                (reg.stat_manifest(name, reference).await?, Vec::new())
            } else {
                let m = reg.get_manifest(name, reference).await?;
                (m.stored, m.bytes)
            };
            let mut r = Response::new(Body::from(bytes));
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, value(&stored.media_type));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(stored.size));
            h.insert("docker-content-digest", value(&stored.digest));
            r
        }
        (Method::PUT, Route::Manifest { name, reference }) => {
            let (digest, subject) = reg
                .put_manifest(
                    name,
                    reference,
                    header_str(header::CONTENT_TYPE),
                    stream(body),
                )
                .await?;
            st.scanner.pushed(name, digest.as_str()).await;
            let mut r = created(&format!("/v2/{name}/manifests/{digest}"), &digest);
            if let Some(s) = subject {
                r.headers_mut().insert("oci-subject", value(&s));
            }
            r
        }
        (Method::DELETE, Route::Manifest { name, reference }) => {
            reg.delete_manifest(name, reference).await?;
            StatusCode::ACCEPTED.into_response()
        }
        (Method::GET | Method::HEAD, Route::Blob { name, digest }) => {
            let b = reg
                .open_blob(name, digest, header_str(header::RANGE))
                .await?;
            reply::blob(b, digest, head).await
        }
        (Method::DELETE, Route::Blob { name, digest }) => {
            reg.delete_blob(name, digest).await?;
            StatusCode::ACCEPTED.into_response()
        }
        (Method::POST, Route::Uploads { name }) => {
            if let (Some(mount), Some(from)) = (query.get("mount"), query.get("from")) {
                let digest = Digest::parse(mount)?;
                if reg.mount(name, &digest, from).await? {
                    return Ok(created(&format!("/v2/{name}/blobs/{digest}"), &digest));
                }
            }
            if let Some(digest) = query.get("digest") {
                let (digest, _) = reg.put_blob(name, digest, stream(body)).await?;
                return Ok(created(&format!("/v2/{name}/blobs/{digest}"), &digest));
            }
            let id = reg.start_upload(name).await?.to_string();
            upload_state(StatusCode::ACCEPTED, name, &id, 0)
        }
        (Method::GET, Route::Upload { name, id }) => {
            let offset = reg.upload_offset(name, id).await?;
            upload_state(StatusCode::NO_CONTENT, name, id, offset)
        }
        (Method::PATCH, Route::Upload { name, id }) => {
            let offset = reg
                .patch_upload(name, id, content_range()?, stream(body))
                .await?;
            upload_state(StatusCode::ACCEPTED, name, id, offset)
        }
        (Method::PUT, Route::Upload { name, id }) => {
            let Some(digest) = query.get("digest") else {
                return Err(RegistryError::refused(
                    ErrorCode::DigestInvalid,
                    "finishing an upload needs ?digest=",
                ));
            };
            let (digest, _) = reg
                .finish_upload(name, id, digest, content_range()?, stream(body))
                .await?;
            created(&format!("/v2/{name}/blobs/{digest}"), &digest)
        }
        (Method::DELETE, Route::Upload { name, id }) => {
            reg.cancel_upload(name, id).await?;
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::GET, Route::Referrers { name, digest }) => {
            let filter = query.get("artifactType").map(String::as_str);
            let index = reg.referrers(name, digest, filter).await?;
            let mut r = Response::new(Body::from(index));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
            );
            if filter.is_some() {
                r.headers_mut().insert(
                    "oci-filters-applied",
                    HeaderValue::from_static("artifactType"),
                );
            }
            r
        }
        _ => error(
            ErrorCode::Unsupported,
            "the method is not supported on this path",
        ),
    })
}

fn page_size(query: &HashMap<String, String>) -> Result<usize, RegistryError> {
    match query.get("n") {
        None => Ok(DEFAULT_PAGE),
        Some(n) => n
            .parse::<usize>()
            .map(|n| n.min(10 * DEFAULT_PAGE))
            .map_err(|_| RegistryError::refused(ErrorCode::Unsupported, "n must be a number")),
    }
}

fn paged(body: impl serde::Serialize, link: Option<HeaderValue>) -> Response {
    let mut r = axum::Json(body).into_response();
    if let Some(link) = link {
        r.headers_mut().insert(header::LINK, link);
    }
    r
}

fn created(location: &str, digest: &Digest) -> Response {
    let mut r = StatusCode::CREATED.into_response();
    r.headers_mut().insert(header::LOCATION, value(location));
    r.headers_mut()
        .insert("docker-content-digest", value(digest.as_str()));
    r
}

fn upload_state(status: StatusCode, name: &str, id: &str, offset: u64) -> Response {
    let mut r = status.into_response();
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        value(&format!("/v2/{name}/blobs/uploads/{id}")),
    );
    h.insert(header::RANGE, reply::range_header(offset));
    h.insert("docker-upload-uuid", value(id));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}
