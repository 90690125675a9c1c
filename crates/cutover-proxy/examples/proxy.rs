//! `cutover proxy` as a standalone example binary, for benchmarks before the `cutover` binary
//! is wired: `cargo run --release -p cutover-proxy --example proxy -- --config lb.yaml`.

use clap::Parser;
use cutover_proxy::cli::{self, ProxyArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ProxyArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    cli::main(Cli::parse().args).await
}
