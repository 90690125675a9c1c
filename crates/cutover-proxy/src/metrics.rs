//! Metrics at 1-second resolution: lock-free counters and a latency histogram updated on the
//! request path, a sampler that turns them into per-second buckets kept for 15 minutes (the
//! feed the control plane's alarms read), and the Prometheus text exposition.
//!
//! Names follow ALB's CloudWatch metrics: `RequestCount`, `HTTPCode_Target_2XX_Count` ..
//! `5XX`, `HTTPCode_ELB_5XX_Count` (responses the proxy produced itself because it could not
//! get one from a target), `TargetResponseTime` (p50/p90/p99, milliseconds, time to response
//! headers), `HealthyHostCount`, `UnHealthyHostCount` and active connections; also
//! `HTTPCode_ELB_504_Count` (the 504s among the ELB 5xx: a target that did not answer within
//! its group's `responseTimeoutSeconds`) and `RejectedConnectionCount` (connections refused
//! at a listener's `maxConnections` or the descriptor budget). Requests a rule's authorizer
//! refused (401, 403) and its throttle refused (429) are counted as `unauthorizedCount` and
//! `throttledCount`. Each target has its own series too (requests, 5xx, latency), in the feed's
//! `targets` (by group, then address) and in `/metrics` as a Prometheus histogram.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How many completed seconds the feed keeps (15 minutes).
pub const FEED_SECONDS: usize = 900;

const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
const LINEAR: usize = 16;
const MAX_EXP: u32 = 36;
const BUCKETS: usize = LINEAR + (MAX_EXP as usize - 4 + 1) * SUB;

/// A log-linear histogram of microseconds (relative error under 1/8), lock-free.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn index(us: u64) -> usize {
        if us < LINEAR as u64 {
            return us as usize;
        }
        let exp = (63 - us.leading_zeros()).min(MAX_EXP);
        let sub = ((us >> (exp - SUB_BITS)) as usize) & (SUB - 1);
        LINEAR + (exp as usize - 4) * SUB + sub
    }

    /// The midpoint of a bucket, in microseconds.
    fn value(index: usize) -> f64 {
        if index < LINEAR {
            return index as f64;
        }
        let exp = ((index - LINEAR) / SUB) as u32 + 4;
        let sub = ((index - LINEAR) % SUB) as u64;
        let width = 1u64 << (exp - SUB_BITS);
        let low = (1u64 << exp) + sub * width;
        low as f64 + width as f64 / 2.0
    }

    fn record(&self, us: u64) {
        self.buckets[Self::index(us)].fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Relaxed)).collect()
    }
}

/// Quantiles (in milliseconds) of the difference between two histogram snapshots.
fn quantiles(now: &[u64], before: &[u64], qs: &[f64]) -> Vec<Option<f64>> {
    let diff: Vec<u64> = now
        .iter()
        .zip(before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let total: u64 = diff.iter().sum();
    qs.iter()
        .map(|q| {
            if total == 0 {
                return None;
            }
            let rank = ((q * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, n) in diff.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Some((Histogram::value(i) / 1000.0 * 1000.0).round() / 1000.0);
                }
            }
            None
        })
        .collect()
}

/// Counters of one listener or target group, updated on the request path.
pub(crate) struct Counters {
    requests: AtomicU64,
    target: [AtomicU64; 4],
    elb_5xx: AtomicU64,
    elb_504: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
    unauthorized: AtomicU64,
    throttled: AtomicU64,
    /// Open downstream connections (listener) or in-flight requests (target group).
    pub(crate) active: AtomicI64,
    latency: Histogram,
}

impl Counters {
    fn new() -> Self {
        Counters {
            requests: AtomicU64::new(0),
            target: Default::default(),
            elb_5xx: AtomicU64::new(0),
            elb_504: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            active: AtomicI64::new(0),
            latency: Histogram::new(),
        }
    }

    /// Counts one request answered by a target with `status` after `elapsed`.
    pub(crate) fn target_response(&self, status: u16, elapsed: Duration) {
        self.requests.fetch_add(1, Relaxed);
        if let Some(c) = (status / 100)
            .checked_sub(2)
            .and_then(|i| self.target.get(i as usize))
        {
            c.fetch_add(1, Relaxed);
        }
        self.latency.record(elapsed.as_micros() as u64);
    }

    /// Counts one request the proxy answered itself with a 5xx.
    pub(crate) fn elb_5xx(&self) {
        self.requests.fetch_add(1, Relaxed);
        self.elb_5xx.fetch_add(1, Relaxed);
    }

