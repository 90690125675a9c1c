//! `cutover services ls|describe|scale|delete`.

use crate::cli::{Globals, Output, ServiceCommand};
use crate::client::Client;
use crate::output::{self, s};
use serde_json::{Value, json};
use std::process::ExitCode;

fn row(svc: &Value) -> Vec<String> {
    vec![
        s(&svc["name"]),
        s(&svc["status"]),
        s(&svc["taskDefinition"]),
        s(&svc["desiredCount"]),
        s(&svc["runningCount"]),
        s(&svc["healthyCount"]),
        s(&svc["runtime"]),
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
            let resp = client.get("/v1/services").await?;
            let rows = resp["services"]
                .as_array()
                .into_iter()
                .flatten()
                .map(row)
                .collect();
            output::print(g.output, &resp, HEADERS, rows);
        }
        ServiceCommand::Describe { name } => {
            let resp = client.get(&format!("/v1/services/{name}")).await?;
            if g.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&resp)?);
                return Ok(ExitCode::SUCCESS);
            }
            let svc = &resp["service"];
            print!("{}", output::table(HEADERS, &[row(svc)]));
            println!("\nTASKS");
            super::tasks::print_tasks(svc["tasks"].as_array().map(Vec::as_slice).unwrap_or(&[]));
            println!("\nEVENTS");
            for e in svc["events"].as_array().into_iter().flatten() {
                println!(
                    "  {:>5} ago  {}",
                    output::age(&e["at"], output::now_ms()),
                    s(&e["message"])
                );
            }
        }
        ServiceCommand::Scale { name, desired } => {
            let resp = client
                .put(
                    &format!("/v1/services/{name}/desired-count"),
                    &json!({"desiredCount": desired}),
                )
                .await?;
            output::print(g.output, &resp, HEADERS, vec![row(&resp["service"])]);
        }
        ServiceCommand::Delete { name } => {
            let resp = client.delete(&format!("/v1/services/{name}")).await?;
            output::print(g.output, &resp, HEADERS, vec![row(&resp["service"])]);
        }
    }
    Ok(ExitCode::SUCCESS)
}
