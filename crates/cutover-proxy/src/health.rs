//! Target health: the decision logic (consecutive probe results to a state, no IO), the probe
//! trait with its HTTP implementation, and the loop that runs probes on tokio's clock.
//!
//! Rules, as documented for operators:
//! - A target registered in a group with a health check starts `initial` and is not routable.
//!   Its first passing probe makes it `healthy` (the control plane waits for that before moving
//!   weight); `unhealthyThresholdCount` consecutive failures make it `unhealthy`.
//! - A `healthy` target becomes `unhealthy` after `unhealthyThresholdCount` consecutive
//!   failures; an `unhealthy` one becomes `healthy` after `healthyThresholdCount` consecutive
//!   successes.
//! - A target in a group without a health check is `healthy` as soon as it is registered.
//! - `draining` (deregistered, finishing in-flight work) and `unused` (its group is not used by
//!   any listener) are reported on top of the probe state; draining targets never get requests.
//! - A probe that could not run because this process or the system ran out of descriptors
//!   (`EMFILE`, `ENFILE`) is a local error, not the target's: it is not counted either way
//!   (the target keeps its state) and is logged at most once per second.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

use crate::config::{GrpcMatcher, HealthCheckConfig};
pub use crate::target::Transport;

/// The health state of one target, as reported by the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// Registered, no probe has passed yet; not routable.
    Initial,
    /// Passing its health check; routable.
    Healthy,
    /// Failing its health check; routable only when failing open.
    Unhealthy,
    /// Deregistered; finishing in-flight work; never routable.
    Draining,
    /// Its group is not used by any listener.
    Unused,
}

impl TargetState {
    pub(crate) fn as_u8(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0 => TargetState::Initial,
            1 => TargetState::Healthy,
            2 => TargetState::Unhealthy,
            3 => TargetState::Draining,
            _ => TargetState::Unused,
        }
    }

    /// The lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Initial => "initial",
            TargetState::Healthy => "healthy",
            TargetState::Unhealthy => "unhealthy",
            TargetState::Draining => "draining",
            TargetState::Unused => "unused",
        }
    }
}

/// Consecutive-result bookkeeping for one target: plain code, no IO, no clock.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    state: TargetState,
    successes: u32,
    failures: u32,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

impl HealthTracker {
    /// A tracker in state `initial` with the given thresholds (each at least 1).
    pub fn new(healthy_threshold: u32, unhealthy_threshold: u32) -> Self {
        HealthTracker {
            state: TargetState::Initial,
            successes: 0,
            failures: 0,
            healthy_threshold: healthy_threshold.max(1),
            unhealthy_threshold: unhealthy_threshold.max(1),
        }
    }

    /// The current state: `initial`, `healthy` or `unhealthy`.
    pub fn state(&self) -> TargetState {
        self.state
    }

    /// Records one probe result; returns the new state when it changed.
    pub fn record(&mut self, passed: bool) -> Option<TargetState> {
        if passed {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        let next = match (self.state, passed) {
            (TargetState::Initial, true) => TargetState::Healthy,
            (TargetState::Unhealthy, true) if self.successes >= self.healthy_threshold => {
                TargetState::Healthy
            }
            (TargetState::Initial | TargetState::Healthy, false)
                if self.failures >= self.unhealthy_threshold =>
            {
                TargetState::Unhealthy
            }
            (s, _) => s,
        };
        (next != self.state).then(|| {
            self.state = next;
            next
        })
    }
}

/// The outcome of one probe: passed or not, and why (shown as the target's reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether the probe passed.
    pub passed: bool,
    /// A short explanation (`status 200`, `connection refused`, `timed out after 1s`).
    pub reason: String,
    /// The probe could not run for a local reason (descriptor exhaustion): the result says
    /// nothing about the target and is not counted.
    pub local_error: bool,
}

impl ProbeResult {
    /// A probe that ran: passed or failed.
    pub fn new(passed: bool, reason: impl Into<String>) -> Self {
        ProbeResult {
            passed,
            reason: reason.into(),
            local_error: false,
        }
    }
}

