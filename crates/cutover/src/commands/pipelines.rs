//! `cutover pipelines ls|get|start|executions|approve|reject|retry|stop|...`
//! and `cutover builds ls|get|logs`.

use super::watch::clock;
use crate::cli::{ApprovalArgs, BuildCommand, Globals, Output, PipelineCommand};
use crate::client::Client;
use crate::feed::Feed;
use crate::output::{self, opt, wire};
use anyhow::Context;
use cutover_api::builds::{BuildEnvelope, BuildList, BuildLog};
use cutover_api::pipelines::{
    ApprovalRequest, ApprovalResponse, ExecutionList, ExecutionView, PipelineDescription,
    PipelineList, RetryStageRequest, RetryStageResponse, StartExecutionRequest,
    StartExecutionResponse, StopExecutionRequest, StopExecutionResponse, TransitionRequest,
    TransitionResponse,
};
use cutover_api::query::{BuildListQuery, BuildLogQuery};
use cutover_api::stream::{StreamEvent, Topic};
use cutover_pipeline::engine::{ExecutionStatus, RetryMode};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// How often `builds logs --follow` polls (build logs have no live feed).
const POLL: Duration = Duration::from_millis(250);

fn parse_variables(vars: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    vars.iter()
        .map(|v| {
            let (k, val) = v
                .split_once('=')
                .with_context(|| format!("--variable {v:?}: expected NAME=VALUE"))?;
            Ok((k.to_string(), val.to_string()))
        })
        .collect()
}

fn execution_rows(list: &[ExecutionView], now: u64) -> Vec<Vec<String>> {
    list.iter()
        .map(|e| {
            let stage = e
                .stages
                .last()
                .map(|st| format!("{} {}", st.name, wire(&st.status)))
                .unwrap_or_else(|| "-".into());
            vec![
                e.id.clone(),
                wire(&e.status),
                stage,
                e.trigger.clone(),
                output::age(Some(e.started_at), now),
                opt(e.message.as_deref()),
            ]
        })
        .collect()
}

const EXECUTION_HEADERS: &[&str] = &["EXECUTION", "STATUS", "STAGE", "TRIGGER", "AGE", "MESSAGE"];