    /// Counts one request the proxy answered itself with 504 (also an ELB 5xx).
    pub(crate) fn elb_504(&self) {
        self.elb_5xx();
        self.elb_504.fetch_add(1, Relaxed);
    }

    /// Counts one connection refused over the cap (listeners).
    pub(crate) fn rejected_connection(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }

    /// Counts one request the proxy answered itself without error (fixed response, redirect).
    pub(crate) fn proxy_response(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// Counts one request an authorizer refused (401, 403).
    pub(crate) fn unauthorized(&self) {
        self.requests.fetch_add(1, Relaxed);
        self.unauthorized.fetch_add(1, Relaxed);
    }

    /// Counts one request a throttle refused (429).
    pub(crate) fn throttled(&self) {
        self.requests.fetch_add(1, Relaxed);
        self.throttled.fetch_add(1, Relaxed);
    }

    /// Counts one retry after a failed connection.
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    fn totals(&self) -> Totals {
        Totals {
            requests: self.requests.load(Relaxed),
            target: std::array::from_fn(|i| self.target[i].load(Relaxed)),
            elb_5xx: self.elb_5xx.load(Relaxed),
            elb_504: self.elb_504.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            retries: self.retries.load(Relaxed),
            unauthorized: self.unauthorized.load(Relaxed),
            throttled: self.throttled.load(Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

#[derive(Clone, Default)]
struct Totals {
    requests: u64,
    target: [u64; 4],
    elb_5xx: u64,
    elb_504: u64,
    rejected: u64,
    retries: u64,
    unauthorized: u64,
    throttled: u64,
    latency: Vec<u64>,
}

/// One listener's or target group's figures for one second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSample {
    /// Requests received (listener) or routed (target group).
    pub request_count: u64,
    /// Target responses 2xx.
    pub target2xx: u64,
    /// Target responses 3xx.
    pub target3xx: u64,
    /// Target responses 4xx.
    pub target4xx: u64,
    /// Target responses 5xx.
    pub target5xx: u64,
    /// 5xx responses produced by the proxy itself.
    pub elb5xx: u64,
    /// Of those, 504s: a target did not answer within its response timeout.
    #[serde(default)]
    pub elb504: u64,
    /// Connections refused over the cap (listeners only).
    #[serde(default)]
    pub rejected_connection_count: u64,
    /// Retries after connection failures.
    pub retries: u64,
    /// Requests refused by a rule's authorizer (401, 403; listeners only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unauthorized_count: u64,
    /// Requests refused by a rule's throttle (429; listeners only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_count: u64,
    /// Target response time percentiles in milliseconds (none without target responses).
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Routable targets (target groups only).
    pub healthy_host_count: u64,
    /// Unhealthy targets (target groups only).
    pub unhealthy_host_count: u64,
    /// Open connections (listeners) or in-flight requests (target groups).
    pub active_connections: i64,
}

/// All figures of one completed second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondBucket {
    /// The second (Unix time) the figures cover.
    pub time: u64,
    /// Per listener name.
    pub listeners: BTreeMap<String, MetricSample>,
    /// Per target group name.
    pub target_groups: BTreeMap<String, MetricSample>,
    /// Per target group name, then per target address (`127.0.0.1:19001`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, BTreeMap<String, MetricSample>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The answer of `GET /v1/metrics/feed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsFeed {
    /// Completed seconds after `since`, oldest first.
    pub seconds: Vec<SecondBucket>,
}

/// Host counts of a target group at sampling time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HostCounts {
    pub(crate) healthy: u64,
    pub(crate) unhealthy: u64,
    /// Requests and tunnels in flight to the group's targets.
    pub(crate) in_flight: u64,
}

struct Series {
    counters: Arc<Counters>,
    last: Totals,
}

#[derive(Default)]
struct Inner {
    listeners: HashMap<String, Series>,
    groups: HashMap<String, Series>,
    /// By (group, address).
    targets: HashMap<(String, String), Series>,
    feed: VecDeque<SecondBucket>,
}

/// The registry of counters by name, and the feed.
#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// The counters of listener `name`, created on first use and kept across config changes.
    pub(crate) fn listener(&self, name: &str) -> Arc<Counters> {
        Self::series(&mut self.inner.lock().unwrap().listeners, name.to_owned())
    }

    /// The counters of target group `name`.
    pub(crate) fn group(&self, name: &str) -> Arc<Counters> {
        Self::series(&mut self.inner.lock().unwrap().groups, name.to_owned())
    }

    /// The counters of target `address` in group `group`.
    pub(crate) fn target(&self, group: &str, address: &str) -> Arc<Counters> {
        let mut inner = self.inner.lock().unwrap();
        Self::series(&mut inner.targets, (group.to_owned(), address.to_owned()))
    }

    fn series<K: Eq + std::hash::Hash>(map: &mut HashMap<K, Series>, name: K) -> Arc<Counters> {
        map.entry(name)
            .or_insert_with(|| {
                let counters = Arc::new(Counters::new());
                let last = counters.totals();
                Series { counters, last }
            })
            .counters
            .clone()
    }

    /// Forgets series whose names are no longer configured.
    pub(crate) fn retain(
        &self,
        listeners: &[&str],
        groups: &[&str],
        targets: &std::collections::HashSet<(String, String)>,
    ) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .listeners
            .retain(|k, _| listeners.contains(&k.as_str()));
        inner.groups.retain(|k, _| groups.contains(&k.as_str()));
        inner.targets.retain(|k, _| targets.contains(k));
    }