/// A boxed probe future.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;

/// Runs one health probe against a target. Implemented over HTTP by [`HttpProber`]; tests
/// substitute scripted results.
pub trait Prober: Send + Sync + 'static {
    /// Probes `addr` (configured as `host`), connected to and spoken to as `transport` (the
    /// target group's) says, once according to `check`; must finish within
    /// `check.timeoutSeconds`.
    fn probe<'a>(
        &'a self,
        addr: SocketAddr,
        host: &'a str,
        transport: &'a Transport,
        check: &'a HealthCheckConfig,
    ) -> ProbeFuture<'a>;
}

/// Probes with `GET path` over a fresh connection, like ALB: HTTP/1.1, or HTTP/2 for a group
/// that speaks it (prior knowledge, or ALPN `h2` over TLS); over TLS for an `HTTPS` group.
#[derive(Debug, Default, Clone)]
pub struct HttpProber;

impl Prober for HttpProber {
    fn probe<'a>(
        &'a self,
        addr: SocketAddr,
        host: &'a str,
        transport: &'a Transport,
        check: &'a HealthCheckConfig,
    ) -> ProbeFuture<'a> {
        Box::pin(async move {
            let timeout = Duration::from_secs_f64(check.timeout_seconds);
            let probe = http_probe(addr, host, transport, &check.path);
            match tokio::time::timeout(timeout, probe).await {
                Err(_) => ProbeResult::new(false, format!("timed out after {timeout:?}")),
                Ok(Err(e)) => e,
                Ok(Ok(answer)) => judge(&answer, check),
            }
        })
    }
}

/// What a probe's answer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    status: u16,
    /// `grpc-status`, for a gRPC probe that got one.
    grpc: Option<u16>,
    /// The probe was a gRPC call.
    grpc_probe: bool,
}

/// Whether `answer` passes `check`, and why.
fn judge(answer: &Answer, check: &HealthCheckConfig) -> ProbeResult {
    let status = answer.status;
    if !answer.grpc_probe {
        let passed = check.matcher.matches(status);
        let reason = if passed {
            format!("status {status}")
        } else {
            format!("status {status} does not match {}", check.matcher.as_str())
        };
        return ProbeResult::new(passed, reason);
    }
    let default = GrpcMatcher::default();
    let codes = check.grpc_code.as_ref().unwrap_or(&default);
    match answer.grpc {
        Some(g) if status == 200 && codes.matches(g) => {
            ProbeResult::new(true, format!("grpc-status {g}"))
        }
        Some(g) if status == 200 => ProbeResult::new(
            false,
            format!("grpc-status {g} does not match {}", codes.as_str()),
        ),
        _ => ProbeResult::new(false, format!("HTTP status {status} without a grpc-status")),
    }
}

async fn http_probe(
    addr: SocketAddr,
    host: &str,
    transport: &Transport,
    path: &str,
) -> Result<Answer, ProbeResult> {
    let stream = transport.connect(addr, host, false).await.map_err(|e| {
        let mut r = ProbeResult::new(false, format!("connect failed: {e}"));
        r.local_error = crate::limits::is_fd_exhaustion(&e);
        r
    })?;
    if transport.http2() {
        return h2_probe(stream, addr, transport, path).await;
    }
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ProbeResult::new(false, format!("handshake failed: {e}")))?;
    let conn = tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "cutover-health-check")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ProbeResult::new(false, format!("invalid request: {e}")))?;
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| ProbeResult::new(false, format!("request failed: {e}")));
    conn.abort();
    Ok(Answer {
        status: resp?.status().as_u16(),
        grpc: None,
        grpc_probe: false,
    })
}

/// A probe over HTTP/2: `GET path`, or for a gRPC group a gRPC call (`POST path`,
/// `content-type: application/grpc`, `te: trailers`, one empty message) whose `grpc-status`
/// is read from the response head (a trailers-only answer) or its trailers, reading at most
/// [`GRPC_BODY_LIMIT`] bytes of body on the way.
async fn h2_probe(
    stream: crate::target::Stream,
    addr: SocketAddr,
    transport: &Transport,
    path: &str,
) -> Result<Answer, ProbeResult> {
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .map_err(|e| ProbeResult::new(false, format!("HTTP/2 handshake failed: {e}")))?;
    let conn = tokio::spawn(conn);
    let answer = h2_exchange(&mut send, addr, transport, path).await;
    conn.abort();
    answer
}

