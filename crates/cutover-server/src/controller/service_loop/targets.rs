//! The task sets a service wants, from its declaration and its tasks: the
//! rolling-update rule of a service loop's pass (pure).

use cutover_core::reconcile::TaskSetTarget;
use cutover_core::service::ServiceStatus;
use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
use cutover_deploy::rolling::{self, RollingSpec, RollingView};
use cutover_store::{ServiceRow, TaskRow};
use std::collections::BTreeMap;

/// The task sets a service wants: its current revision at the desired
/// count and, during a rolling update, the older revisions at the counts the
/// ECS rolling planner allows (`minimumHealthyPercent` healthy tasks kept,
/// at most `maximumPercent` running or pending). Blue/green deployments add
/// their replacement set separately; sets retired by a promotion are not
/// kept.
pub(super) fn targets(
    svc: &ServiceRow,
    tasks: &[TaskRow],
    has_health_check: bool,
    blue_green: bool,
) -> Vec<TaskSetTarget> {
    let desired = if svc.status == ServiceStatus::Draining {
        0
    } else {
        svc.desired_count
    };
    let primary = svc.task_definition.as_str();
    let active = |t: &&TaskRow| {
        t.desired_status == DesiredStatus::Running && t.last_status != TaskState::Stopped
    };
    let healthy = |t: &TaskRow, checked: bool| {
        t.last_status == TaskState::Running
            && if checked {
                t.health_status == HealthStatus::Healthy
            } else {
                t.health_status != HealthStatus::Unhealthy
            }
    };
    let new: Vec<&TaskRow> = tasks
        .iter()
        .filter(active)
        .filter(|t| t.task_set == primary)
        .collect();
    let old: Vec<&TaskRow> = tasks
        .iter()
        .filter(active)
        .filter(|t| {
            t.task_set != primary
                && !t.task_set.starts_with("retired-")
                && !t.task_set.starts_with("green-")
        })
        .collect();
    if old.is_empty() || desired == 0 || blue_green {
        return vec![TaskSetTarget {
            task_set: primary.to_string(),
            desired,
        }];
    }
    let new_healthy = new.iter().filter(|t| healthy(t, has_health_check)).count() as u32;
    let old_healthy = old.iter().filter(|t| healthy(t, false)).count() as u32;
    let deployment = &svc.spec.deployment;
    let spec = RollingSpec {
        desired,
        minimum_healthy_percent: deployment.minimum_healthy_percent.unwrap_or(100),
        maximum_percent: deployment.maximum_percent.unwrap_or(200),
        circuit_breaker: None,
        alarms: None,
    };
    let view = RollingView {
        old_running_healthy: old_healthy,
        old_other: old.len() as u32 - old_healthy,
        new_running_healthy: new_healthy,
        new_pending: new.len() as u32 - new_healthy,
        new_failed_launches: 0,
        alarms_firing: Vec::new(),
    };
    let decision = rolling::plan(&spec, &view);
    let mut out = vec![TaskSetTarget {
        task_set: primary.to_string(),
        desired: (new.len() as u32 + decision.start_new).min(desired),
    }];
    // Old tasks to stop come from the largest old set first.
    let mut old_sets: BTreeMap<&str, u32> = BTreeMap::new();
    for t in &old {
        *old_sets.entry(&t.task_set).or_default() += 1;
    }
    let mut sets: Vec<(&str, u32)> = old_sets.into_iter().collect();
    sets.sort_by_key(|(name, n)| (std::cmp::Reverse(*n), *name));
    let mut to_stop = decision.stop_old;
    for (set, count) in sets {
        let stop = to_stop.min(count);
        to_stop -= stop;
        out.push(TaskSetTarget {
            task_set: set.to_string(),
            desired: count - stop,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(min: u32, max: u32, desired: u32) -> ServiceRow {
        ServiceRow {
            name: "web".into(),
            task_definition: "web:2".into(),
            desired_count: desired,
            runtime: "process".into(),
            spec: serde_json::from_value(json!({"deployment": {"type": "ROLLING", "minimumHealthyPercent": min, "maximumPercent": max}}))
                .unwrap(),
            status: ServiceStatus::Active,
            lb_group: "a".into(),
            generation: 2,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn task(id: &str, set: &str, status: &str, health: &str) -> TaskRow {
        TaskRow {
            id: id.into(),
            service: "web".into(),
            task_set: set.into(),
            task_definition: set.into(),
            runtime: "process".into(),
            last_status: status.parse().unwrap(),
            desired_status: DesiredStatus::Running,
            health_status: health.parse().unwrap(),
            endpoint: None,
            handle: None,
            stop_code: None,
            stopped_reason: None,
            exit_code: None,
            created_at: 0,
            started_at: None,
            stopping_at: None,
            stopped_at: None,
        }
    }

    fn desired_of(t: &[TaskSetTarget], set: &str) -> u32 {
        t.iter()
            .find(|x| x.task_set == set)
            .map_or(0, |x| x.desired)
    }

    #[test]
    fn min_100_max_200_starts_all_new_before_stopping_any_old() {
        let tasks: Vec<_> = (0..4)
            .map(|i| task(&format!("o{i}"), "web:1", "RUNNING", "HEALTHY"))
            .collect();
        let t = targets(&svc(100, 200, 4), &tasks, true, false);
        assert_eq!(desired_of(&t, "web:2"), 4);
        assert_eq!(desired_of(&t, "web:1"), 4);
    }

    #[test]
    fn min_50_max_100_stops_half_first_then_replaces() {
        let tasks: Vec<_> = (0..4)
            .map(|i| task(&format!("o{i}"), "web:1", "RUNNING", "HEALTHY"))
            .collect();
        let t = targets(&svc(50, 100, 4), &tasks, true, false);
        assert_eq!(desired_of(&t, "web:1"), 2, "{t:?}");
        assert_eq!(
            desired_of(&t, "web:2"),
            0,
            "a start waits until the stops made room: {t:?}"
        );
        let mut tasks: Vec<_> = (0..2)
            .map(|i| task(&format!("o{i}"), "web:1", "RUNNING", "HEALTHY"))
            .collect();
        let t = targets(&svc(50, 100, 4), &tasks, true, false);
        assert_eq!(desired_of(&t, "web:2"), 2, "{t:?}");
        tasks.push(task("n0", "web:2", "RUNNING", "HEALTHY"));
        tasks.push(task("n1", "web:2", "RUNNING", "HEALTHY"));
        let t = targets(&svc(50, 100, 4), &tasks, true, false);
        assert_eq!(desired_of(&t, "web:1"), 0, "{t:?}");
    }

    #[test]
    fn retired_and_replacement_sets_are_never_kept_by_the_rolling_rule() {
        let tasks = vec![
            task("r", "retired-d1", "RUNNING", "HEALTHY"),
            task("n", "web:2", "RUNNING", "HEALTHY"),
        ];
        let t = targets(&svc(100, 200, 1), &tasks, true, false);
        assert_eq!(t.len(), 1);
        assert_eq!(desired_of(&t, "web:2"), 1);
    }
}
