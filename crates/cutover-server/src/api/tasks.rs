//! Tasks: list, describe, and their logs (one task, or a service's tasks
//! merged line by line with a task prefix), optionally followed.

use super::{ApiError, ApiResult, AppState, views};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use cutover_api::query::{LogsQuery, TaskListQuery};
use cutover_api::tasks::{TaskEnvelope, TaskList};
use cutover_store::{TaskRow, ops};
use futures_util::{Stream, StreamExt, stream};
use std::io;

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<TaskListQuery>,
) -> ApiResult<Json<TaskList>> {
    let limit = q.limit.unwrap_or(1000);
    let pins = views::pins(&st, q.service.as_deref()).await?;
    let tasks = st
        .store
        .call(move |c| ops::list_tasks(c, q.service.as_deref(), q.all, limit))
        .await?;
    let mut tasks = views::tasks(tasks);
    tasks.iter_mut().for_each(|t| views::pin_task(t, &pins));
    Ok(Json(TaskList { tasks }))
}

async fn load(st: &AppState, id: &str) -> ApiResult<TaskRow> {
    let i = id.to_string();
    st.store
        .call(move |c| ops::task(c, &i))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id:?}")))
}

pub(crate) async fn describe(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskEnvelope>> {
    let mut task = views::task(load(&st, &id).await?);
    let pins = views::pins(&st, Some(&task.service)).await?;
    views::pin_task(&mut task, &pins);
    Ok(Json(TaskEnvelope { task }))
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
    let task = load(&st, &id).await?;
    Ok(text_response(task_stream(&st, &task, q.follow).await?))
}

pub(crate) async fn service_logs(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let n = name.clone();
    let (svc, tasks) = st
        .store
        .call(move |c| {
            Ok((
                ops::service(c, &n)?,
                ops::list_tasks(c, Some(&n), false, u32::MAX)?,
            ))
        })
        .await?;
    svc.ok_or_else(|| ApiError::not_found(format!("service {name:?}")))?;
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

/// The longest line a service's merged log holds before it is split: a
/// task that prints without newlines cannot make the server buffer
/// without bound.
const MAX_LINE: usize = 64 * 1024;

/// Splits a byte stream into whole lines, each prefixed; a line longer than
/// [`MAX_LINE`] is cut into pieces of that size, and a last partial line is
/// flushed at the end of the stream.
fn prefixed_lines(inner: ByteStream, prefix: String) -> ByteStream {
    // (inner, buffer, bytes of the buffer already known to hold no newline, prefix, done)
    let state = (inner, BytesMut::new(), 0usize, prefix, false);
    Box::pin(stream::unfold(
        state,
        |(mut inner, mut buf, mut scanned, prefix, mut done)| async move {
            loop {
                let newline = buf[scanned..].iter().position(|b| *b == b'\n');
                let cut = match newline {
                    // A long line whose newline came in the same chunk is
                    // split too.
                    Some(pos) if scanned + pos >= MAX_LINE => Some(MAX_LINE),
                    Some(pos) => Some(scanned + pos + 1),
                    None if buf.len() >= MAX_LINE => Some(MAX_LINE),
                    None if done && !buf.is_empty() => Some(buf.len()),
                    None => None,
                };
                if let Some(cut) = cut {
                    let line = buf.split_to(cut);
                    let mut out = BytesMut::with_capacity(prefix.len() + line.len() + 1);
                    out.extend_from_slice(prefix.as_bytes());
                    out.extend_from_slice(&line);
                    if !line.ends_with(b"\n") {
                        out.extend_from_slice(b"\n");
                    }
                    return Some((Ok(out.freeze()), (inner, buf, 0, prefix, done)));
                }
                scanned = buf.len();
                if done {
                    return None;
                }
                match inner.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(e), (inner, buf, scanned, prefix, true))),
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

    #[tokio::test]
    async fn a_line_without_newline_is_split_instead_of_buffered() {
        // 10 MiB without a newline, in 64 KiB chunks: the stream must yield
        // pieces as it goes, never holding more than one line.
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = (0..160).map(move |_| Ok::<_, io::Error>(chunk.clone()));
        let s: ByteStream = Box::pin(stream::iter(chunks));
        let mut out = prefixed_lines(s, "[t] ".into());
        let mut pieces = 0;
        let mut total = 0;
        while let Some(piece) = out.next().await {
            let piece = piece.unwrap();
            assert!(piece.len() <= MAX_LINE + 5, "{}", piece.len());
            assert!(piece.starts_with(b"[t] ") && piece.ends_with(b"\n"));
            total += piece.len() - 5;
            pieces += 1;
        }
        assert_eq!(total, 160 * 64 * 1024);
        assert_eq!(pieces, 160);

        // The same with the newline arriving in the same chunk.
        let mut long = vec![b'y'; 3 * MAX_LINE];
        long.push(b'\n');
        let s: ByteStream = Box::pin(stream::iter([Ok::<_, io::Error>(Bytes::from(long))]));
        let pieces: Vec<Bytes> = prefixed_lines(s, "[t] ".into())
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert!(
            pieces.iter().all(|p| p.len() <= MAX_LINE + 5),
            "{}",
            pieces.len()
        );
        assert_eq!(pieces.len(), 4);
    }
}
