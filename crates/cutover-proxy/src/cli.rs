//! `cutover proxy`: without a subcommand runs the load balancer (`--config lb.yaml`); the
//! subcommands drive a running one through its admin API.
//!
//! The proxy runs on its own OS thread and tokio runtime, whatever runtime the caller uses: a
//! current-thread runtime by default (one core, like `nginx` with one worker), a multi-thread
//! runtime with `--workers N`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use crate::client::AdminClient;
use crate::{ProxyOptions, run};

/// Arguments of `cutover proxy`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ProxyArgs {
    /// The configuration file (YAML, or JSON by extension); reloaded on SIGHUP.
    #[arg(long, env = "CUTOVER_PROXY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the last applied configuration is kept; served at start without --config.
    #[arg(long, env = "CUTOVER_PROXY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Worker threads (1: a single-threaded runtime).
    #[arg(
        long,
        env = "CUTOVER_PROXY_WORKERS",
        default_value_t = 1,
        value_name = "N"
    )]
    pub workers: usize,
    /// Admin API address, overriding the configuration's `admin:`.
    #[arg(long, env = "CUTOVER_PROXY_ADMIN_ADDRESS", value_name = "ADDR")]
    pub admin_address: Option<String>,
    /// A file holding the admin API's bearer token (mode 0600 or stricter); wins over
    /// CUTOVER_PROXY_TOKEN and the configuration's adminToken.
    #[arg(long, env = "CUTOVER_PROXY_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Write the admin API's bound address to this file (0600) once it listens; with
    /// `--admin-address 127.0.0.1:0` the kernel picks the port.
    #[arg(long, env = "CUTOVER_PROXY_ADMIN_ADDRESS_FILE", value_name = "FILE")]
    pub admin_address_file: Option<PathBuf>,
    /// A subcommand talking to a running proxy.
    #[command(subcommand)]
    pub command: Option<ProxyCommand>,
}

/// Subcommands of `cutover proxy`.
#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Version, uptime and listeners.
    Status(AdminArgs),
    /// Health of every target.
    Health(AdminArgs),
    /// Make the running proxy reload its configuration file.
    Reload(AdminArgs),
    /// Set forward weights: `set-weights --listener prod blue=80 green=20`.
    SetWeights {
        /// Listener name.
        #[arg(long)]
        listener: String,
        /// Rule index; the default action when absent.
        #[arg(long)]
        rule: Option<usize>,
        /// `GROUP=WEIGHT` pairs.
        #[arg(required = true, value_name = "GROUP=WEIGHT")]
        weights: Vec<String>,
        /// Admin API connection.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show a target group's targets, or replace them: `targets blue 127.0.0.1:19001`.
    Targets {
        /// Target group.
        group: String,
        /// New targets (`host:port`); removed ones drain.
        #[arg(value_name = "ADDR")]
        targets: Vec<String>,
        /// Remove every target.
        #[arg(long, conflicts_with = "targets")]
        clear: bool,
        /// Admin API connection.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Print the running configuration.
    Config(AdminArgs),
}

/// Where the admin API is and how to print answers.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin API URL.
    #[arg(
        long,
        env = "CUTOVER_PROXY_ADMIN",
        default_value = "http://127.0.0.1:19900"
    )]
    pub admin: String,
    /// Bearer token (prefer --token-file: a command line is visible to other local users).
    #[arg(long, env = "CUTOVER_PROXY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the bearer token (mode 0600 or stricter); wins over --token.
    #[arg(long, env = "CUTOVER_PROXY_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Output format of the subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// JSON, as the admin API answers.
    Json,
    /// Human-readable text.
    Table,
}

impl AdminArgs {
    fn client(&self) -> anyhow::Result<AdminClient> {
        let token = match &self.token_file {
            Some(path) => crate::auth::read_token_file(path).map_err(anyhow::Error::msg)?,
            None => self.token.clone().unwrap_or_default(),
        };
        Ok(AdminClient::new(&self.admin).with_token(token))
    }
}

