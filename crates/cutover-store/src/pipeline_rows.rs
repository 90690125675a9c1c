//! Row types of the pipeline tables: repositories, build projects,
//! pipelines with their engine state, and builds.

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
    /// Where the build is.
    pub status: BuildState,
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

/// The status of a build, as CodeBuild names it (`IN_PROGRESS`,
/// `SUCCEEDED`, ...); stored as that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildState {
    /// Running.
    InProgress,
    /// Every phase succeeded and the artifacts were stored.
    Succeeded,
    /// A phase failed, or the outputs could not be stored.
    Failed,
    /// Cutover could not run it (a workspace, a container engine).
    Fault,
    /// Stopped (by a pipeline stop or a deletion).
    Stopped,
    /// Stopped at the project's timeout.
    TimedOut,
}

impl BuildState {
    const ALL: [BuildState; 6] = [
        BuildState::InProgress,
        BuildState::Succeeded,
        BuildState::Failed,
        BuildState::Fault,
        BuildState::Stopped,
        BuildState::TimedOut,
    ];

    /// CodeBuild's name.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::InProgress => "IN_PROGRESS",
            BuildState::Succeeded => "SUCCEEDED",
            BuildState::Failed => "FAILED",
            BuildState::Fault => "FAULT",
            BuildState::Stopped => "STOPPED",
            BuildState::TimedOut => "TIMED_OUT",
        }
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<BuildState> {
        BuildState::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

impl std::fmt::Display for BuildState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl rusqlite::types::ToSql for BuildState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for BuildState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        BuildState::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown build status {text:?}").into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_states_read_back_by_name_and_unknown_names_are_refused() {
        for state in BuildState::ALL {
            assert_eq!(BuildState::parse(state.as_str()), Some(state));
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json, state.as_str());
        }
        assert_eq!(BuildState::parse("RUNNING"), None);
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let back: BuildState = c
            .query_row("SELECT ?1", [BuildState::TimedOut], |r| r.get(0))
            .unwrap();
        assert_eq!(back, BuildState::TimedOut);
        let bad: rusqlite::Result<BuildState> = c.query_row("SELECT 'NOPE'", [], |r| r.get(0));
        assert!(bad.is_err());
    }
}
