//! `cutover registry gc`: one garbage collection of the registry now;
//! `cutover registry lifecycle`: one run of every lifecycle policy now.

use crate::cli::{Globals, Output, RegistryCommand};
use crate::client::Client;
use crate::output;
use cutover_api::registry::{GcResponse, LifecycleRunResponse};
use std::process::ExitCode;

pub(crate) async fn run(g: &Globals, command: RegistryCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    match command {
        RegistryCommand::Gc => {
            let resp: GcResponse = client.post("/v1/registry/gc", &()).await?;
            if g.output == Output::Json {
                output::print_json(&resp)?;
            } else {
                println!(
                    "deleted {} blobs ({} bytes) and {} stale uploads",
                    resp.blobs_deleted, resp.bytes_freed, resp.uploads_removed
                );
            }
        }
        RegistryCommand::Lifecycle => {
            let resp: LifecycleRunResponse = client.post("/v1/registry/lifecycle", &()).await?;
            if g.output == Output::Json {
                output::print_json(&resp)?;
            } else {
                for r in &resp.repositories {
                    println!("{}: {} images expired", r.repository, r.expired.len());
                    for e in &r.expired {
                        println!(
                            "  {} [{}] (rule {})",
                            e.digest,
                            e.tags.join(", "),
                            e.rule_priority
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
