//! `cutover deploy` and `cutover deployments ...`.

use super::watch;
use crate::cli::{DeployArgs, DeploymentCommand, Globals, Output};
use crate::client::{Client, render_diagnostic};
use crate::output::{self, opt, wire};
use anyhow::Context;
use cutover_api::deployments::{
    CreateDeploymentRequest, Deployment, DeploymentEnvelope, DeploymentList, FileBody, Requested,
    StopDeploymentRequest, TaskDefinitionSource,
};
use cutover_api::query::DeploymentListQuery;
use std::collections::BTreeMap;
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
    "DIGEST",
];

fn row(d: &Deployment, now: u64) -> Vec<String> {
    vec![
        d.id.clone(),
        d.service.clone(),
        d.kind.to_string(),
        wire(&d.status),
        d.from_task_definition.clone(),
        d.to_task_definition.clone(),
        if d.kind == cutover_deploy::DeploymentKind::BlueGreen {
            format!(
                "{}%",
                d.blue_green
                    .as_ref()
                    .map_or(0, |bg| bg.traffic.prod_green_percent)
            )
        } else {
            "-".into()
        },
        d.started_by.clone(),
        output::age(Some(d.created_at), now),
        opt(d.outcome.as_deref()),
        output::short_digest(d.image_digest.as_deref()),
    ]
}

/// Container name to image, and container name to (variable to value).
type Overrides = (
    BTreeMap<String, String>,
    BTreeMap<String, BTreeMap<String, String>>,
);

fn parse_overrides(args: &DeployArgs) -> anyhow::Result<Overrides> {
    let mut images = BTreeMap::new();
    for i in &args.images {
        let (c, img) = i
            .split_once('=')
            .with_context(|| format!("--image {i:?}: expected CONTAINER=IMAGE"))?;
        images.insert(c.to_string(), img.to_string());
    }
    let mut env: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for e in &args.env {
        let (c, kv) = e
            .split_once(':')
            .with_context(|| format!("--env {e:?}: expected CONTAINER:KEY=VALUE"))?;
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {e:?}: expected CONTAINER:KEY=VALUE"))?;
        env.entry(c.to_string())
            .or_default()
            .insert(k.to_string(), v.to_string());
    }
    Ok((images, env))
}

/// Creates a deployment from CLI arguments and returns the server's answer.
pub(crate) async fn create(
    client: &Client,
    args: &DeployArgs,
) -> anyhow::Result<DeploymentEnvelope> {
    let (images, env) = parse_overrides(args)?;
    let task_definition = match &args.task_definition {
        Some(td) if td.ends_with(".json") || td.contains('/') => {
            let content = std::fs::read_to_string(std::path::Path::new(td))
                .with_context(|| format!("cannot read {td}"))?;
            Some(TaskDefinitionSource::File(FileBody {
                file: td.clone(),
                content,
            }))
        }
        Some(td) => Some(TaskDefinitionSource::Name(td.clone())),
        None => None,
    };
    let appspec = match &args.appspec {
        Some(a) => Some(FileBody {
            file: a.display().to_string(),
            content: std::fs::read_to_string(a)
                .with_context(|| format!("cannot read {}", a.display()))?,
        }),
        None => None,
    };
    let body = CreateDeploymentRequest {
        service: args
            .service
            .clone()
            .context("a container deployment needs a SERVICE")?,
        task_definition,
        appspec,
        deployment_config: args.deployment_config.clone(),
        images,
        env,
        started_by: "cli".into(),
    };
    let resp: DeploymentEnvelope = client.post("/v1/deployments", &body).await?;
    for w in resp.warnings.iter().flatten() {
        eprintln!("warning: {}", render_diagnostic(w));
    }
    Ok(resp)
}

pub(crate) async fn run(g: &Globals, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    if args.application.is_some() {
        return super::host_deploy::run(g, &client, &args).await;
    }
    let resp = create(&client, &args).await?;
    let d = &resp.deployment;
    let id = d.id.clone();
    if !args.wait {
        output::print(g.output, &resp, HEADERS, vec![row(d, output::now_ms())]);
        return Ok(ExitCode::SUCCESS);
    }
    if g.output == Output::Table {
        println!(
            "deployment {id}: {} {} -> {} ({})",
            d.service, d.from_task_definition, d.to_task_definition, d.config
        );
    }
    finish(g, &client, &id).await
}

