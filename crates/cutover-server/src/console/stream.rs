//! `GET /v1/events/stream?topic=...`: server-sent events, each a typed
//! snapshot ([`StreamEvent`]) of the topic, sent at the start and whenever
//! it changes.
//!
//! A snapshot is what the `/v1` handler of the object answers (the same
//! function is called), read every [`POLL`] and sent when its JSON differs
//! from the last one sent. Polling one indexed read per subscriber is
//! simpler than threading change notifications through every writer, and
//! bounds the delay from a change to the browser by `POLL`. The stream ends
//! when its object is gone.

use crate::api::{ApiError, ApiResult, AppState, alarms, deployments, pipelines, services};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use cutover_api::stream::{StreamEvent, StreamQuery, Topic};
use futures_util::Stream;
use std::convert::Infallible;
use std::time::Duration;

/// How often a subscriber's topic is read.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// The snapshot of a topic, read through its `/v1` handler.
pub(crate) async fn snapshot(st: &AppState, topic: &Topic) -> ApiResult<StreamEvent> {
    let st = State(st.clone());
    Ok(match topic {
        Topic::Services => StreamEvent::Services(services::list(st).await?.0),
        Topic::Alarms => StreamEvent::Alarms(alarms::list(st).await?.0),
        Topic::Service(n) => StreamEvent::Service(Box::new(
            services::describe(st, Path(n.clone())).await?.0.service,
        )),
        Topic::Deployment(id) => StreamEvent::Deployment(Box::new(
            deployments::get(st, Path(id.clone())).await?.0.deployment,
        )),
        Topic::Pipeline(n) => {
            StreamEvent::Pipeline(pipelines::executions(st, Path(n.clone())).await?.0)
        }
        Topic::Agents => StreamEvent::Agents(crate::hosts::api::list(st).await?.0),
        Topic::HostDeployment(id) => StreamEvent::HostDeployment(Box::new(
            crate::hosts::deploy_api::get(st, Path(id.clone())).await?.0,
        )),
    })
}

pub(crate) async fn stream(
    State(st): State<AppState>,
    Query(q): Query<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let topic: Topic = q
        .topic
        .parse()
        .map_err(|e: cutover_api::stream::UnknownTopic| ApiError::bad_request(e.to_string()))?;
    // A topic that names nothing is a 404 now, not an empty stream.
    let first = snapshot(&st, &topic).await?;
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = (st, topic, Some(first), String::new(), ticker);
    let events = futures_util::stream::unfold(
        state,
        |(st, topic, mut pending, mut last, mut ticker)| async move {
            loop {
                let snap = match pending.take() {
                    Some(s) => s,
                    None => {
                        ticker.tick().await;
                        // Gone (or unreadable): the stream ends.
                        snapshot(&st, &topic).await.ok()?
                    }
                };
                let Ok(json) = serde_json::to_string(&snap) else {
                    return None;
                };
                if json != last {
                    let event = Event::default().event(snap.name()).data(&json);
                    last = json;
                    return Some((Ok(event), (st, topic, None, last, ticker)));
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
