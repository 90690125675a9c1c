//! Row types of the pipeline tables: repositories, build projects,
//! pipelines with their engine state, and builds.

use cutover_api::builds::BuildStatus;
use serde::{Deserialize, Serialize};

/// A git repository declared in `stack.yaml` (`repositories:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRow {
    /// The name pipelines use (`RepositoryName`, `FullRepositoryId`).
    pub name: String,
    /// The declaration as applied (`url`, `pollIntervalSeconds`, webhook secret settings).
    pub spec: cutover_spec::stack::ci::RepositorySpec,
    /// Last apply, Unix ms.
    pub updated_at: u64,
}

/// A build project declared in `stack.yaml` (`buildProjects:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildProjectRow {
    /// The name pipelines use (`ProjectName`).
    pub name: String,
    /// The declaration as applied, with the buildspec text when one was sent.
    pub spec: cutover_spec::stack::ci::BuildProjectSpec,
    /// Last apply, Unix ms.
    pub updated_at: u64,
}

/// A pipeline: its definition and, once it ran, its engine state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRow {
    /// Pipeline name.
    pub name: String,
    /// The pipeline in CodePipeline's JSON shape, as applied.
    pub definition: serde_json::Value,
    /// The engine state (executions, transitions), written before its
    /// effects run; `None` until the driver first saves it.
    pub state: Option<serde_json::Value>,
    /// Last change, Unix ms.
    pub updated_at: u64,
}

/// One build of a build project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRow {
    /// `project:uuid`.
    pub id: String,
    /// Build project name.
    pub project: String,
    /// Build number within the project, from 1.
    pub number: u64,
    /// Where the build is (the API's type: one status enum for builds).
    pub status: BuildStatus,
    /// Who started it (`codepipeline/<pipeline>`, ...).
    pub initiator: String,
    /// The pipeline action it runs for, `pipeline/execution/stage/action/attempt`.
    pub action_key: Option<String>,
    /// The resolved source version (commit).
    pub source: Option<String>,
    /// Its work directory (log, artifacts, pid file).
    pub work_dir: String,
    /// Phases, exported variables, artifacts and reports, once known.
    pub detail: serde_json::Value,
    /// Why it failed.
    pub message: Option<String>,
    /// Start, Unix ms.
    pub started_at: u64,
    /// End, Unix ms.
    pub finished_at: Option<u64>,
}
