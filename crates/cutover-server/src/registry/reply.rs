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

/// How much a blob's reader thread reads at once.
const BLOB_CHUNK: usize = 1 << 20;
/// Chunks read ahead of the socket.
const BLOB_READ_AHEAD: usize = 4;

/// A blob's body streamed from its file (empty for HEAD).
///
/// A thread of the blocking pool reads the file in [`BLOB_CHUNK`] pieces
/// into a channel of [`BLOB_READ_AHEAD`], so the disk is read while the
/// socket is written, one pool job per blob rather than per read (as
/// `tokio::fs::File` does it). A client that goes away closes the channel
/// and the thread stops at its next chunk.
pub(super) async fn blob(b: BlobBody, digest: &str, head: bool) -> Response {
    let status = if b.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let len = b.len;
    let body = if head {
        Body::empty()
    } else {
        let (tx, mut rx) = tokio::sync::mpsc::channel(BLOB_READ_AHEAD);
        let file = b.file.into_std().await;
        tokio::task::spawn_blocking(move || read_chunks(file, len, &tx));
        Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
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

/// Sends `len` bytes of `file` in chunks until done, a read fails (the
/// error ends the body, so the client sees a broken transfer, never a
/// short one) or the receiver is gone.
fn read_chunks(
    file: std::fs::File,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) {
    use std::io::Read;
    let mut file = file.take(len);
    let mut left = len;
    while left > 0 {
        let want = BLOB_CHUNK.min(usize::try_from(left).unwrap_or(BLOB_CHUNK));
        let mut chunk = Vec::with_capacity(want);
        let read = match (&mut file).take(want as u64).read_to_end(&mut chunk) {
            Ok(0) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the blob file is shorter than its size",
            )),
            Ok(n) => Ok(n),
            Err(e) => Err(e),
        };
        let chunk = match read {
            Ok(n) => {
                left -= n as u64;
                Ok(bytes::Bytes::from(chunk))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a blob");
                Err(e)
            }
        };
        let failed = chunk.is_err();
        if tx.blocking_send(chunk).is_err() || failed {
            return;
        }
    }
}

/// `Link: <path?n=N&last=LAST>; rel="next"` when a page was full.
pub(super) fn link_next(path: &str, n: usize, page: &[String]) -> Option<HeaderValue> {
    let last = page.last().filter(|_| page.len() == n)?;
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    HeaderValue::from_str(&format!("<{path}?n={n}&last={last}>; rel=\"next\"")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(path: &std::path::Path, size: u64, len: u64) -> Result<Vec<u8>, String> {
        let b = BlobBody {
            file: tokio::fs::File::open(path).await.unwrap(),
            size,
            start: 0,
            len,
            partial: false,
        };
        let r = blob(b, "sha256:x", false).await;
        match r.into_body().collect().await {
            Ok(c) => Ok(c.to_bytes().to_vec()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn a_blob_streams_whole_in_chunks_and_a_short_file_breaks_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        // Not a multiple of the chunk, so the last chunk is short.
        let data: Vec<u8> = (0..(2 * BLOB_CHUNK + 12_345)).map(|i| i as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let n = data.len() as u64;
        assert_eq!(body_of(&path, n, n).await.unwrap(), data);
        // A file shorter than the size it was opened for: an error, never a short body.
        let e = body_of(&path, n + 10, n + 10).await.unwrap_err();
        assert!(e.contains("shorter"), "{e}");
    }
}
