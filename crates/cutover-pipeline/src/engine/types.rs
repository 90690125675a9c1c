//! The engine's vocabulary: statuses as AWS names them, the inputs the
//! driver feeds in, the effects it carries out, and the recorded state of an
//! execution, its stages and actions (all serializable).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Unix time in milliseconds.
pub type Millis = u64;

/// A stored artifact: the content digest the driver gave for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ArtifactRef(pub String);

/// Status of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    /// Running or waiting between stages.
    InProgress,
    /// Stop requested: in-flight actions finish, nothing new starts.
    Stopping,
    /// Stopped by request.
    Stopped,
    /// Every stage succeeded.
    Succeeded,
    /// Overtaken by a newer execution while waiting between stages.
    Superseded,
    /// A stage failed.
    Failed,
}

impl ExecutionStatus {
    /// Whether nothing more happens to the execution (a failed or stopped
    /// one may still be retried).
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            ExecutionStatus::InProgress | ExecutionStatus::Stopping
        )
    }
}

/// Status of one stage in one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageStatus {
    /// Actions running.
    InProgress,
    /// Every action succeeded.
    Succeeded,
    /// An action failed, or an entry condition failed.
    Failed,
    /// The execution was stopped in this stage.
    Stopped,
    /// An entry condition with result SKIP did not pass.
    Skipped,
}

/// Status of one action in one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionStatus {
    /// Running (or waiting for an approval).
    InProgress,
    /// Done.
    Succeeded,
    /// Failed, rejected or timed out.
    Failed,
    /// Left running when the execution was stopped and abandoned.
    Abandoned,
}

pub use crate::model::RetryMode;

/// How an execution came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionKind {
    /// Started by a trigger, a person or an API call.
    Standard,
    /// Emitted by the engine when a stage with `onFailure: ROLLBACK` failed:
    /// runs that one stage with the artifacts of its last successful execution.
    Rollback {
        /// The execution whose failure caused it.
        failed: String,
        /// The execution whose artifacts it redeploys.
        target: String,
    },
}

/// What the driver tells the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// Start an execution.
    StartExecution {
        /// A new, unique execution id (the driver makes it).
        id: String,
        /// Free text for history: "push to main by alice", "manual".
        trigger: String,
        /// Overrides of pipeline variables (each must be declared).
        variables: BTreeMap<String, String>,
        /// Source revisions to fetch, by source action name (e.g. the commit a
        /// webhook named); absent: the head of the configured branch.
        source_revisions: BTreeMap<String, String>,
    },
    /// An action finished well.
    ActionSucceeded {
        /// Execution id.
        execution: String,
        /// Stage name.
        stage: String,
        /// Action name.
        action: String,
        /// The attempt from [`ActionRequest::attempt`].
        attempt: u32,
        /// Output variables, published under the action's namespace.
        output_variables: BTreeMap<String, String>,
        /// The declared output artifacts, stored.
        output_artifacts: BTreeMap<String, ArtifactRef>,
        /// Free text for history.
        summary: Option<String>,
    },
    /// An action failed.
    ActionFailed {
        /// Execution id.
        execution: String,
        /// Stage name.
        stage: String,
        /// Action name.
        action: String,
        /// The attempt from [`ActionRequest::attempt`].
        attempt: u32,
        /// Why.
        message: String,
    },
    /// A person answered a manual approval.
    ApprovalResult {
        /// Execution id.
        execution: String,
        /// Stage name.
        stage: String,
        /// Action name.
        action: String,
        /// Approved or rejected.
        approved: bool,
        /// Their comment.
        summary: String,
        /// Who.
        by: String,
    },
    /// Stop an execution: let in-flight actions finish, or abandon them.
    Stop {
        /// Execution id.
        execution: String,
        /// Abandon in-flight actions (Stop and abandon) instead of waiting.
        abandon: bool,
        /// Why, for history.
        reason: String,
    },
    /// Retry the stage a failed or stopped execution ended in.
    RetryStage {
        /// Execution id.
        execution: String,
        /// Stage name.
        stage: String,
        /// Which actions run again.
        mode: RetryMode,
    },
    /// Enable or disable the inbound transition of a stage.
    SetTransition {
        /// Stage name.
        stage: String,
        /// Enabled or disabled.
        enabled: bool,
        /// Why, for history.
        reason: String,
    },
    /// Time passed (approval timeouts, deployment windows).
    Tick,
}

/// One action to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Execution id.
    pub execution: String,
    /// Stage name.
    pub stage: String,
    /// Action name.
    pub action: String,
    /// 1 for the first run, +1 per retry.
    pub attempt: u32,
    /// `actionTypeId.category`.
    pub category: String,
    /// `actionTypeId.provider`.
    pub provider: String,
    /// The configuration with every variable substituted.
    pub configuration: BTreeMap<String, String>,
    /// The input artifacts, in declaration order.
    pub input_artifacts: Vec<(String, ArtifactRef)>,
    /// The artifacts the action must produce.
    pub output_artifact_names: Vec<String>,
    /// The namespace its output variables go to.
    pub namespace: Option<String>,
    /// For a source action: the revision to fetch (else the branch head).
    pub source_revision: Option<String>,
    /// For a manual approval: when it times out.
    pub deadline: Option<Millis>,
}

