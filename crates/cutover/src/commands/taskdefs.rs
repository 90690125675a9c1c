//! `cutover task-definitions register|list|describe`.

use crate::cli::{Globals, Output, TaskDefCommand};
use crate::client::{Client, render_diagnostic};
use crate::output;
use anyhow::Context;
use cutover_api::query::TaskDefinitionListQuery;
use cutover_api::task_definitions::{
    RegisterTaskDefinitionRequest, RegisterTaskDefinitionResponse, TaskDefinitionEnvelope,
    TaskDefinitionList,
};
use std::process::ExitCode;

pub(crate) async fn run(g: &Globals, command: TaskDefCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    match command {
        TaskDefCommand::Register { file } => {
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let resp: RegisterTaskDefinitionResponse = client
                .post(
                    "/v1/task-definitions",
                    &RegisterTaskDefinitionRequest {
                        file: file.display().to_string(),
                        content,
                    },
                )
                .await?;
            for w in &resp.warnings {
                eprintln!("warning: {}", render_diagnostic(w));
            }
            let td = &resp.task_definition;
            output::print(
                g.output,
                &resp,
                &["TASK DEFINITION", "DIGEST"],
                vec![vec![td.name.clone(), td.digest.chars().take(12).collect()]],
            );
        }
        TaskDefCommand::List { family } => {
            let resp: TaskDefinitionList = client
                .get_with("/v1/task-definitions", &TaskDefinitionListQuery { family })
                .await?;
            let now = output::now_ms();
            let rows = resp
                .task_definitions
                .iter()
                .map(|t| vec![t.name.clone(), output::age(Some(t.registered_at), now)])
                .collect();
            output::print(g.output, &resp, &["TASK DEFINITION", "REGISTERED"], rows);
        }
        TaskDefCommand::Describe { name } => {
            let resp: TaskDefinitionEnvelope =
                client.get(&format!("/v1/task-definitions/{name}")).await?;
            match g.output {
                Output::Json => output::print_json(&resp)?,
                Output::Table => {
                    let td = &resp.task_definition;
                    println!(
                        "{}  (registered {} ago)",
                        td.name,
                        output::age(Some(td.registered_at), output::now_ms())
                    );
                    println!("{}", serde_json::to_string_pretty(&td.body)?);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
