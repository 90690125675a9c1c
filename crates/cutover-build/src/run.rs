//! Running a build on the host: [`run_build`].
//!
//! A build runs in `req.src_dir` with one shell session (see `shell`),
//! phase by phase as [`crate::plan`] decides, and ends with
//! UPLOAD_ARTIFACTS: artifacts copied under `req.work_dir/artifacts/`,
//! JUnit reports read, the cache saved. Log lines reach the caller as they
//! are written, with secret values masked.
//!
//! Environment of the commands, later entries overriding earlier ones:
//! `PATH`, `HOME`, `USER`, `LOGNAME`, `LANG`, `LC_ALL`, `TZ` and `TMPDIR`
//! from the host (nothing else of the server's environment leaks in);
//! `env.variables`; `env.parameter-store` and `env.secrets-manager` values
//! resolved by `req.secrets`; the built-in `CODEBUILD_*` variables; and
//! `req.env` (the pipeline's `EnvironmentVariables`), so the caller has the
//! last word.
//!
//! Exported variables are read from the shell at the end of the build
//! (after post_build), whether the build succeeded or not; a variable that
//! is not set is left out. Paths in artifacts, reports and cache (and the
//! artifact `name`) may use `$VAR`/`${VAR}`; they are expanded with the
//! shell's variables at that moment (the `name` also with `$(...)`).
//!
//! If the control plane restarts during a build, the build's process group
//! keeps running without anyone reading its output. The server should mark
//! such a build Failed ("control plane restarted"; it can be retried) and
//! call [`crate::process::kill_leftover`] with its work directory, which
//! kills the group recorded in `<work_dir>/build.pid`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::artifacts::{self, ArtifactSet, Selection};
use crate::cache;
use crate::mask::Masker;
use crate::plan::{self, BuildStatus, Next, PhaseCursor, PhaseStatus, PhaseType};
use crate::reports::{self, Report};
use crate::shell::{CommandEnd, Shell, ShellConfig, sh_quote};
use crate::spec::{ArtifactSpec, BuildSpec, PhaseName, ReportFormat, Version};
use crate::vars;

pub use crate::process::kill_leftover;

/// Host variables passed on to builds.
const HOST_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR",
];

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
pub type SecretLookup = Arc<dyn Fn(SecretSource, &str) -> Option<String> + Send + Sync>;

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
            secrets: Arc::new(|_, _| None),
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
    /// The shell could not be started.
    #[error("cannot run {program}: {source}")]
    Shell {
        /// `bash` or `sh`.
        program: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

struct Logger<F> {
    log: F,
    masker: Masker,
    phase: Option<PhaseType>,
}

impl<F: FnMut(LogLine)> Logger<F> {
    fn system(&mut self, text: String) {
        let line = LogLine {
            time: SystemTime::now(),
            source: LogSource::System,
            phase: self.phase,
            text: self.masker.mask(&text),
        };
        (self.log)(line);
    }

    fn output(&mut self, text: String) {
        (self.log)(LogLine {
            time: SystemTime::now(),
            source: LogSource::Output,
            phase: self.phase,
            text,
        });
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn set(env: &mut Vec<(String, String)>, name: &str, value: String) {
    match env.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name.to_owned(), value)),
    }
}