/// Runs `cutover proxy ...`.
pub async fn main(args: ProxyArgs) -> anyhow::Result<()> {
    let Some(command) = args.command else {
        let opts = ProxyOptions {
            config_path: args.config,
            state_dir: args.state_dir,
            workers: args.workers.max(1),
            admin_address: args.admin_address,
            admin_token_file: args.admin_token_file,
            admin_address_file: args.admin_address_file,
            clock: Default::default(),
        };
        return serve(opts).await;
    };
    match command {
        ProxyCommand::Status(a) => {
            let s = a.client()?.status().await?;
            if a.output == Output::Json {
                return print_json(&s);
            }
            println!("version {}  uptime {}s", s.version, s.uptime_seconds);
            println!(
                "{:<16} {:<24} {:<5} {:>8}",
                "LISTENER", "ADDRESS", "TLS", "CONNS"
            );
            for l in s.listeners {
                println!(
                    "{:<16} {:<24} {:<5} {:>8}",
                    l.name, l.address, l.tls, l.active_connections
                );
            }
        }
        ProxyCommand::Health(a) => {
            let h = a.client()?.health().await?;
            if a.output == Output::Json {
                return print_json(&h);
            }
            print_health(&h, None);
        }
        ProxyCommand::Reload(a) => {
            let v = a.client()?.reload().await?;
            print_version(a.output, v)?;
        }
        ProxyCommand::SetWeights {
            listener,
            rule,
            weights,
            admin,
        } => {
            let mut pairs = Vec::new();
            for w in &weights {
                let (g, n) = w
                    .split_once('=')
                    .with_context(|| format!("{w:?}: expected GROUP=WEIGHT"))?;
                let n: u32 = n
                    .parse()
                    .with_context(|| format!("{w:?}: invalid weight"))?;
                pairs.push((g, n));
            }
            let v = admin.client()?.set_weights(&listener, rule, &pairs).await?;
            print_version(admin.output, v)?;
        }
        ProxyCommand::Targets {
            group,
            targets,
            clear,
            admin,
        } => {
            let client = admin.client()?;
            if targets.is_empty() && !clear {
                let h = client.health().await?;
                let g = h
                    .group(&group)
                    .with_context(|| format!("no target group {group:?}"))?;
                if admin.output == Output::Json {
                    return print_json(g);
                }
                print_health(&h, Some(&group));
            } else {
                let v = client.set_targets(&group, &targets).await?;
                print_version(admin.output, v)?;
            }
        }
        ProxyCommand::Config(a) => {
            let c = a.client()?.get_config().await?;
            if a.output == Output::Json {
                return print_json(&c);
            }
            // JSON is YAML 1.2: the output reads back as an `lb.yaml`, without a YAML writer.
            println!("# version {}", c.version);
            println!("{}", serde_json::to_string_pretty(&c.config)?);
        }
    }
    Ok(())
}

/// Runs the proxy on its own thread and runtime until SIGINT or SIGTERM.
async fn serve(opts: ProxyOptions) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let workers = opts.workers;
    std::thread::Builder::new()
        .name("cutover-proxy".into())
        .spawn(move || {
            let runtime = if workers <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .enable_all()
                    .build()
            };
            let result = match runtime {
                Ok(rt) => rt
                    .block_on(run(opts, shutdown_signal()))
                    .map_err(anyhow::Error::from),
                Err(e) => Err(anyhow::Error::from(e).context("cannot start the proxy runtime")),
            };
            let _ = tx.send(result);
        })
        .context("cannot start the proxy thread")?;
    rx.await.context("the proxy thread ended unexpectedly")?
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_version(output: Output, version: u64) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(&crate::api::VersionResponse { version }),
        Output::Table => {
            println!("version {version} in force");
            Ok(())
        }
    }
}

fn print_health(h: &crate::api::HealthReport, only: Option<&str>) {
    println!(
        "{:<16} {:<24} {:<10} {:>9}  REASON",
        "TARGET GROUP", "TARGET", "STATE", "IN FLIGHT"
    );
    for g in &h.target_groups {
        if only.is_some_and(|o| o != g.name) {
            continue;
        }
        if g.targets.is_empty() {
            println!(
                "{:<16} {:<24} {:<10} {:>9}  no targets",
                g.name, "-", "-", 0
            );
        }
        for t in &g.targets {
            println!(
                "{:<16} {:<24} {:<10} {:>9}  {}",
                g.name,
                t.address,
                t.state.as_str(),
                t.in_flight,
                t.reason
            );
        }
    }
}
