//! One module per subcommand; [`dispatch`] routes to them.

mod access_keys;
mod agent;
mod agents;
mod alarms;
mod apply;
mod demo;
mod deploy;
mod host_deploy;
mod logs;
mod pipelines;
mod registry;
mod scan;
mod server;
mod services;
mod taskdefs;
mod tasks;
mod validate;
mod vulnerabilities;
pub(crate) mod watch;

use crate::cli::{Command, Globals};
use std::process::ExitCode;

pub(crate) async fn dispatch(g: Globals, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Server(args) => server::run(&g, args).await,
        Command::Proxy(args) => cutover_proxy::cli::main(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => demo::run(g, args).await,
        Command::Apply(args) => apply::run(&g, args).await,
        Command::Validate(args) => validate::run(&g, args),
        Command::TaskDefinitions { command } => taskdefs::run(&g, command).await,
        Command::Services { command } => services::run(&g, command).await,
        Command::Tasks { command } => tasks::run(&g, command).await,
        Command::Logs(args) => logs::run(&g, args).await,
        Command::Deploy(args) => deploy::run(&g, args).await,
        Command::Deployments { command } => deploy::deployments(&g, command).await,
        Command::Alarms { command } => alarms::run(&g, command).await,
        Command::AccessKeys { command } => access_keys::run(&g, command).await,
        Command::Registry { command } => registry::run(&g, command).await,
        Command::Scan(args) => scan::run(&g, args).await,
        Command::Vulnerabilities { command } => vulnerabilities::run(&g, command).await,
        Command::Pipelines { command } => pipelines::run(&g, command).await,
        Command::Builds { command } => pipelines::builds(&g, command).await,
        Command::Agent(args) => agent::run(&g, args).await,
        Command::Agents { command } => agents::run(&g, command).await,
        Command::Shim(_) | Command::SampleApp => {
            unreachable!("handled before the async runtime starts")
        }
    }
}

/// The default data directory: `$CUTOVER_DATA_DIR`, else
/// `$XDG_DATA_HOME/cutover`, else `~/.local/share/cutover`.
pub(crate) fn default_data_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return std::path::PathBuf::from(d).join("cutover");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    std::path::PathBuf::from(home).join(".local/share/cutover")
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
