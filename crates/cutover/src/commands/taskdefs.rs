//! `cutover task-definitions register|list|describe`.

use crate::cli::{Globals, Output, TaskDefCommand};
use crate::client::{Client, render_diagnostic};
use crate::output::{self, s};
use anyhow::Context;
use serde_json::json;
use std::process::ExitCode;

pub(crate) async fn run(g: &Globals, command: TaskDefCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    match command {
        TaskDefCommand::Register { file } => {
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let resp = client
                .post(
                    "/v1/task-definitions",
                    &json!({"file": file.display().to_string(), "content": content}),
                )
                .await?;
            for w in resp["warnings"].as_array().into_iter().flatten() {
                eprintln!("warning: {}", render_diagnostic(w));
            }
            let td = &resp["taskDefinition"];
            output::print(
                g.output,
                &resp,
                &["TASK DEFINITION", "DIGEST"],
                vec![vec![
                    s(&td["name"]),
                    s(&td["digest"]).chars().take(12).collect(),
                ]],
            );
        }
        TaskDefCommand::List { family } => {
            let path = match family {
                Some(f) => format!("/v1/task-definitions?family={f}"),
                None => "/v1/task-definitions".into(),
            };
            let resp = client.get(&path).await?;
            let now = output::now_ms();
            let rows = resp["taskDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| vec![s(&t["name"]), output::age(&t["registeredAt"], now)])
                .collect();
            output::print(g.output, &resp, &["TASK DEFINITION", "REGISTERED"], rows);
        }
        TaskDefCommand::Describe { name } => {
            let resp = client.get(&format!("/v1/task-definitions/{name}")).await?;
            match g.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&resp)?),
                Output::Table => {
                    let td = &resp["taskDefinition"];
                    println!(
                        "{}  (registered {} ago)",
                        s(&td["name"]),
                        output::age(&td["registeredAt"], output::now_ms())
                    );
                    println!("{}", serde_json::to_string_pretty(&td["body"])?);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
