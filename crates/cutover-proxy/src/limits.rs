//! Resource guards shared by every accept loop and the health checks: an exponential back-off
//! for failing `accept` calls, a rate limiter for repeated log lines, and the process's
//! descriptor limit (raised to its hard limit at start, with a reserve kept for health checks,
//! the admin API and upstream connections).
//!
//! Guarantees:
//! - an accept loop whose `accept` keeps failing (descriptor exhaustion: `EMFILE`, `ENFILE`)
//!   waits 10 ms, then twice as long after every further failure up to 1 s, and starts again
//!   at 10 ms after the first success: it never spins;
//! - a repeated log line is written at most once per second; the next one written says how
//!   many were suppressed in between.

// getrlimit/setrlimit: two plain libc calls on a stack struct.
#![allow(unsafe_code)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// First wait after a failed `accept`.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest wait between two `accept` attempts while they keep failing.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Exponential back-off: 10 ms doubling to 1 s, reset by a success.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The wait before the next attempt after a failure; doubles the one after it.
    pub(crate) fn fail(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }

    /// Records a success: the next failure waits the minimum again.
    pub(crate) fn succeed(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Lets a log line through at most once per `period`, counting the ones held back.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    period: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimiter {
    /// A limiter letting one line through per `period`.
    pub(crate) const fn new(period: Duration) -> Self {
        LogLimiter {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(suppressed)` when a line may be written now (with how many were held back since
    /// the last one), `None` when it must be suppressed.
    pub(crate) fn allow(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.0 {
            Some(last) if now.saturating_duration_since(last) < self.period => {
                s.1 += 1;
                None
            }
            _ => {
                let suppressed = s.1;
                *s = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

/// What an accept loop keeps between failures: the back-off and the log limiter.
#[derive(Debug)]
pub(crate) struct AcceptGuard {
    what: String,
    backoff: Backoff,
    log: LogLimiter,
}

impl AcceptGuard {
    /// A guard for the accept loop named `what` in logs (`admin`, a listener kind).
    pub(crate) fn new(what: impl Into<String>) -> Self {
        AcceptGuard {
            what: what.into(),
            backoff: Backoff::default(),
            log: LogLimiter::new(Duration::from_secs(1)),
        }
    }

    /// After a failed `accept`: logs it (at most once per second) and waits the back-off.
    /// Returns whether a line was logged.
    pub(crate) async fn failed(&mut self, e: &std::io::Error) -> bool {
        let wait = self.backoff.fail();
        let logged = match self.log.allow(Instant::now()) {
            Some(suppressed) => {
                tracing::warn!(
                    accept = %self.what,
                    error = %e,
                    suppressed,
                    retry_in = ?wait,
                    "accept failed"
                );
                true
            }
            None => false,
        };
        tokio::time::sleep(wait).await;
        logged
    }

    /// After a successful `accept`.
    pub(crate) fn succeeded(&mut self) {
        self.backoff.succeed();
    }
}

/// Whether an IO error means this process (or the system) ran out of descriptors: a local
/// problem, never a verdict on the remote side.
pub(crate) fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// The soft descriptor limit seen at start (after raising it), 0 when unknown.
static NOFILE: AtomicUsize = AtomicUsize::new(0);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit in force.
pub(crate) fn raise_nofile_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::info!(
                from = lim.rlim_cur,
                to = lim.rlim_max,
                "raised the descriptor limit"
            );
            lim.rlim_cur = lim.rlim_max;
        }
    }
    let soft = usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX);
    NOFILE.store(soft, Ordering::Relaxed);
    soft
}

/// Descriptors kept out of the listeners' reach: for health checks, the admin API, upstream
/// connections, the state file and logs. A quarter of the limit, at least 64.
pub(crate) fn reserve(nofile: usize) -> usize {
    (nofile / 4).max(64)
}

/// How many downstream connections all listeners together may hold: the descriptor limit
/// minus [`reserve`] (unlimited when the limit is unknown).
pub(crate) fn downstream_budget() -> usize {
    match NOFILE.load(Ordering::Relaxed) {
        0 => usize::MAX,
        n => n.saturating_sub(reserve(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_one_second_and_resets_on_success() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..10).map(|_| b.fail().as_millis() as u64).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        b.succeed();
        assert_eq!(b.fail(), BACKOFF_MIN);
    }

    #[test]
    fn a_log_line_passes_once_per_period_with_the_suppressed_count() {
        let l = LogLimiter::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(l.allow(t0), Some(0));
        for i in 1..=99 {
            assert_eq!(l.allow(t0 + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(l.allow(t0 + Duration::from_millis(1000)), Some(99));
        assert_eq!(l.allow(t0 + Duration::from_millis(1500)), None);
    }

    /// An accept that always fails with EMFILE, retried through [`AcceptGuard`] for 5 s of
    /// (paused) time: about a dozen attempts (10 + 20 + ... + 640 ms, then one per second),
    /// and one log line per second at most.
    #[tokio::test(start_paused = true)]
    async fn a_failing_accept_neither_spins_nor_floods_the_log() {
        let mut guard = AcceptGuard::new("test");
        let (mut attempts, mut logged) = (0, 0);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            attempts += 1;
            let e = std::io::Error::from_raw_os_error(libc::EMFILE);
            assert!(is_fd_exhaustion(&e));
            if guard.failed(&e).await {
                logged += 1;
            }
        }
        assert!((10..=13).contains(&attempts), "{attempts} attempts in 5 s");
        assert!((4..=6).contains(&logged), "{logged} log lines in 5 s");
        guard.succeeded();
        let before = Instant::now();
        guard
            .failed(&std::io::Error::from_raw_os_error(libc::EMFILE))
            .await;
        assert_eq!(
            before.elapsed(),
            BACKOFF_MIN,
            "a success resets the back-off"
        );
    }

    #[test]
    fn the_reserve_is_a_quarter_of_the_limit_and_at_least_64() {
        assert_eq!(reserve(1024), 256);
        assert_eq!(reserve(20_000), 5_000);
        assert_eq!(reserve(100), 64);
    }
}
