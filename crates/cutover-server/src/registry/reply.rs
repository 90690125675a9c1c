//! Answers in the Distribution Spec's shapes: its JSON error body
//! (`{"errors":[{"code","message","detail"}]}`), blob bodies streamed from
//! their files, and pagination's `Link` header.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cutover_registry::{BlobBody, ErrorCode, RegistryError};

/// `GET /v2/`'s body: `{}`.
#[derive(serde::Serialize)]
pub(super) struct Empty {}

/// A page of the catalog.
#[derive(serde::Serialize)]
pub(super) struct Catalog {
    pub(super) repositories: Vec<String>,
}

/// A page of a repository's tags.
#[derive(serde::Serialize)]
pub(super) struct TagList<'a> {
    pub(super) name: &'a str,
    pub(super) tags: Vec<String>,
}

/// The spec's error body.
#[derive(serde::Serialize)]
struct Errors<'a> {
    errors: [ErrorEntry<'a>; 1],
}

#[derive(serde::Serialize)]
struct ErrorEntry<'a> {
    code: &'a str,
    message: &'a str,
    detail: Option<()>,
}

/// An error answer with `code` and `message`.
pub(super) fn error(code: ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    error_with(status, code, message)
}

fn error_with(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = Errors {
        errors: [ErrorEntry {
            code: code.as_str(),
            message,
            detail: None,
        }],
    };
    let mut r = (status, axum::Json(body)).into_response();
    if code == ErrorCode::Unauthorized {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(super::auth::REALM),
        );
    }
    r
}

/// A registry error as an answer; internal causes are logged, not sent.
pub(super) fn registry_error(e: RegistryError) -> Response {
    match e {
        RegistryError::Refused { code, message } => error(code, &message),
        RegistryError::RangeInvalid { offset, .. } => {
            let mut r = error_with(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::BlobUploadInvalid,
                &e.to_string(),
            );
            r.headers_mut().insert(header::RANGE, range_header(offset));
            r
        }
        RegistryError::RangeNotSatisfiable { size } => {
            let mut r = error_with(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::BlobUnknown,
                &e.to_string(),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        RegistryError::Body(_) => error(ErrorCode::BlobUploadInvalid, "the request body broke off"),
        other => {
            tracing::error!(error = %other, "registry request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// `Range: 0-<offset-1>` of an upload holding `offset` bytes (`0-0` when empty,
/// as distribution writes it).
pub(super) fn range_header(offset: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("0-{}", offset.saturating_sub(1)))
        .unwrap_or(HeaderValue::from_static("0-0"))
}

/// A header value from text this module built (digests, paths of checked names).
pub(super) fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))
}

/// A blob's body streamed from its file (empty for HEAD).
pub(super) fn blob(b: BlobBody, digest: &str, head: bool) -> Response {
    use tokio::io::AsyncReadExt;
    let status = if b.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let len = b.len;
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            b.file.take(len),
            256 * 1024,
        ))
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("docker-content-digest", value(digest));
    if b.partial {
        h.insert(
            header::CONTENT_RANGE,
            value(&format!(
                "bytes {}-{}/{}",
                b.start,
                b.start + len - 1,
                b.size
            )),
        );
    }
    r
}

/// `Link: <path?n=N&last=LAST>; rel="next"` when a page was full.
pub(super) fn link_next(path: &str, n: usize, page: &[String]) -> Option<HeaderValue> {
    let last = page.last().filter(|_| page.len() == n)?;
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    HeaderValue::from_str(&format!("<{path}?n={n}&last={last}>; rel=\"next\"")).ok()
}
