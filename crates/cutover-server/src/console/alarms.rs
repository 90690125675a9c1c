//! The alarms page (`/alarms`): each alarm's state and reason, and a
//! history chart of its last [`WINDOW`] seconds: the state over time (from
//! the alarm's stored state changes, `GET /v1/alarms/{name}/history`) as a
//! band, and for a metric alarm the value it judges, second by second, with
//! its threshold.
//!
//! The values come from the data plane's one-second feed, the one the
//! alarm loop evaluates (it keeps 15 minutes, so no second history is kept
//! in the server): each second is read with the alarm loop's own
//! [`crate::alarms::sample`] and combined with the evaluator's
//! [`statistic_of`], so the line is what the evaluator compares. Drawn as
//! server-side SVG like the deployment page's charts; the page re-renders
//! on every state change (topic `alarms`) and every two seconds for the
//! values.

use super::auth::Session;
use super::layout::{badge, page, time, tone};
use super::pages::error_page;
use crate::api::{ApiError, AppState, alarms};
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use cutover_api::alarms::Alarm;
use cutover_api::services::Event;
use cutover_api::wire_name;
use cutover_deploy::alarm::{AlarmState, statistic_of};
use cutover_proxy::metrics::SecondBucket;
use cutover_spec::stack::Alarm as Declared;
use maud::{Markup, html};

/// Seconds drawn.
pub(crate) const WINDOW: u64 = 300;

pub(crate) async fn show(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    match markup(&st, &session).await {
        Ok(m) => m.into_response(),
        Err(e) => error_page(e),
    }
}

async fn markup(st: &AppState, session: &Session) -> Result<Markup, ApiError> {
    let list = alarms::list(State(st.clone())).await?.0.alarms;
    let now = st.clock.now_ms();
    let since = (now / 1000).saturating_sub(WINDOW);
    // No data plane to ask: the charts show states only.
    let seconds = match st.dataplane.metrics_feed(since).await {
        Ok(feed) => feed.seconds,
        Err(_) => Vec::new(),
    };
    let mut rows = Vec::new();
    for a in list {
        let history = alarms::history(State(st.clone()), Path(a.name.clone()))
            .await?
            .0
            .history;
        rows.push((a, history));
    }
    // Alarms in ALARM first.
    rows.sort_by_key(|(a, _)| (a.state != AlarmState::Alarm, a.name.clone()));
    Ok(page(
        "Alarms",
        Some("alarms"),
        session,
        html! {
            @if rows.is_empty() { p { "No alarms." } }
            section aria-label="Alarms" data-refresh="2000" data-running {
                @for (a, history) in &rows {
                    section.card aria-label={ "Alarm " (a.name) } {
                        h2 { (a.name) " " (badge(&wire_name(&a.state))) }
                        p { (a.reason) " · since " (time(a.updated_at)) }
                        (chart(a, history, &seconds, now))
                        details { summary { "State changes (" (history.len()) ")" }
                            ul.timeline { @for e in history.iter().rev() { li { (time(e.at)) " " (e.message) } } } }
                    }
                }
            }
        },
    ))
}

/// The alarm's states over `[t0, now]` as (from ms, to ms, state): the state
/// before the window is the target of the last change before it; a time
/// before any known change is left out.
fn bands(history: &[Event], t0: u64, now: u64) -> Vec<(u64, u64, AlarmState)> {
    // Oldest first.
    let mut changes: Vec<(u64, AlarmState)> = history
        .iter()
        .filter_map(|e| crate::alarms::transition_target(&e.message).map(|s| (e.at, s)))
        .collect();
    changes.sort_by_key(|(at, _)| *at);
    let mut out = Vec::new();
    for (i, (at, state)) in changes.iter().enumerate() {
        let end = changes.get(i + 1).map_or(now, |(next, _)| *next).min(now);
        let start = (*at).max(t0);
        if end > start {
            out.push((start, end, *state));
        }
    }
    out
}

