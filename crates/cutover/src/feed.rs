//! The live feed from the CLI: [`Feed`] follows one topic of
//! `GET /v1/events/stream` (server-sent events, each a typed [`StreamEvent`]
//! snapshot of the object) for `deployments watch`, `deploy --wait` and
//! `pipelines start --wait`, so they print a change within the server's
//! 100 ms instead of a poll period.
//!
//! - A dropped connection (a server restart) reconnects with backoff; the
//!   server sends the current snapshot first on every connection, so a
//!   caller that keys what it printed by id misses nothing.
//! - The feed ends when the server ends the stream: its object is gone.
//! - A server without the stream (404, or not an event stream) is followed
//!   by reading the object's `/v1` resource every [`POLL`] instead, quietly
//!   and for good, yielding only changed snapshots: callers see one sequence
//!   of snapshots either way.

use crate::client::{ApiFailure, Client};
use anyhow::Context;
use cutover_api::deployments::DeploymentEnvelope;
use cutover_api::services::ServiceEnvelope;
use cutover_api::stream::{StreamEvent, StreamQuery, Topic};
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::StatusCode;
use std::time::Duration;
use tokio::time::Instant;

/// How often a server without the stream is read.
const POLL: Duration = Duration::from_millis(200);

/// A connection silent this long is dead: the server sends a keep-alive
/// comment every 15 s.
const IDLE: Duration = Duration::from_secs(45);

/// A dropped connection is retried at once, then after `RETRY_FIRST`,
/// doubling up to `RETRY_MAX`, until `GIVE_UP` has passed since the drop
/// (a server restart takes a few seconds).
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
const GIVE_UP: Duration = Duration::from_secs(60);

type Events =
    BoxStream<'static, Result<eventsource_stream::Event, EventStreamError<std::io::Error>>>;

enum Mode {
    /// About to connect: first, or after a drop (then not before its
    /// [`Retry::at`]).
    Connecting(Option<Retry>),
    Streaming(Events),
    /// The server has no stream: the last snapshot yielded and when to
    /// read again.
    Polling(Option<(StreamEvent, Instant)>),
    Ended,
}

/// Reconnecting after a drop at `since`: the next attempt `at`, then
/// `wait` after that one. Deadlines, not sleeps, so that a caller may drop
/// [`Feed::next`] (a `select!`) and call it again without delaying it.
#[derive(Debug, Clone, Copy)]
struct Retry {
    since: Instant,
    at: Instant,
    wait: Duration,
}

/// One topic's snapshots, from the server's stream or by polling.
pub(crate) struct Feed<'a> {
    client: &'a Client,
    topic: Topic,
    mode: Mode,
}

impl<'a> Feed<'a> {
    pub(crate) fn new(client: &'a Client, topic: Topic) -> Feed<'a> {
        Feed {
            client,
            topic,
            mode: Mode::Connecting(None),
        }
    }

    /// The next snapshot, or `None` once the server ended the stream (its
    /// object is gone). The first connection fails as any request does; a
    /// later drop is retried with backoff.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<StreamEvent>> {
        loop {
            match &mut self.mode {
                Mode::Ended => return Ok(None),
                Mode::Connecting(retry) => {
                    let retry = *retry;
                    if let Some(r) = retry {
                        tokio::time::sleep_until(r.at).await;
                    }
                    match self.connect().await {
                        Ok(Some(events)) => self.mode = Mode::Streaming(events),
                        Ok(None) => {
                            tracing::debug!(topic = %self.topic, "the server has no live feed: polling");
                            self.mode = Mode::Polling(None);
                        }
                        Err(e) => {
                            let Some(r) = retry else {
                                return Err(e);
                            };
                            if !retryable(&e) || r.since.elapsed() >= GIVE_UP {
                                return Err(e.context(format!(
                                    "the live feed of {} dropped and did not come back",
                                    self.topic
                                )));
                            }
                            tracing::debug!(topic = %self.topic, error = %e, "reconnecting in {:?}", r.wait);
                            self.mode = Mode::Connecting(Some(Retry {
                                since: r.since,
                                at: Instant::now() + r.wait,
                                wait: (r.wait * 2).min(RETRY_MAX),
                            }));
                        }
                    }
                }
                Mode::Streaming(events) => match events.next().await {
                    Some(Ok(ev)) => {
                        let snap = serde_json::from_str(&ev.data).with_context(|| {
                            format!(
                                "unexpected {:?} event on the live feed of {}",
                                ev.event, self.topic
                            )
                        })?;
                        return Ok(Some(snap));
                    }
                    None => self.mode = Mode::Ended,
                    Some(Err(e)) => {
                        tracing::debug!(topic = %self.topic, error = %e, "the live feed dropped");
                        self.dropped();
                    }
                },
                Mode::Polling(last) => {
                    if let Some((_, due)) = last {
                        tokio::time::sleep_until(*due).await;
                    }
                    let snap = poll(self.client, &self.topic).await?;
                    let changed = last.as_ref().is_none_or(|(l, _)| *l != snap);
                    *last = Some((snap.clone(), Instant::now() + POLL));
                    if changed {
                        return Ok(Some(snap));
                    }
                }
            }
        }
    }

