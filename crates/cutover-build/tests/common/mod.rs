//! The fixtures of the build tests: a buildspec run for real on the host
//! in temporary directories.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use cutover_build::plan::{PhaseStatus, PhaseType};
use cutover_build::run::{BuildOutcome, BuildRequest, LogLine, LogSource};
use cutover_build::{parse_buildspec, run_build};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub struct Build {
    pub outcome: BuildOutcome,
    pub log: Vec<LogLine>,
    pub src: TempDir,
    pub work: TempDir,
}

impl Build {
    /// The output lines of the commands.
    pub fn output(&self) -> Vec<&str> {
        self.log
            .iter()
            .filter(|l| l.source == LogSource::Output)
            .map(|l| l.text.as_str())
            .collect()
    }

    pub fn phase(&self, phase: PhaseType) -> PhaseStatus {
        self.outcome
            .phases
            .iter()
            .find(|p| p.phase == phase)
            .map(|p| p.status)
            .unwrap_or_else(|| panic!("no record of {phase:?}"))
    }
}

pub fn request(src: &Path, work: &Path) -> BuildRequest {
    BuildRequest::new("web-build", 7, src.to_path_buf(), work.to_path_buf())
}

pub async fn build_with(
    yaml: &str,
    setup: impl FnOnce(&Path),
    adjust: impl FnOnce(&mut BuildRequest),
) -> Build {
    let spec = parse_buildspec("buildspec.yml", yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .value;
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    setup(src.path());
    let mut req = request(src.path(), work.path());
    adjust(&mut req);
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let outcome = run_build(
        &spec,
        req,
        move |l| sink.lock().unwrap().push(l),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let log = log.lock().unwrap().clone();
    Build {
        outcome,
        log,
        src,
        work,
    }
}

pub async fn build(yaml: &str) -> Build {
    build_with(yaml, |_| {}, |_| {}).await
}
