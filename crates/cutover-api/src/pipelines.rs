//! Pipelines (CodePipeline-style), their executions, and the push webhook.

use crate::services::Event;
use cutover_pipeline::engine::{
    ActionStatus, ExecutionKind, ExecutionStatus, RetryMode, StageStatus, Transition,
};
use cutover_pipeline::model::{ExecutionMode, Pipeline};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The newest execution of a pipeline, in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    /// Id.
    pub id: String,
    /// Status.
    #[schema(schema_with = crate::schema::execution_status)]
    pub status: ExecutionStatus,
    /// What started it.
    pub trigger: String,
    /// Unix ms.
    pub started_at: u64,
}

/// A pipeline in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSummary {
    /// Name.
    pub name: String,
    /// QUEUED, SUPERSEDED or PARALLEL.
    #[schema(schema_with = crate::schema::execution_mode)]
    pub execution_mode: ExecutionMode,
    /// Stage names in order.
    pub stages: Vec<String>,
    /// The newest execution.
    pub latest_execution: Option<ExecutionSummary>,
    /// Unix ms.
    pub updated_at: u64,
}

/// `GET /v1/pipelines`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineList {
    /// Every pipeline.
    pub pipelines: Vec<PipelineSummary>,
}

/// One action of a stage run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionView {
    /// Name.
    pub name: String,
    /// Status.
    #[schema(schema_with = crate::schema::action_status)]
    pub status: ActionStatus,
    /// From 1; bumped by a retry.
    pub attempt: u32,
    /// Unix ms.
    pub started_at: u64,
    /// Why it failed, or its summary.
    pub message: Option<String>,
}

/// One stage of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageView {
    /// Name.
    pub name: String,
    /// Status.
    #[schema(schema_with = crate::schema::stage_status)]
    pub status: StageStatus,
    /// Why it failed.
    pub message: Option<String>,
    /// Its actions that ran, in pipeline order.
    pub actions: Vec<ActionView>,
}

/// An execution, stages in pipeline order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionView {
    /// Id.
    pub id: String,
    /// Status.
    #[schema(schema_with = crate::schema::execution_status)]
    pub status: ExecutionStatus,
    /// `"Standard"` or `{"Rollback": {"failed", "target"}}`.
    #[schema(value_type = Object)]
    pub kind: ExecutionKind,
    /// What started it.
    pub trigger: String,
    /// Unix ms.
    pub started_at: u64,
    /// Unix ms.
    pub updated_at: u64,
    /// Source action name to commit.
    pub source_revisions: BTreeMap<String, String>,
    /// Pipeline variables.
    pub variables: BTreeMap<String, String>,
    /// Output variables by namespace.
    pub output_variables: BTreeMap<String, BTreeMap<String, String>>,
    /// Why it failed or stopped.
    pub message: Option<String>,
    /// The stages it reached.
    pub stages: Vec<StageView>,
}

/// `GET /v1/pipelines/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDescription {
    /// The definition.
    #[schema(value_type = Object)]
    pub pipeline: Pipeline,
    /// Disabled (or re-enabled) inbound transitions by stage.
    #[schema(value_type = Object)]
    pub transitions: BTreeMap<String, Transition>,
    /// The newest execution.
    pub latest_execution: Option<ExecutionView>,
    /// Latest events, newest first.
    pub events: Vec<Event>,
}

/// `GET /v1/pipelines/{name}/executions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionList {
    /// Newest first.
    pub executions: Vec<ExecutionView>,
}

/// `GET /v1/pipelines/{name}/executions/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionEnvelope {
    /// The execution.
    pub execution: ExecutionView,
}

/// Body of `POST /v1/pipelines/{name}/executions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartExecutionRequest {
    /// Pipeline variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Source action name to commit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_revisions: BTreeMap<String, String>,
    /// What started it (default `manual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// Answer of `POST /v1/pipelines/{name}/executions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartExecutionResponse {
    /// The new execution.
    pub execution_id: String,
}

