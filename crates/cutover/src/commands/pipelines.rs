//! `cutover pipelines ls|get|start|executions|approve|reject|retry|stop|...`
//! and `cutover builds ls|get|logs`.

use super::watch::clock;
use crate::cli::{ApprovalArgs, BuildCommand, Globals, Output, PipelineCommand};
use crate::client::Client;
use crate::output::{self, s};
use anyhow::Context;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// How often `--wait` and `--follow` poll.
const POLL: Duration = Duration::from_millis(250);

fn parse_variables(vars: &[String]) -> anyhow::Result<Map<String, Value>> {
    vars.iter()
        .map(|v| {
            let (k, val) = v
                .split_once('=')
                .with_context(|| format!("--variable {v:?}: expected NAME=VALUE"))?;
            Ok((k.to_string(), Value::String(val.to_string())))
        })
        .collect()
}

fn execution_rows(list: &Value, now: u64) -> Vec<Vec<String>> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let stage = e["stages"]
                .as_array()
                .and_then(|st| st.last())
                .map(|st| format!("{} {}", s(&st["name"]), s(&st["status"])))
                .unwrap_or_else(|| "-".into());
            vec![
                s(&e["id"]),
                s(&e["status"]),
                stage,
                s(&e["trigger"]),
                output::age(&e["startedAt"], now),
                s(&e["message"]),
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
            let resp = client.get("/v1/pipelines").await?;
            let rows = resp["pipelines"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let l = &p["latestExecution"];
                    vec![
                        s(&p["name"]),
                        s(&p["executionMode"]),
                        p["stages"]
                            .as_array()
                            .map(|st| st.iter().map(s).collect::<Vec<_>>().join(" > "))
                            .unwrap_or_default(),
                        s(&l["status"]),
                        output::age(&l["startedAt"], now),
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
            let resp = client.get(&format!("/v1/pipelines/{name}")).await?;
            if g.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&resp)?);
                return Ok(ExitCode::SUCCESS);
            }
            let p = &resp["pipeline"];
            println!("{}  ({})", s(&p["name"]), s(&p["executionMode"]));
            for st in p["stages"].as_array().into_iter().flatten() {
                let stage = s(&st["name"]);
                let disabled = resp["transitions"][&stage]["enabled"] == false;
                let actions: Vec<String> = st["actions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| format!("{} ({})", s(&a["name"]), s(&a["actionTypeId"]["provider"])))
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
            let latest = &resp["latestExecution"];
            if !latest.is_null() {
                println!(
                    "\nLATEST EXECUTION {}  {}",
                    s(&latest["id"]),
                    s(&latest["status"])
                );
                print_stages(latest);
            }
            println!("\nEVENTS");
            for e in resp["events"].as_array().into_iter().flatten() {
                println!("  {}  {}", clock(&e["at"]), s(&e["message"]));
            }
        }
        PipelineCommand::Start {
            name,
            variables,
            wait,
        } => {
            let body =
                json!({"variables": parse_variables(&variables)?, "trigger": "manual (cli)"});
            let resp = client
                .post(&format!("/v1/pipelines/{name}/executions"), &body)
                .await?;
            let id = s(&resp["executionId"]);
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
            let resp = client
                .get(&format!("/v1/pipelines/{name}/executions"))
                .await?;
            let rows = execution_rows(&resp["executions"], now);
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
                "ALL_ACTIONS"
            } else {
                "FAILED_ACTIONS"
            };
            let resp = client
                .post(
                    &format!("/v1/pipelines/{name}/executions/{execution}/retry"),
                    &json!({"stage": stage, "mode": mode}),
                )
                .await?;
            output::print(
                g.output,
                &resp,
                &["EXECUTION", "STAGE", "RETRY"],
                vec![vec![execution, stage, mode.into()]],
            );
        }
        PipelineCommand::Stop {
            name,
            execution,
            abandon,
            reason,
        } => {
            let resp = client
                .post(
                    &format!("/v1/pipelines/{name}/executions/{execution}/stop"),
                    &json!({"abandon": abandon, "reason": reason}),
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
    let body = json!({
        "execution": a.execution,
        "stage": a.stage,
        "action": a.action,
        "approved": approved,
        "summary": a.summary,
        "by": std::env::var("USER").unwrap_or_else(|_| "cli".into()),
    });
    let resp = client
        .post(&format!("/v1/pipelines/{}/approvals", a.name), &body)
        .await?;
    output::print(
        g.output,
        &resp,
        &["EXECUTION", "STAGE", "ACTION", "ANSWER"],
        vec![vec![
            s(&resp["executionId"]),
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
    let resp = client
        .put(
            &format!("/v1/pipelines/{name}/transitions/{stage}"),
            &json!({"enabled": enabled, "reason": reason}),
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

fn print_stages(e: &Value) {
    for st in e["stages"].as_array().into_iter().flatten() {
        println!("  {}  {}", s(&st["name"]), s(&st["status"]));
        for a in st["actions"].as_array().into_iter().flatten() {
            println!(
                "    {}  {} (attempt {})  {}",
                s(&a["name"]),
                s(&a["status"]),
                s(&a["attempt"]),
                s(&a["message"])
            );
        }
    }
}

/// Status lines of an execution: one per stage and per action.
fn progress_lines(e: &Value) -> BTreeMap<String, String> {
    let mut lines = BTreeMap::new();
    for (i, st) in e["stages"].as_array().into_iter().flatten().enumerate() {
        let stage = s(&st["name"]);
        lines.insert(
            format!("{i:03}"),
            format!("stage {stage}: {}", s(&st["status"])),
        );
        for (j, a) in st["actions"].as_array().into_iter().flatten().enumerate() {
            let msg = match &a["message"] {
                Value::Null => String::new(),
                m => format!(" ({})", s(m)),
            };
            lines.insert(
                format!("{i:03}.{j:03}.{}", s(&a["attempt"])),
                format!(
                    "  action {stage}/{}: {}{msg}",
                    s(&a["name"]),
                    s(&a["status"])
                ),
            );
        }
    }
    lines
}

/// Prints progress lines as they change until the execution ends; the
/// exit code says whether it succeeded.
async fn follow_execution(client: &Client, name: &str, id: &str) -> anyhow::Result<ExitCode> {
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let resp = client
            .get(&format!("/v1/pipelines/{name}/executions/{id}"))
            .await?;
        let e = &resp["execution"];
        for (key, line) in progress_lines(e) {
            if shown.get(&key) != Some(&line) {
                println!("{}  {line}", clock(&Value::from(output::now_ms())));
                shown.insert(key, line);
            }
        }
        let status = s(&e["status"]);
        if !matches!(status.as_str(), "InProgress" | "Stopping") {
            println!(
                "execution {id} {status}{}",
                match &e["message"] {
                    Value::Null => String::new(),
                    m => format!(": {}", s(m)),
                }
            );
            return Ok(if status == "Succeeded" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        tokio::time::sleep(POLL).await;
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

fn duration(v: &Value) -> String {
    match v.as_u64() {
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
            let path = match project {
                Some(p) => format!("/v1/builds?project={p}"),
                None => "/v1/builds".into(),
            };
            let resp = client.get(&path).await?;
            let rows = resp["builds"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    vec![
                        s(&b["id"]),
                        s(&b["number"]),
                        s(&b["status"]),
                        s(&b["initiator"]),
                        b["source"]
                            .as_str()
                            .map_or("-".into(), |c| c.chars().take(12).collect()),
                        duration(&b["durationMs"]),
                        output::age(&b["startedAt"], now),
                    ]
                })
                .collect();
            output::print(g.output, &resp, BUILD_HEADERS, rows);
        }
        BuildCommand::Get { id } => {
            let resp = client.get(&format!("/v1/builds/{id}")).await?;
            if g.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&resp)?);
                return Ok(ExitCode::SUCCESS);
            }
            let b = &resp["build"];
            println!(
                "{}  #{}  {}  {}",
                s(&b["id"]),
                s(&b["number"]),
                s(&b["status"]),
                duration(&b["durationMs"])
            );
            if !b["message"].is_null() {
                println!("{}", s(&b["message"]));
            }
            let rows: Vec<Vec<String>> = b["detail"]["phases"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    vec![
                        s(&p["phase"]),
                        s(&p["status"]),
                        duration(&p["durationMs"]),
                        s(&p["message"]),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["PHASE", "STATUS", "DURATION", "MESSAGE"], &rows)
            );
            if let Some(vars) = b["detail"]["exportedVariables"].as_object()
                && !vars.is_empty()
            {
                println!(
                    "
EXPORTED VARIABLES"
                );
                for (k, v) in vars {
                    println!("  {k}={}", s(v));
                }
            }
        }
        BuildCommand::Logs { id, follow } => {
            let mut offset = 0u64;
            loop {
                let resp = client
                    .get(&format!("/v1/builds/{id}/logs?offset={offset}"))
                    .await?;
                let text = resp["text"].as_str().unwrap_or_default();
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
                offset = resp["nextOffset"].as_u64().unwrap_or(offset);
                let finished = resp["finished"].as_bool().unwrap_or(true);
                if !follow || (finished && text.is_empty()) {
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
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "x=y");
        assert!(parse_variables(&["nope".into()]).is_err());
    }

    #[test]
    fn progress_lines_change_when_an_action_moves() {
        let running = json!({"stages": [{"name": "Build", "status": "InProgress",
            "actions": [{"name": "B", "status": "InProgress", "attempt": 1, "message": null}]}]});
        let done = json!({"stages": [{"name": "Build", "status": "Succeeded",
            "actions": [{"name": "B", "status": "Succeeded", "attempt": 1, "message": "build p:1"}]}]});
        let a = progress_lines(&running);
        let b = progress_lines(&done);
        assert_eq!(a.len(), 2);
        assert_eq!(b["000.000.1"], "  action Build/B: Succeeded (build p:1)");
        assert_ne!(a["000"], b["000"]);
    }
}