/// Body bytes a gRPC probe reads while looking for the trailers.
const GRPC_BODY_LIMIT: usize = 64 * 1024;

async fn h2_exchange(
    send: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    transport: &Transport,
    path: &str,
) -> Result<Answer, ProbeResult> {
    let scheme = if transport.tls() { "https" } else { "http" };
    let uri = format!("{scheme}://{addr}{path}");
    let grpc_probe = transport.grpc();
    let req = if grpc_probe {
        http::Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .header(http::header::USER_AGENT, "cutover-health-check")
            // One message: not compressed, zero bytes long.
            .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
    } else {
        http::Request::get(uri)
            .header(http::header::USER_AGENT, "cutover-health-check")
            .body(Full::new(Bytes::new()))
    }
    .map_err(|e| ProbeResult::new(false, format!("invalid request: {e}")))?;
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| ProbeResult::new(false, format!("request failed: {e}")))?;
    let status = resp.status().as_u16();
    let code = |h: &http::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u16>().ok())
    };
    let mut grpc = if grpc_probe {
        code(resp.headers())
    } else {
        None
    };
    if grpc_probe && grpc.is_none() {
        let mut body = resp.into_body();
        let mut read = 0;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ProbeResult::new(false, format!("response failed: {e}")))?;
            match frame.into_trailers() {
                Ok(trailers) => {
                    grpc = code(&trailers);
                    break;
                }
                Err(data) => {
                    read += data.data_ref().map_or(0, Bytes::len);
                    if read > GRPC_BODY_LIMIT {
                        break;
                    }
                }
            }
        }
    }
    Ok(Answer {
        status,
        grpc,
        grpc_probe,
    })
}

/// Rate limit of the "could not run" log line, shared by every target.
static LOCAL_ERRORS: crate::limits::LogLimiter =
    crate::limits::LogLimiter::new(Duration::from_secs(1));

/// Receives state changes from a [`run_checks`] loop.
pub(crate) trait HealthSink: Send + Sync + 'static {
    /// Called after every probe with the tracker's state and the probe's reason.
    fn report(&self, state: TargetState, reason: &str, changed: bool);
}