/// Runs `spec` for `req`, passing log lines to `log` as they come, until
/// the build ends or `cancel` is triggered (the build's processes are then
/// killed and the outcome is [`BuildStatus::Stopped`]).
pub async fn run_build(
    spec: &BuildSpec,
    req: BuildRequest,
    log: impl FnMut(LogLine) + Send,
    cancel: CancellationToken,
) -> Result<BuildOutcome, BuildError> {
    let started = SystemTime::now();
    let src_dir = std::fs::canonicalize(&req.src_dir).map_err(io_err(&req.src_dir))?;
    std::fs::create_dir_all(&req.work_dir).map_err(io_err(&req.work_dir))?;
    let work_dir = std::fs::canonicalize(&req.work_dir).map_err(io_err(&req.work_dir))?;
    if work_dir.starts_with(&src_dir) {
        return Err(BuildError::WorkDirInsideSource { work_dir, src_dir });
    }
    let shell_dir = work_dir.join("shell");
    match std::fs::remove_dir_all(&shell_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&shell_dir)(e)),
        _ => {}
    }
    std::fs::create_dir_all(&shell_dir).map_err(io_err(&shell_dir))?;

    // The environment, and the secrets to mask.
    let mut env: Vec<(String, String)> = HOST_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    for (k, v) in &spec.env.variables {
        set(&mut env, k, v.clone());
    }
    let mut secret_values = Vec::new();
    for (source, list) in [
        (SecretSource::ParameterStore, &spec.env.parameter_store),
        (SecretSource::SecretsManager, &spec.env.secrets_manager),
    ] {
        for (name, reference) in list {
            let Some(value) = (req.secrets)(source, reference) else {
                return Err(BuildError::MissingSecret {
                    variable: name.clone(),
                    store: source,
                    reference: reference.clone(),
                });
            };
            set(&mut env, name, value.clone());
            secret_values.push(value);
        }
    }
    let src_text = src_dir.to_string_lossy().into_owned();
    let builtins = [
        ("CODEBUILD_BUILD_ID", Some(req.build_id.clone())),
        ("CODEBUILD_BUILD_NUMBER", Some(req.build_number.to_string())),
        ("CODEBUILD_SRC_DIR", Some(src_text)),
        ("CODEBUILD_SOURCE_VERSION", req.source_version.clone()),
        (
            "CODEBUILD_RESOLVED_SOURCE_VERSION",
            req.resolved_source_version.clone(),
        ),
        ("CODEBUILD_BUILD_SUCCEEDING", Some("1".to_owned())),
        ("CODEBUILD_INITIATOR", Some(req.initiator.clone())),
        ("CODEBUILD_START_TIME", Some(millis(started).to_string())),
        ("CODEBUILD_CI", Some("true".to_owned())),
    ];
    for (k, v) in builtins {
        if let Some(v) = v {
            set(&mut env, k, v);
        }
    }
    for (id, dir) in &req.secondary_sources {
        set(
            &mut env,
            &format!("CODEBUILD_SRC_DIR_{id}"),
            dir.to_string_lossy().into_owned(),
        );
    }
    for (k, v) in &req.env {
        set(&mut env, k, v.clone());
    }

    let masker = Masker::new(secret_values);
    let mut logger = Logger {
        log,
        masker: masker.clone(),
        phase: None,
    };
    info!(build_id = %req.build_id, src_dir = %src_dir.display(), "build started");

    // The cache comes back before anything runs.
    if let Some(cache_dir) = req
        .cache_dir
        .as_ref()
        .filter(|_| !spec.cache_paths.is_empty())
    {
        match cache::restore(cache_dir, &spec.cache_paths, &src_dir) {
            Ok(n) => logger.system(format!("Restored {n} cached files")),
            Err(e) => {
                warn!(build_id = %req.build_id, error = %e, "cache not restored");
                logger.system(format!("Cache not restored: {e}"));
            }
        }
    }

    let mut shell = Shell::new(
        ShellConfig {
            program: spec.env.shell.program(),
            env,
            cwd: src_dir.clone(),
            dir: shell_dir.clone(),
            subshell_per_command: spec.version == Version::V0_1,
            work_dir: work_dir.clone(),
        },
        masker,
    );

    let mut phases = Vec::new();
    let mut next = Next::Run(PhaseName::Install);
    let mut succeeding = true;
    let mut stopped = false;
    while let Next::Run(name) = next {
        let phase = spec.phases.get(name);
        let phase_started = SystemTime::now();
        logger.phase = Some(name.into());
        logger.system(format!("Entering phase {name}"));
        let mut cursor = PhaseCursor::new(phase);
        while let Some(step) = cursor.current() {
            logger.system(format!("Running command {}", step.command));
            let end = {
                let mut emit = |line: String| logger.output(line);
                shell.run(step.command, &mut emit, &cancel).await
            };
            let end = end.map_err(|source| BuildError::Shell {
                program: spec.env.shell.program(),
                source,
            })?;
            let Some(code) = end.status() else {
                stopped = true;
                break;
            };
            if matches!(end, CommandEnd::ShellExited(_)) {
                logger.system(format!("The command ended the shell with status {code}; a new shell continues the build"));
            }
            cursor.record(code);
            if code != 0 {
                logger.system(format!(
                    "Command did not exit successfully {} exit status {code}",
                    step.command
                ));
                if succeeding {
                    succeeding = false;
                    let mut emit = |line: String| logger.output(line);
                    let set_failed = "export CODEBUILD_BUILD_SUCCEEDING=0";
                    if let Ok(CommandEnd::Cancelled) =
                        shell.run(set_failed, &mut emit, &cancel).await
                    {
                        stopped = true;
                        break;
                    }
                }
            }
        }
        let status = if stopped {
            PhaseStatus::Stopped
        } else if cursor.failure().is_some() {
            PhaseStatus::Failed
        } else {
            PhaseStatus::Succeeded
        };
        let ended = SystemTime::now();
        logger.system(format!(
            "Phase complete: {name} State: {}",
            phase_state(status)
        ));
        phases.push(record(
            name.into(),
            status,
            phase_started,
            ended,
            cursor.failure().map(str::to_owned),
        ));
        if stopped {
            break;
        }
        next = plan::after_phase(name, status == PhaseStatus::Failed, phase.on_failure);
    }
    // Phases that did not run.
    let ran: Vec<PhaseType> = phases.iter().map(|p| p.phase).collect();
    for name in PhaseName::ALL {
        if !ran.contains(&name.into()) {
            let now = SystemTime::now();
            phases.push(record(name.into(), PhaseStatus::Skipped, now, now, None));
        }
    }

    let mut exported_variables = BTreeMap::new();
    let mut artifact_sets = Vec::new();
    let mut report_list = Vec::new();
    if !stopped {
        let upload = next == Next::Finish;
        logger.phase = Some(PhaseType::UploadArtifacts);
        let values = read_shell_values(&mut shell, &mut logger, spec, &cancel).await;
        match values {
            None => stopped = true,
            Some(values) => {
                for name in &spec.env.exported_variables {
                    if let Some(v) = values.vars.get(name) {
                        exported_variables.insert(name.clone(), v.clone());
                    }
                }
                let lookup = |n: &str| values.vars.get(n).cloned();
                for group in &spec.reports {
                    if group.format != ReportFormat::JunitXml {
                        continue;
                    }
                    let base = artifacts::base_dir(
                        &src_dir,
                        group
                            .base_directory
                            .as_deref()
                            .map(|b| vars::expand(b, lookup))
                            .as_deref(),
                    );
                    let files: Vec<String> = group
                        .files
                        .iter()
                        .map(|f| vars::expand(f, lookup))
                        .collect();
                    let report = reports::collect(&group.name, &base, &files);
                    logger.system(format!(
                        "Report {}: {} tests, {} passed, {} failed, {} errored, {} skipped",
                        report.group,
                        report.total,
                        report.passed,
                        report.failed,
                        report.errored,
                        report.skipped
                    ));
                    report_list.push(report);
                }
                if upload {
                    let up_started = SystemTime::now();
                    logger.system("Entering phase UPLOAD_ARTIFACTS".to_owned());
                    let result =
                        upload_artifacts(spec, &src_dir, &work_dir, &values, &mut artifact_sets);
                    if let (Some(cache_dir), false) =
                        (req.cache_dir.as_ref(), spec.cache_paths.is_empty())
                    {
                        let paths: Vec<String> = spec
                            .cache_paths
                            .iter()
                            .map(|p| vars::expand(p, lookup))
                            .collect();
                        match cache::save(cache_dir, &paths, &src_dir) {
                            Ok(n) => logger.system(format!("Saved {n} files to the cache")),
                            Err(e) => logger.system(format!("Cache not saved: {e}")),
                        }
                    }
                    let status = match &result {
                        Ok(()) => PhaseStatus::Succeeded,
                        Err(e) => {
                            logger.system(format!("Artifact upload failed: {e}"));
                            PhaseStatus::Failed
                        }
                    };
                    logger.system(format!(
                        "Phase complete: UPLOAD_ARTIFACTS State: {}",
                        phase_state(status)
                    ));
                    phases.push(record(
                        PhaseType::UploadArtifacts,
                        status,
                        up_started,
                        SystemTime::now(),
                        result.err().map(|e| e.to_string()),
                    ));
                }
            }
        }
    }
    {
        let mut emit = |line: String| logger.output(line);
        shell.close(&mut emit).await;
    }
    if stopped {
        logger.system("Build stopped".to_owned());
    }
    let status = plan::build_status(phases.iter().map(|p| p.status), stopped);
    info!(build_id = %req.build_id, status = status.as_str(), "build ended");
    Ok(BuildOutcome {
        build_id: req.build_id,
        status,
        phases,
        exported_variables,
        artifacts: artifact_sets,
        reports: report_list,
        started,
        ended: SystemTime::now(),
    })
}

