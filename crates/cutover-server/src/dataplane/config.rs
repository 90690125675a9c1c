//! The data plane's desired configuration, derived from the store.
//!
//! Every service with a `loadBalancer` gets:
//! - two target groups `<service>-a` and `<service>-b`; the service row says
//!   which one is live (`lb_group`), the other receives a blue/green
//!   deployment's replacement tasks;
//! - a production listener `<service>-prod` forwarding to both groups with
//!   the weights of the running deployment (100/0 when there is none);
//! - a test listener `<service>-test` (when declared) forwarding to the
//!   replacement group once the deployment allowed test traffic, else to the
//!   live group.
//!
//! Only RUNNING tasks with an endpoint are targets; the proxy's own health
//! checks decide when they receive traffic. This is a pure function of the
//! rows, so the same store always yields the same configuration.

use cutover_core::task::{DesiredStatus, TaskState};
use cutover_store::{DeploymentRow, ServiceRow, TaskRow};
use serde_json::{Value, json};

/// The task set id of a deployment's replacement tasks.
pub(crate) fn green_set(deployment_id: &str) -> String {
    format!("green-{deployment_id}")
}

/// Name of a service's target group `a` or `b`.
pub(crate) fn group_name(service: &str, group: &str) -> String {
    format!("{service}-{group}")
}

/// The group that is not `group`.
pub(crate) fn other_group(group: &str) -> &'static str {
    if group == "a" { "b" } else { "a" }
}

/// Production listener name.
pub(crate) fn prod_listener(service: &str) -> String {
    format!("{service}-prod")
}

/// Test listener name.
pub(crate) fn test_listener(service: &str) -> String {
    format!("{service}-test")
}

/// One service as the configuration needs it.
pub(crate) struct ServiceView<'a> {
    pub(crate) service: &'a ServiceRow,
    pub(crate) tasks: &'a [TaskRow],
    /// The running (unfinished) deployment, if any.
    pub(crate) deployment: Option<&'a DeploymentRow>,
}

