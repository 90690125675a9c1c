//! The built-in demo service (`cutover sample-app`).
//!
//! A small HTTP server used by the examples and by Cutover's own deployment
//! tests. It listens on `$HOST:$PORT` (default 127.0.0.1:8080) and answers:
//!
//! - `GET /`: its version as `"<version>\n"` (from `APP_VERSION`, else the
//!   trimmed `VERSION` file in the working directory, else `unknown`);
//! - `GET /health`: 200, or 503 when `HEALTHY=false`;
//! - `GET /slow?ms=N`: answers after N milliseconds (drain tests);
//! - `GET /events?count=N&interval_ms=M`: N server-sent events, one every M ms.
//!
//! Every response carries the header `x-app-version`. Faults can be injected
//! with `FAIL_RATE` (fraction of non-health requests answered 500),
//! `LATENCY_MS` (added to every non-health request) and `START_DELAY_MS`
//! (wait before listening). On SIGTERM or SIGINT the app stops accepting,
//! lets in-flight requests finish for at most `GRACE_PERIOD_MS` (default 30 s)
//! and exits 0. It prints one line to stdout when it starts and one when it stops;
//! the first, `sample-app <version> listening on <address> (pid <pid>)`, names the
//! address it bound, so whoever starts it with `PORT=0` learns the port the kernel picked.

mod config;
mod server;

pub use config::{ConfigError, SampleAppConfig, UNKNOWN_VERSION};
pub use server::{VERSION_HEADER, serve};

use std::io::Write;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

/// Runs the sample app until SIGTERM or SIGINT, then shuts down gracefully.
///
/// Signal handlers are installed before the start delay, so a stop request
/// during `START_DELAY_MS` also ends the app cleanly.
pub async fn run(cfg: SampleAppConfig) -> std::io::Result<()> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let stop = async move {
        tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        }
    };
    tokio::pin!(stop);

    if !cfg.start_delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(cfg.start_delay) => {}
            signal = &mut stop => {
                say(format_args!("sample-app {} stopped by {signal} before listening", cfg.version));
                return Ok(());
            }
        }
    }
    let listener = TcpListener::bind((cfg.host, cfg.port)).await?;
    let addr = listener.local_addr()?;
    let version = cfg.version.clone();
    say(format_args!(
        "sample-app {version} listening on {addr} (pid {})",
        std::process::id()
    ));
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        let _ = signal_tx.send((&mut stop).await);
    };
    serve(cfg, listener, shutdown).await?;
    let signal = signal_rx.await.unwrap_or("shutdown");
    say(format_args!("sample-app {version} stopped by {signal}"));
    Ok(())
}

/// Entry point for `cutover sample-app`: reads the configuration from the
/// environment, runs the app on a single-threaded tokio runtime and returns
/// the process exit code (0 after a graceful stop, 2 for a bad configuration,
/// 1 for any other error).
pub fn main() -> i32 {
    let cfg = match SampleAppConfig::from_env() {
        Ok(cfg) => cfg,
        Err(error) => {
            eprintln!("sample-app: {error}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sample-app: cannot start the async runtime: {error}");
            return 1;
        }
    };
    match runtime.block_on(run(cfg)) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("sample-app: {error}");
            1
        }
    }
}

/// Writes one line to stdout and flushes it, ignoring a closed stdout.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
