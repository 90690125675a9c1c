//! `cutover server`: the control plane in the foreground.

use crate::cli::ServerArgs;
use std::process::ExitCode;

pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let cfg = cutover_server::ServerConfig {
        data_dir: args.data_dir.unwrap_or_else(super::default_data_dir),
        listen: args.listen,
        cutover_bin: None,
        docker_host: args.docker_host,
        token: std::env::var("CUTOVER_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    cutover_server::run(cfg, super::shutdown_signal(), None).await?;
    Ok(ExitCode::SUCCESS)
}
