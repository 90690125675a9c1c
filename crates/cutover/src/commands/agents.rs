//! `cutover agents register|ls|describe|deregister`: the hosts and their keys.

use crate::cli::{AgentsCommand, Globals, Output};
use crate::client::Client;
use crate::output;
use cutover_api::agents::{AgentKey, AgentList, AgentView, DeregisterAgentResponse};
use std::process::ExitCode;

fn row(a: &AgentView) -> Vec<String> {
    let r = &a.registration;
    let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    vec![
        r.name.clone(),
        if a.online { "online" } else { "offline" }.to_string(),
        r.zone.clone().unwrap_or_else(|| "-".into()),
        r.target.clone().unwrap_or_else(|| "-".into()),
        if tags.is_empty() {
            "-".into()
        } else {
            tags.join(",")
        },
        if r.version.is_empty() {
            "-".into()
        } else {
            r.version.clone()
        },
    ]
}

const HEADERS: &[&str] = &["NAME", "STATUS", "ZONE", "TARGET", "TAGS", "VERSION"];

pub(crate) async fn run(g: &Globals, command: AgentsCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    match command {
        AgentsCommand::Register { name } => {
            let resp: AgentKey = client
                .post(&format!("/v1/agents/{name}/key"), &serde_json::json!({}))
                .await?;
            if g.output == Output::Json {
                output::print_json(&resp)?;
            } else {
                println!("{}", resp.key);
                eprintln!();
                eprintln!(
                    "The key of agent {} is shown only now. Start the agent with it:",
                    resp.name
                );
                eprintln!(
                    "  CUTOVER_AGENT_KEY=<the key> cutover agent --server {} --name {} ...",
                    client.base(),
                    resp.name
                );
                eprintln!(
                    "(or save it in a file readable only by the agent's user and pass --key-file FILE)"
                );
            }
        }
        AgentsCommand::Ls => {
            let resp: AgentList = client.get("/v1/agents").await?;
            let rows = resp.agents.iter().map(row).collect();
            output::print(g.output, &resp, HEADERS, rows);
        }
        AgentsCommand::Describe { name } => {
            let resp: AgentView = client.get(&format!("/v1/agents/{name}")).await?;
            if g.output == Output::Json {
                output::print_json(&resp)?;
            } else {
                output::print(g.output, &resp, HEADERS, vec![row(&resp)]);
                println!("\nInstance ARN  {}", resp.instance_arn);
                for (group, b) in &resp.last_successful {
                    println!("Last successful in {group}: {} ({:?})", b.digest, b.format);
                }
            }
        }
        AgentsCommand::Deregister { name } => {
            let resp: DeregisterAgentResponse =
                client.delete(&format!("/v1/agents/{name}")).await?;
            output::print(
                g.output,
                &resp,
                &["DEREGISTERED"],
                vec![vec![resp.name.clone()]],
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
