//! Task lifecycle states, named and ordered as ECS names them.
//!
//! A task moves forward only: PROVISIONING -> PENDING -> RUNNING -> STOPPING
//! -> STOPPED (any state may jump to STOPPING or STOPPED). The guards here are
//! the single place that decides which transitions are legal.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The last observed status of a task, as ECS reports `lastStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Recorded in the store; the runtime has not been asked yet.
    Provisioning,
    /// The runtime was asked to start it; not yet confirmed running.
    Pending,
    /// The process or container runs.
    Running,
    /// Asked to stop; waiting for it to exit.
    Stopping,
    /// Exited; kept for history.
    Stopped,
}

impl TaskState {
    /// All states, in lifecycle order.
    pub const ALL: [TaskState; 5] = [
        TaskState::Provisioning,
        TaskState::Pending,
        TaskState::Running,
        TaskState::Stopping,
        TaskState::Stopped,
    ];

    /// The upper-case name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Provisioning => "PROVISIONING",
            TaskState::Pending => "PENDING",
            TaskState::Running => "RUNNING",
            TaskState::Stopping => "STOPPING",
            TaskState::Stopped => "STOPPED",
        }
    }

    /// Whether the lifecycle may move from `self` to `next`.
    pub fn can_become(self, next: TaskState) -> bool {
        use TaskState::*;
        match (self, next) {
            (Stopped, _) => false,
            (_, Stopped) | (_, Stopping) => self != Stopping || next == Stopped,
            (a, b) => b > a,
        }
    }

    /// Whether the task still counts towards a service's running set.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TaskState::Provisioning | TaskState::Pending | TaskState::Running
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a state name that is not one of [`TaskState::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown task state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for TaskState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// What the control plane wants of a task, as ECS reports `desiredStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    /// It should run.
    Running,
    /// It should stop (or has).
    Stopped,
}

impl DesiredStatus {
    /// The upper-case name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredStatus::Running => "RUNNING",
            DesiredStatus::Stopped => "STOPPED",
        }
    }
}

impl FromStr for DesiredStatus {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RUNNING" => Ok(DesiredStatus::Running),
            "STOPPED" => Ok(DesiredStatus::Stopped),
            _ => Err(UnknownState(s.to_string())),
        }
    }
}

impl fmt::Display for DesiredStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Container health as ECS reports `healthStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// No verdict yet (start period, or no health check defined).
    Unknown,
    /// The last check passed.
    Healthy,
    /// `retries` consecutive checks failed after the start period.
    Unhealthy,
}

impl HealthStatus {
    /// The upper-case name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "UNKNOWN",
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Unhealthy => "UNHEALTHY",
        }
    }
}

impl FromStr for HealthStatus {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "UNKNOWN" => Ok(HealthStatus::Unknown),
            "HEALTHY" => Ok(HealthStatus::Healthy),
            "UNHEALTHY" => Ok(HealthStatus::Unhealthy),
            _ => Err(UnknownState(s.to_string())),
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A started task, as a runtime reports it and the control plane records
/// it (the `handle` of a stored task, used for adoption after a restart).
///
/// Defined here, not in `cutover-runtime`, so that the store and the API
/// (which must not depend on an adapter) carry it as this type; the
/// runtime crate re-exports it. Its JSON is the one stored since the first
/// release (a task row's `handle` column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskHandle {
    /// Id of the task.
    pub task_id: String,
    /// Name of the runtime that runs it ("process", "docker").
    pub runtime: String,
    /// Where the task serves its container port, if it has one.
    pub endpoint: Option<std::net::SocketAddr>,
    /// Host pid of the task's main process, when known.
    pub pid: Option<u32>,
    /// When the task's process started (Unix epoch, milliseconds).
    pub started_at_unix_ms: u64,
    /// Runtime-specific details (paths, image digest, warnings): each
    /// runtime's own object, shown to users and never read back.
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_only_moves_forward() {
        use TaskState::*;
        assert!(Provisioning.can_become(Pending));
        assert!(Pending.can_become(Running));
        assert!(Running.can_become(Stopping));
        assert!(Stopping.can_become(Stopped));
        assert!(Provisioning.can_become(Stopped));
        assert!(!Running.can_become(Pending));
        assert!(!Stopped.can_become(Running));
        assert!(!Stopped.can_become(Stopped));
        assert!(!Stopping.can_become(Running));
        assert!(!Stopping.can_become(Stopping));
    }

    #[test]
    fn names_round_trip() {
        for st in TaskState::ALL {
            assert_eq!(st.as_str().parse::<TaskState>().unwrap(), st);
        }
        assert!("RUNNIN".parse::<TaskState>().is_err());
        for h in [
            HealthStatus::Unknown,
            HealthStatus::Healthy,
            HealthStatus::Unhealthy,
        ] {
            assert_eq!(h.as_str().parse::<HealthStatus>().unwrap(), h);
        }
    }
}
