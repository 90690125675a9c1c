//! Tasks: list, describe, and their logs (one task, or a service's tasks
//! merged line by line with a task prefix), optionally followed.

use super::{ApiError, ApiResult, AppState};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use cutover_store::{TaskRow, ops};
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    service: Option<String>,
    /// Include stopped tasks.
    #[serde(default)]
    all: bool,
    limit: Option<u32>,
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let tasks = st
        .store
        .with(|c| ops::list_tasks(c, q.service.as_deref(), q.all, q.limit.unwrap_or(1000)))?;
    Ok(Json(json!({"tasks": tasks})))
}

fn load(st: &AppState, id: &str) -> ApiResult<TaskRow> {
    st.store
        .with(|c| ops::task(c, id))?
        .ok_or_else(|| ApiError::not_found(format!("task {id:?}")))
}

pub(crate) async fn describe(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"task": load(&st, &id)?})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogsQuery {
    #[serde(default)]
    follow: bool,
}

type ByteStream = std::pin::Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

async fn task_stream(st: &AppState, task: &TaskRow, follow: bool) -> ApiResult<ByteStream> {
    let rt = st.controller.runtimes().get(&task.runtime).ok_or_else(|| {
        ApiError::bad_request(format!("runtime {} is not available", task.runtime))
    })?;
    let s = rt.logs(&task.id, follow).await.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("logs of task {}: {e}", task.id),
        )
    })?;
    Ok(Box::pin(s))
}

fn text_response(body: ByteStream) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

pub(crate) async fn logs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let task = load(&st, &id)?;
    Ok(text_response(task_stream(&st, &task, q.follow).await?))
}

pub(crate) async fn service_logs(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    st.store
        .with(|c| ops::service(c, &name))?
        .ok_or_else(|| ApiError::not_found(format!("service {name:?}")))?;
    let tasks = st
        .store
        .with(|c| ops::list_tasks(c, Some(&name), false, u32::MAX))?;
    let mut streams = Vec::new();
    for t in &tasks {
        let prefix = format!("[{}] ", &t.id[..t.id.len().min(8)]);
        // A task without a log yet (still starting) is left out rather
        // than failing the whole service's logs.
        match task_stream(&st, t, q.follow).await {
            Ok(s) => streams.push(prefixed_lines(s, prefix)),
            Err(_) => tracing::debug!(task = %t.id, "no log yet"),
        }
    }
    Ok(text_response(Box::pin(stream::select_all(streams))))
}

/// Splits a byte stream into whole lines, each prefixed; a last partial
/// line is flushed at the end of the stream.
fn prefixed_lines(inner: ByteStream, prefix: String) -> ByteStream {
    let state = (inner, BytesMut::new(), prefix, false);
    Box::pin(stream::unfold(
        state,
        |(mut inner, mut buf, prefix, mut done)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line = buf.split_to(pos + 1);
                    let mut out = BytesMut::with_capacity(prefix.len() + line.len());
                    out.extend_from_slice(prefix.as_bytes());
                    out.extend_from_slice(&line);
                    return Some((Ok(out.freeze()), (inner, buf, prefix, done)));
                }
                if done {
                    if buf.is_empty() {
                        return None;
                    }
                    let mut out = BytesMut::from(prefix.as_bytes());
                    out.extend_from_slice(&buf.split());
                    out.extend_from_slice(b"\n");
                    return Some((Ok(out.freeze()), (inner, buf, prefix, done)));
                }
                match inner.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(e), (inner, buf, prefix, true))),
                    None => done = true,
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_prefixed_across_chunk_boundaries() {
        let chunks: Vec<io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"hel")),
            Ok(Bytes::from_static(b"lo\nwor")),
            Ok(Bytes::from_static(b"ld\nlast")),
        ];
        let s: ByteStream = Box::pin(stream::iter(chunks));
        let out: Vec<_> = prefixed_lines(s, "[t1] ".into())
            .map(|r| String::from_utf8(r.unwrap().to_vec()).unwrap())
            .collect()
            .await;
        assert_eq!(out, vec!["[t1] hello\n", "[t1] world\n", "[t1] last\n"]);
    }
}