/// Body of `POST …/executions/{id}/stop`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopExecutionRequest {
    /// Abandon in-flight actions instead of letting them finish.
    #[serde(default)]
    pub abandon: bool,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Answer of `POST …/executions/{id}/stop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopExecutionResponse {
    /// The execution.
    pub execution_id: String,
    /// Always true.
    pub stopping: bool,
}

/// Body of `POST …/executions/{id}/retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryStageRequest {
    /// The failed stage.
    pub stage: String,
    /// Which actions run again (default FAILED_ACTIONS).
    #[serde(default = "default_mode")]
    #[schema(schema_with = crate::schema::retry_mode)]
    pub mode: RetryMode,
}

fn default_mode() -> RetryMode {
    RetryMode::FailedActions
}

/// Answer of `POST …/executions/{id}/retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryStageResponse {
    /// The execution.
    pub execution_id: String,
    /// Always true.
    pub retried: bool,
}

/// Body of `POST /v1/pipelines/{name}/approvals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalRequest {
    /// The execution; default: the one whose approval is waiting there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The stage.
    pub stage: String,
    /// The approval action.
    pub action: String,
    /// Approve or reject.
    pub approved: bool,
    /// A comment.
    #[serde(default)]
    pub summary: String,
    /// Who (default `api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Answer of `POST /v1/pipelines/{name}/approvals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalResponse {
    /// The execution.
    pub execution_id: String,
    /// As asked.
    pub approved: bool,
}

/// Body of `PUT /v1/pipelines/{name}/transitions/{stage}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransitionRequest {
    /// Enable or disable.
    pub enabled: bool,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Answer of `PUT /v1/pipelines/{name}/transitions/{stage}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransitionResponse {
    /// The stage.
    pub stage: String,
    /// As asked.
    pub enabled: bool,
}

/// An execution a webhook push started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartedExecution {
    /// The pipeline.
    pub pipeline: String,
    /// The execution.
    pub execution_id: String,
}

/// Answer of `POST /v1/webhooks/{repository}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum WebhookResponse {
    /// An event Cutover does not act on (a ping, a pull request).
    #[serde(rename_all = "camelCase")]
    Ignored {
        /// `github`, `gitlab` or `gitea`.
        forge: String,
        /// The event's name.
        ignored: String,
    },
    /// A delivery id seen before: nothing started.
    #[serde(rename_all = "camelCase")]
    Duplicate {
        /// `github`, `gitlab` or `gitea`.
        forge: String,
        /// The delivery id.
        delivery: String,
        /// Always true.
        duplicate: bool,
        /// Why nothing started.
        message: String,
        /// Always empty.
        executions: Vec<StartedExecution>,
    },
    /// The ref was deleted: nothing to build.
    Deleted(RefDeleted),
    /// A push: the executions it started (none when no pipeline matched).
    #[serde(rename_all = "camelCase")]
    Pushed {
        /// `github`, `gitlab` or `gitea`.
        forge: String,
        /// The delivery id, when the forge sent one.
        delivery: Option<String>,
        /// The pushed commit.
        commit: Option<String>,
        /// Started executions.
        executions: Vec<StartedExecution>,
        /// Why nothing started, when so.
        message: Option<String>,
    },
}

/// The webhook answer to a push that deleted its ref.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefDeleted {
    /// `github`, `gitlab` or `gitea`.
    pub forge: String,
    /// Always empty.
    pub executions: Vec<StartedExecution>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_webhook_answer_reads_back_as_its_own_shape() {
        let answers = [
            json!({"forge": "github", "ignored": "ping"}),
            json!({"forge": "gitea", "delivery": "d1", "duplicate": true,
                   "message": "this delivery was already received; nothing started", "executions": []}),
            json!({"forge": "gitlab", "executions": []}),
            json!({"forge": "github", "delivery": null, "commit": "abc", "message": null,
                   "executions": [{"pipeline": "app", "executionId": "e1"}]}),
        ];
        let shapes: Vec<&str> = answers
            .iter()
            .map(|a| {
                let typed: WebhookResponse = serde_json::from_value(a.clone()).unwrap();
                assert_eq!(&serde_json::to_value(&typed).unwrap(), a);
                match typed {
                    WebhookResponse::Ignored { .. } => "ignored",
                    WebhookResponse::Duplicate { .. } => "duplicate",
                    WebhookResponse::Deleted(_) => "deleted",
                    WebhookResponse::Pushed { .. } => "pushed",
                }
            })
            .collect();
        assert_eq!(shapes, ["ignored", "duplicate", "deleted", "pushed"]);
    }
}
