//! `cutover alarms ls|describe|history|set-state`.

use super::watch::clock;
use crate::cli::{AlarmCommand, Globals, Output};
use crate::client::Client;
use crate::output::{self, wire};
use cutover_api::alarms::{
    AlarmDescription, AlarmList, SetAlarmStateRequest, SetAlarmStateResponse,
};
use std::process::ExitCode;

pub(crate) async fn run(g: &Globals, command: AlarmCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let now = output::now_ms();
    match command {
        AlarmCommand::Ls => {
            let resp: AlarmList = client.get("/v1/alarms").await?;
            let rows = resp
                .alarms
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        wire(&a.state),
                        output::age(Some(a.updated_at), now),
                        a.reason.clone(),
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
            let resp: AlarmDescription = client.get(&format!("/v1/alarms/{name}")).await?;
            if g.output == Output::Json {
                output::print_json(&resp)?;
                return Ok(ExitCode::SUCCESS);
            }
            let a = &resp.alarm;
            println!("{}  {}  ({})", a.name, wire(&a.state), a.reason);
            println!("{}", serde_json::to_string_pretty(&a.spec)?);
            println!("\nHISTORY");
            for e in &resp.history {
                println!("  {}  {}", clock(e.at), e.message);
            }
        }
        AlarmCommand::SetState {
            name,
            state,
            reason,
        } => {
            let resp: SetAlarmStateResponse = client
                .put(
                    &format!("/v1/alarms/{name}/state"),
                    &SetAlarmStateRequest { state, reason },
                )
                .await?;
            output::print(
                g.output,
                &resp,
                &["ALARM", "REQUESTED"],
                vec![vec![name, state.to_string()]],
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
