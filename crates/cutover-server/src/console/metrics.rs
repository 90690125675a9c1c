//! A deployment's target groups as the data plane measured them: request
//! rate, 5xx and p99 latency per second, from the proxy's one-second feed
//! (the one the alarm loop evaluates), drawn as small SVG lines.

use crate::api::AppState;
use crate::dataplane::config::group_name;
use cutover_api::deployments::Deployment;
use cutover_proxy::metrics::{MetricSample, SecondBucket};
use maud::{Markup, html};

/// At most this many seconds are drawn (the feed keeps 15 minutes).
const WINDOW: u64 = 300;

/// The seconds of the deployment's window, oldest first; empty when the
/// data plane cannot be asked.
async fn seconds(st: &AppState, d: &Deployment, now_ms: u64) -> Vec<SecondBucket> {
    let end = d.finished_at.unwrap_or(now_ms) / 1000;
    let since = (d.created_at / 1000)
        .max(end.saturating_sub(WINDOW))
        .saturating_sub(1);
    match st.dataplane.metrics_feed(since).await {
        Ok(feed) => feed
            .seconds
            .into_iter()
            .filter(|b| b.time <= end + 1)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A line of `values` scaled to its own maximum.
fn spark(label: &str, values: &[f64], unit: &str) -> Markup {
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let n = values.len().max(2) - 1;
    let points: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = if max > 0.0 {
                30.0 - v / max * 28.0
            } else {
                30.0
            };
            format!("{:.1},{:.1} ", i as f64 / n as f64 * 200.0, y)
        })
        .collect();
    let last = values.last().copied().unwrap_or(0.0);
    html! {
        div.spark {
            span { (label) ": " strong { (format!("{last:.0}")) (unit) } " (max " (format!("{max:.0}")) (unit) ")" }
            svg viewBox="0 0 200 32" preserveAspectRatio="none" role="img"
                aria-label={ (label) " over the last " (values.len()) " seconds, now " (format!("{last:.0}")) (unit) } {
                polyline points=(points) fill="none" stroke="currentColor" stroke-width="2"
                    vector-effect="non-scaling-stroke" {}
            }
        }
    }
}

/// The section: one row per target group of the deployment's service.
pub(crate) async fn section(st: &AppState, d: &Deployment, now_ms: u64) -> Markup {
    let buckets = seconds(st, d, now_ms).await;
    let groups = [group_name(&d.service, "a"), group_name(&d.service, "b")];
    let series = |g: &str, f: fn(&MetricSample) -> f64| -> Vec<f64> {
        buckets
            .iter()
            .map(|b| b.target_groups.get(g).map(f).unwrap_or(0.0))
            .collect()
    };
    html! {
        section aria-labelledby="metrics" data-refresh="2000" {
            h2 #metrics { "Target groups (data plane, 1 s)" }
            @if buckets.is_empty() {
                p { "No metrics from the data plane for this deployment's window." }
            } @else {
                div.metrics {
                    @for g in &groups {
                        div.card {
                            h3 { code { (g) } }
                            (spark("Requests/s", &series(g, |m| m.request_count as f64), ""))
                            (spark("5xx/s", &series(g, |m| (m.target5xx + m.elb5xx) as f64), ""))
                            (spark("p99 latency", &series(g, |m| m.p99_ms.unwrap_or(0.0)), " ms"))
                        }
                    }
                }
            }
        }
    }
}
