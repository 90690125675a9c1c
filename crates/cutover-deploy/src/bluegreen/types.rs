//! The vocabulary of the blue/green engine: the inputs the driver feeds in,
//! the effects it must execute, and the statuses and records it can show.

use serde::{Deserialize, Serialize};

use crate::config::LifecycleEvent;
use crate::time::Millis;

/// Default delay before re-invoking a hook that answered `IN_PROGRESS`.
pub const DEFAULT_CALLBACK_DELAY_MS: Millis = 30_000;

/// The state of a deployment as CodeDeploy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    /// Created, not started.
    Created,
    /// Waiting for another deployment of the same group to finish.
    Queued,
    /// Running the lifecycle events.
    InProgress,
    /// All traffic on green; blue kept for the termination wait.
    Baking,
    /// Green validated; waiting for a manual continue before rerouting.
    Ready,
    /// Done; blue removed.
    Succeeded,
    /// A lifecycle event failed.
    Failed,
    /// Stopped by an alarm, a request or the ready timeout.
    Stopped,
}

impl DeploymentStatus {
    /// Whether the status is final (the engine may still be flipping traffic
    /// back; see [`crate::bluegreen::BlueGreen::is_terminal`]).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Stopped)
    }
}

/// The status of one lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventStatus {
    /// Not reached yet.
    Pending,
    /// Running.
    InProgress,
    /// Done.
    Succeeded,
    /// Failed, or interrupted by a stop (the message says which).
    Failed,
    /// Not applicable (`AllowTestTraffic` without a test listener).
    Skipped,
}

/// History of one lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEventRecord {
    /// The event.
    pub event: LifecycleEvent,
    /// Its status.
    pub status: EventStatus,
    /// When it started.
    pub started_at: Option<Millis>,
    /// When it ended.
    pub ended_at: Option<Millis>,
    /// Why it failed, was skipped, or how it succeeded.
    pub message: Option<String>,
}

/// A traffic change sent to the proxy and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTraffic {
    /// Id of the latest `ApplyTraffic` effect for this split.
    pub request_id: u64,
    /// Id of the first `ApplyTraffic` of this same split: a retry or a
    /// re-issue after a restart keeps it, and an acknowledgement of any id
    /// from here to `request_id` confirms the split (no other split was
    /// issued in between).
    pub first_request_id: u64,
    /// Intended green share of production traffic.
    pub prod_green_percent: u8,
    /// Intended target of the test listener.
    pub test_on_green: bool,
    /// When the request was issued.
    pub issued_at: Millis,
    /// How many times this split was issued without an acknowledgement.
    pub attempt: u32,
    /// Set when attempt `attempt` failed: nothing is in flight, and the
    /// split is issued again at this time. Until then it counts as in
    /// flight (the schedule waits, an ending does not flip yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Millis>,
}

/// The traffic split as far as the proxy acknowledged it, plus the change in
/// flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TrafficState {
    /// Acknowledged green share of production traffic.
    pub prod_green_percent: u8,
    /// Acknowledged: the test listener routes to green.
    pub test_on_green: bool,
    /// The change in flight, if any.
    pub pending: Option<PendingTraffic>,
}

/// The status a CodeDeploy-protocol hook reports back
/// (PutLifecycleEventHookExecutionStatus): of CodeDeploy's
/// `LifecycleEventStatus` values, only these two are a hook's to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookStatus {
    /// The hook's checks passed.
    Succeeded,
    /// The hook's checks failed: the deployment fails.
    Failed,
}

/// What a hook reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookOutcome {
    /// `Succeeded` / `SUCCEEDED`.
    Succeeded,
    /// `Failed` / `FAILED`, with the hook's reason.
    Failed {
        /// Why the hook failed.
        reason: String,
    },
    /// `IN_PROGRESS` (ECS-native protocol): call again after the delay,
    /// passing `details` back.
    InProgress {
        /// `callBackDelay`; [`DEFAULT_CALLBACK_DELAY_MS`] when absent.
        callback_delay_ms: Option<Millis>,
        /// `hookDetails`, handed to the next invocation.
        details: Option<String>,
    },
}

