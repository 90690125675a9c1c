//! `cutover deploy` and `cutover deployments ...`.

use super::watch;
use crate::cli::{DeployArgs, DeploymentCommand, Globals, Output};
use crate::client::{Client, render_diagnostic};
use crate::output::{self, s};
use anyhow::Context;
use serde_json::{Map, Value, json};
use std::process::ExitCode;

const HEADERS: &[&str] = &[
    "DEPLOYMENT",
    "SERVICE",
    "KIND",
    "STATUS",
    "FROM",
    "TO",
    "TRAFFIC",
    "STARTED BY",
    "AGE",
    "OUTCOME",
];

fn row(d: &Value, now: u64) -> Vec<String> {
    vec![
        s(&d["id"]),
        s(&d["service"]),
        s(&d["kind"]),
        s(&d["status"]),
        s(&d["fromTaskDefinition"]),
        s(&d["toTaskDefinition"]),
        if d["kind"] == "BLUE_GREEN" {
            format!(
                "{}%",
                d["traffic"]["prodGreenPercent"].as_u64().unwrap_or(0)
            )
        } else {
            "-".into()
        },
        s(&d["startedBy"]),
        output::age(&d["createdAt"], now),
        s(&d["outcome"]),
    ]
}

fn parse_overrides(args: &DeployArgs) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)> {
    let mut images = Map::new();
    for i in &args.images {
        let (c, img) = i
            .split_once('=')
            .with_context(|| format!("--image {i:?}: expected CONTAINER=IMAGE"))?;
        images.insert(c.to_string(), Value::String(img.to_string()));
    }
    let mut env = Map::new();
    for e in &args.env {
        let (c, kv) = e
            .split_once(':')
            .with_context(|| format!("--env {e:?}: expected CONTAINER:KEY=VALUE"))?;
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {e:?}: expected CONTAINER:KEY=VALUE"))?;
        env.entry(c.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.insert(k.to_string(), Value::String(v.to_string())));
    }
    Ok((images, env))
}

/// Creates a deployment from CLI arguments and returns its JSON.
pub(crate) async fn create(client: &Client, args: &DeployArgs) -> anyhow::Result<Value> {
    let (images, env) = parse_overrides(args)?;
    let mut body =
        json!({"service": args.service, "images": images, "env": env, "startedBy": "cli"});
    if let Some(td) = &args.task_definition {
        let path = std::path::Path::new(td);
        if td.ends_with(".json") || td.contains('/') {
            let content =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {td}"))?;
            body["taskDefinition"] = json!({"file": td, "content": content});
        } else {
            body["taskDefinition"] = Value::String(td.clone());
        }
    }
    if let Some(a) = &args.appspec {
        let content =
            std::fs::read_to_string(a).with_context(|| format!("cannot read {}", a.display()))?;
        body["appspec"] = json!({"file": a.display().to_string(), "content": content});
    }
    if let Some(c) = &args.deployment_config {
        body["deploymentConfig"] = Value::String(c.clone());
    }
    let resp = client.post("/v1/deployments", &body).await?;
    for w in resp["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", render_diagnostic(w));
    }
    Ok(resp)
}

pub(crate) async fn run(g: &Globals, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let resp = create(&client, &args).await?;
    let d = &resp["deployment"];
    let id = s(&d["id"]);
    if !args.wait {
        output::print(g.output, &resp, HEADERS, vec![row(d, output::now_ms())]);
        return Ok(ExitCode::SUCCESS);
    }
    if g.output == Output::Table {
        println!(
            "deployment {id}: {} {} -> {} ({})",
            s(&d["service"]),
            s(&d["fromTaskDefinition"]),
            s(&d["toTaskDefinition"]),
            s(&d["config"])
        );
    }
    finish(g, &client, &id).await
}

