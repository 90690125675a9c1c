//! The service reconcile decision: compare what should run with what runs
//! and say which tasks to start and stop.
//!
//! The decision is a pure function of (targets, observed tasks, backoff,
//! now), so it is idempotent: the control plane may call it as often as it
//! likes, after any restart, and the same world yields the same actions.
//! A service may have several task sets (one normally; blue and green during
//! a deployment), each with its own task definition and desired count.

use crate::Millis;
use crate::task::{HealthStatus, TaskState};
use serde::{Deserialize, Serialize};

/// How many tasks one task set should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSetTarget {
    /// Task set id (unique within the service).
    pub task_set: String,
    /// Desired number of active tasks.
    pub desired: u32,
}

/// What the reconciler needs to know about one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// The task set it belongs to.
    pub task_set: String,
    /// Last observed lifecycle state.
    pub state: TaskState,
    /// Container health.
    pub health: HealthStatus,
    /// When the task was created.
    pub created_at: Millis,
}

/// Why the reconciler stops a task (the ECS-style `stoppedReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The container health check failed `retries` times.
    Unhealthy,
    /// More tasks run than desired.
    ScaledIn,
    /// The task's task set is no longer wanted.
    TaskSetRemoved,
}

impl StopReason {
    /// The human-readable reason recorded on the task.
    pub fn message(self) -> &'static str {
        match self {
            StopReason::Unhealthy => "Task failed container health checks",
            StopReason::ScaledIn => "Scaling activity initiated by service",
            StopReason::TaskSetRemoved => "Task set removed by deployment",
        }
    }
}

/// One thing the control plane should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start `count` new tasks in a task set.
    Start {
        /// The task set to grow.
        task_set: String,
        /// How many tasks.
        count: u32,
    },
    /// Stop one task.
    Stop {
        /// The task to stop.
        task_id: String,
        /// Why.
        reason: StopReason,
    },
}

/// Restart throttling after tasks fail quickly, per service.
///
/// The first failure is replaced at once (a `kill -9` of a long-running task
/// must be replaced within a second or two); repeated quick failures back off
/// exponentially from 1 s up to 30 s, so a crash-looping command does not
/// spin. A task that ran for at least [`Backoff::STABLE_MS`] resets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// Quick failures in a row.
    pub consecutive_failures: u32,
    /// No new task may start before this time.
    pub not_before: Millis,
}

impl Backoff {
    /// A task that ran at least this long counts as stable.
    pub const STABLE_MS: Millis = 10_000;
    /// Longest delay between restarts.
    pub const MAX_DELAY_MS: Millis = 30_000;

    /// Records that a task exited (or was stopped as unhealthy) at `now`
    /// after running for `ran_for_ms`.
    pub fn task_failed(&mut self, now: Millis, ran_for_ms: Millis) {
        if ran_for_ms >= Self::STABLE_MS {
            self.consecutive_failures = 0;
        }
        self.consecutive_failures += 1;
        self.not_before = now + self.delay_ms();
    }

    /// Records that a task became healthy or stayed up: failures are forgotten.
    pub fn task_succeeded(&mut self) {
        self.consecutive_failures = 0;
        self.not_before = 0;
    }

    /// The delay the current failure count imposes.
    pub fn delay_ms(&self) -> Millis {
        match self.consecutive_failures {
            0 | 1 => 0,
            n => (500u64 << (n - 1).min(16)).min(Self::MAX_DELAY_MS),
        }
    }
}

/// The reconcile decision for one service.
///
/// Returns the actions in a stable order: stops first (unhealthy, removed
/// task sets, scale-in), then starts. Tasks already STOPPING or STOPPED are
/// ignored: they no longer count towards any desired count.
pub fn reconcile(
    targets: &[TaskSetTarget],
    tasks: &[TaskView],
    backoff: &Backoff,
    now: Millis,
) -> Vec<Action> {
    let mut stops = Vec::new();
    let mut starts = Vec::new();
    let active: Vec<&TaskView> = tasks.iter().filter(|t| t.state.is_active()).collect();

    for t in &active {
        if t.health == HealthStatus::Unhealthy {
            stops.push(Action::Stop {
                task_id: t.id.clone(),
                reason: StopReason::Unhealthy,
            });
        } else if !targets.iter().any(|s| s.task_set == t.task_set) {
            stops.push(Action::Stop {
                task_id: t.id.clone(),
                reason: StopReason::TaskSetRemoved,
            });
        }
    }

    for target in targets {
        let mut keep: Vec<&TaskView> = active
            .iter()
            .copied()
            .filter(|t| t.task_set == target.task_set && t.health != HealthStatus::Unhealthy)
            .collect();
        let have = keep.len() as u32;
        if have > target.desired {
            // Stop the least useful first: not yet running, then not known
            // healthy, then the newest.
            keep.sort_by_key(|t| {
                (
                    t.state == TaskState::Running,
                    t.health == HealthStatus::Healthy,
                    std::cmp::Reverse(t.created_at),
                    t.id.clone(),
                )
            });
            for t in keep.iter().take((have - target.desired) as usize) {
                stops.push(Action::Stop {
                    task_id: t.id.clone(),
                    reason: StopReason::ScaledIn,
                });
            }
        } else if have < target.desired && now >= backoff.not_before {
            starts.push(Action::Start {
                task_set: target.task_set.clone(),
                count: target.desired - have,
            });
        }
    }
    stops.extend(starts);
    stops
}

