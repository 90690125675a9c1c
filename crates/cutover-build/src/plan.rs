//! The decisions of a build, as pure functions: which command of a phase
//! runs next, which phase follows a finished one, and what the build's
//! status is. `run` asks these and only does the IO.
//!
//! The rules (aws-formats.md section 8):
//! - phases run in the order install, pre_build, build, post_build;
//! - within a phase the `commands` run in order until one fails; the
//!   remaining ones are skipped; `finally` then runs (also in order, until
//!   one fails), whether or not a command failed;
//! - a failed install or pre_build ends the build (later phases are
//!   skipped); a failed build goes on to post_build; `on-failure: CONTINUE`
//!   goes on to the next phase whatever the phase; `on-failure: ABORT` ends
//!   the build whatever the phase;
//! - artifacts (UPLOAD_ARTIFACTS) are collected when the build was not
//!   ended early (by an aborting phase or a stop), even if a phase failed:
//!   this is CodeBuild's "UPLOAD_ARTIFACTS is always attempted, even if the
//!   BUILD phase fails", and its transition from a failed install or
//!   pre_build straight to FINALIZING;
//! - the build fails if any phase failed (a `CONTINUE` phase included).

use crate::spec::{OnFailure, Phase, PhaseName};

/// A phase of a build record: the four buildspec phases and UPLOAD_ARTIFACTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhaseType {
    /// `install`.
    Install,
    /// `pre_build`.
    PreBuild,
    /// `build`.
    Build,
    /// `post_build`.
    PostBuild,
    /// Collecting artifacts, reports and the cache.
    UploadArtifacts,
}

impl PhaseType {
    /// The phase type as CodeBuild names it (`PRE_BUILD`, `UPLOAD_ARTIFACTS`).
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseType::Install => "INSTALL",
            PhaseType::PreBuild => "PRE_BUILD",
            PhaseType::Build => "BUILD",
            PhaseType::PostBuild => "POST_BUILD",
            PhaseType::UploadArtifacts => "UPLOAD_ARTIFACTS",
        }
    }
}

impl From<PhaseName> for PhaseType {
    fn from(p: PhaseName) -> PhaseType {
        match p {
            PhaseName::Install => PhaseType::Install,
            PhaseName::PreBuild => PhaseType::PreBuild,
            PhaseName::Build => PhaseType::Build,
            PhaseName::PostBuild => PhaseType::PostBuild,
        }
    }
}

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseStatus {
    /// Every command succeeded.
    Succeeded,
    /// A command (or `finally` command) failed.
    Failed,
    /// The build was stopped during the phase.
    Stopped,
    /// The phase did not run because an earlier one ended the build.
    Skipped,
}

/// How a build ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    /// Every phase succeeded.
    Succeeded,
    /// A phase failed.
    Failed,
    /// The build was stopped.
    Stopped,
}

impl BuildStatus {
    /// CodeBuild's name for the status (`SUCCEEDED`).
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Succeeded => "SUCCEEDED",
            BuildStatus::Failed => "FAILED",
            BuildStatus::Stopped => "STOPPED",
        }
    }
}

/// Which list of a phase a command comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// `commands`.
    Commands,
    /// `finally`.
    Finally,
}

/// One command to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'a> {
    /// Where it comes from.
    pub block: Block,
    /// Its index in that list.
    pub index: usize,
    /// The command text.
    pub command: &'a str,
}

/// Walks the commands of one phase as their results come in.
#[derive(Debug, Clone)]
pub struct PhaseCursor<'a> {
    phase: &'a Phase,
    block: Block,
    index: usize,
    done: bool,
    failure: Option<String>,
}

impl<'a> PhaseCursor<'a> {
    /// A cursor at the first command of `phase`.
    pub fn new(phase: &'a Phase) -> PhaseCursor<'a> {
        let mut c = PhaseCursor {
            phase,
            block: Block::Commands,
            index: 0,
            done: false,
            failure: None,
        };
        c.settle();
        c
    }

    /// The command to run now, or `None` when the phase is over.
    pub fn current(&self) -> Option<Step<'a>> {
        if self.done {
            return None;
        }
        let list = match self.block {
            Block::Commands => &self.phase.commands,
            Block::Finally => &self.phase.finally,
        };
        list.get(self.index).map(|command| Step {
            block: self.block,
            index: self.index,
            command,
        })
    }

    /// Records the exit status of the current command and moves on.
    pub fn record(&mut self, exit_code: i32) {
        let Some(step) = self.current() else { return };
        if exit_code == 0 {
            self.index += 1;
        } else {
            self.failure = Some(format!(
                "command did not exit successfully: {} exit status {exit_code}",
                step.command.lines().next().unwrap_or("")
            ));
            match self.block {
                // The remaining commands are skipped; finally still runs.
                Block::Commands => {
                    self.block = Block::Finally;
                    self.index = 0;
                }
                Block::Finally => self.done = true,
            }
        }
        self.settle();
    }

