//! `cutover alarms ls|describe|history|set-state`.

use super::watch::clock;
use crate::cli::{AlarmCommand, Globals, Output};
use crate::client::Client;
use crate::output::{self, s};
use serde_json::json;
use std::process::ExitCode;

pub(crate) async fn run(g: &Globals, command: AlarmCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let now = output::now_ms();
    match command {
        AlarmCommand::Ls => {
            let resp = client.get("/v1/alarms").await?;
            let rows = resp["alarms"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    vec![
                        s(&a["name"]),
                        s(&a["state"]),
                        output::age(&a["updatedAt"], now),
                        s(&a["reason"]),
                    ]
                })
                .collect();
            output::print(
                g.output,
                &resp,
                &["ALARM", "STATE", "SINCE", "REASON"],
                rows,
            );
        }
        AlarmCommand::Describe { name } | AlarmCommand::History { name } => {
            let resp = client.get(&format!("/v1/alarms/{name}")).await?;
            if g.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&resp)?);
                return Ok(ExitCode::SUCCESS);
            }
            let a = &resp["alarm"];
            println!(
                "{}  {}  ({})",
                s(&a["name"]),
                s(&a["state"]),
                s(&a["reason"])
            );
            println!("{}", serde_json::to_string_pretty(&a["spec"])?);
            println!("\nHISTORY");
            for e in resp["history"].as_array().into_iter().flatten() {
                println!("  {}  {}", clock(&e["at"]), s(&e["message"]));
            }
        }
        AlarmCommand::SetState {
            name,
            state,
            reason,
        } => {
            let resp = client
                .put(
                    &format!("/v1/alarms/{name}/state"),
                    &json!({"state": state, "reason": reason}),
                )
                .await?;
            output::print(
                g.output,
                &resp,
                &["ALARM", "REQUESTED"],
                vec![vec![name, state]],
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
