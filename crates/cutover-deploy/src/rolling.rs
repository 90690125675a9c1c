//! The ECS rolling update (deployment controller `ECS`) as a pure planner:
//! given the spec and a view of the old and new tasks, [`plan`] says how many
//! new tasks to start and old tasks to stop now, whether the deployment is
//! done, or why it failed (circuit breaker, deployment alarm, no room to
//! move). The driver calls it after every task state change.
//!
//! Bounds as ECS computes them: at most `floor(desired * maximumPercent /
//! 100)` tasks RUNNING or PENDING, at least `ceil(desired *
//! minimumHealthyPercent / 100)` RUNNING and healthy. Stops are issued before
//! starts and the count of tasks is never above the maximum *now*: a start
//! that needs room made by a stop waits for the next call, after the stopped
//! tasks are gone.

use serde::{Deserialize, Serialize};

/// `deploymentCircuitBreaker` with `enable: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreaker {
    /// Roll back to the last completed deployment when it trips.
    pub rollback: bool,
}

/// `deploymentConfiguration.alarms` with `enable: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentAlarms {
    /// `alarmNames`.
    pub names: Vec<String>,
    /// Roll back when one of them is in ALARM.
    pub rollback: bool,
}

/// The service's deployment configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollingSpec {
    /// `desiredCount`.
    pub desired: u32,
    /// `minimumHealthyPercent` (ECS default 100).
    pub minimum_healthy_percent: u32,
    /// `maximumPercent` (ECS default 200).
    pub maximum_percent: u32,
    /// The circuit breaker, if enabled.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Deployment alarms, if enabled.
    pub alarms: Option<DeploymentAlarms>,
}

/// The tasks as the driver sees them now.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RollingView {
    /// Old-revision tasks RUNNING and healthy.
    pub old_running_healthy: u32,
    /// Old-revision tasks PENDING, starting or unhealthy.
    pub old_other: u32,
    /// New-revision tasks RUNNING and healthy.
    pub new_running_healthy: u32,
    /// New-revision tasks PENDING or not yet healthy.
    pub new_pending: u32,
    /// New-revision tasks that failed to launch or to become healthy, since
    /// the deployment started.
    pub new_failed_launches: u32,
    /// Names of alarms currently in ALARM.
    pub alarms_firing: Vec<String>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RollingDecision {
    /// New tasks to start.
    pub start_new: u32,
    /// Old tasks to stop (unhealthy ones first).
    pub stop_old: u32,
    /// The service is stable on the new revision.
    pub done: bool,
    /// Why the deployment failed, if it did.
    pub failed: Option<String>,
    /// With `failed`: roll back to the previous revision (a new rolling
    /// deployment the driver starts).
    pub rollback: bool,
}

/// The circuit breaker's threshold: half the desired count, rounded up,
/// clamped to 3..=200.
pub fn circuit_breaker_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// `floor(desired * maximum_percent / 100)`.
pub fn max_tasks(spec: &RollingSpec) -> u32 {
    let max = u64::from(spec.desired) * u64::from(spec.maximum_percent) / 100;
    u32::try_from(max).unwrap_or(u32::MAX)
}

/// `ceil(desired * minimum_healthy_percent / 100)`, at most `desired`.
pub fn min_healthy(spec: &RollingSpec) -> u32 {
    let min = (u64::from(spec.desired) * u64::from(spec.minimum_healthy_percent)).div_ceil(100);
    u32::try_from(min).unwrap_or(u32::MAX).min(spec.desired)
}

/// Plans the next move of a rolling update.
pub fn plan(spec: &RollingSpec, view: &RollingView) -> RollingDecision {
    if let Some(alarms) = &spec.alarms
        && let Some(name) = view.alarms_firing.iter().find(|a| alarms.names.contains(a))
    {
        return failed(
            format!("deployment alarm {name} is in ALARM"),
            alarms.rollback,
        );
    }
    if let Some(breaker) = spec.circuit_breaker {
        let threshold = circuit_breaker_threshold(spec.desired);
        if view.new_failed_launches >= threshold {
            return failed(
                format!(
                    "circuit breaker: {} tasks failed to start (threshold {threshold})",
                    view.new_failed_launches
                ),
                breaker.rollback,
            );
        }
    }
    let old = view.old_running_healthy + view.old_other;
    let new = view.new_running_healthy + view.new_pending;
    if old == 0 && view.new_running_healthy >= spec.desired {
        return RollingDecision {
            done: true,
            ..RollingDecision::default()
        };
    }

    let healthy = view.old_running_healthy + view.new_running_healthy;
    let min_healthy = min_healthy(spec);
    // Unhealthy old tasks never count toward the minimum: they always go.
    // Healthy old tasks go as far as the minimum allows.
    let stop_healthy = view
        .old_running_healthy
        .min(healthy.saturating_sub(min_healthy));
    let stop_old = view.old_other + stop_healthy;

    let room = max_tasks(spec).saturating_sub(old + new);
    let start_new = spec.desired.saturating_sub(new).min(room);

    let in_flight = view.new_pending > 0 || view.old_other > 0;
    if start_new == 0 && stop_old == 0 && !in_flight {
        return failed(
            format!(
                "deployment cannot progress: minimumHealthyPercent {} and maximumPercent {} \
                 leave no room to replace a task of {}",
                spec.minimum_healthy_percent, spec.maximum_percent, spec.desired
            ),
            false,
        );
    }
    RollingDecision {
        start_new,
        stop_old,
        ..RollingDecision::default()
    }
}

