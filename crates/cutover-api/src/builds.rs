//! Builds (CodeBuild-style) and their logs.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// CodeBuild's status of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildStatus {
    /// Running.
    InProgress,
    /// Every phase succeeded.
    Succeeded,
    /// A phase failed.
    Failed,
    /// Stopped.
    Stopped,
    /// Ran out of time.
    TimedOut,
    /// The build could not be run (an internal failure).
    Fault,
}

impl BuildStatus {
    /// The wire name (`IN_PROGRESS`).
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::InProgress => "IN_PROGRESS",
            BuildStatus::Succeeded => "SUCCEEDED",
            BuildStatus::Failed => "FAILED",
            BuildStatus::Stopped => "STOPPED",
            BuildStatus::TimedOut => "TIMED_OUT",
            BuildStatus::Fault => "FAULT",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<BuildStatus> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// A build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    /// Id (`project:uuid`).
    pub id: String,
    /// Its build project.
    pub project: String,
    /// Build number within the project.
    pub number: u64,
    /// Status.
    pub status: BuildStatus,
    /// Who started it (a pipeline action, a person).
    pub initiator: String,
    /// The pipeline action that started it.
    pub action_key: Option<String>,
    /// The source revision.
    pub source: Option<String>,
    /// Where it ran.
    pub work_dir: String,
    /// Phases and reports, as stored (see [`BuildDetail`] and
    /// [`Build::detail`]); untyped until the stored row is.
    pub detail: serde_json::Value,
    /// Why it failed.
    pub message: Option<String>,
    /// Unix ms.
    pub started_at: u64,
    /// Unix ms.
    pub finished_at: Option<u64>,
    /// `finishedAt - startedAt` once finished.
    pub duration_ms: Option<u64>,
}

/// `GET /v1/builds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BuildList {
    /// Newest first.
    pub builds: Vec<Build>,
}

/// `GET /v1/builds/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BuildEnvelope {
    /// The build.
    pub build: Build,
}

/// `GET /v1/builds/{id}/logs?offset=N`: whole lines from `offset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildLog {
    /// Whole lines (at most 1 MiB).
    pub text: String,
    /// Where to read next.
    pub next_offset: u64,
    /// Whether the build has finished.
    pub finished: bool,
    /// The build's status.
    pub status: BuildStatus,
}

/// What a finished build stores in its `detail` (an empty object while it
/// runs): read with [`Build::detail`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct BuildDetail {
    /// Phases in order.
    pub phases: Vec<PhaseReport>,
    /// `env.exported-variables` and their values.
    pub exported_variables: std::collections::BTreeMap<String, String>,
    /// Artifacts uploaded.
    pub artifacts: Vec<ArtifactReport>,
    /// Test report groups.
    pub reports: Vec<TestReport>,
}

/// One phase of a build.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PhaseReport {
    /// `INSTALL`, `PRE_BUILD`, `BUILD`, `POST_BUILD`.
    pub phase: String,
    /// `SUCCEEDED`, `FAILED`, ...
    pub status: String,
    /// How long it took.
    pub duration_ms: Option<u64>,
    /// Why it failed.
    pub message: Option<String>,
}

/// An artifact a build uploaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ArtifactReport {
    /// Its identifier.
    pub identifier: String,
    /// Its name.
    pub name: String,
    /// How many files.
    pub files: u64,
}

/// A test report group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct TestReport {
    /// The report group.
    pub group: String,
    /// Test cases.
    pub total: u64,
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Errored.
    pub errored: u64,
    /// Skipped.
    pub skipped: u64,
}

impl Build {
    /// The stored detail, typed (empty while the build runs, or if it
    /// cannot be read).
    pub fn detail(&self) -> BuildDetail {
        serde_json::from_value(self.detail.clone()).unwrap_or_default()
    }
}
