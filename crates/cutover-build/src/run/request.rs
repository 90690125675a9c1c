//! The types of a build: its request, its log lines and its outcome.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::artifacts::ArtifactSet;
use crate::plan::{BuildStatus, PhaseStatus, PhaseType};
use crate::reports::Report;

/// Where a secret comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `env.parameter-store`: the reference is a parameter name.
    ParameterStore,
    /// `env.secrets-manager`: the reference is
    /// `secret-id:json-key:version-stage:version-id`.
    SecretsManager,
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretSource::ParameterStore => "parameter-store",
            SecretSource::SecretsManager => "secrets-manager",
        })
    }
}

/// Resolves a secret reference to its value (`None`: no such secret).
/// Asynchronous, so a lookup in a store never blocks the build's thread.
pub type SecretLookup = Arc<
    dyn Fn(SecretSource, String) -> futures_util::future::BoxFuture<'static, Option<String>>
        + Send
        + Sync,
>;

/// A [`SecretLookup`] over a synchronous function (tests, fixed values).
pub fn sync_lookup(
    f: impl Fn(SecretSource, &str) -> Option<String> + Send + Sync + 'static,
) -> SecretLookup {
    Arc::new(move |source, reference| {
        let found = f(source, &reference);
        Box::pin(async move { found })
    })
}

/// What to build and where.
#[derive(Clone)]
pub struct BuildRequest {
    /// The build project's name.
    pub project: String,
    /// `CODEBUILD_BUILD_NUMBER`.
    pub build_number: u64,
    /// `CODEBUILD_BUILD_ID`, `project:uuid`.
    pub build_id: String,
    /// The checked-out source (`CODEBUILD_SRC_DIR`); commands start here.
    pub src_dir: PathBuf,
    /// Secondary sources: identifier and directory (`CODEBUILD_SRC_DIR_<id>`).
    pub secondary_sources: Vec<(String, PathBuf)>,
    /// The build's own directory (artifacts, scripts, pid file); must not
    /// be inside `src_dir`.
    pub work_dir: PathBuf,
    /// The project's cache directory, kept between builds, if caching is on.
    pub cache_dir: Option<PathBuf>,
    /// `CODEBUILD_SOURCE_VERSION` (a branch, tag or commit as requested).
    pub source_version: Option<String>,
    /// `CODEBUILD_RESOLVED_SOURCE_VERSION` (the commit).
    pub resolved_source_version: Option<String>,
    /// `CODEBUILD_INITIATOR` (`codepipeline/<pipeline>`, a user name, ...).
    pub initiator: String,
    /// Extra variables (the pipeline's `EnvironmentVariables`), applied last.
    pub env: Vec<(String, String)>,
    /// Resolves `parameter-store` and `secrets-manager` references.
    pub secrets: SecretLookup,
    /// Values masked in the log besides the resolved secrets (the secret
    /// of the build's own access key, given in `env`).
    pub masked: Vec<String>,
}

impl BuildRequest {
    /// A request with a fresh `project:uuid` build id, no cache, no secrets,
    /// initiated by `cutover`.
    pub fn new(
        project: &str,
        build_number: u64,
        src_dir: PathBuf,
        work_dir: PathBuf,
    ) -> BuildRequest {
        BuildRequest {
            project: project.to_owned(),
            build_number,
            build_id: format!("{project}:{}", uuid::Uuid::new_v4()),
            src_dir,
            secondary_sources: Vec::new(),
            work_dir,
            cache_dir: None,
            source_version: None,
            resolved_source_version: None,
            initiator: "cutover".to_owned(),
            env: Vec::new(),
            secrets: sync_lookup(|_, _| None),
            masked: Vec::new(),
        }
    }
}

impl fmt::Debug for BuildRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildRequest")
            .field("project", &self.project)
            .field("build_id", &self.build_id)
            .field("src_dir", &self.src_dir)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

/// Who wrote a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// The build's commands (stdout and stderr).
    Output,
    /// Cutover: phase transitions, commands run, exit statuses.
    System,
}

/// One line of a build's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was read.
    pub time: SystemTime,
    /// Who wrote it.
    pub source: LogSource,
    /// The phase running then.
    pub phase: Option<PhaseType>,
    /// The text, without its newline, secrets masked.
    pub text: String,
}

/// One phase of a finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseRecord {
    /// Which phase.
    pub phase: PhaseType,
    /// How it ended.
    pub status: PhaseStatus,
    /// When it started.
    pub started: SystemTime,
    /// When it ended.
    pub ended: SystemTime,
    /// `ended - started`.
    pub duration_ms: u64,
    /// Why it failed, if it did.
    pub message: Option<String>,
}

/// The result of a build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOutcome {
    /// `CODEBUILD_BUILD_ID`.
    pub build_id: String,
    /// How the build ended.
    pub status: BuildStatus,
    /// The phases, in order (skipped ones included).
    pub phases: Vec<PhaseRecord>,
    /// `env.exported-variables` that were set at the end.
    pub exported_variables: BTreeMap<String, String>,
    /// The artifacts collected.
    pub artifacts: Vec<ArtifactSet>,
    /// The JUnit reports read.
    pub reports: Vec<Report>,
    /// Start of the build.
    pub started: SystemTime,
    /// End of the build.
    pub ended: SystemTime,
}

/// A build that could not start: nothing ran.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A secret could not be resolved.
    #[error("env.{store}.{variable}: secret {reference:?} not found")]
    MissingSecret {
        /// The variable it was meant for.
        variable: String,
        /// The store.
        store: SecretSource,
        /// The reference as written.
        reference: String,
    },
    /// The work directory would be swept into the artifacts.
    #[error("work directory {work_dir} is inside the source directory {src_dir}")]
    WorkDirInsideSource {
        /// `req.work_dir`.
        work_dir: PathBuf,
        /// `req.src_dir`.
        src_dir: PathBuf,
    },
    /// Preparing a directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The buildspec's `env.shell` is a Windows shell.
    #[error(
        "env.shell is {program}, a Windows shell: Windows builds are not supported here (builds run on Linux with bash or sh)"
    )]
    WindowsShell {
        /// `powershell.exe`, `pwsh` or `cmd.exe`.
        program: &'static str,
    },
    /// The shell could not be started.
    #[error("cannot run {program}: {source}")]
    Shell {
        /// `bash` or `sh`.
        program: &'static str,
        /// The error.
        source: std::io::Error,
    },
}