/// When the reconciler next needs to run even if nothing changes: the end of
/// a backoff that currently holds back a start, if any.
pub fn next_deadline(
    targets: &[TaskSetTarget],
    tasks: &[TaskView],
    backoff: &Backoff,
    now: Millis,
) -> Option<Millis> {
    if backoff.not_before <= now {
        return None;
    }
    let short = targets.iter().any(|target| {
        let have = tasks
            .iter()
            .filter(|t| {
                t.task_set == target.task_set
                    && t.state.is_active()
                    && t.health != HealthStatus::Unhealthy
            })
            .count() as u32;
        have < target.desired
    });
    short.then_some(backoff.not_before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, set: &str, state: TaskState, health: HealthStatus, at: Millis) -> TaskView {
        TaskView {
            id: id.into(),
            task_set: set.into(),
            state,
            health,
            created_at: at,
        }
    }

    fn target(set: &str, desired: u32) -> TaskSetTarget {
        TaskSetTarget {
            task_set: set.into(),
            desired,
        }
    }

    use HealthStatus::*;
    use TaskState::*;

    #[test]
    fn starts_missing_tasks() {
        let tasks = [task("a", "p", Running, Healthy, 1)];
        let actions = reconcile(&[target("p", 3)], &tasks, &Backoff::default(), 10);
        assert_eq!(
            actions,
            vec![Action::Start {
                task_set: "p".into(),
                count: 2
            }]
        );
    }

    #[test]
    fn stopped_and_stopping_tasks_do_not_count() {
        let tasks = [
            task("a", "p", Stopped, Healthy, 1),
            task("b", "p", Stopping, Healthy, 2),
            task("c", "p", Pending, Unknown, 3),
        ];
        let actions = reconcile(&[target("p", 2)], &tasks, &Backoff::default(), 10);
        assert_eq!(
            actions,
            vec![Action::Start {
                task_set: "p".into(),
                count: 1
            }]
        );
    }

    #[test]
    fn steady_state_is_a_no_op_and_idempotent() {
        let tasks = [
            task("a", "p", Running, Healthy, 1),
            task("b", "p", Running, Unknown, 2),
        ];
        for now in [0, 1_000, 1_000_000] {
            assert!(reconcile(&[target("p", 2)], &tasks, &Backoff::default(), now).is_empty());
        }
    }

    #[test]
    fn unhealthy_task_is_stopped_and_replaced_in_one_pass() {
        let tasks = [
            task("a", "p", Running, Unhealthy, 1),
            task("b", "p", Running, Healthy, 2),
        ];
        let actions = reconcile(&[target("p", 2)], &tasks, &Backoff::default(), 10);
        assert_eq!(
            actions,
            vec![
                Action::Stop {
                    task_id: "a".into(),
                    reason: StopReason::Unhealthy
                },
                Action::Start {
                    task_set: "p".into(),
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn scale_in_prefers_pending_then_unknown_then_newest() {
        let tasks = [
            task("old-healthy", "p", Running, Healthy, 1),
            task("new-healthy", "p", Running, Healthy, 5),
            task("unknown", "p", Running, Unknown, 2),
            task("pending", "p", Pending, Unknown, 3),
        ];
        let actions = reconcile(&[target("p", 1)], &tasks, &Backoff::default(), 10);
        let stopped: Vec<_> = actions
            .iter()
            .map(|a| match a {
                Action::Stop { task_id, .. } => task_id.as_str(),
                Action::Start { .. } => panic!("unexpected start"),
            })
            .collect();
        assert_eq!(stopped, vec!["pending", "unknown", "new-healthy"]);
    }

    #[test]
    fn tasks_of_removed_task_sets_are_stopped() {
        let tasks = [
            task("blue-1", "blue", Running, Healthy, 1),
            task("green-1", "green", Running, Healthy, 2),
        ];
        let actions = reconcile(&[target("green", 1)], &tasks, &Backoff::default(), 10);
        assert_eq!(
            actions,
            vec![Action::Stop {
                task_id: "blue-1".into(),
                reason: StopReason::TaskSetRemoved
            }]
        );
    }

    #[test]
    fn backoff_holds_starts_until_its_deadline() {
        let mut b = Backoff::default();
        b.task_failed(1_000, 200); // first quick failure: no delay
        assert_eq!(b.not_before, 1_000);
        b.task_failed(1_500, 200);
        assert_eq!(b.delay_ms(), 1_000);
        assert_eq!(b.not_before, 2_500);
        let targets = [target("p", 1)];
        assert!(reconcile(&targets, &[], &b, 2_000).is_empty());
        assert_eq!(next_deadline(&targets, &[], &b, 2_000), Some(2_500));
        assert_eq!(reconcile(&targets, &[], &b, 2_500).len(), 1);
        assert_eq!(next_deadline(&targets, &[], &b, 2_500), None);
    }

    #[test]
    fn backoff_grows_to_a_cap_and_resets_after_a_stable_run() {
        let mut b = Backoff::default();
        for _ in 0..20 {
            b.task_failed(0, 100);
        }
        assert_eq!(b.delay_ms(), Backoff::MAX_DELAY_MS);
        b.task_failed(100_000, Backoff::STABLE_MS);
        assert_eq!(b.consecutive_failures, 1);
        assert_eq!(b.not_before, 100_000);
        b.task_failed(100_000, 10);
        b.task_succeeded();
        assert_eq!(b, Backoff::default());
    }
}
