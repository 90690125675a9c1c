//! `cutover services ls|describe|scale|delete`.

use crate::cli::{Globals, Output, ServiceCommand};
use crate::client::Client;
use crate::output::{self, wire};
use cutover_api::services::{ScaleRequest, Service, ServiceEnvelope, ServiceList};
use std::process::ExitCode;

fn row(svc: &Service) -> Vec<String> {
    vec![
        svc.name.clone(),
        wire(&svc.status),
        svc.task_definition.clone(),
        svc.desired_count.to_string(),
        svc.running_count.to_string(),
        svc.healthy_count.to_string(),
        svc.runtime.clone(),
    ]
}

const HEADERS: &[&str] = &[
    "NAME",
    "STATUS",
    "TASK DEFINITION",
    "DESIRED",
    "RUNNING",
    "HEALTHY",
    "RUNTIME",
];

pub(crate) async fn run(g: &Globals, command: ServiceCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    match command {
        ServiceCommand::Ls => {
            let resp: ServiceList = client.get("/v1/services").await?;
            let rows = resp.services.iter().map(row).collect();
            output::print(g.output, &resp, HEADERS, rows);
        }
        ServiceCommand::Describe { name } => {
            let resp: ServiceEnvelope = client.get(&format!("/v1/services/{name}")).await?;
            if g.output == Output::Json {
                output::print_json(&resp)?;
                return Ok(ExitCode::SUCCESS);
            }
            let svc = &resp.service;
            print!("{}", output::table(HEADERS, &[row(svc)]));
            println!("\nTASKS");
            super::tasks::print_tasks(svc.tasks.as_deref().unwrap_or_default());
            println!("\nEVENTS");
            let now = output::now_ms();
            for e in svc.events.iter().flatten() {
                println!("  {:>5} ago  {}", output::age(Some(e.at), now), e.message);
            }
        }
        ServiceCommand::Scale { name, desired } => {
            let resp: ServiceEnvelope = client
                .put(
                    &format!("/v1/services/{name}/desired-count"),
                    &ScaleRequest {
                        desired_count: desired,
                    },
                )
                .await?;
            output::print(g.output, &resp, HEADERS, vec![row(&resp.service)]);
        }
        ServiceCommand::Delete { name } => {
            let resp: ServiceEnvelope = client.delete(&format!("/v1/services/{name}")).await?;
            output::print(g.output, &resp, HEADERS, vec![row(&resp.service)]);
        }
    }
    Ok(ExitCode::SUCCESS)
}