    /// Closes the bucket for second `time`: differences since the previous sample.
    pub(crate) fn sample(&self, time: u64, hosts: &HashMap<String, HostCounts>) {
        let mut inner = self.inner.lock().unwrap();
        let inner = &mut *inner;
        let mut bucket = SecondBucket {
            time,
            ..Default::default()
        };
        for (name, series) in &mut inner.listeners {
            bucket
                .listeners
                .insert(name.clone(), diff_sample(series, HostCounts::default()));
        }
        for (name, series) in &mut inner.groups {
            let h = hosts.get(name).copied().unwrap_or_default();
            bucket
                .target_groups
                .insert(name.clone(), diff_sample(series, h));
        }
        for ((group, address), series) in &mut inner.targets {
            bucket
                .targets
                .entry(group.clone())
                .or_default()
                .insert(address.clone(), diff_sample(series, HostCounts::default()));
        }
        if inner.feed.len() == FEED_SECONDS {
            inner.feed.pop_front();
        }
        inner.feed.push_back(bucket);
    }

    /// Completed seconds strictly after `since`.
    pub(crate) fn feed(&self, since: u64) -> MetricsFeed {
        let inner = self.inner.lock().unwrap();
        MetricsFeed {
            seconds: inner
                .feed
                .iter()
                .filter(|b| b.time > since)
                .cloned()
                .collect(),
        }
    }