fn phase_state(status: PhaseStatus) -> &'static str {
    match status {
        PhaseStatus::Succeeded => "SUCCEEDED",
        PhaseStatus::Failed => "FAILED",
        PhaseStatus::Stopped => "STOPPED",
        PhaseStatus::Skipped => "SKIPPED",
    }
}

fn record(
    phase: PhaseType,
    status: PhaseStatus,
    started: SystemTime,
    ended: SystemTime,
    message: Option<String>,
) -> PhaseRecord {
    PhaseRecord {
        phase,
        status,
        started,
        ended,
        duration_ms: ended
            .duration_since(started)
            .map_or(0, |d| d.as_millis() as u64),
        message,
    }
}

/// Values read from the shell at the end of the build.
struct ShellValues {
    /// Variables by name (only those that are set).
    vars: BTreeMap<String, String>,
    /// Artifact names, expanded: primary first, then secondary in order.
    names: Vec<Option<String>>,
}

fn artifact_specs(spec: &BuildSpec) -> Vec<(Option<&str>, &ArtifactSpec)> {
    let mut out = Vec::new();
    if let Some(a) = &spec.artifacts {
        if let Some(p) = &a.primary {
            out.push((None, p));
        }
        for (id, s) in &a.secondary {
            out.push((Some(id.as_str()), s));
        }
    }
    out
}

