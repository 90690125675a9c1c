//! A Swarm task (from the task list) as a Cutover task's status (pure).
//!
//! The Cutover task is its service's first Swarm task. When that task ends
//! (the process exited, the node was drained or lost) the Cutover task has
//! exited, and the controller starts a replacement through the ordinary
//! path, which registers it only after its health check passes.

use std::net::SocketAddr;

use bollard::models::{Task, TaskState};
use cutover_runtime::{ExitInfo, REASON_CANNOT_START, REASON_EXITED, REASON_STOPPED, TaskHandle};
use serde_json::json;

use super::spec::service_name;
use crate::container::parse_time_ms;

/// Stop reason of a task Swarm shut down without Cutover asking: its node
/// was drained, left the swarm or stopped answering.
pub const REASON_SWARM_MOVED: &str =
    "TaskLost: Swarm shut the task down (its node was drained or lost)";

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