fn failed(reason: String, rollback: bool) -> RollingDecision {
    RollingDecision {
        failed: Some(reason),
        rollback,
        ..RollingDecision::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(desired: u32, min: u32, max: u32) -> RollingSpec {
        RollingSpec {
            desired,
            minimum_healthy_percent: min,
            maximum_percent: max,
            circuit_breaker: None,
            alarms: None,
        }
    }

    fn view(old: u32, new_healthy: u32, new_pending: u32) -> RollingView {
        RollingView {
            old_running_healthy: old,
            new_running_healthy: new_healthy,
            new_pending,
            ..RollingView::default()
        }
    }

    fn moves(d: &RollingDecision) -> (u32, u32, bool) {
        (d.start_new, d.stop_old, d.done)
    }

    /// Runs a deployment to the end, every started task becoming healthy and
    /// every stopped task going away between two calls. Returns the
    /// decisions and checks the bounds at every point.
    fn simulate(spec: &RollingSpec) -> Vec<(u32, u32, bool)> {
        let mut v = view(spec.desired, 0, 0);
        let mut out = Vec::new();
        for _ in 0..100 {
            let d = plan(spec, &v);
            assert_eq!(d.failed, None, "{spec:?} {v:?}");
            out.push(moves(&d));
            if d.done {
                return out;
            }
            let total = v.old_running_healthy + v.new_running_healthy + v.new_pending;
            assert!(
                total + d.start_new <= max_tasks(spec).max(spec.desired),
                "{spec:?} {v:?} {d:?}"
            );
            v.old_running_healthy -= d.stop_old;
            assert!(
                v.old_running_healthy + v.new_running_healthy >= min_healthy(spec),
                "{spec:?} {v:?} {d:?}"
            );
            v.new_running_healthy += v.new_pending;
            v.new_pending = d.start_new;
        }
        panic!("no convergence for {spec:?}");
    }

    #[test]
    fn bounds_round_like_ecs() {
        assert_eq!(max_tasks(&spec(3, 100, 150)), 4); // 4.5 rounds down
        assert_eq!(min_healthy(&spec(3, 50, 200)), 2); // 1.5 rounds up
        assert_eq!(min_healthy(&spec(1, 50, 200)), 1);
        assert_eq!(min_healthy(&spec(4, 0, 100)), 0);
    }

    #[test]
    fn min_100_max_200_starts_all_then_stops_all() {
        assert_eq!(
            simulate(&spec(4, 100, 200)),
            vec![(4, 0, false), (0, 0, false), (0, 4, false), (0, 0, true)]
        );
    }

    #[test]
    fn min_50_max_100_replaces_in_halves() {
        assert_eq!(
            simulate(&spec(4, 50, 100)),
            vec![
                (0, 2, false),
                (2, 0, false),
                (0, 0, false),
                (0, 2, false),
                (2, 0, false),
                (0, 0, false),
                (0, 0, true)
            ]
        );
    }

    #[test]
    fn min_0_stops_everything_first() {
        assert_eq!(
            simulate(&spec(3, 0, 100)),
            vec![(0, 3, false), (3, 0, false), (0, 0, false), (0, 0, true)]
        );
    }

    #[test]
    fn desired_one() {
        assert_eq!(
            simulate(&spec(1, 100, 200)),
            vec![(1, 0, false), (0, 0, false), (0, 1, false), (0, 0, true)]
        );
        assert_eq!(
            simulate(&spec(1, 0, 100)),
            vec![(0, 1, false), (1, 0, false), (0, 0, false), (0, 0, true)]
        );
        let stuck = plan(&spec(1, 100, 100), &view(1, 0, 0));
        assert!(
            stuck
                .failed
                .unwrap()
                .starts_with("deployment cannot progress")
        );
        assert_eq!(plan(&spec(0, 100, 200), &view(2, 0, 0)).stop_old, 2);
    }

    #[test]
    fn unhealthy_old_tasks_are_stopped_first() {
        let v = RollingView {
            old_running_healthy: 2,
            old_other: 2,
            ..RollingView::default()
        };
        let d = plan(&spec(4, 50, 100), &v);
        assert_eq!(moves(&d), (0, 2, false));
    }

    #[test]
    fn circuit_breaker_threshold_and_trip() {
        assert_eq!(circuit_breaker_threshold(1), 3);
        assert_eq!(circuit_breaker_threshold(10), 5);
        assert_eq!(circuit_breaker_threshold(11), 6);
        assert_eq!(circuit_breaker_threshold(1_000), 200);
        let mut s = spec(10, 100, 200);
        s.circuit_breaker = Some(CircuitBreaker { rollback: true });
        let mut v = view(10, 0, 10);
        v.new_failed_launches = 4;
        assert_eq!(plan(&s, &v).failed, None);
        v.new_failed_launches = 5;
        let d = plan(&s, &v);
        assert_eq!(
            d.failed.as_deref(),
            Some("circuit breaker: 5 tasks failed to start (threshold 5)")
        );
        assert!(d.rollback);
        // Without a breaker failures are replaced forever.
        s.circuit_breaker = None;
        let v = RollingView {
            new_failed_launches: 50,
            ..view(10, 0, 0)
        };
        assert_eq!(plan(&s, &v).start_new, 10);
    }

    #[test]
    fn deployment_alarm_fails_with_its_rollback_setting() {
        let mut s = spec(2, 100, 200);
        s.alarms = Some(DeploymentAlarms {
            names: vec!["5xx".into()],
            rollback: false,
        });
        let mut v = view(2, 1, 1);
        v.alarms_firing = vec!["other".into()];
        assert_eq!(plan(&s, &v).failed, None);
        v.alarms_firing.push("5xx".into());
        let d = plan(&s, &v);
        assert_eq!(
            (d.failed.as_deref(), d.rollback),
            (Some("deployment alarm 5xx is in ALARM"), false)
        );
    }
}
