//! The typed buildspec: what [`super::parse_buildspec`] produces and
//! [`crate::run::run_build`] runs.

use std::fmt;

/// A parsed buildspec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// `version`.
    pub version: Version,
    /// `env`.
    pub env: Env,
    /// `phases`.
    pub phases: Phases,
    /// `artifacts`, if any.
    pub artifacts: Option<Artifacts>,
    /// `reports`, in document order.
    pub reports: Vec<ReportGroup>,
    /// `cache.paths` (empty when there is no cache).
    pub cache_paths: Vec<String>,
}

/// The buildspec version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 0.1: every command runs in a fresh shell.
    V0_1,
    /// 0.2: all commands share one shell session.
    V0_2,
}

/// The shell that runs the commands (`env.shell`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shell {
    /// `bash` (the default).
    #[default]
    Bash,
    /// `sh`.
    Sh,
    /// `powershell.exe` (CodeBuild's Windows images): accepted, but a
    /// build refuses to start.
    PowerShell,
    /// `pwsh` (Windows images): accepted, but a build refuses to start.
    Pwsh,
    /// `cmd.exe` (Windows images): accepted, but a build refuses to start.
    Cmd,
}

impl Shell {
    /// The program to run, as the buildspec names it.
    pub fn program(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Sh => "sh",
            Shell::PowerShell => "powershell.exe",
            Shell::Pwsh => "pwsh",
            Shell::Cmd => "cmd.exe",
        }
    }

    /// Whether this is one of the Windows shells, which only CodeBuild's
    /// Windows images have: builds here run on Linux, so such a build
    /// fails at start.
    pub fn is_windows(self) -> bool {
        matches!(self, Shell::PowerShell | Shell::Pwsh | Shell::Cmd)
    }
}

/// `env`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Env {
    /// `env.shell`.
    pub shell: Shell,
    /// `env.variables`, in document order.
    pub variables: Vec<(String, String)>,
    /// `env.parameter-store`: variable name and parameter name.
    pub parameter_store: Vec<(String, String)>,
    /// `env.secrets-manager`: variable name and
    /// `secret-id:json-key:version-stage:version-id` reference.
    pub secrets_manager: Vec<(String, String)>,
    /// `env.exported-variables`.
    pub exported_variables: Vec<String>,
}

/// The four phases a buildspec can declare, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhaseName {
    /// `install`.
    Install,
    /// `pre_build`.
    PreBuild,
    /// `build`.
    Build,
    /// `post_build`.
    PostBuild,
}

impl PhaseName {
    /// All phases, in order.
    pub const ALL: [PhaseName; 4] = [
        PhaseName::Install,
        PhaseName::PreBuild,
        PhaseName::Build,
        PhaseName::PostBuild,
    ];

    /// The key in the buildspec (`pre_build`).
    pub fn key(self) -> &'static str {
        match self {
            PhaseName::Install => "install",
            PhaseName::PreBuild => "pre_build",
            PhaseName::Build => "build",
            PhaseName::PostBuild => "post_build",
        }
    }

    /// The phase type CodeBuild reports (`PRE_BUILD`).
    pub fn phase_type(self) -> &'static str {
        match self {
            PhaseName::Install => "INSTALL",
            PhaseName::PreBuild => "PRE_BUILD",
            PhaseName::Build => "BUILD",
            PhaseName::PostBuild => "POST_BUILD",
        }
    }

    /// The phase after this one.
    pub fn next(self) -> Option<PhaseName> {
        match self {
            PhaseName::Install => Some(PhaseName::PreBuild),
            PhaseName::PreBuild => Some(PhaseName::Build),
            PhaseName::Build => Some(PhaseName::PostBuild),
            PhaseName::PostBuild => None,
        }
    }
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.phase_type())
    }
}

/// `phases`: one [`Phase`] per name (empty when not declared).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Phases {
    /// `phases.install`.
    pub install: Phase,
    /// `phases.pre_build`.
    pub pre_build: Phase,
    /// `phases.build`.
    pub build: Phase,
    /// `phases.post_build`.
    pub post_build: Phase,
}

impl Phases {
    /// The phase called `name`.
    pub fn get(&self, name: PhaseName) -> &Phase {
        match name {
            PhaseName::Install => &self.install,
            PhaseName::PreBuild => &self.pre_build,
            PhaseName::Build => &self.build,
            PhaseName::PostBuild => &self.post_build,
        }
    }

    pub(super) fn get_mut(&mut self, name: PhaseName) -> &mut Phase {
        match name {
            PhaseName::Install => &mut self.install,
            PhaseName::PreBuild => &mut self.pre_build,
            PhaseName::Build => &mut self.build,
            PhaseName::PostBuild => &mut self.post_build,
        }
    }
}

/// One phase.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Phase {
    /// `commands`.
    pub commands: Vec<String>,
    /// `finally`: runs after `commands`, even when one of them failed.
    pub finally: Vec<String>,
    /// `on-failure`; `None` keeps CodeBuild's default transitions.
    pub on_failure: Option<OnFailure>,
}

/// `on-failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// `ABORT`: end the build (no later phase runs).
    Abort,
    /// `CONTINUE`: go on with the next phase.
    Continue,
}

/// `artifacts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    /// The primary artifact (`artifacts.files` and friends), if declared.
    pub primary: Option<ArtifactSpec>,
    /// `artifacts.secondary-artifacts`: identifier and specification.
    pub secondary: Vec<(String, ArtifactSpec)>,
}

/// How one artifact is collected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArtifactSpec {
    /// `files`: patterns relative to the base directory.
    pub files: Vec<String>,
    /// `name`.
    pub name: Option<String>,
    /// `base-directory`, relative to `CODEBUILD_SRC_DIR` (or absolute).
    pub base_directory: Option<String>,
    /// `discard-paths`: put every file at the top of the artifact.
    pub discard_paths: bool,
    /// `exclude-paths`: patterns relative to the base directory.
    pub exclude_paths: Vec<String>,
}

/// A `reports` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportGroup {
    /// The group name (or ARN) as written.
    pub name: String,
    /// `files`: patterns relative to the base directory.
    pub files: Vec<String>,
    /// `base-directory`.
    pub base_directory: Option<String>,
    /// `discard-paths` (only affects how file names are shown).
    pub discard_paths: bool,
    /// `file-format`.
    pub format: ReportFormat,
}

/// `file-format` of a report group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportFormat {
    /// `JUNITXML` (the default): test results, parsed by Cutover.
    JunitXml,
    /// Any other format (`CUCUMBERJSON`, `CLOVERXML`, ...): accepted, not read.
    Other(String),
}