/// The value the alarm judges in each second of the window (`None`: no
/// data that second), for a metric alarm; empty otherwise.
fn values(a: &Alarm, seconds: &[SecondBucket]) -> Vec<(u64, Option<f64>)> {
    let Some(Declared::Metric(m)) = &a.spec else {
        return Vec::new();
    };
    seconds
        .iter()
        .map(|b| {
            let sample = crate::alarms::sample(b, &m.metric);
            (
                b.time,
                sample.and_then(|s| statistic_of(m.statistic, &[&s])),
            )
        })
        .collect()
}

fn chart(a: &Alarm, history: &[Event], seconds: &[SecondBucket], now: u64) -> Markup {
    let t0 = now.saturating_sub(WINDOW * 1000);
    let x = |ms: u64| ms.saturating_sub(t0) as f64 / (WINDOW * 1000) as f64 * 600.0;
    let bands = bands(history, t0, now);
    let values = values(a, seconds);
    let threshold = match &a.spec {
        Some(Declared::Metric(m)) => Some(m.threshold),
        _ => None,
    };
    let top = values
        .iter()
        .filter_map(|(_, v)| *v)
        .chain(threshold)
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    // Values use the top 84 units; the state band the bottom 10.
    let y = |v: f64| 86.0 - v / top * 84.0;
    let mut path = String::new();
    let mut pen_down = false;
    for (sec, v) in &values {
        match v {
            Some(v) => {
                let cmd = if pen_down { 'L' } else { 'M' };
                path.push_str(&format!("{cmd}{:.1},{:.1} ", x(sec * 1000 + 500), y(*v)));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let last = values.iter().rev().find_map(|(_, v)| *v);
    let fmt = |v: f64| format!("{v:.1}");
    let label = format!(
        "{}: state over the last {} minutes, now {}{}{}",
        a.name,
        WINDOW / 60,
        a.state,
        last.map(|v| format!("; value now {}", fmt(v)))
            .unwrap_or_default(),
        threshold
            .map(|t| format!(", threshold {}", fmt(t)))
            .unwrap_or_default(),
    );
    html! {
        figure.chart.alarm-chart {
            div.plot {
                span.axis.top { (fmt(top)) } span.axis.bottom { "0" }
                svg viewBox="0 0 600 100" preserveAspectRatio="none" role="img" aria-label=(label) {
                    @for (from, to, state) in &bands {
                        rect class={ "band " (tone(state.as_str())) } x=(format!("{:.1}", x(*from))) y="90"
                            width=(format!("{:.1}", (x(*to) - x(*from)).max(0.5))) height="10" {}
                    }
                    @if let Some(t) = threshold {
                        line.threshold x1="0" y1=(format!("{:.1}", y(t))) x2="600" y2=(format!("{:.1}", y(t)))
                            vector-effect="non-scaling-stroke" {}
                    }
                    @if !path.is_empty() {
                        path d=(path) fill="none" stroke="currentColor" stroke-width="2"
                            vector-effect="non-scaling-stroke" {}
                    }
                }
            }
            figcaption {
                "Last " (WINDOW / 60) " minutes: state as a band (green OK, red ALARM, grey no data)"
                @if let Some(Declared::Metric(m)) = &a.spec {
                    "; the line is " code { (wire_name(&m.metric.name)) } "'s " (m.statistic.to_string())
                    " per second" @if let Some(v) = last { ", now " strong.now { (fmt(v)) } }
                    ", dashed: threshold " (fmt(m.threshold))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: u64, message: &str) -> Event {
        Event {
            id: 0,
            at,
            subject: "alarm/x".into(),
            message: message.into(),
        }
    }

    #[test]
    fn bands_follow_the_state_changes_inside_the_window() {
        // Newest first, as the history answers.
        let history = [
            event(9_000, "OK -> ALARM: 5 >= 5"),
            event(5_000, "set by hand"),
            event(1_000, "INSUFFICIENT_DATA -> OK: fine"),
        ];
        let b = bands(&history, 2_000, 12_000);
        assert_eq!(
            b,
            vec![
                (2_000, 9_000, AlarmState::Ok),
                (9_000, 12_000, AlarmState::Alarm)
            ]
        );
        assert!(bands(&[], 0, 10).is_empty());
    }
}
