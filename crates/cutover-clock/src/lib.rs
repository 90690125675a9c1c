//! The control plane's clock, injected: every component that needs the
//! time asks its [`Clock`], never the system directly.
//!
//! - [`SystemClock`] is the wall clock, used by `cutover server`.
//! - [`TokioClock`] (feature `tokio`, for tests) follows tokio's clock from a fixed epoch, so a test on
//!   a paused runtime (`tokio::time::pause`, or `start_paused`) moves the
//!   control plane's time exactly as far as its timers sleep: a 15-minute
//!   canary runs in milliseconds.
//!
//! Times are milliseconds since the Unix epoch, the unit the pure crates
//! take.

use cutover_core::Millis;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> Millis;
}

/// The clock the components share.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// Tokio's clock, read as wall time from `epoch_ms` at creation.
#[derive(Debug, Clone)]
#[cfg(feature = "tokio")]
pub struct TokioClock {
    epoch_ms: Millis,
    start: tokio::time::Instant,
}

#[cfg(feature = "tokio")]
impl TokioClock {
    /// A clock that reads `epoch_ms` now and advances with tokio's time.
    pub fn new(epoch_ms: Millis) -> TokioClock {
        TokioClock {
            epoch_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    fn now_ms(&self) -> Millis {
        self.epoch_ms + self.start.elapsed().as_millis() as Millis
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_with_paused_time() {
        let clock = TokioClock::new(1_000_000);
        assert_eq!(clock.now_ms(), 1_000_000);
        tokio::time::sleep(Duration::from_secs(15 * 60)).await;
        assert_eq!(clock.now_ms(), 1_000_000 + 15 * 60 * 1000);
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