/// What the engine asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Run an action (or, for a manual approval, ask for one) and report
    /// back with `ActionSucceeded`/`ActionFailed` (`ApprovalResult`).
    RunAction(ActionRequest),
    /// Cancel an abandoned action if possible; its result will be ignored.
    CancelAction {
        /// Execution id.
        execution: String,
        /// Stage name.
        stage: String,
        /// Action name.
        action: String,
        /// Attempt.
        attempt: u32,
    },
    /// The engine created an execution (a rollback).
    ExecutionStarted {
        /// Its id.
        execution: String,
        /// Why.
        kind: ExecutionKind,
    },
    /// An execution ended (or a retry can still revive a failed or stopped one).
    ExecutionFinished {
        /// Its id.
        execution: String,
        /// Succeeded, Failed, Stopped or Superseded.
        status: ExecutionStatus,
        /// Why, when it did not succeed.
        message: Option<String>,
    },
    /// A history line.
    Event {
        /// The execution concerned, if one.
        execution: Option<String>,
        /// What happened.
        message: String,
    },
}

/// Where an execution is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// Waiting to enter a stage: its transition is disabled, another
    /// execution holds it, or its deployment window is closed.
    Waiting {
        /// Stage index.
        stage: usize,
        /// When the engine should look again (a window opening).
        wakeup: Option<Millis>,
    },
    /// In a stage (running, or where it failed or stopped).
    InStage {
        /// Stage index.
        stage: usize,
    },
    /// Past the last stage.
    Done,
}

/// One execution of the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Id given at start (or `{failed}-rollback` for a rollback).
    pub id: String,
    /// Start order among the pipeline's executions.
    pub seq: u64,
    /// Status.
    pub status: ExecutionStatus,
    /// Standard or rollback.
    pub kind: ExecutionKind,
    /// Free text from the start.
    pub trigger: String,
    /// When it started.
    pub started_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// Pipeline variables after overrides.
    pub variables: BTreeMap<String, String>,
    /// Source revisions by source action (requested at start, then the
    /// `CommitId` each source reported).
    pub source_revisions: BTreeMap<String, String>,
    /// Artifacts produced so far, by name.
    pub artifacts: BTreeMap<String, ArtifactRef>,
    /// Output variables published so far, by namespace.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Where it is.
    pub position: Position,
    /// Stage runs, by stage name.
    pub stages: BTreeMap<String, StageRun>,
    /// Why it failed or stopped.
    pub message: Option<String>,
}

/// One stage in one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRun {
    /// Status.
    pub status: StageStatus,
    /// Actions started in the current attempt, by name.
    pub actions: BTreeMap<String, ActionRun>,
    /// Attempts so far, by action name.
    pub attempts: BTreeMap<String, u32>,
    /// Automatic retries made so far (`onFailure.result: RETRY`; at most
    /// one, as in AWS).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub auto_retries: u32,
    /// Why it failed, stopped or was skipped.
    pub message: Option<String>,
}

/// One action in one execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRun {
    /// Status.
    pub status: ActionStatus,
    /// What was asked of the driver (re-issued by `resume`); `None` when the
    /// action failed before it could be asked (an unresolved variable).
    pub request: Option<ActionRequest>,
    /// When it started.
    pub started_at: Millis,
    /// Why it failed; or the summary it succeeded with.
    pub message: Option<String>,
}

/// A stage's inbound transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Whether executions may enter.
    pub enabled: bool,
    /// Why it was last changed.
    pub reason: String,
}

/// What a stage's last successful run used, for `onFailure: ROLLBACK`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSnapshot {
    /// The execution.
    pub execution: String,
    /// Its pipeline variables.
    pub variables: BTreeMap<String, String>,
    /// Its source revisions.
    pub source_revisions: BTreeMap<String, String>,
    /// The artifacts available when it entered the stage.
    pub artifacts: BTreeMap<String, ArtifactRef>,
    /// The variables available when it entered the stage.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

/// An input the engine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No such execution.
    #[error("execution \"{0}\" not found")]
    UnknownExecution(String),
    /// The id is taken.
    #[error("execution \"{0}\" already exists")]
    DuplicateExecution(String),
    /// No such stage.
    #[error("stage \"{0}\" not found")]
    UnknownStage(String),
    /// A variable override that the pipeline does not declare.
    #[error("variable \"{0}\" is not declared by the pipeline")]
    UnknownVariable(String),
    /// No such pending approval.
    #[error(
        "no approval \"{action}\" is waiting in stage \"{stage}\" of execution \"{execution}\""
    )]
    NoPendingApproval {
        /// Execution id.
        execution: String,
        /// Stage name.
        stage: String,
        /// Action name.
        action: String,
    },
    /// The execution is over.
    #[error("execution \"{execution}\" is already {status:?}")]
    Finished {
        /// Execution id.
        execution: String,
        /// Its status.
        status: ExecutionStatus,
    },
    /// The stage cannot be retried now.
    #[error("cannot retry stage \"{stage}\" of execution \"{execution}\": {reason}")]
    NotRetryable {
        /// Execution id.
        execution: String,
        /// Stage name.
        stage: String,
        /// Why.
        reason: String,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