    /// The next snapshot as `pick` reads it; an error once the feed ended
    /// or when the server sent another kind of snapshot.
    pub(crate) async fn next_of<T>(
        &mut self,
        pick: impl FnOnce(StreamEvent) -> Option<T>,
    ) -> anyhow::Result<T> {
        let Some(ev) = self.next().await? else {
            anyhow::bail!("{} is gone: the server ended its live feed", self.topic);
        };
        let name = ev.name();
        pick(ev).with_context(|| {
            format!(
                "the server sent a {name} snapshot on the live feed of {}",
                self.topic
            )
        })
    }

    fn dropped(&mut self) {
        let now = Instant::now();
        self.mode = Mode::Connecting(Some(Retry {
            since: now,
            at: now,
            wait: RETRY_FIRST,
        }));
    }

    /// Opens the stream; `None` when the server has none.
    async fn connect(&self) -> anyhow::Result<Option<Events>> {
        let query = StreamQuery {
            topic: self.topic.to_string(),
        };
        let resp = match self.client.stream("/v1/events/stream", &query).await {
            Ok(resp) => resp,
            Err(e) if status(&e) == Some(StatusCode::NOT_FOUND) => return Ok(None),
            Err(e) => return Err(e),
        };
        let is_events = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_events {
            return Ok(None);
        }
        // Keep-alive comments count as life: the timeout is on bytes.
        let bytes = futures_util::stream::unfold(resp.bytes_stream(), |mut b| async move {
            let item = match tokio::time::timeout(IDLE, b.next()).await {
                Ok(item) => item?.map_err(std::io::Error::other),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("nothing received for {IDLE:?}"),
                )),
            };
            Some((item, b))
        });
        Ok(Some(bytes.eventsource().boxed()))
    }
}

fn status(e: &anyhow::Error) -> Option<StatusCode> {
    e.downcast_ref::<ApiFailure>().map(|f| f.status)
}

/// Whether a failed reconnection may succeed later: the server is not up
/// (no answer) or not ready (5xx).
fn retryable(e: &anyhow::Error) -> bool {
    status(e).is_none_or(|s| s.is_server_error())
}

/// What the stream would send for `topic`, read from its `/v1` resource.
async fn poll(client: &Client, topic: &Topic) -> anyhow::Result<StreamEvent> {
    Ok(match topic {
        Topic::Services => StreamEvent::Services(client.get("/v1/services").await?),
        Topic::Alarms => StreamEvent::Alarms(client.get("/v1/alarms").await?),
        Topic::Agents => StreamEvent::Agents(client.get("/v1/agents").await?),
        Topic::Service(n) => StreamEvent::Service(Box::new(
            client
                .get::<ServiceEnvelope>(&format!("/v1/services/{n}"))
                .await?
                .service,
        )),
        Topic::Deployment(id) => StreamEvent::Deployment(Box::new(
            client
                .get::<DeploymentEnvelope>(&format!("/v1/deployments/{id}"))
                .await?
                .deployment,
        )),
        Topic::Pipeline(n) => {
            StreamEvent::Pipeline(client.get(&format!("/v1/pipelines/{n}/executions")).await?)
        }
        Topic::HostDeployment(id) => StreamEvent::HostDeployment(Box::new(
            client.get(&format!("/v1/host-deployments/{id}")).await?,
        )),
    })
}

#[cfg(test)]
mod tests;
