//! One timer per connection for all of its deadlines, moved lazily.
//!
//! A plain HTTP/1 connection always has exactly one deadline in force: the next request head's
//! (`requestHeaderTimeoutSeconds` after the last exchange), a response head's (the target
//! group's `responseTimeoutSeconds` after the request was sent), or a response body's next
//! bytes (the same time after the last ones). Moving a tokio timer costs a lock and two timer
//! wheel operations; doing it two or three times per request was a visible share of the
//! forwarding path. So [`Deadline::set`] only records the new instant, and touches the timer
//! only when the new instant is *earlier* than the one the timer is armed for. The timer then
//! fires at or before the deadline in force; when it fires early, [`Deadline::poll_passed`]
//! re-arms it for the recorded instant instead of reporting it. Invariant: the timer is never
//! armed later than the deadline in force, so no deadline is missed; with the default timeouts
//! (30 s for heads, 60 s for responses) a busy connection's timer moves about once per 30 s
//! instead of per request.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// A connection's deadline (see the module header).
pub(crate) struct Deadline<'a> {
    timer: Pin<&'a mut Sleep>,
    /// The deadline in force.
    at: Instant,
    /// What the timer is armed for: never later than `at`.
    armed: Instant,
}

impl<'a> Deadline<'a> {
    /// A deadline at the instant `timer` is armed for.
    pub(crate) fn new(timer: Pin<&'a mut Sleep>) -> Self {
        let at = timer.deadline();
        Deadline {
            timer,
            at,
            armed: at,
        }
    }

    /// Puts the deadline in force at `at`.
    #[inline]
    pub(crate) fn set(&mut self, at: Instant) {
        self.at = at;
        if at < self.armed {
            self.armed = at;
            self.timer.as_mut().reset(at);
        }
    }

    /// Ready once the deadline in force has passed.
    pub(crate) fn poll_passed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= self.at {
                return Poll::Ready(());
            }
            // Fired for an earlier deadline since moved later: wait for the one in force.
            self.armed = self.at;
            self.timer.as_mut().reset(self.at);
        }
    }

    /// Resolves once the deadline in force has passed.
    pub(crate) async fn passed(&mut self) {
        std::future::poll_fn(|cx| self.poll_passed(cx)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_is_kept_without_moving_the_timer_and_an_earlier_one_moves_it() {
        let start = Instant::now();
        let mut timer = pin!(tokio::time::sleep(Duration::from_secs(30)));
        let mut d = Deadline::new(timer.as_mut());
        // Moved later: the timer fires at 30 s, early, and is re-armed for 45 s.
        d.set(start + Duration::from_secs(45));
        assert_eq!(d.armed, start + Duration::from_secs(30));
        d.passed().await;
        assert_eq!(Instant::now(), start + Duration::from_secs(45));
        // Moved earlier than the timer: moved at once.
        d.set(start + Duration::from_secs(100));
        d.set(Instant::now() + Duration::from_secs(1));
        d.passed().await;
        assert_eq!(Instant::now(), start + Duration::from_secs(46));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_while_nobody_waits_is_still_honoured() {
        let start = Instant::now();
        let mut timer = pin!(tokio::time::sleep(Duration::from_secs(1)));
        let mut d = Deadline::new(timer.as_mut());
        d.set(start + Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(3)).await; // the timer fired unobserved at 1 s
        d.passed().await;
        assert_eq!(Instant::now(), start + Duration::from_secs(5));
    }
}
