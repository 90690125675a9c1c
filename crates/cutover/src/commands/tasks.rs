//! `cutover tasks ls|describe`.

use crate::cli::{Globals, TaskCommand};
use crate::client::Client;
use crate::output::{self, opt, wire};
use cutover_api::query::TaskListQuery;
use cutover_api::tasks::{Task, TaskEnvelope, TaskList};
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
    "DIGEST",
];

fn row(t: &Task, now: u64) -> Vec<String> {
    vec![
        t.id.clone(),
        t.service.clone(),
        t.task_definition.clone(),
        wire(&t.last_status),
        wire(&t.health_status),
        opt(t.endpoint.as_deref()),
        output::age(Some(t.created_at), now),
        opt(t.stopped_reason.as_deref()),
        output::short_digest(t.image_digest.as_deref()),
    ]
}

/// Prints tasks as a table (used by `services describe` too).
pub(crate) fn print_tasks(tasks: &[Task]) {
    let now = output::now_ms();
    let rows: Vec<_> = tasks.iter().map(|t| row(t, now)).collect();
    print!("{}", output::table(HEADERS, &rows));
}

pub(crate) async fn run(g: &Globals, command: TaskCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let now = output::now_ms();
    match command {
        TaskCommand::Ls { service, all } => {
            let query = TaskListQuery {
                service,
                all,
                limit: None,
            };
            let resp: TaskList = client.get_with("/v1/tasks", &query).await?;
            let rows = resp.tasks.iter().map(|t| row(t, now)).collect();
            output::print(g.output, &resp, HEADERS, rows);
        }
        TaskCommand::Describe { id } => {
            let resp: TaskEnvelope = client.get(&format!("/v1/tasks/{id}")).await?;
            output::print(g.output, &resp, HEADERS, vec![row(&resp.task, now)]);
        }
    }
    Ok(ExitCode::SUCCESS)
}
