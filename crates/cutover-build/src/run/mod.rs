//! Running a build on the host, or in a container ([`crate::container`]): [`run_build`], [`run_build_in`].
//!
//! A build runs in `req.src_dir` with one shell session (see `shell`),
//! phase by phase as [`crate::plan`] decides, and ends with
//! UPLOAD_ARTIFACTS: artifacts copied under `req.work_dir/artifacts/`,
//! JUnit reports read, the cache saved. Log lines reach the caller as they
//! are written, with secret values masked.
//!
//! Environment of the commands, later entries overriding earlier ones:
//! [`crate::process::base_env`] on the host (`PATH`, `HOME`, `USER`,
//! `LOGNAME`, `LANG`, `LC_*`, `TZ` and `TMPDIR`: nothing else of the
//! server's environment, such as `CUTOVER_TOKEN`, leaks in);
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
//! The work directory and the shell's directory in it are made 0700, the
//! files there that hold the build's environment (secrets included) 0600,
//! and the shell's directory is deleted when the build ends, however it
//! ends (a crash of the control plane leaves it to
//! [`crate::process::kill_leftover`], which deletes it too).
//!
//! If the control plane restarts during a build, the build's process group
//! keeps running without anyone reading its output. The server should mark
//! such a build Failed ("control plane restarted"; it can be retried) and
//! call [`crate::process::kill_leftover`] with its work directory, which
//! kills the group recorded in `<work_dir>/build.pid`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::artifacts;
use crate::cache;
use crate::container::BuildContainer;
use crate::mask::Masker;
use crate::plan::{self, Next, PhaseCursor, PhaseStatus, PhaseType};
use crate::reports;
use crate::shell::{CommandEnd, Shell, ShellConfig};
use crate::spec::{BuildSpec, PhaseName, ReportFormat, Version};
use crate::vars;

pub use crate::process::kill_leftover;
pub use request::{
    BuildError, BuildOutcome, BuildRequest, LogLine, LogSource, PhaseRecord, SecretLookup,
    SecretSource, sync_lookup,
};

mod finish;
mod request;

use finish::{read_shell_values, upload_artifacts};

/// Removes the shell's directory (saved environment, variables, scripts)
/// when dropped: at the end of the build, whatever the outcome.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.0) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                warn!(dir = %self.0.display(), error = %e, "cannot remove the build's shell state");
            }
            _ => {}
        }
    }
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

/// Refuses, before anything is prepared, a buildspec that cannot run here:
/// one whose `env.shell` is a Windows shell (the parser accepts it, with a
/// warning, as CodeBuild's Windows images do).
pub fn check_runnable(spec: &BuildSpec) -> Result<(), BuildError> {
    if spec.env.shell.is_windows() {
        return Err(BuildError::WindowsShell {
            program: spec.env.shell.program(),
        });
    }
    Ok(())
}

/// Runs `spec` for `req`, passing log lines to `log` as they come, until
/// the build ends or `cancel` is triggered (the build's processes are then
/// killed and the outcome is [`crate::plan::BuildStatus::Stopped`]).
pub async fn run_build(
    spec: &BuildSpec,
    req: BuildRequest,
    log: impl FnMut(LogLine) + Send,
    cancel: CancellationToken,
) -> Result<BuildOutcome, BuildError> {
    run_build_in(spec, req, None, log, cancel).await
}

/// [`run_build`], with the commands run in `container` when one is given
/// (see [`crate::container`]): the host's variables are then not passed
/// on, and stopping the build ends its session but leaves killing the
/// processes still in the container to the caller, who removes it.
pub async fn run_build_in(
    spec: &BuildSpec,
    req: BuildRequest,
    container: Option<Arc<dyn BuildContainer>>,
    log: impl FnMut(LogLine) + Send,
    cancel: CancellationToken,
) -> Result<BuildOutcome, BuildError> {
    check_runnable(spec)?;
    let started = SystemTime::now();
    let src_dir = std::fs::canonicalize(&req.src_dir).map_err(io_err(&req.src_dir))?;
    crate::safe_fs::private_dir(&req.work_dir).map_err(io_err(&req.work_dir))?;
    let work_dir = std::fs::canonicalize(&req.work_dir).map_err(io_err(&req.work_dir))?;
    if work_dir.starts_with(&src_dir) {
        return Err(BuildError::WorkDirInsideSource { work_dir, src_dir });
    }
    let shell_dir = work_dir.join("shell");
    match std::fs::remove_dir_all(&shell_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&shell_dir)(e)),
        _ => {}
    }
    let _remove_shell_state = RemoveOnDrop(shell_dir.clone());
    crate::safe_fs::private_dir(&shell_dir).map_err(io_err(&shell_dir))?;

    // The environment, and the secrets to mask.
    let mut env: Vec<(String, String)> = if container.is_some() {
        Vec::new()
    } else {
        crate::process::base_env()
    };
    for (k, v) in &spec.env.variables {
        set(&mut env, k, v.clone());
    }
    let mut secret_values = Vec::new();
    for (source, list) in [
        (SecretSource::ParameterStore, &spec.env.parameter_store),
        (SecretSource::SecretsManager, &spec.env.secrets_manager),
    ] {
        for (name, reference) in list {
            let Some(value) = (req.secrets)(source, reference.clone()).await else {
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

    secret_values.extend(req.masked.iter().cloned());
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
            Ok(r) => {
                for line in r.skipped {
                    logger.system(line);
                }
                logger.system(format!("Restored {} cached files", r.files));
            }
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
            container,
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
                        shell.run_internal(set_failed, &mut emit, &cancel).await
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
                    let base_text = group
                        .base_directory
                        .as_deref()
                        .map(|b| vars::expand(b, lookup));
                    let Some(base) = artifacts::base_dir(&src_dir, base_text.as_deref())
                        .filter(|b| artifacts::checked_base(&src_dir, b).is_some())
                    else {
                        logger.system(format!(
                            "Report {}: base-directory {:?} is not a directory inside the source directory",
                            group.name,
                            base_text.unwrap_or_default()
                        ));
                        continue;
                    };
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
                            Ok(r) => {
                                for line in r.skipped {
                                    logger.system(line);
                                }
                                logger.system(format!("Saved {} files to the cache", r.files));
                            }
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