/// Builds the proxy configuration (as the JSON the admin API takes).
pub(crate) fn desired(admin: &str, services: &[ServiceView<'_>]) -> Value {
    let mut listeners = Vec::new();
    let mut groups = Vec::new();
    for v in services {
        let svc = v.service;
        let Some(lb) = svc.spec.load_balancer.as_ref() else {
            continue;
        };
        if svc.status != cutover_core::service::ServiceStatus::Active && v.tasks.is_empty() {
            continue;
        }
        let live = svc.lb_group.as_str();
        let other = other_group(live);
        let green = v.deployment.filter(|d| d.green_provisioned);
        let green_set_id = green.map(|d| green_set(&d.id));
        let targets = |in_set: &dyn Fn(&str) -> bool| -> Vec<String> {
            let mut t: Vec<String> = v
                .tasks
                .iter()
                .filter(|t| {
                    in_set(&t.task_set)
                        && t.last_status == TaskState::Running
                        && t.desired_status == DesiredStatus::Running
                })
                .filter_map(|t| t.endpoint.clone())
                .collect();
            t.sort();
            t
        };
        // The live group holds every running task of the service that is
        // neither a blue/green replacement nor retired by a promotion: the
        // current revision and, during a rolling update, the older ones
        // until the controller drains them.
        let live_targets =
            targets(&|set: &str| !set.starts_with("green-") && !set.starts_with("retired-"));
        let other_targets = match &green_set_id {
            Some(g) => targets(&|set: &str| set == g),
            None => Vec::new(),
        };
        let hc = &lb.health_check;
        let health = json!({
            "path": hc.path,
            "intervalSeconds": hc.interval_seconds,
            "timeoutSeconds": hc.timeout().as_secs(),
            "healthyThresholdCount": hc.healthy_threshold_count,
            "unhealthyThresholdCount": hc.unhealthy_threshold_count,
            "matcher": hc.matcher.as_str(),
        });
        let delay = lb.deregistration_delay_seconds;
        for (g, t) in [(live, &live_targets), (other, &other_targets)] {
            groups.push(json!({
                "name": group_name(&svc.name, g),
                "targets": t,
                "healthCheck": health,
                "deregistrationDelaySeconds": delay,
            }));
        }
        let pct = green.map_or(0, |d| u32::from(d.prod_green_percent.min(100)));
        listeners.push(json!({
            "name": prod_listener(&svc.name),
            "address": lb.listener.to_string(),
            "defaultAction": {"forward": [
                {"targetGroup": group_name(&svc.name, live), "weight": 100 - pct},
                {"targetGroup": group_name(&svc.name, other), "weight": pct},
            ]},
        }));
        if let Some(test) = lb.test_listener {
            let on_green = green.is_some_and(|d| d.test_on_green);
            let (tw_live, tw_other) = if on_green { (0, 100) } else { (100, 0) };
            listeners.push(json!({
                "name": test_listener(&svc.name),
                "address": test.to_string(),
                "defaultAction": {"forward": [
                    {"targetGroup": group_name(&svc.name, live), "weight": tw_live},
                    {"targetGroup": group_name(&svc.name, other), "weight": tw_other},
                ]},
            }));
        }
    }
    json!({"admin": admin, "listeners": listeners, "targetGroups": groups})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(lb_group: &str) -> ServiceRow {
        ServiceRow {
            name: "web".into(),
            task_definition: "web:1".into(),
            desired_count: 1,
            runtime: "process".into(),
            spec: serde_json::from_value(
                json!({"loadBalancer": {"containerName": "web", "containerPort": 8080,
                "listener": "127.0.0.1:18080", "testListener": "127.0.0.1:19080",
                "healthCheck": {"path": "/health", "intervalSeconds": 1, "timeoutSeconds": 1,
                    "healthyThresholdCount": 2, "unhealthyThresholdCount": 2, "matcher": "200-299"},
                "deregistrationDelaySeconds": 2}}),
            )
            .unwrap(),
            status: cutover_core::service::ServiceStatus::Active,
            lb_group: lb_group.into(),
            generation: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn task(id: &str, set: &str, status: &str, endpoint: &str) -> TaskRow {
        TaskRow {
            id: id.into(),
            service: "web".into(),
            task_set: set.into(),
            task_definition: "web:1".into(),
            runtime: "process".into(),
            last_status: status.parse().unwrap(),
            desired_status: DesiredStatus::Running,
            health_status: cutover_core::task::HealthStatus::Healthy,
            endpoint: Some(endpoint.into()),
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

    fn deployment(pct: u8, test: bool) -> DeploymentRow {
        DeploymentRow {
            id: "d1".into(),
            service: "web".into(),
            status: cutover_deploy::DeploymentStatus::InProgress,
            from_task_definition: "web:1".into(),
            to_task_definition: "web:2".into(),
            config: "x".into(),
            engine: cutover_deploy::BlueGreen::new(
                cutover_deploy::BlueGreenSpec::new(
                    "d1",
                    cutover_deploy::TrafficRouting::ecs_all_at_once(),
                ),
                0,
            )
            .into(),
            green_provisioned: true,
            prod_green_percent: pct,
            test_on_green: test,
            started_by: "t".into(),
            rollback_of: None,
            rolled_back_by: None,
            outcome: None,
            created_at: 0,
            updated_at: 0,
            finished_at: None,
        }
    }

    #[test]
    fn without_a_deployment_everything_goes_to_the_live_group() {
        let svc = service("a");
        let tasks = [
            task("t1", "web:1", "RUNNING", "127.0.0.1:2"),
            task("t2", "web:1", "PENDING", "127.0.0.1:3"),
            task("t0", "web:1", "RUNNING", "127.0.0.1:1"),
        ];
        let cfg = desired(
            "127.0.0.1:9",
            &[ServiceView {
                service: &svc,
                tasks: &tasks,
                deployment: None,
            }],
        );
        assert_eq!(cfg["targetGroups"][0]["name"], "web-a");
        assert_eq!(
            cfg["targetGroups"][0]["targets"],
            json!(["127.0.0.1:1", "127.0.0.1:2"])
        );
        assert_eq!(cfg["targetGroups"][1]["targets"], json!([]));
        assert_eq!(
            cfg["listeners"][0]["defaultAction"]["forward"],
            json!([{"targetGroup": "web-a", "weight": 100}, {"targetGroup": "web-b", "weight": 0}])
        );
        assert_eq!(cfg["listeners"][1]["name"], "web-test");
        assert_eq!(
            cfg["listeners"][1]["defaultAction"]["forward"][0]["weight"],
            100
        );
    }

    #[test]
    fn a_rolling_update_keeps_the_older_revision_in_the_live_group_until_drained() {
        let mut svc = service("a");
        svc.task_definition = "web:2".into();
        let mut draining = task("t0", "web:1", "STOPPING", "127.0.0.1:3");
        draining.desired_status = DesiredStatus::Stopped;
        let tasks = [
            task("t1", "web:1", "RUNNING", "127.0.0.1:2"),
            task("n1", "web:2", "RUNNING", "127.0.0.1:5"),
            task("r1", "retired-d0", "RUNNING", "127.0.0.1:7"),
            draining,
        ];
        let cfg = desired(
            "127.0.0.1:9",
            &[ServiceView {
                service: &svc,
                tasks: &tasks,
                deployment: None,
            }],
        );
        assert_eq!(
            cfg["targetGroups"][0]["targets"],
            json!(["127.0.0.1:2", "127.0.0.1:5"])
        );
    }

    #[test]
    fn a_deployment_splits_production_and_moves_the_test_listener() {
        let svc = service("b");
        let tasks = [
            task("t1", "web:1", "RUNNING", "127.0.0.1:2"),
            task("g1", &green_set("d1"), "RUNNING", "127.0.0.1:5"),
        ];
        let d = deployment(20, true);
        let cfg = desired(
            "127.0.0.1:9",
            &[ServiceView {
                service: &svc,
                tasks: &tasks,
                deployment: Some(&d),
            }],
        );
        assert_eq!(cfg["targetGroups"][0]["name"], "web-b");
        assert_eq!(cfg["targetGroups"][1]["name"], "web-a");
        assert_eq!(cfg["targetGroups"][1]["targets"], json!(["127.0.0.1:5"]));
        assert_eq!(
            cfg["listeners"][0]["defaultAction"]["forward"],
            json!([{"targetGroup": "web-b", "weight": 80}, {"targetGroup": "web-a", "weight": 20}])
        );
        assert_eq!(
            cfg["listeners"][1]["defaultAction"]["forward"],
            json!([{"targetGroup": "web-b", "weight": 0}, {"targetGroup": "web-a", "weight": 100}])
        );
        // The result is a configuration the proxy accepts.
        let text = serde_json::to_string(&cfg).unwrap();
        cutover_proxy::config::parse_json("desired.json", &text).unwrap();
    }
}