/// Something that happened, fed to [`crate::bluegreen::BlueGreen::handle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Another deployment holds the group: move from `Created` to `Queued`.
    Enqueue,
    /// Begin the lifecycle (from `Created` or `Queued`).
    Start,
    /// Time passed; handle whatever is due.
    Tick,
    /// All green tasks are registered and healthy.
    GreenReady,
    /// Green could not be provisioned, or failed afterwards.
    GreenFailed {
        /// What went wrong.
        reason: String,
    },
    /// A hook invocation reported back.
    HookResult {
        /// The id from [`Effect::InvokeHook`].
        execution_id: String,
        /// What it reported.
        outcome: HookOutcome,
    },
    /// The proxy applied an [`Effect::ApplyTraffic`].
    TrafficApplied {
        /// Its request id.
        request_id: u64,
    },
    /// The proxy could not apply an [`Effect::ApplyTraffic`].
    TrafficFailed {
        /// Its request id.
        request_id: u64,
        /// Why.
        reason: String,
    },
    /// An alarm entered the ALARM state (ignored unless the spec names it).
    AlarmFired {
        /// The alarm's name.
        alarm: String,
    },
    /// `StopDeployment`. `rollback: None` follows
    /// [`crate::config::AutoRollback::on_request`].
    Stop {
        /// `autoRollbackEnabled`.
        rollback: Option<bool>,
    },
    /// `ContinueDeployment`: reroute from `Ready`, or end the termination
    /// wait early in `Baking`.
    Continue,
    /// Stop and flip all traffic back to blue now (any non-final state).
    Rollback,
}

/// Something the driver must do. Persist the engine's state first, then
/// execute; every effect is safe to execute twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Create the green task set (idempotent: reuse it if it exists) and
    /// report [`Input::GreenReady`] or [`Input::GreenFailed`].
    ProvisionGreen,
    /// Invoke the hook of `event`; report [`Input::HookResult`] with
    /// `execution_id`.
    InvokeHook {
        /// The lifecycle event.
        event: LifecycleEvent,
        /// Unique id of this invocation: `{deployment_id}:{event}:{attempt}`.
        execution_id: String,
        /// 1 for the first invocation of the event, then 2, 3, ...
        attempt: u32,
        /// `hookDetails` from the previous `IN_PROGRESS` answer.
        details: Option<String>,
    },
    /// Set the proxy's split to exactly these values (absolute) and report
    /// [`Input::TrafficApplied`] or [`Input::TrafficFailed`]. Request ids
    /// strictly increase; the proxy should ignore a request older than one it
    /// already applied.
    ApplyTraffic {
        /// Id to acknowledge.
        request_id: u64,
        /// Green share of production traffic.
        prod_green_percent: u8,
        /// Whether the test listener routes to green.
        test_on_green: bool,
    },
    /// Deregister and stop the green task set.
    TeardownGreen,
    /// Deregister and stop the blue task set.
    TeardownBlue,
    /// The deployment ended.
    Finished {
        /// `Succeeded`, `Failed` or `Stopped`.
        status: DeploymentStatus,
        /// Whether traffic was rolled back to blue per the rollback policy.
        rollback: bool,
        /// Why it failed or stopped.
        reason: Option<String>,
    },
    /// A line for the deployment's history.
    Event {
        /// Human-readable, lower case.
        message: String,
    },
}

/// How a deployment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `Succeeded`, `Failed` or `Stopped`.
    pub status: DeploymentStatus,
    /// Whether the rollback policy applied (traffic back on blue, green removed).
    pub rollback: bool,
    /// Why it failed or stopped.
    pub reason: Option<String>,
    /// When the engine emitted [`Effect::Finished`].
    pub finished_at: Millis,
}
