//! The pure half of the Swarm runtime: a Cutover task as a Swarm service
//! spec, and a Swarm task (from the task list) as a task status.
//!
//! One Cutover task is one Swarm service of one replica with restart
//! condition `none`: Swarm places it (constraints, spread) and runs it on a
//! node, Cutover owns its life. When its Swarm task ends (the process
//! exited, the node was drained or lost) the Cutover task has exited, and
//! the controller starts a replacement through the ordinary path, which
//! registers it only after its health check passes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bollard::models::{
    HealthConfig, Limit, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, Task, TaskSpec as SwarmTaskSpec, TaskSpecContainerSpec,
    TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use cutover_runtime::placement_types::{ConstraintOp, NodeAttribute};
use cutover_runtime::{
    ExitInfo, HealthCommand, Placement as TaskPlacement, REASON_CANNOT_START, REASON_EXITED,
    REASON_STOPPED, TaskHandle, TaskSpec,
};
use serde_json::json;

use crate::container::{
    LABEL_CONTAINER, LABEL_HOST_PORT, LABEL_INSTANCE, LABEL_SERVICE, LABEL_TASK,
    LABEL_TASK_DEFINITION, parse_time_ms, stop_timeout_secs,
};

/// Stop reason of a task Swarm shut down without Cutover asking: its node
/// was drained, left the swarm or stopped answering.
pub const REASON_SWARM_MOVED: &str =
    "TaskLost: Swarm shut the task down (its node was drained or lost)";

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

/// Where a Swarm task stands, for the runtime.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Phase {
    /// Not on a node yet, or being prepared there (pulling, creating).
    Placing {
        /// Swarm's words for why it waits ("no suitable node ...").
        message: String,
    },
    /// Its container was started on the node (health pending or passed).
    Started {
        /// The container's health check passed, or there is none.
        healthy: bool,
    },
    /// It ended.
    Ended,
}

/// The phase of a Swarm task.
pub(crate) fn phase(task: &Task) -> Phase {
    let status = task.status.clone().unwrap_or_default();
    match status.state.unwrap_or(TaskState::NEW) {
        TaskState::NEW
        | TaskState::ALLOCATED
        | TaskState::PENDING
        | TaskState::ASSIGNED
        | TaskState::ACCEPTED
        | TaskState::PREPARING
        | TaskState::READY => Phase::Placing {
            message: status
                .err
                .filter(|e| !e.is_empty())
                .or(status.message)
                .unwrap_or_default(),
        },
        // Swarm holds a task with a health check in STARTING until the
        // check passes, and fails it when the check fails.
        TaskState::STARTING => Phase::Started { healthy: false },
        TaskState::RUNNING => Phase::Started { healthy: true },
        TaskState::COMPLETE
        | TaskState::SHUTDOWN
        | TaskState::FAILED
        | TaskState::REJECTED
        | TaskState::REMOVE
        | TaskState::ORPHANED => Phase::Ended,
    }
}

/// Whether Swarm wants the task gone (desired state past `running`) while
/// it has not ended yet: a drain, or a node Swarm declared down.
pub(crate) fn leaving(task: &Task) -> bool {
    task.desired_state.is_some_and(|d| {
        matches!(
            d,
            TaskState::SHUTDOWN | TaskState::REMOVE | TaskState::ORPHANED | TaskState::COMPLETE
        )
    }) && phase(task) != Phase::Ended
}

/// The exit of a task Swarm is taking away.
pub(crate) fn moved_exit(task: &Task) -> ExitInfo {
    let status = task.status.clone().unwrap_or_default();
    ExitInfo {
        exit_code: None,
        signal: None,
        oom_killed: false,
        reason: REASON_SWARM_MOVED.to_owned(),
        finished_at_unix_ms: parse_time_ms(status.timestamp.as_deref())
            .unwrap_or_else(crate::container::now_ms),
    }
}

/// The Swarm task that is the Cutover task: the service's first. With
/// restart condition `none` there is normally one; a replacement Swarm may
/// still make (a drained node) is not the Cutover task.
pub(crate) fn first_task(mut tasks: Vec<Task>) -> Option<Task> {
    tasks.sort_by(|a, b| {
        (a.created_at.as_deref(), a.id.as_deref()).cmp(&(b.created_at.as_deref(), b.id.as_deref()))
    });
    tasks.into_iter().next()
}