/// Probes `addr` every `check.intervalSeconds` (first probe at once), feeding the tracker and
/// the sink, until the task is aborted.
pub(crate) async fn run_checks(
    addr: SocketAddr,
    host: String,
    transport: Transport,
    check: HealthCheckConfig,
    mut tracker: HealthTracker,
    prober: Arc<dyn Prober>,
    sink: Arc<dyn HealthSink>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs_f64(check.interval_seconds));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let result = prober.probe(addr, &host, &transport, &check).await;
        if result.local_error {
            if let Some(suppressed) = LOCAL_ERRORS.allow(tokio::time::Instant::now()) {
                tracing::warn!(target_addr = %addr, reason = %result.reason, suppressed, "health check could not run (local error); not counted");
            }
            continue;
        }
        let changed = tracker.record(result.passed);
        if let Some(state) = changed {
            tracing::info!(target_addr = %addr, state = state.as_str(), reason = %result.reason, "target health changed");
        }
        sink.report(tracker.state(), &result.reason, changed.is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn initial_becomes_healthy_on_first_pass() {
        let mut t = HealthTracker::new(3, 2);
        assert_eq!(t.state(), TargetState::Initial);
        assert_eq!(t.record(true), Some(TargetState::Healthy));
        assert_eq!(t.record(true), None);
    }

    #[test]
    fn initial_becomes_unhealthy_after_threshold_failures() {
        let mut t = HealthTracker::new(2, 3);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(TargetState::Unhealthy));
    }

    #[test]
    fn thresholds_count_consecutive_results_only() {
        let mut t = HealthTracker::new(2, 2);
        t.record(true);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None, "a success resets the failure count");
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(TargetState::Unhealthy));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None, "a failure resets the success count");
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(TargetState::Healthy));
    }

    struct Scripted(Mutex<Vec<bool>>);
    impl Prober for Scripted {
        fn probe<'a>(
            &'a self,
            _: SocketAddr,
            _: &'a str,
            _: &'a Transport,
            _: &'a HealthCheckConfig,
        ) -> ProbeFuture<'a> {
            let passed = {
                let mut v = self.0.lock().unwrap();
                if v.is_empty() { false } else { v.remove(0) }
            };
            Box::pin(async move { ProbeResult::new(passed, if passed { "ok" } else { "failed" }) })
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(tokio::time::Instant, TargetState)>>);
    impl HealthSink for Recorder {
        fn report(&self, state: TargetState, _: &str, changed: bool) {
            if changed {
                self.0
                    .lock()
                    .unwrap()
                    .push((tokio::time::Instant::now(), state));
            }
        }
    }

    /// Healthy, then only probes that could not run (EMFILE): the target stays healthy.
    struct Exhausted(Mutex<u32>);
    impl Prober for Exhausted {
        fn probe<'a>(
            &'a self,
            _: SocketAddr,
            _: &'a str,
            _: &'a Transport,
            _: &'a HealthCheckConfig,
        ) -> ProbeFuture<'a> {
            let first = {
                let mut n = self.0.lock().unwrap();
                *n += 1;
                *n == 1
            };
            Box::pin(async move {
                if first {
                    return ProbeResult::new(true, "ok");
                }
                let mut r = ProbeResult::new(false, "connect failed: Too many open files");
                r.local_error = true;
                r
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn descriptor_exhaustion_never_marks_a_target_unhealthy() {
        let check = HealthCheckConfig {
            path: "/health".into(),
            interval_seconds: 1.0,
            timeout_seconds: 1.0,
            healthy_threshold_count: 2,
            unhealthy_threshold_count: 2,
            matcher: crate::config::Matcher::range(200, 299),
            grpc_code: None,
        };
        let prober = Arc::new(Exhausted(Mutex::new(0)));
        let sink = Arc::new(Recorder::default());
        let task = tokio::spawn(run_checks(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1".into(),
            Transport::default(),
            check,
            HealthTracker::new(2, 2),
            prober.clone(),
            sink.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        task.abort();
        assert_eq!(*prober.0.lock().unwrap(), 11, "probes kept running");
        let states: Vec<TargetState> = sink.0.lock().unwrap().iter().map(|(_, s)| *s).collect();
        assert_eq!(states, vec![TargetState::Healthy]);
    }

    #[test]
    fn descriptor_exhaustion_errors_are_recognised() {
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(crate::limits::is_fd_exhaustion(&e));
        let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert!(!crate::limits::is_fd_exhaustion(&refused));
    }

    #[tokio::test(start_paused = true)]
    async fn transitions_follow_the_interval_on_a_paused_clock() {
        let check = HealthCheckConfig {
            path: "/health".into(),
            interval_seconds: 1.0,
            timeout_seconds: 1.0,
            healthy_threshold_count: 2,
            unhealthy_threshold_count: 2,
            matcher: crate::config::Matcher::range(200, 299),
            grpc_code: None,
        };
        // t=0 pass -> healthy; t=1,2 fail -> unhealthy at t=2; t=3 pass, t=4 pass -> healthy at 4.
        let prober = Arc::new(Scripted(Mutex::new(vec![true, false, false, true, true])));
        let sink = Arc::new(Recorder::default());
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(run_checks(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1".into(),
            Transport::default(),
            check,
            HealthTracker::new(2, 2),
            prober,
            sink.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(4500)).await;
        task.abort();
        let seen: Vec<(u64, TargetState)> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(at, s)| ((*at - start).as_secs(), *s))
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, TargetState::Healthy),
                (2, TargetState::Unhealthy),
                (4, TargetState::Healthy)
            ]
        );
    }
}