    /// Prometheus text exposition of cumulative counters and the last second's gauges.
    pub(crate) fn prometheus(&self, version: u64, hosts: &HashMap<String, HostCounts>) -> String {
        let inner = self.inner.lock().unwrap();
        let last = inner.feed.back();
        let mut out = String::with_capacity(4096);
        let _ = writeln!(out, "# TYPE cutover_proxy_config_version gauge");
        let _ = writeln!(out, "cutover_proxy_config_version {version}");
        for (kind, map, label) in [
            ("listener", &inner.listeners, "listener"),
            ("target_group", &inner.groups, "target_group"),
        ] {
            let mut names: Vec<&String> = map.keys().collect();
            names.sort();
            let _ = writeln!(out, "# TYPE cutover_proxy_{kind}_requests_total counter");
            let _ = writeln!(
                out,
                "# TYPE cutover_proxy_{kind}_target_responses_total counter"
            );
            let _ = writeln!(out, "# TYPE cutover_proxy_{kind}_elb_5xx_total counter");
            let _ = writeln!(out, "# TYPE cutover_proxy_{kind}_elb_504_total counter");
            let _ = writeln!(
                out,
                "# TYPE cutover_proxy_{kind}_rejected_connections_total counter"
            );
            let _ = writeln!(out, "# TYPE cutover_proxy_{kind}_retries_total counter");
            let _ = writeln!(
                out,
                "# TYPE cutover_proxy_{kind}_unauthorized_total counter"
            );
            let _ = writeln!(out, "# TYPE cutover_proxy_{kind}_throttled_total counter");
            let _ = writeln!(out, "# TYPE cutover_proxy_{kind}_active gauge");
            let _ = writeln!(
                out,
                "# TYPE cutover_proxy_{kind}_target_response_time_ms gauge"
            );
            for name in names {
                let c = &map[name].counters;
                let t = c.totals();
                let l = format!("{label}=\"{}\"", escape(name));
                let _ = writeln!(
                    out,
                    "cutover_proxy_{kind}_requests_total{{{l}}} {}",
                    t.requests
                );
                for (i, n) in t.target.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "cutover_proxy_{kind}_target_responses_total{{{l},code=\"{}xx\"}} {n}",
                        i + 2
                    );
                }
                let _ = writeln!(
                    out,
                    "cutover_proxy_{kind}_elb_5xx_total{{{l}}} {}",
                    t.elb_5xx
                );
                let _ = writeln!(
                    out,
                    "cutover_proxy_{kind}_elb_504_total{{{l}}} {}",
                    t.elb_504
                );
                let _ = writeln!(
                    out,
                    "cutover_proxy_{kind}_rejected_connections_total{{{l}}} {}",
                    t.rejected
                );
                let _ = writeln!(
                    out,
                    "cutover_proxy_{kind}_retries_total{{{l}}} {}",
                    t.retries
                );
                let _ = writeln!(
                    out,
                    "cutover_proxy_{kind}_unauthorized_total{{{l}}} {}",
                    t.unauthorized
                );
                let _ = writeln!(
                    out,
                    "cutover_proxy_{kind}_throttled_total{{{l}}} {}",
                    t.throttled
                );
                let _ = writeln!(
                    out,
                    "cutover_proxy_{kind}_active{{{l}}} {}",
                    c.active.load(Relaxed)
                );
                let sample = last.and_then(|b| {
                    if kind == "listener" {
                        b.listeners.get(name)
                    } else {
                        b.target_groups.get(name)
                    }
                });
                if let Some(s) = sample {
                    for (q, v) in [("0.5", s.p50_ms), ("0.9", s.p90_ms), ("0.99", s.p99_ms)] {
                        if let Some(v) = v {
                            let _ = writeln!(
                                out,
                                "cutover_proxy_{kind}_target_response_time_ms{{{l},quantile=\"{q}\"}} {v}"
                            );
                        }
                    }
                }
            }
        }
        target_series(&mut out, &inner.targets);
        let _ = writeln!(out, "# TYPE cutover_proxy_healthy_hosts gauge");
        let _ = writeln!(out, "# TYPE cutover_proxy_unhealthy_hosts gauge");
        let mut names: Vec<&String> = hosts.keys().collect();
        names.sort();
        for name in names {
            let h = hosts[name];
            let n = escape(name);
            let _ = writeln!(
                out,
                "cutover_proxy_healthy_hosts{{target_group=\"{n}\"}} {}",
                h.healthy
            );
            let _ = writeln!(
                out,
                "cutover_proxy_unhealthy_hosts{{target_group=\"{n}\"}} {}",
                h.unhealthy
            );
        }
        out
    }
}

fn diff_sample(series: &mut Series, hosts: HostCounts) -> MetricSample {
    let now = series.counters.totals();
    let before = &series.last;
    let q = quantiles(&now.latency, &before.latency, &[0.5, 0.9, 0.99]);
    let sample = MetricSample {
        request_count: now.requests - before.requests,
        target2xx: now.target[0] - before.target[0],
        target3xx: now.target[1] - before.target[1],
        target4xx: now.target[2] - before.target[2],
        target5xx: now.target[3] - before.target[3],
        elb5xx: now.elb_5xx - before.elb_5xx,
        elb504: now.elb_504 - before.elb_504,
        rejected_connection_count: now.rejected - before.rejected,
        retries: now.retries - before.retries,
        unauthorized_count: now.unauthorized - before.unauthorized,
        throttled_count: now.throttled - before.throttled,
        p50_ms: q[0],
        p90_ms: q[1],
        p99_ms: q[2],
        healthy_host_count: hosts.healthy,
        unhealthy_host_count: hosts.unhealthy,
        active_connections: series
            .counters
            .active
            .load(Relaxed)
            .max(hosts.in_flight as i64),
    };
    series.last = now;
    sample
}

/// Upper bounds (milliseconds) of the per-target latency histogram in `/metrics`.
const LE_MS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