pub(crate) async fn run(g: &Globals, command: PipelineCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let now = output::now_ms();
    match command {
        PipelineCommand::Ls => {
            let resp: PipelineList = client.get("/v1/pipelines").await?;
            let rows = resp
                .pipelines
                .iter()
                .map(|p| {
                    let l = p.latest_execution.as_ref();
                    vec![
                        p.name.clone(),
                        wire(&p.execution_mode),
                        p.stages.join(" > "),
                        opt(l.map(|l| wire(&l.status))),
                        output::age(l.map(|l| l.started_at), now),
                    ]
                })
                .collect();
            output::print(
                g.output,
                &resp,
                &["PIPELINE", "MODE", "STAGES", "LATEST", "AGE"],
                rows,
            );
        }
        PipelineCommand::Get { name } => {
            let resp: PipelineDescription = client.get(&format!("/v1/pipelines/{name}")).await?;
            if g.output == Output::Json {
                output::print_json(&resp)?;
                return Ok(ExitCode::SUCCESS);
            }
            let p = &resp.pipeline;
            println!("{}  ({})", p.name, wire(&p.execution_mode));
            for st in &p.stages {
                let stage = &st.name;
                let disabled = resp.transitions.get(stage).is_some_and(|t| !t.enabled);
                let actions: Vec<String> = st
                    .actions
                    .iter()
                    .map(|a| format!("{} ({})", a.name, a.action_type_id.provider))
                    .collect();
                println!(
                    "  {stage}{}: {}",
                    if disabled {
                        " [transition disabled]"
                    } else {
                        ""
                    },
                    actions.join(", ")
                );
            }
            if let Some(latest) = &resp.latest_execution {
                println!("\nLATEST EXECUTION {}  {}", latest.id, wire(&latest.status));
                print_stages(latest);
            }
            println!("\nEVENTS");
            for e in &resp.events {
                println!("  {}  {}", clock(e.at), e.message);
            }
        }
        PipelineCommand::Start {
            name,
            variables,
            wait,
        } => {
            let body = StartExecutionRequest {
                variables: parse_variables(&variables)?,
                source_revisions: BTreeMap::new(),
                trigger: Some("manual (cli)".into()),
            };
            let resp: StartExecutionResponse = client
                .post(&format!("/v1/pipelines/{name}/executions"), &body)
                .await?;
            let id = resp.execution_id.clone();
            if !wait {
                output::print(
                    g.output,
                    &resp,
                    &["PIPELINE", "EXECUTION"],
                    vec![vec![name, id]],
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!("execution {id} of pipeline {name} started");
            return follow_execution(&client, &name, &id).await;
        }
        PipelineCommand::Executions { name } => {
            let resp: ExecutionList = client
                .get(&format!("/v1/pipelines/{name}/executions"))
                .await?;
            let rows = execution_rows(&resp.executions, now);
            output::print(g.output, &resp, EXECUTION_HEADERS, rows);
        }
        PipelineCommand::Approve(args) => answer(g, &client, args, true).await?,
        PipelineCommand::Reject(args) => answer(g, &client, args, false).await?,
        PipelineCommand::Retry {
            name,
            execution,
            stage,
            all_actions,
        } => {
            let mode = if all_actions {
                RetryMode::AllActions
            } else {
                RetryMode::FailedActions
            };
            let resp: RetryStageResponse = client
                .post(
                    &format!("/v1/pipelines/{name}/executions/{execution}/retry"),
                    &RetryStageRequest {
                        stage: stage.clone(),
                        mode,
                    },
                )
                .await?;
            output::print(
                g.output,
                &resp,
                &["EXECUTION", "STAGE", "RETRY"],
                vec![vec![execution, stage, wire(&mode)]],
            );
        }
        PipelineCommand::Stop {
            name,
            execution,
            abandon,
            reason,
        } => {
            let resp: StopExecutionResponse = client
                .post(
                    &format!("/v1/pipelines/{name}/executions/{execution}/stop"),
                    &StopExecutionRequest { abandon, reason },
                )
                .await?;
            output::print(
                g.output,
                &resp,
                &["EXECUTION", "STOP"],
                vec![vec![
                    execution,
                    if abandon {
                        "abandon"
                    } else {
                        "finish running actions"
                    }
                    .into(),
                ]],
            );
        }
        PipelineCommand::DisableTransition {
            name,
            stage,
            reason,
        } => {
            transition(g, &client, &name, &stage, false, &reason).await?;
        }
        PipelineCommand::EnableTransition { name, stage } => {
            transition(g, &client, &name, &stage, true, "enabled from the cli").await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Answers a manual approval: approved or rejected, with a comment.
async fn answer(
    g: &Globals,
    client: &Client,
    a: ApprovalArgs,
    approved: bool,
) -> anyhow::Result<()> {
    let body = ApprovalRequest {
        execution: a.execution,
        stage: a.stage.clone(),
        action: a.action.clone(),
        approved,
        summary: a.summary,
        by: Some(std::env::var("USER").unwrap_or_else(|_| "cli".into())),
    };
    let resp: ApprovalResponse = client
        .post(&format!("/v1/pipelines/{}/approvals", a.name), &body)
        .await?;
    output::print(
        g.output,
        &resp,
        &["EXECUTION", "STAGE", "ACTION", "ANSWER"],
        vec![vec![
            resp.execution_id.clone(),
            a.stage,
            a.action,
            if approved { "approved" } else { "rejected" }.into(),
        ]],
    );
    Ok(())
}

async fn transition(
    g: &Globals,
    client: &Client,
    name: &str,
    stage: &str,
    enabled: bool,
    reason: &str,
) -> anyhow::Result<()> {
    let resp: TransitionResponse = client
        .put(
            &format!("/v1/pipelines/{name}/transitions/{stage}"),
            &TransitionRequest {
                enabled,
                reason: reason.to_string(),
            },
        )
        .await?;
    output::print(
        g.output,
        &resp,
        &["STAGE", "TRANSITION"],
        vec![vec![
            stage.to_string(),
            if enabled { "enabled" } else { "disabled" }.into(),
        ]],
    );
    Ok(())
}

fn print_stages(e: &ExecutionView) {
    for st in &e.stages {
        println!("  {}  {}", st.name, wire(&st.status));
        for a in &st.actions {
            println!(
                "    {}  {} (attempt {})  {}",
                a.name,
                wire(&a.status),
                a.attempt,
                opt(a.message.as_deref())
            );
        }
    }
}

/// Status lines of an execution: one per stage and per action.
fn progress_lines(e: &ExecutionView) -> BTreeMap<String, String> {
    let mut lines = BTreeMap::new();
    for (i, st) in e.stages.iter().enumerate() {
        let stage = &st.name;
        lines.insert(
            format!("{i:03}"),
            format!("stage {stage}: {}", wire(&st.status)),
        );
        for (j, a) in st.actions.iter().enumerate() {
            let msg = a
                .message
                .as_ref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            lines.insert(
                format!("{i:03}.{j:03}.{}", a.attempt),
                format!("  action {stage}/{}: {}{msg}", a.name, wire(&a.status)),
            );
        }
    }
    lines
}

/// Prints progress lines as they change on the pipeline's live feed until
/// the execution ends; the exit code says whether it succeeded.
async fn follow_execution(client: &Client, name: &str, id: &str) -> anyhow::Result<ExitCode> {
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    let mut feed = Feed::new(client, Topic::Pipeline(name.to_string()));
    loop {
        let list = feed
            .next_of(|e| match e {
                StreamEvent::Pipeline(list) => Some(list),
                _ => None,
            })
            .await?;
        let e = list
            .executions
            .iter()
            .find(|e| e.id == id)
            .with_context(|| format!("execution {id} of pipeline {name} is gone"))?;
        for (key, line) in progress_lines(e) {
            if shown.get(&key) != Some(&line) {
                println!("{}  {line}", clock(output::now_ms()));
                shown.insert(key, line);
            }
        }
        if !matches!(
            e.status,
            ExecutionStatus::InProgress | ExecutionStatus::Stopping
        ) {
            println!(
                "execution {id} {}{}",
                wire(&e.status),
                e.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
            return Ok(if e.status == ExecutionStatus::Succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
}

const BUILD_HEADERS: &[&str] = &[
    "BUILD",
    "NUMBER",
    "STATUS",
    "INITIATOR",
    "SOURCE",
    "DURATION",
    "AGE",
];

fn duration(ms: Option<u64>) -> String {
    match ms {
        Some(ms) if ms < 10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}s", ms / 1000),
        None => "-".into(),
    }
}

/// `cutover builds ...`.
pub(crate) async fn builds(g: &Globals, command: BuildCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let now = output::now_ms();
    match command {
        BuildCommand::Ls { project } => {
            let query = BuildListQuery { project, limit: 50 };
            let resp: BuildList = client.get_with("/v1/builds", &query).await?;
            let rows = resp
                .builds
                .iter()
                .map(|b| {
                    vec![
                        b.id.clone(),
                        b.number.to_string(),
                        wire(&b.status),
                        b.initiator.clone(),
                        b.source
                            .as_deref()
                            .map_or("-".into(), |c| c.chars().take(12).collect()),
                        duration(b.duration_ms),
                        output::age(Some(b.started_at), now),
                    ]
                })
                .collect();
            output::print(g.output, &resp, BUILD_HEADERS, rows);
        }
        BuildCommand::Get { id } => {
            let resp: BuildEnvelope = client.get(&format!("/v1/builds/{id}")).await?;
            if g.output == Output::Json {
                output::print_json(&resp)?;
                return Ok(ExitCode::SUCCESS);
            }
            let b = &resp.build;
            println!(
                "{}  #{}  {}  {}",
                b.id,
                b.number,
                wire(&b.status),
                duration(b.duration_ms)
            );
            if let Some(m) = &b.message {
                println!("{m}");
            }
            let detail = b.detail();
            let rows: Vec<Vec<String>> = detail
                .phases
                .iter()
                .map(|p| {
                    vec![
                        p.phase.clone(),
                        p.status.clone(),
                        duration(p.duration_ms),
                        opt(p.message.as_deref()),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["PHASE", "STATUS", "DURATION", "MESSAGE"], &rows)
            );
            if !detail.exported_variables.is_empty() {
                println!("\nEXPORTED VARIABLES");
                for (k, v) in &detail.exported_variables {
                    println!("  {k}={v}");
                }
            }
        }
        BuildCommand::Logs { id, follow } => {
            let mut offset = 0u64;
            loop {
                let resp: BuildLog = client
                    .get_with(&format!("/v1/builds/{id}/logs"), &BuildLogQuery { offset })
                    .await?;
                let text = resp.text;
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
                offset = resp.next_offset;
                if !follow || (resp.finished && text.is_empty()) {
                    break;
                }
                if text.is_empty() {
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_parse_as_name_value_pairs() {
        let vars = parse_variables(&["A=1".into(), "B=x=y".into()]).unwrap();
        assert_eq!(vars.get("A").map(String::as_str), Some("1"));
        assert_eq!(vars.get("B").map(String::as_str), Some("x=y"));
        assert!(parse_variables(&["nope".into()]).is_err());
    }

    #[test]
    fn progress_lines_change_when_an_action_moves() {
        let execution = |stages: serde_json::Value| -> ExecutionView {
            serde_json::from_value(serde_json::json!({
                "id": "e1", "status": "InProgress", "kind": "Standard", "trigger": "manual",
                "startedAt": 1, "updatedAt": 2, "sourceRevisions": {}, "variables": {},
                "outputVariables": {}, "message": null, "stages": stages,
            }))
            .unwrap()
        };
        let running = serde_json::json!({"stages": [{"name": "Build", "status": "InProgress",
            "actions": [{"name": "B", "status": "InProgress", "attempt": 1, "startedAt": 1, "message": null}]}]});
        let done = serde_json::json!({"stages": [{"name": "Build", "status": "Succeeded",
            "actions": [{"name": "B", "status": "Succeeded", "attempt": 1, "startedAt": 1, "message": "build p:1"}]}]});
        let a = progress_lines(&execution(running["stages"].clone()));
        let b = progress_lines(&execution(done["stages"].clone()));
        assert_eq!(a.len(), 2);
        assert_eq!(b["000.000.1"], "  action Build/B: Succeeded (build p:1)");
        assert_ne!(a["000"], b["000"]);
    }
}
