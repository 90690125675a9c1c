//! Container health checks with ECS semantics, as a pure state machine.
//!
//! ECS (and Docker) rules: checks run every `interval`; a check that exceeds
//! `timeout` fails; `retries` consecutive failures make the container
//! UNHEALTHY; failures during `startPeriod` do not count, but a success
//! during it makes the container HEALTHY at once.
//!
//! One deliberate difference, for faster deployments: until the first
//! success, checks run every `min(interval, 1 s)` (Docker's `start-interval`
//! idea), so a task that is ready after 300 ms is known healthy within about
//! a second rather than after a whole interval.
//!
//! The tracker decides *when* to probe and *what a result means*; running the
//! probe is the caller's job.

use crate::Millis;
use crate::task::HealthStatus;
use serde::{Deserialize, Serialize};

/// The health-check timing of one container (`healthCheck` in a taskdef).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// Time between checks.
    pub interval_ms: Millis,
    /// Time after which one check counts as failed.
    pub timeout_ms: Millis,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u32,
    /// Grace period after start during which failures do not count.
    pub start_period_ms: Millis,
}

impl HealthPolicy {
    /// Probe interval used before the first success.
    pub fn startup_interval_ms(&self) -> Millis {
        self.interval_ms.min(1_000)
    }
}

/// The result of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// Exit code 0.
    Pass,
    /// Non-zero exit, or the probe could not run.
    Fail,
    /// The probe exceeded the policy timeout.
    TimedOut,
    /// The runtime's own check (a cluster engine runs it) has not decided
    /// yet: nothing is recorded, the probe runs again at the next step.
    Pending,
}

/// A change of health status, reported once when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTransition {
    /// Status before the probe.
    pub from: HealthStatus,
    /// Status after the probe.
    pub to: HealthStatus,
}

/// Health of one running container over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthTracker {
    policy: HealthPolicy,
    started_at: Millis,
    status: HealthStatus,
    consecutive_failures: u32,
    ever_passed: bool,
    next_probe_at: Millis,
}

impl HealthTracker {
    /// A tracker for a container that started at `started_at`.
    pub fn new(policy: HealthPolicy, started_at: Millis) -> Self {
        HealthTracker {
            policy,
            started_at,
            status: HealthStatus::Unknown,
            consecutive_failures: 0,
            ever_passed: false,
            next_probe_at: started_at + policy.startup_interval_ms(),
        }
    }

    /// The current verdict.
    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// The policy this tracker applies.
    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// Consecutive failed probes since the last pass (start period excluded).
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// When the next probe should start.
    pub fn next_probe_at(&self) -> Millis {
        self.next_probe_at
    }

    /// Whether a probe is due at `now`.
    pub fn due(&self, now: Millis) -> bool {
        now >= self.next_probe_at
    }

    /// Records the result of a probe that finished at `now` and schedules
    /// the next one. Returns the transition if the status changed.
    pub fn record(&mut self, now: Millis, result: ProbeResult) -> Option<HealthTransition> {
        let before = self.status;
        let in_start_period = now < self.started_at + self.policy.start_period_ms;
        match result {
            ProbeResult::Pass => {
                self.consecutive_failures = 0;
                self.ever_passed = true;
                self.status = HealthStatus::Healthy;
            }
            ProbeResult::Pending => {}
            ProbeResult::Fail | ProbeResult::TimedOut => {
                if !in_start_period {
                    self.consecutive_failures += 1;
                    if self.consecutive_failures >= self.policy.retries.max(1) {
                        self.status = HealthStatus::Unhealthy;
                    }
                }
            }
        }
        let step = if self.ever_passed {
            self.policy.interval_ms
        } else {
            self.policy.startup_interval_ms()
        };
        self.next_probe_at = now + step.max(1);
        (before != self.status).then_some(HealthTransition {
            from: before,
            to: self.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            interval_ms: 5_000,
            timeout_ms: 2_000,
            retries: 3,
            start_period_ms: 10_000,
        }
    }

    #[test]
    fn probes_every_second_until_first_pass_then_every_interval() {
        let mut t = HealthTracker::new(policy(), 0);
        assert!(!t.due(999));
        assert!(t.due(1_000));
        assert_eq!(t.record(1_000, ProbeResult::Fail), None);
        assert_eq!(t.next_probe_at(), 2_000);
        let tr = t.record(2_000, ProbeResult::Pass).unwrap();
        assert_eq!(
            (tr.from, tr.to),
            (HealthStatus::Unknown, HealthStatus::Healthy)
        );
        assert_eq!(t.next_probe_at(), 7_000);
    }

    #[test]
    fn failures_in_start_period_do_not_count() {
        let mut t = HealthTracker::new(policy(), 0);
        for s in 1..10 {
            assert_eq!(t.record(s * 1_000, ProbeResult::Fail), None);
        }
        assert_eq!(t.consecutive_failures(), 0);
        assert_eq!(t.status(), HealthStatus::Unknown);
        // After the start period, `retries` failures are needed.
        t.record(10_000, ProbeResult::Fail);
        t.record(11_000, ProbeResult::TimedOut);
        assert_eq!(t.status(), HealthStatus::Unknown);
        let tr = t.record(12_000, ProbeResult::Fail).unwrap();
        assert_eq!(tr.to, HealthStatus::Unhealthy);
    }

    #[test]
    fn a_pending_verdict_counts_for_nothing_and_probes_again() {
        let mut p = policy();
        p.start_period_ms = 0;
        p.retries = 1;
        let mut t = HealthTracker::new(p, 0);
        for s in 1..5 {
            assert_eq!(t.record(s * 1_000, ProbeResult::Pending), None);
            assert_eq!(t.next_probe_at(), (s + 1) * 1_000);
        }
        assert_eq!(
            (t.status(), t.consecutive_failures()),
            (HealthStatus::Unknown, 0)
        );
        assert_eq!(
            t.record(5_000, ProbeResult::Pass).unwrap().to,
            HealthStatus::Healthy
        );
    }

    #[test]
    fn a_pass_resets_the_failure_count_and_recovers() {
        let mut p = policy();
        p.start_period_ms = 0;
        let mut t = HealthTracker::new(p, 0);
        t.record(1_000, ProbeResult::Pass);
        t.record(6_000, ProbeResult::Fail);
        t.record(11_000, ProbeResult::Fail);
        t.record(16_000, ProbeResult::Pass);
        assert_eq!(t.consecutive_failures(), 0);
        t.record(21_000, ProbeResult::Fail);
        t.record(26_000, ProbeResult::Fail);
        assert_eq!(t.status(), HealthStatus::Healthy);
        assert_eq!(
            t.record(31_000, ProbeResult::Fail).map(|x| x.to),
            Some(HealthStatus::Unhealthy)
        );
        assert_eq!(
            t.record(36_000, ProbeResult::Pass).map(|x| x.to),
            Some(HealthStatus::Healthy)
        );
    }

    #[test]
    fn zero_retries_behaves_as_one() {
        let mut p = policy();
        p.start_period_ms = 0;
        p.retries = 0;
        let mut t = HealthTracker::new(p, 0);
        assert_eq!(
            t.record(1_000, ProbeResult::Fail).map(|x| x.to),
            Some(HealthStatus::Unhealthy)
        );
    }
}
