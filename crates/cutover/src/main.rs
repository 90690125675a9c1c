//! The `cutover` binary: thin wiring of the command line onto the library
//! crates. Each subcommand lives in `commands/`.

mod cli;
mod client;
mod commands;
mod feed;
mod output;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // The shim and the sample app are long-lived children with their own
    // minimal setup; everything else shares the tracing and runtime setup.
    match args.command {
        cli::Command::Shim(shim) => ExitCode::from(cutover_runtime::shim_main(shim.task_dir) as u8),
        cli::Command::SampleApp => ExitCode::from(cutover_sample_app::main() as u8),
        command => {
            init_tracing(&command);
            let globals = args.globals;
            let rt = match build_runtime(&command) {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(commands::dispatch(globals, command)) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn build_runtime(command: &cli::Command) -> std::io::Result<tokio::runtime::Runtime> {
    match command {
        // The data plane decides its own threading (`--workers`).
        cli::Command::Proxy(_) | cli::Command::Server(_) | cli::Command::Demo(_) => {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
        }
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
}

fn init_tracing(command: &cli::Command) {
    use tracing_subscriber::EnvFilter;
    let default = match command {
        cli::Command::Server(_) | cli::Command::Proxy(_) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_env("CUTOVER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("CUTOVER_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colours only on a terminal: log files stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
