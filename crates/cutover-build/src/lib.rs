//! CodeBuild for Cutover: `buildspec.yml` parsed with located errors, and
//! builds run for real on the host.
//!
//! - [`spec::parse_buildspec`] reads a buildspec (version 0.2, or 0.1) and
//!   rejects a broken one with every mistake located
//!   (`buildspec.yml:12:9: phases.build.commands[2]: expected a string, found a mapping`),
//!   before anything runs.
//! - [`run::run_build`] runs a parsed buildspec in one shell session on the
//!   host, streaming its log lines as they come (secrets masked), and
//!   returns the [`run::BuildOutcome`]: phase records, exported variables,
//!   artifacts, test reports. [`run::run_build_in`] runs it in a container
//!   the caller provides instead ([`container`]).
//!
//! The decisions (which phase runs next, what a build's status is, which
//! files a pattern selects and where they land) are pure functions in
//! [`plan`], [`glob`] and [`artifacts`], unit-tested without running a shell;
//! the shell protocol lives in `shell`.

pub mod artifacts;
pub mod cache;
pub mod container;
pub mod glob;
pub mod plan;
pub mod reports;
pub mod run;
pub mod safe_fs;
pub mod spec;
pub mod vars;

mod mask;
pub mod process;
mod shell;

pub use container::{BuildContainer, container_mounts};
pub use plan::BuildStatus;
pub use run::{BuildOutcome, BuildRequest, LogLine, run_build, run_build_in};
pub use spec::{BuildSpec, parse_buildspec};