/// Asks the shell for the exported variables, the variables the paths
/// refer to and the artifact names. `None` if the build was stopped meanwhile.
async fn read_shell_values<F: FnMut(LogLine) + Send>(
    shell: &mut Shell,
    logger: &mut Logger<F>,
    spec: &BuildSpec,
    cancel: &CancellationToken,
) -> Option<ShellValues> {
    let mut names: Vec<String> = spec.env.exported_variables.clone();
    let mut texts: Vec<&str> = Vec::new();
    for (_, a) in artifact_specs(spec) {
        texts.extend(a.files.iter().map(String::as_str));
        texts.extend(a.exclude_paths.iter().map(String::as_str));
        texts.extend(a.base_directory.as_deref());
    }
    for g in &spec.reports {
        texts.extend(g.files.iter().map(String::as_str));
        texts.extend(g.base_directory.as_deref());
    }
    texts.extend(spec.cache_paths.iter().map(String::as_str));
    for t in texts {
        for n in vars::references(t) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let dir = shell.dir().to_path_buf();
    let mut script = String::new();
    for n in &names {
        let file = sh_quote(&dir.join(format!("v.{n}")).to_string_lossy());
        script.push_str(&format!(
            "if [ \"${{{n}+x}}\" = x ]; then printf '%s' \"${n}\" > {file}; fi\n"
        ));
    }
    let specs = artifact_specs(spec);
    for (i, (_, a)) in specs.iter().enumerate() {
        if let Some(name) = &a.name {
            let file = sh_quote(&dir.join(format!("n.{i}")).to_string_lossy());
            let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
            script.push_str(&format!("printf '%s' \"{escaped}\" > {file}\n"));
        }
    }
    script.push_str("true\n");
    let end = {
        let mut emit = |line: String| logger.output(line);
        shell.run(&script, &mut emit, cancel).await
    };
    match end {
        Ok(CommandEnd::Cancelled) => return None,
        Ok(_) => {}
        Err(e) => logger.system(format!("Could not read the build's variables: {e}")),
    }
    let vars = names
        .iter()
        .filter_map(|n| {
            std::fs::read(dir.join(format!("v.{n}")))
                .ok()
                .map(|v| (n.clone(), String::from_utf8_lossy(&v).into_owned()))
        })
        .collect();
    let names = (0..specs.len())
        .map(|i| {
            std::fs::read(dir.join(format!("n.{i}")))
                .ok()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        })
        .collect();
    Some(ShellValues { vars, names })
}

fn upload_artifacts(
    spec: &BuildSpec,
    src_dir: &Path,
    work_dir: &Path,
    values: &ShellValues,
    out: &mut Vec<ArtifactSet>,
) -> Result<(), artifacts::ArtifactError> {
    let lookup = |n: &str| values.vars.get(n).cloned();
    let root = work_dir.join("artifacts");
    for (i, (id, a)) in artifact_specs(spec).into_iter().enumerate() {
        let dest = match id {
            None => root.join("primary"),
            Some(id) => root.join("secondary").join(id),
        };
        let sel = Selection {
            label: id.unwrap_or("primary").to_owned(),
            base: artifacts::base_dir(
                src_dir,
                a.base_directory
                    .as_deref()
                    .map(|b| vars::expand(b, lookup))
                    .as_deref(),
            ),
            files: a.files.iter().map(|f| vars::expand(f, lookup)).collect(),
            exclude: a
                .exclude_paths
                .iter()
                .map(|f| vars::expand(f, lookup))
                .collect(),
            discard_paths: a.discard_paths,
        };
        let files = artifacts::collect(&sel, &dest)?;
        out.push(ArtifactSet {
            identifier: id.map(str::to_owned),
            name: values.names.get(i).cloned().flatten(),
            dir: dest,
            files,
        });
    }
    Ok(())
}
