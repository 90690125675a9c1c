//! [`Feed`] against tiny axum servers on loopback serving canned events:
//! parsing, a server restart mid-stream, the end of a stream, and the
//! polling fallback of a server without the stream.

use super::*;
use crate::cli::{Globals, Output};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cutover_api::agents::AgentList;
use cutover_api::alarms::{Alarm, AlarmList};
use cutover_api::{ApiErrorBody, ApiErrorDetail};
use cutover_deploy::alarm::AlarmState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, oneshot};

const TOKEN: &str = "s3cret";

fn client(addr: SocketAddr) -> Client {
    Client::new(&Globals {
        server: format!("http://{addr}/"),
        token: Some(TOKEN.into()),
        output: Output::Table,
        ca_cert: None,
    })
    .unwrap()
}

fn event(snap: &StreamEvent) -> Result<Event, std::io::Error> {
    Ok(Event::default()
        .event(snap.name())
        .data(serde_json::to_string(snap).unwrap()))
}

fn alarms(updated_at: u64) -> AlarmList {
    AlarmList {
        alarms: vec![Alarm {
            name: "web-5xx".into(),
            spec: None,
            state: AlarmState::Ok,
            reason: "quiet".into(),
            updated_at,
        }],
    }
}

/// Refuses a request without the CLI's token or for another topic.
fn check(headers: &HeaderMap, q: &StreamQuery, topic: &str) -> Result<(), StatusCode> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    if q.topic != topic {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(())
}

/// First server: one snapshot, then the connection breaks when `cut` fires.
async fn first(
    State(cut): State<Arc<Mutex<Option<oneshot::Receiver<()>>>>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Response {
    if let Err(s) = check(&headers, &q, "agents") {
        return s.into_response();
    }
    let Some(cut) = cut.lock().await.take() else {
        return StatusCode::CONFLICT.into_response();
    };
    let snap = event(&StreamEvent::Agents(AgentList::default()));
    let broken = futures_util::stream::once(async move {
        let _ = cut.await;
        Err(std::io::Error::other("restarting"))
    });
    Sse::new(futures_util::stream::iter([snap]).chain(broken)).into_response()
}

/// Second server: one snapshot, then the stream ends (the object is gone).
async fn second(headers: HeaderMap, Query(q): Query<StreamQuery>) -> Response {
    if let Err(s) = check(&headers, &q, "agents") {
        return s.into_response();
    }
    let snap = event(&StreamEvent::Alarms(alarms(7)));
    Sse::new(futures_util::stream::iter([snap])).into_response()
}

#[tokio::test]
async fn snapshots_survive_a_server_restart_and_the_feed_ends_with_the_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut, cut_rx) = oneshot::channel();
    let app = Router::new()
        .route("/v1/events/stream", get(first))
        .with_state(Arc::new(Mutex::new(Some(cut_rx))));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = client(addr);
    let mut feed = Feed::new(&client, Topic::Agents);
    assert_eq!(
        feed.next().await.unwrap(),
        Some(StreamEvent::Agents(AgentList::default()))
    );

    // The server goes away: its listener closes, then the open
    // connection breaks mid-stream.
    server.abort();
    assert!(server.await.unwrap_err().is_cancelled());
    cut.send(()).unwrap();
    // A new server on the same address; the feed reconnects to it,
    // whether its first attempts were refused or not.
    let (snap, ()) = tokio::join!(feed.next(), async {
        let listener = TcpListener::bind(addr).await.unwrap();
        let app = Router::new().route("/v1/events/stream", get(second));
        tokio::spawn(async move { axum::serve(listener, app).await });
    });
    assert_eq!(snap.unwrap(), Some(StreamEvent::Alarms(alarms(7))));
    assert_eq!(feed.next().await.unwrap(), None);
    assert_eq!(feed.next().await.unwrap(), None);
    let err = feed
        .next_of(|e| match e {
            StreamEvent::Alarms(a) => Some(a),
            _ => None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "agents is gone: the server ended its live feed"
    );
}

#[tokio::test]
async fn garbage_on_the_stream_is_an_error_not_a_crash() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/v1/events/stream",
        get(|| async {
            let bad = Ok::<_, std::io::Error>(Event::default().event("agents").data("{\"kind\""));
            Sse::new(futures_util::stream::iter([bad]))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = client(addr);
    let err = Feed::new(&client, Topic::Agents).next().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected \"agents\" event on the live feed of agents"
    );
}

/// `/v1/alarms` of a server without the stream: the same list twice, then
/// a changed one, then the same again.
async fn polled(State(calls): State<Arc<AtomicU64>>) -> axum::Json<AlarmList> {
    let n = calls.fetch_add(1, Ordering::SeqCst);
    axum::Json(alarms(n.min(3) / 2))
}

#[tokio::test]
async fn a_server_without_the_stream_is_polled_for_changes_only() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/v1/alarms", get(polled))
        .route(
            "/v1/services/{name}",
            get(|| async {
                let body = ApiErrorBody {
                    error: ApiErrorDetail {
                        message: "service \"gone\" not found".into(),
                        diagnostics: vec![],
                        warnings: vec![],
                    },
                };
                (StatusCode::NOT_FOUND, axum::Json(body))
            }),
        )
        .with_state(calls.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = client(addr);
    let mut feed = Feed::new(&client, Topic::Alarms);
    assert_eq!(
        feed.next().await.unwrap(),
        Some(StreamEvent::Alarms(alarms(0)))
    );
    assert_eq!(
        feed.next().await.unwrap(),
        Some(StreamEvent::Alarms(alarms(1)))
    );
    // The unchanged second and fourth answers were not yielded.
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // An object that is not there: the server's own message.
    let err = Feed::new(&client, Topic::Service("gone".into()))
        .next()
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "service \"gone\" not found");
}