    /// Whether a command failed; its message if so.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn settle(&mut self) {
        loop {
            if self.done {
                return;
            }
            let len = match self.block {
                Block::Commands => self.phase.commands.len(),
                Block::Finally => self.phase.finally.len(),
            };
            if self.index < len {
                return;
            }
            match self.block {
                Block::Commands => {
                    self.block = Block::Finally;
                    self.index = 0;
                }
                Block::Finally => self.done = true,
            }
        }
    }
}

/// What comes after a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run this phase.
    Run(PhaseName),
    /// All phases are done: collect artifacts.
    Finish,
    /// End the build now: later phases and artifacts are skipped.
    Abort,
}

/// The transition after `phase` ended, failed or not.
pub fn after_phase(phase: PhaseName, failed: bool, on_failure: Option<OnFailure>) -> Next {
    let onward = || phase.next().map_or(Next::Finish, Next::Run);
    if !failed {
        return onward();
    }
    match on_failure {
        Some(OnFailure::Continue) => onward(),
        Some(OnFailure::Abort) => Next::Abort,
        None => match phase {
            PhaseName::Install | PhaseName::PreBuild => Next::Abort,
            PhaseName::Build | PhaseName::PostBuild => onward(),
        },
    }
}

/// The build's status from its phases' statuses.
pub fn build_status(phases: impl IntoIterator<Item = PhaseStatus>, stopped: bool) -> BuildStatus {
    if stopped {
        return BuildStatus::Stopped;
    }
    if phases
        .into_iter()
        .any(|s| matches!(s, PhaseStatus::Failed | PhaseStatus::Stopped))
    {
        BuildStatus::Failed
    } else {
        BuildStatus::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(commands: &[&str], finally: &[&str]) -> Phase {
        Phase {
            commands: commands.iter().map(|s| s.to_string()).collect(),
            finally: finally.iter().map(|s| s.to_string()).collect(),
            on_failure: None,
        }
    }

    fn run(phase: &Phase, codes: &[(&str, i32)]) -> (Vec<String>, Option<String>) {
        let mut c = PhaseCursor::new(phase);
        let mut ran = Vec::new();
        while let Some(step) = c.current() {
            ran.push(step.command.to_owned());
            let code = codes
                .iter()
                .find(|(n, _)| *n == step.command)
                .map_or(0, |(_, c)| *c);
            c.record(code);
        }
        (ran, c.failure().map(str::to_owned))
    }

    #[test]
    fn commands_then_finally() {
        let p = phase(&["a", "b"], &["f1", "f2"]);
        assert_eq!(
            run(&p, &[]),
            (vec!["a".into(), "b".into(), "f1".into(), "f2".into()], None)
        );
    }

    #[test]
    fn a_failure_skips_the_remaining_commands_but_not_finally() {
        let p = phase(&["a", "b", "c"], &["f"]);
        let (ran, failure) = run(&p, &[("b", 2)]);
        assert_eq!(ran, vec!["a", "b", "f"]);
        assert_eq!(
            failure.as_deref(),
            Some("command did not exit successfully: b exit status 2")
        );
    }

    #[test]
    fn a_failing_finally_stops_the_finally_block() {
        let p = phase(&["a"], &["f1", "f2"]);
        let (ran, failure) = run(&p, &[("f1", 1)]);
        assert_eq!(ran, vec!["a", "f1"]);
        assert!(failure.is_some());
    }

    #[test]
    fn empty_phases_and_only_finally() {
        assert_eq!(run(&phase(&[], &[]), &[]), (vec![], None));
        assert_eq!(run(&phase(&[], &["f"]), &[]).0, vec!["f"]);
    }

    #[test]
    fn transitions() {
        use PhaseName::*;
        assert_eq!(after_phase(Install, false, None), Next::Run(PreBuild));
        assert_eq!(after_phase(PostBuild, false, None), Next::Finish);
        assert_eq!(after_phase(Install, true, None), Next::Abort);
        assert_eq!(after_phase(PreBuild, true, None), Next::Abort);
        assert_eq!(after_phase(Build, true, None), Next::Run(PostBuild));
        assert_eq!(after_phase(PostBuild, true, None), Next::Finish);
        assert_eq!(
            after_phase(Install, true, Some(OnFailure::Continue)),
            Next::Run(PreBuild)
        );
        assert_eq!(
            after_phase(Build, true, Some(OnFailure::Abort)),
            Next::Abort
        );
        assert_eq!(
            after_phase(Build, false, Some(OnFailure::Abort)),
            Next::Run(PostBuild)
        );
    }

    #[test]
    fn status() {
        use PhaseStatus::*;
        assert_eq!(
            build_status([Succeeded, Succeeded], false),
            BuildStatus::Succeeded
        );
        assert_eq!(
            build_status([Succeeded, Failed, Succeeded], false),
            BuildStatus::Failed
        );
        assert_eq!(
            build_status([Succeeded, Skipped], false),
            BuildStatus::Succeeded
        );
        assert_eq!(build_status([Succeeded], true), BuildStatus::Stopped);
    }
}
