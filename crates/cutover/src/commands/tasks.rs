//! `cutover tasks ls|describe`.

use crate::cli::{Globals, TaskCommand};
use crate::client::Client;
use crate::output::{self, s};
use serde_json::Value;
use std::process::ExitCode;

const HEADERS: &[&str] = &[
    "TASK",
    "SERVICE",
    "TASK DEFINITION",
    "STATUS",
    "HEALTH",
    "ENDPOINT",
    "AGE",
    "STOPPED REASON",
];

fn row(t: &Value, now: u64) -> Vec<String> {
    vec![
        s(&t["id"]),
        s(&t["service"]),
        s(&t["taskDefinition"]),
        s(&t["lastStatus"]),
        s(&t["healthStatus"]),
        s(&t["endpoint"]),
        output::age(&t["createdAt"], now),
        s(&t["stoppedReason"]),
    ]
}

/// Prints tasks as a table (used by `services describe` too).
pub(crate) fn print_tasks(tasks: &[Value]) {
    let now = output::now_ms();
    let rows: Vec<_> = tasks.iter().map(|t| row(t, now)).collect();
    print!("{}", output::table(HEADERS, &rows));
}

pub(crate) async fn run(g: &Globals, command: TaskCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let now = output::now_ms();
    match command {
        TaskCommand::Ls { service, all } => {
            let mut path = format!("/v1/tasks?all={all}");
            if let Some(s) = service {
                path.push_str(&format!("&service={s}"));
            }
            let resp = client.get(&path).await?;
            let rows = resp["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| row(t, now))
                .collect();
            output::print(g.output, &resp, HEADERS, rows);
        }
        TaskCommand::Describe { id } => {
            let resp = client.get(&format!("/v1/tasks/{id}")).await?;
            output::print(g.output, &resp, HEADERS, vec![row(&resp["task"], now)]);
        }
    }
    Ok(ExitCode::SUCCESS)
}
