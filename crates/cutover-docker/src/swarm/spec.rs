//! A Cutover task as a Swarm service spec (pure): one Swarm service of one
//! replica with restart condition `none` per task. Swarm places it
//! (constraints, spread) and runs it on a node; Cutover owns its life (see
//! [`super::task`] for how its end is read).

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    HealthConfig, Limit, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, TaskSpec as SwarmTaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use cutover_runtime::placement_types::{ConstraintOp, NodeAttribute};
use cutover_runtime::{HealthCommand, Placement as TaskPlacement, TaskSpec};

use crate::container::{
    LABEL_CONTAINER, LABEL_HOST_PORT, LABEL_INSTANCE, LABEL_SERVICE, LABEL_TASK,
    LABEL_TASK_DEFINITION, stop_timeout_secs,
};
/// The Swarm service name of a task: `cutover-<task id>`, as a DNS label
/// (letters, digits and `-`, at most 63), which Swarm requires.
pub(crate) fn service_name(task_id: &str) -> String {
    let mut name: String = format!("cutover-{task_id}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// The Swarm name of a node attribute: a node label, the node's platform
/// or the node itself.
fn swarm_attribute(attribute: &NodeAttribute) -> String {
    match attribute {
        NodeAttribute::Custom(name) => format!("node.labels.{name}"),
        NodeAttribute::OsType => "node.platform.os".into(),
        NodeAttribute::CpuArchitecture => "node.platform.arch".into(),
        NodeAttribute::InstanceId => "node.id".into(),
    }
}

/// Swarm placement constraints (`node.labels.zone==a`) and spread
/// descriptors of a task's placement. Spreading over nodes is what Swarm
/// does anyway, so a spread over `instanceId` adds no preference.
pub(crate) fn swarm_placement(placement: &TaskPlacement) -> (Vec<String>, Vec<String>) {
    let constraints = placement
        .constraints
        .iter()
        .map(|c| {
            let op = match c.op {
                ConstraintOp::Equal => "==",
                ConstraintOp::NotEqual => "!=",
            };
            format!("{}{op}{}", swarm_attribute(&c.attribute), c.value)
        })
        .collect();
    let spread = placement
        .spread
        .iter()
        .filter(|a| **a != NodeAttribute::InstanceId)
        .map(swarm_attribute)
        .collect();
    (constraints, spread)
}

/// The `POST /services/create` body of a task listening on node port `port`.
pub(crate) fn service_spec(spec: &TaskSpec, instance: &str, port: Option<u16>) -> ServiceSpec {
    let c = &spec.container;
    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(LABEL_SERVICE.into(), spec.service.clone());
    labels.insert(LABEL_TASK.into(), spec.task_id.clone());
    labels.insert(LABEL_TASK_DEFINITION.into(), spec.task_definition.clone());
    labels.insert(LABEL_INSTANCE.into(), instance.to_owned());
    labels.insert(LABEL_CONTAINER.into(), c.name.clone());
    if let Some(port) = port {
        labels.insert(LABEL_HOST_PORT.into(), port.to_string());
    }

    // On the node's network the task listens on the port chosen for it, on
    // every address of the node (the data plane comes from another one).
    let mut env: Vec<(String, String)> = Vec::new();
    if let Some(port) = port {
        env.push(("PORT".into(), port.to_string()));
    }
    env.push(("HOST".into(), "0.0.0.0".into()));
    for (name, value) in &c.environment {
        if name == "PORT" && port.is_some() {
            continue;
        }
        env.retain(|(n, _)| n != name);
        env.push((name.clone(), value.clone()));
    }
    let env = env.into_iter().map(|(n, v)| format!("{n}={v}")).collect();

    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    let health_check = c.health_check.as_ref().map(|h| HealthConfig {
        test: Some(match &h.command {
            HealthCommand::Cmd(argv) => [vec!["CMD".to_owned()], argv.clone()].concat(),
            HealthCommand::Shell(script) => vec!["CMD-SHELL".into(), script.clone()],
        }),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(nanos(h.start_period)),
        ..HealthConfig::default()
    });
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let container = TaskSpecContainerSpec {
        image: c.image.clone(),
        labels: Some(labels.clone()),
        command: non_empty(&c.entry_point),
        args: non_empty(&c.command),
        env: Some(env),
        dir: c.working_directory.clone(),
        stop_signal: Some("SIGTERM".into()),
        stop_grace_period: Some(nanos(Duration::from_secs(stop_timeout_secs(
            c.stop_timeout,
        )))),
        health_check,
        init: Some(false),
        tty: Some(false),
        ..TaskSpecContainerSpec::default()
    };
    let limits = Limit {
        // 1024 units = 1 CPU, as ECS counts them.
        nano_cpus: c
            .cpu
            .filter(|&u| u > 0)
            .map(|u| i64::from(u) * 1_000_000_000 / 1024),
        memory_bytes: c
            .memory_mib
            .filter(|&m| m > 0)
            .map(|m| i64::from(m) * 1024 * 1024),
        pids: None,
    };
    let (constraints, spread) = swarm_placement(&spec.placement);
    let preferences = spread
        .iter()
        .map(|d| bollard::models::TaskSpecPlacementPreferences {
            spread: Some(bollard::models::TaskSpecPlacementSpread {
                spread_descriptor: Some(d.clone()),
            }),
        })
        .collect::<Vec<_>>();
    ServiceSpec {
        name: Some(service_name(&spec.task_id)),
        labels: Some(labels),
        task_template: Some(SwarmTaskSpec {
            container_spec: Some(container),
            resources: Some(TaskSpecResources {
                limits: Some(limits),
                ..TaskSpecResources::default()
            }),
            // Cutover replaces an ended task itself (see the module header).
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                max_attempts: Some(0),
                ..TaskSpecRestartPolicy::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: (!constraints.is_empty()).then_some(constraints),
                preferences: (!preferences.is_empty()).then_some(preferences),
                ..TaskSpecPlacement::default()
            }),
            // The node's own network: the task is reached at the node's
            // address and its port (the engines run without a bridge).
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some("host".into()),
                ..NetworkAttachmentConfig::default()
            }]),
            ..SwarmTaskSpec::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..ServiceSpecMode::default()
        }),
        ..ServiceSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_runtime::placement_types::NodeConstraint;
    use cutover_runtime::{ContainerSpec, HealthCheckSpec};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn spec() -> TaskSpec {
        TaskSpec {
            task_id: "0123456789abcdef0123456789abcdef".into(),
            service: "web".into(),
            task_definition: "web:3".into(),
            container: ContainerSpec {
                name: "web".into(),
                image: Some("cutover-sample:test".into()),
                entry_point: vec!["/cutover".into()],
                command: vec!["sample-app".into()],
                environment: vec![
                    ("PORT".into(), "8080".into()),
                    ("APP_VERSION".into(), "v2".into()),
                ],
                container_port: Some(8080),
                stop_timeout: Duration::from_millis(2500),
                cpu: Some(512),
                memory_mib: Some(64),
                health_check: Some(HealthCheckSpec {
                    command: HealthCommand::Shell(
                        "wget -q -O- http://127.0.0.1:$PORT/health".into(),
                    ),
                    interval: Duration::from_secs(1),
                    timeout: Duration::from_secs(2),
                    retries: 3,
                    start_period: Duration::ZERO,
                }),
                ..ContainerSpec::default()
            },
            labels: BTreeMap::new(),
            placement: TaskPlacement::default(),
        }
    }

    #[test]
    fn a_task_becomes_a_one_replica_service_on_the_node_network() {
        let mut spec = spec();
        spec.placement = TaskPlacement {
            constraints: vec![
                NodeConstraint {
                    attribute: NodeAttribute::Custom("zone".into()),
                    op: ConstraintOp::Equal,
                    value: "a".into(),
                },
                NodeConstraint {
                    attribute: NodeAttribute::OsType,
                    op: ConstraintOp::NotEqual,
                    value: "windows".into(),
                },
            ],
            spread: vec![
                NodeAttribute::Custom("zone".into()),
                NodeAttribute::InstanceId,
            ],
        };
        let body = serde_json::to_value(service_spec(&spec, "inst", Some(21001))).unwrap();
        assert_eq!(body["Name"], "cutover-0123456789abcdef0123456789abcdef");
        assert_eq!(body["Mode"]["Replicated"]["Replicas"], 1);
        assert_eq!(body["Labels"][LABEL_INSTANCE], "inst");
        assert_eq!(body["Labels"][LABEL_HOST_PORT], "21001");
        let t = &body["TaskTemplate"];
        let c = &t["ContainerSpec"];
        assert_eq!(c["Image"], "cutover-sample:test");
        assert_eq!(c["Command"], json!(["/cutover"]));
        assert_eq!(c["Args"], json!(["sample-app"]));
        assert_eq!(
            c["Env"],
            json!(["PORT=21001", "HOST=0.0.0.0", "APP_VERSION=v2"])
        );
        assert_eq!(c["StopGracePeriod"], 3_000_000_000_i64);
        assert_eq!(
            c["HealthCheck"]["Test"],
            json!(["CMD-SHELL", "wget -q -O- http://127.0.0.1:$PORT/health"])
        );
        assert_eq!(c["HealthCheck"]["Interval"], 1_000_000_000_i64);
        assert_eq!(c["HealthCheck"]["Retries"], 3);
        assert_eq!(t["Resources"]["Limits"]["NanoCPUs"], 500_000_000);
        assert_eq!(t["Resources"]["Limits"]["MemoryBytes"], 64 * 1024 * 1024);
        assert_eq!(t["RestartPolicy"]["Condition"], "none");
        assert_eq!(t["Networks"][0]["Target"], "host");
        assert_eq!(
            t["Placement"]["Constraints"],
            json!(["node.labels.zone==a", "node.platform.os!=windows"])
        );
        // Spreading over nodes is Swarm's own: no preference for it.
        assert_eq!(t["Placement"]["Preferences"].as_array().unwrap().len(), 1);
        assert_eq!(
            t["Placement"]["Preferences"][0]["Spread"]["SpreadDescriptor"],
            "node.labels.zone"
        );
    }

    #[test]
    fn service_names_are_dns_labels() {
        assert_eq!(service_name("a.b_c"), "cutover-a-b-c");
        let long = service_name(&"x".repeat(100));
        assert_eq!(long.len(), 63);
        assert_eq!(service_name("ab-"), "cutover-ab");
    }
}
