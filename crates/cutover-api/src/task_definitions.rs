//! Task definitions.

use cutover_spec::diag::Diagnostic;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /v1/task-definitions`: the file as the user has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterTaskDefinitionRequest {
    /// File name, for error messages (default `taskdef.json`).
    #[serde(default = "default_file")]
    pub file: String,
    /// The file's text.
    pub content: String,
}

fn default_file() -> String {
    "taskdef.json".into()
}

/// A task definition revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    /// `family:revision`.
    pub name: String,
    /// Family.
    pub family: String,
    /// Revision, from 1.
    pub revision: u32,
    /// Unix ms.
    pub registered_at: u64,
    /// Digest of the canonical JSON.
    pub digest: String,
    /// The task definition as ECS's JSON (register and describe only);
    /// untyped until the stored row is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// Answer of `POST /v1/task-definitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterTaskDefinitionResponse {
    /// The revision (new, or the newest when identical).
    pub task_definition: TaskDefinition,
    /// Whether a new revision was created.
    pub created: bool,
    /// Warnings about the file.
    #[schema(value_type = Vec<crate::schema::DiagnosticSchema>)]
    pub warnings: Vec<Diagnostic>,
}

/// `GET /v1/task-definitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionList {
    /// Revisions, without bodies.
    pub task_definitions: Vec<TaskDefinition>,
}

/// `GET /v1/task-definitions/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionEnvelope {
    /// The revision, with its body.
    pub task_definition: TaskDefinition,
}