/// The handle of a started task on a node at `node_addr`.
pub(crate) fn handle(
    task_id: &str,
    task: &Task,
    port: Option<u16>,
    node_addr: Option<std::net::IpAddr>,
    engine: &str,
) -> TaskHandle {
    let status = task.status.clone().unwrap_or_default();
    let container = status.container_status.unwrap_or_default();
    TaskHandle {
        task_id: task_id.to_owned(),
        runtime: "swarm".into(),
        endpoint: match (node_addr, port) {
            (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
            _ => None,
        },
        // The pid is of another node's namespace: not ours to signal.
        pid: None,
        started_at_unix_ms: parse_time_ms(status.timestamp.as_deref()).unwrap_or(0),
        detail: json!({
            "swarmService": service_name(task_id),
            "swarmTask": task.id,
            "node": task.node_id,
            "nodeAddr": node_addr.map(|a| a.to_string()),
            "containerId": container.container_id,
            "engine": engine,
        }),
    }
}

/// How an ended Swarm task ended; `stopped` says Cutover asked for it.
pub(crate) fn exit_info(task: &Task, stopped: bool) -> ExitInfo {
    let status = task.status.clone().unwrap_or_default();
    let container = status.container_status.clone().unwrap_or_default();
    let finished =
        parse_time_ms(status.timestamp.as_deref()).unwrap_or_else(crate::container::now_ms);
    let err = status.err.clone().unwrap_or_default();
    let ran = container
        .container_id
        .as_deref()
        .is_some_and(|c| !c.is_empty());
    if !ran && !stopped {
        return ExitInfo {
            exit_code: None,
            signal: None,
            oom_killed: false,
            reason: format!(
                "{REASON_CANNOT_START}: {}",
                if err.is_empty() {
                    "the task never started"
                } else {
                    &err
                }
            ),
            finished_at_unix_ms: finished,
        };
    }
    let exit_code = container.exit_code.and_then(|c| i32::try_from(c).ok());
    let signal = exit_code
        .filter(|c| (129..=192).contains(c))
        .map(|c| c - 128);
    // SHUTDOWN is reached only when Swarm asked the task to stop (a drain),
    // ORPHANED when its node stopped answering; FAILED and COMPLETE are
    // exits of the container itself.
    let moved = matches!(
        status.state,
        Some(TaskState::SHUTDOWN | TaskState::ORPHANED | TaskState::REMOVE)
    );
    let reason = if stopped {
        REASON_STOPPED.to_owned()
    } else if moved {
        REASON_SWARM_MOVED.to_owned()
    } else if !err.is_empty() {
        format!("{REASON_EXITED}: {err}")
    } else {
        REASON_EXITED.to_owned()
    };
    ExitInfo {
        exit_code,
        signal,
        oom_killed: false,
        reason,
        finished_at_unix_ms: finished,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_runtime::placement_types::NodeConstraint;
    use cutover_runtime::{ContainerSpec, HealthCheckSpec};
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

    fn task(state: &str, desired: &str, container: Option<(&str, i64)>, err: &str) -> Task {
        serde_json::from_value(json!({
            "ID": "t1", "CreatedAt": "2026-01-01T00:00:00Z", "NodeID": "n1",
            "DesiredState": desired,
            "Status": {"Timestamp": "2026-01-01T00:00:05Z", "State": state, "Err": err,
                       "Message": "msg",
                       "ContainerStatus": container.map(|(id, code)| json!({"ContainerID": id, "ExitCode": code}))}
        }))
        .unwrap()
    }

    #[test]
    fn swarm_states_become_phases_and_exits() {
        assert_eq!(
            phase(&task("pending", "running", None, "no suitable node")),
            Phase::Placing {
                message: "no suitable node".into()
            }
        );
        assert_eq!(
            phase(&task("starting", "running", Some(("c", 0)), "")),
            Phase::Started { healthy: false }
        );
        assert_eq!(
            phase(&task("running", "running", Some(("c", 0)), "")),
            Phase::Started { healthy: true }
        );
        assert_eq!(
            phase(&task(
                "failed",
                "shutdown",
                Some(("c", 3)),
                "task: non-zero exit (3)"
            )),
            Phase::Ended
        );

        let e = exit_info(
            &task(
                "failed",
                "shutdown",
                Some(("c", 3)),
                "task: non-zero exit (3)",
            ),
            false,
        );
        assert_eq!(e.exit_code, Some(3));
        assert!(e.reason.starts_with(REASON_EXITED), "{}", e.reason);
        let e = exit_info(&task("shutdown", "shutdown", Some(("c", 143)), ""), true);
        assert_eq!((e.exit_code, e.signal), (Some(143), Some(15)));
        assert_eq!(e.reason, REASON_STOPPED);
        let e = exit_info(&task("shutdown", "shutdown", Some(("c", 143)), ""), false);
        assert_eq!(e.reason, REASON_SWARM_MOVED);
        let e = exit_info(
            &task("rejected", "shutdown", None, "No such image: x"),
            false,
        );
        assert_eq!(e.exit_code, None);
        assert!(
            e.reason
                .starts_with("CannotStartContainerError: No such image"),
            "{}",
            e.reason
        );
        assert_eq!(e.finished_at_unix_ms, 1_767_225_605_000);
    }

    #[test]
    fn a_running_task_swarm_wants_gone_is_leaving() {
        assert!(leaving(&task("running", "shutdown", Some(("c", 0)), "")));
        assert!(!leaving(&task("running", "running", Some(("c", 0)), "")));
        assert!(!leaving(&task("shutdown", "shutdown", Some(("c", 0)), "")));
        assert_eq!(
            moved_exit(&task("running", "shutdown", None, "")).reason,
            REASON_SWARM_MOVED
        );
    }

    #[test]
    fn the_first_task_is_the_cutover_task() {
        let mut a = task("shutdown", "shutdown", Some(("c", 0)), "");
        a.created_at = Some("2026-01-01T00:00:00Z".into());
        let mut b = task("running", "running", Some(("d", 0)), "");
        b.id = Some("t2".into());
        b.created_at = Some("2026-01-01T00:01:00Z".into());
        assert_eq!(first_task(vec![b, a]).unwrap().id.as_deref(), Some("t1"));
    }
}