async fn finish(g: &Globals, client: &Client, id: &str) -> anyhow::Result<ExitCode> {
    let ending = if g.output == Output::Table {
        watch::follow(client, id, "").await?
    } else {
        quiet_follow(client, id).await?
    };
    match g.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"deployment": ending.deployment}))?
        ),
        Output::Table => println!(
            "deployment {id} {}{}",
            ending.status,
            if ending.rolled_back {
                " (rolled back)"
            } else {
                ""
            }
        ),
    }
    Ok(if ending.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn quiet_follow(client: &Client, id: &str) -> anyhow::Result<watch::Ending> {
    loop {
        let v = client.get(&format!("/v1/deployments/{id}")).await?;
        let d = &v["deployment"];
        if d["finishedAt"].is_u64() {
            return Ok(watch::Ending {
                status: s(&d["status"]),
                rolled_back: d["rolledBackBy"].is_string(),
                deployment: d.clone(),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

pub(crate) async fn deployments(
    g: &Globals,
    command: DeploymentCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let now = output::now_ms();
    match command {
        DeploymentCommand::Ls { service } => {
            let path = match service {
                Some(s) => format!("/v1/deployments?service={s}"),
                None => "/v1/deployments".into(),
            };
            let resp = client.get(&path).await?;
            let rows = resp["deployments"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| row(d, now))
                .collect();
            output::print(g.output, &resp, HEADERS, rows);
        }
        DeploymentCommand::Get { id } => {
            let resp = client.get(&format!("/v1/deployments/{id}")).await?;
            if g.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&resp)?);
                return Ok(ExitCode::SUCCESS);
            }
            let d = &resp["deployment"];
            print!("{}", output::table(HEADERS, &[row(d, now)]));
            if d["lifecycle"].is_array() {
                println!("\nLIFECYCLE");
                let rows: Vec<_> = d["lifecycle"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        vec![
                            s(&e["event"]),
                            s(&e["status"]),
                            if e["startedAt"].is_u64() {
                                watch::clock(&e["startedAt"])
                            } else {
                                "-".into()
                            },
                            if e["endedAt"].is_u64() {
                                watch::clock(&e["endedAt"])
                            } else {
                                "-".into()
                            },
                            s(&e["message"]),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(&["EVENT", "STATUS", "STARTED", "ENDED", "MESSAGE"], &rows)
                );
            }
            println!("\nHISTORY");
            for e in d["events"].as_array().into_iter().flatten() {
                println!("  {}  {}", watch::clock(&e["at"]), s(&e["message"]));
            }
        }
        DeploymentCommand::Watch { id } => return finish(g, &client, &id).await,
        DeploymentCommand::Stop {
            id,
            rollback,
            no_rollback,
        } => {
            let body = match (rollback, no_rollback) {
                (true, _) => json!({"rollback": true}),
                (_, true) => json!({"rollback": false}),
                _ => json!({}),
            };
            let resp = client
                .post(&format!("/v1/deployments/{id}/stop"), &body)
                .await?;
            output::print(
                g.output,
                &resp,
                &["DEPLOYMENT", "REQUESTED"],
                vec![vec![id, "stop".into()]],
            );
        }
        DeploymentCommand::Continue { id } => {
            let resp = client
                .post(&format!("/v1/deployments/{id}/continue"), &json!({}))
                .await?;
            output::print(
                g.output,
                &resp,
                &["DEPLOYMENT", "REQUESTED"],
                vec![vec![id, "continue".into()]],
            );
        }
        DeploymentCommand::Rollback { service, wait } => {
            let resp = client
                .post(&format!("/v1/services/{service}/rollback"), &json!({}))
                .await?;
            let id = s(&resp["deployment"]["id"]);
            if wait {
                if g.output == Output::Table {
                    println!("{}: {}", s(&resp["requested"]), id);
                }
                let ending = watch::follow(&client, &id, "").await?;
                if resp["requested"] == "rollback" {
                    // An instant rollback ends the deployment as rolled back.
                    println!("deployment {id} {} (rolled back)", ending.status);
                    return Ok(if ending.rolled_back {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    });
                }
                println!("deployment {id} {}", ending.status);
                return Ok(if ending.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            output::print(
                g.output,
                &resp,
                &["DEPLOYMENT", "REQUESTED"],
                vec![vec![id, s(&resp["requested"])]],
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_bad_ones_say_why() {
        let mut args = DeployArgs {
            service: "web".into(),
            task_definition: None,
            appspec: None,
            deployment_config: None,
            images: vec!["web=app:v2".into()],
            env: vec!["web:APP_VERSION=v2".into(), "web:X=a=b".into()],
            wait: false,
        };
        let (images, env) = parse_overrides(&args).unwrap();
        assert_eq!(images["web"], "app:v2");
        assert_eq!(env["web"], json!({"APP_VERSION": "v2", "X": "a=b"}));
        args.env = vec!["APP_VERSION=v2".into()];
        let err = parse_overrides(&args).unwrap_err().to_string();
        assert!(err.contains("CONTAINER:KEY=VALUE"), "{err}");
    }
}