async fn finish(g: &Globals, client: &Client, id: &str) -> anyhow::Result<ExitCode> {
    let ending = if g.output == Output::Table {
        watch::follow(client, id, "").await?
    } else {
        watch::follow_quietly(client, id).await?
    };
    match g.output {
        Output::Json => output::print_json(&DeploymentEnvelope {
            deployment: ending.deployment.clone(),
            warnings: None,
            requested: None,
        })?,
        Output::Table => println!(
            "deployment {id} {}{}",
            wire(&ending.status),
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

pub(crate) async fn deployments(
    g: &Globals,
    command: DeploymentCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let now = output::now_ms();
    match command {
        DeploymentCommand::Ls { service } => {
            let query = DeploymentListQuery {
                service,
                limit: None,
            };
            let resp: DeploymentList = client.get_with("/v1/deployments", &query).await?;
            let rows = resp.deployments.iter().map(|d| row(d, now)).collect();
            output::print(g.output, &resp, HEADERS, rows);
        }
        DeploymentCommand::Get { id } => {
            // Container and host deployments share the id form (`d-…`).
            let resp: DeploymentEnvelope = match client.get(&format!("/v1/deployments/{id}")).await
            {
                Err(e) if super::host_deploy::is_not_found(&e) => {
                    return super::host_deploy::get(g, &client, &id).await;
                }
                r => r?,
            };
            if g.output == Output::Json {
                output::print_json(&resp)?;
                return Ok(ExitCode::SUCCESS);
            }
            let d = &resp.deployment;
            print!("{}", output::table(HEADERS, &[row(d, now)]));
            if let Some(image) = &d.image {
                println!("\nIMAGE  {image}");
            }
            if let Some(bg) = &d.blue_green {
                println!("\nLIFECYCLE");
                let rows: Vec<_> = bg
                    .lifecycle
                    .iter()
                    .map(|e| {
                        vec![
                            e.event.to_string(),
                            wire(&e.status),
                            opt(e.started_at.map(watch::clock)),
                            opt(e.ended_at.map(watch::clock)),
                            opt(e.message.as_deref()),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(&["EVENT", "STATUS", "STARTED", "ENDED", "MESSAGE"], &rows)
                );
            }
            println!("\nHISTORY");
            for e in d.events.iter().flatten() {
                println!("  {}  {}", watch::clock(e.at), e.message);
            }
        }
        DeploymentCommand::Watch { id } => return finish(g, &client, &id).await,
        DeploymentCommand::Stop {
            id,
            rollback,
            no_rollback,
        } => {
            let body = StopDeploymentRequest {
                rollback: match (rollback, no_rollback) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
            };
            let resp: DeploymentEnvelope = client
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
            let resp: DeploymentEnvelope = client
                .post(
                    &format!("/v1/deployments/{id}/continue"),
                    &serde_json::Map::new(),
                )
                .await?;
            output::print(
                g.output,
                &resp,
                &["DEPLOYMENT", "REQUESTED"],
                vec![vec![id, "continue".into()]],
            );
        }
        DeploymentCommand::Rollback { service, wait } => {
            let resp: DeploymentEnvelope = client
                .post(
                    &format!("/v1/services/{service}/rollback"),
                    &serde_json::Map::new(),
                )
                .await?;
            let id = resp.deployment.id.clone();
            let requested = opt(resp.requested.as_ref().map(wire));
            if wait {
                if g.output == Output::Table {
                    println!("{requested}: {id}");
                }
                let ending = watch::follow(&client, &id, "").await?;
                if resp.requested == Some(Requested::Rollback) {
                    // An instant rollback ends the deployment as rolled back.
                    println!("deployment {id} {} (rolled back)", wire(&ending.status));
                    return Ok(if ending.rolled_back {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    });
                }
                println!("deployment {id} {}", wire(&ending.status));
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
                vec![vec![id, requested]],
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
            service: Some("web".into()),
            application: None,
            deployment_group: None,
            revision: None,
            task_definition: None,
            appspec: None,
            deployment_config: None,
            images: vec!["web=app:v2".into()],
            env: vec!["web:APP_VERSION=v2".into(), "web:X=a=b".into()],
            wait: false,
        };
        let (images, env) = parse_overrides(&args).unwrap();
        assert_eq!(images.get("web").map(String::as_str), Some("app:v2"));
        let web: Vec<(&str, &str)> = env
            .get("web")
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(web, [("APP_VERSION", "v2"), ("X", "a=b")]);
        args.env = vec!["APP_VERSION=v2".into()];
        let err = parse_overrides(&args).unwrap_err().to_string();
        assert!(err.contains("CONTAINER:KEY=VALUE"), "{err}");
    }
}