/// Per-target requests, 5xx (target's and the proxy's) and a latency histogram, cumulative.
/// A bucket of the internal log-linear histogram is counted under the first bound at or above
/// its midpoint (within 1/8 of the true value).
fn target_series(out: &mut String, targets: &HashMap<(String, String), Series>) {
    let _ = writeln!(out, "# TYPE cutover_proxy_target_requests_total counter");
    let _ = writeln!(out, "# TYPE cutover_proxy_target_5xx_total counter");
    let _ = writeln!(
        out,
        "# TYPE cutover_proxy_target_response_time_ms histogram"
    );
    let mut keys: Vec<&(String, String)> = targets.keys().collect();
    keys.sort();
    for key in keys {
        let t = targets[key].counters.totals();
        let l = format!(
            "target_group=\"{}\",target=\"{}\"",
            escape(&key.0),
            escape(&key.1)
        );
        let _ = writeln!(
            out,
            "cutover_proxy_target_requests_total{{{l}}} {}",
            t.requests
        );
        let _ = writeln!(
            out,
            "cutover_proxy_target_5xx_total{{{l}}} {}",
            t.target[3] + t.elb_5xx
        );
        let mut counts = [0u64; LE_MS.len()];
        let mut count = 0u64;
        let mut sum_ms = 0.0;
        for (i, n) in t.latency.iter().enumerate().filter(|(_, n)| **n > 0) {
            let ms = Histogram::value(i) / 1000.0;
            count += n;
            sum_ms += ms * *n as f64;
            if let Some(b) = LE_MS.iter().position(|le| ms <= *le) {
                counts[b] += n;
            }
        }
        let mut cumulative = 0;
        for (le, n) in LE_MS.iter().zip(counts) {
            cumulative += n;
            let _ = writeln!(
                out,
                "cutover_proxy_target_response_time_ms_bucket{{{l},le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "cutover_proxy_target_response_time_ms_bucket{{{l},le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "cutover_proxy_target_response_time_ms_sum{{{l}}} {sum_ms:.3}"
        );
        let _ = writeln!(
            out,
            "cutover_proxy_target_response_time_ms_count{{{l}}} {count}"
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_monotonic_and_accurate() {
        let mut last = 0;
        for us in [
            0u64,
            1,
            15,
            16,
            17,
            100,
            1_000,
            65_432,
            10_000_000,
            u64::MAX,
        ] {
            let i = Histogram::index(us);
            assert!(i >= last && i < BUCKETS, "{us} -> {i}");
            last = i;
            if (16..1 << MAX_EXP).contains(&us) {
                let v = Histogram::value(i);
                assert!((v - us as f64).abs() / us as f64 <= 0.125, "{us} ~ {v}");
            }
        }
    }

    #[test]
    fn a_sample_holds_the_differences_of_one_second() {
        let m = Metrics::default();
        let l = m.listener("prod");
        let g = m.group("blue");
        for ms in 1..=100u64 {
            l.target_response(200, Duration::from_millis(ms));
            g.target_response(if ms <= 90 { 200 } else { 503 }, Duration::from_millis(ms));
        }
        l.elb_5xx();
        let hosts = HashMap::from([(
            "blue".to_owned(),
            HostCounts {
                healthy: 2,
                unhealthy: 1,
                in_flight: 0,
            },
        )]);
        m.sample(100, &hosts);
        g.target_response(404, Duration::from_millis(5));
        m.sample(101, &hosts);

        let feed = m.feed(99);
        assert_eq!(feed.seconds.len(), 2);
        let first = &feed.seconds[0];
        assert_eq!(first.time, 100);
        let prod = &first.listeners["prod"];
        assert_eq!(
            (prod.request_count, prod.target2xx, prod.elb5xx),
            (101, 100, 1)
        );
        let blue = &first.target_groups["blue"];
        assert_eq!((blue.target2xx, blue.target5xx), (90, 10));
        assert_eq!((blue.healthy_host_count, blue.unhealthy_host_count), (2, 1));
        let p50 = blue.p50_ms.unwrap();
        let p99 = blue.p99_ms.unwrap();
        assert!((p50 - 50.0).abs() <= 50.0 * 0.125, "p50 {p50}");
        assert!((p99 - 99.0).abs() <= 99.0 * 0.125, "p99 {p99}");
        let second = &feed.seconds[1].target_groups["blue"];
        assert_eq!((second.request_count, second.target4xx), (1, 1));
        assert_eq!(feed.seconds[1].listeners["prod"].p50_ms, None);
        assert_eq!(m.feed(100).seconds.len(), 1);
        let text = m.prometheus(7, &hosts);
        assert!(
            text.contains("cutover_proxy_listener_requests_total{listener=\"prod\"} 101"),
            "{text}"
        );
        assert!(
            text.contains("cutover_proxy_healthy_hosts{target_group=\"blue\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn the_feed_keeps_fifteen_minutes() {
        let m = Metrics::default();
        for t in 0..(FEED_SECONDS as u64 + 10) {
            m.sample(t, &HashMap::new());
        }
        let feed = m.feed(0);
        assert_eq!(feed.seconds.len(), FEED_SECONDS);
        assert_eq!(feed.seconds[0].time, 10);
    }
}
