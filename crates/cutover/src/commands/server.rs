//! `cutover server`: the control plane in the foreground.
//!
//! The API token comes from `--token-file`, else `--token` or
//! `CUTOVER_TOKEN` (the global option every client command shares). A token
//! given on the command line works but is visible to every local user in
//! `ps`, so the server says so.

use crate::cli::{Globals, ServerArgs};
use anyhow::Context;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

pub(crate) async fn run(g: &Globals, args: ServerArgs) -> anyhow::Result<ExitCode> {
    let token = match &args.token_file {
        Some(path) => Some(read_token_file(path)?),
        None => {
            let token = g.token.clone().filter(|t| !t.is_empty());
            let from_env = std::env::var("CUTOVER_TOKEN").ok();
            if token.is_some() && token != from_env {
                tracing::warn!(
                    "the API token was given with --token: other local users can read it \
                     in the process list; prefer --token-file or CUTOVER_TOKEN"
                );
            }
            token
        }
    };
    let cfg = cutover_server::ServerConfig {
        data_dir: args.data_dir.unwrap_or_else(super::default_data_dir),
        listen: args.listen,
        cutover_bin: None,
        docker_host: args.docker_host,
        token,
        keep_setuid_images: args.keep_setuid_images,
        aws_region: args.aws_region,
        default_runtime: args.default_runtime,
        node_proxies: args.node_proxies,
        node_proxy_token: args
            .node_proxy_token_file
            .as_deref()
            .map(read_token_file)
            .transpose()?,
        insecure_registries: args.insecure_registries,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(cutover_proxy::config::TlsConfig {
                cert_file: cert.display().to_string(),
                key_file: key.display().to_string(),
            }),
            _ => None,
        },
    };
    cutover_server::run(cfg, super::shutdown_signal(), None).await?;
    Ok(ExitCode::SUCCESS)
}

/// Reads a token file, refusing one that other users can read (as ssh
/// refuses such a key) and an empty one.
fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        meta.is_file(),
        "{}: the token file is not a regular file",
        path.display()
    );
    anyhow::ensure!(
        meta.mode() & 0o077 == 0,
        "{}: the token file is readable by other users (mode {:o}); run chmod 600 on it",
        path.display(),
        meta.mode() & 0o777
    );
    anyhow::ensure!(
        meta.len() <= 4096,
        "{}: a token file holds one token",
        path.display()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let token = text.trim().to_string();
    anyhow::ensure!(
        !token.is_empty(),
        "{}: the token file is empty",
        path.display()
    );
    Ok(token)
}
