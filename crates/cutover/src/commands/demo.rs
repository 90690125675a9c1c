//! `cutover demo`: the guided tour on the embedded defaults.

use crate::cli::{DemoArgs, Globals};
use std::process::ExitCode;

pub(crate) async fn run(_g: Globals, _args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the demo is being wired")
}
