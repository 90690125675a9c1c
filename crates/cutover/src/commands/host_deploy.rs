//! Host deployments from the CLI: `cutover deploy --application A
//! --deployment-group G --revision PATH|git:[REPOSITORY@]REF [--wait]`
//! uploads the revision's bundle (or names a commit of a stack repository
//! the server reads) and follows the deployment host by host; `cutover deployments
//! get ID` of a host deployment lists each host's lifecycle events with
//! their scripts' output.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use cutover_api::agents::BundleFormat;
use cutover_api::host_deployments::{
    CreateHostDeploymentQuery, HostDeploymentView, HostEventStatus, HostTargetView,
};
use cutover_api::stream::{StreamEvent, Topic};
use cutover_deploy::hosts::HostDeploymentStatus;
use reqwest::StatusCode;

use super::watch;
use crate::cli::{DeployArgs, Globals, Output};
use crate::client::{ApiFailure, Client};
use crate::feed::Feed;
use crate::output::{self, opt, wire};

/// Whether `e` is the server's 404.
pub(crate) fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiFailure>()
        .is_some_and(|f| f.status == StatusCode::NOT_FOUND)
}

/// `cutover deploy --application ...`.
pub(crate) async fn run(
    g: &Globals,
    client: &Client,
    args: &DeployArgs,
) -> anyhow::Result<ExitCode> {
    let (Some(application), Some(group), Some(revision)) =
        (&args.application, &args.deployment_group, &args.revision)
    else {
        anyhow::bail!("a host deployment needs --application, --deployment-group and --revision");
    };
    let mut query = CreateHostDeploymentQuery {
        application: application.clone(),
        deployment_group: group.clone(),
        deployment_config: args.deployment_config.clone(),
        ..Default::default()
    };
    // `git:[REPOSITORY@]REF` is read by the server from a stack
    // repository; anything else is a local directory or bundle.
    let body = match revision.to_str().and_then(|r| r.strip_prefix("git:")) {
        Some(git) => {
            query.git = Some(git.to_string());
            reqwest::Body::from(Vec::new())
        }
        None => {
            let (body, format) = bundle(revision).await?;
            query.format = Some(format);
            query.source = Some(revision.display().to_string());
            body
        }
    };
    let view: HostDeploymentView = client
        .post_body("/v1/host-deployments", &query, body)
        .await?;
    if !args.wait {
        print(g, &view)?;
        return Ok(ExitCode::SUCCESS);
    }
    let table = g.output == Output::Table;
    if table {
        println!(
            "deployment {}: {} to {}/{} ({}, {} hosts)",
            view.id,
            view.source,
            view.application,
            view.deployment_group,
            view.config,
            view.targets.len()
        );
    }
    let mut end = follow(client, &view.id, table).await?;
    let ok = end.status == HostDeploymentStatus::Succeeded;
    while let Some(rollback) = end.rolled_back_by.clone() {
        if table {
            println!("deployment {} rolled back by {rollback}", end.id);
        }
        end = follow(client, &rollback, table).await?;
    }
    if g.output == Output::Json {
        output::print_json(&end)?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The revision's bytes and bundle type: a directory is packed as tar.
async fn bundle(path: &Path) -> anyhow::Result<(reqwest::Body, BundleFormat)> {
    if path.is_dir() {
        let dir = path.to_path_buf();
        let bytes = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            cutover_server::pack_revision_dir(&dir, &mut out).map(|()| out)
        })
        .await?
        .with_context(|| format!("cannot pack {}", path.display()))?;
        return Ok((bytes.into(), BundleFormat::Tar));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let format = if name.ends_with(".tar") {
        BundleFormat::Tar
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        BundleFormat::Tgz
    } else if name.ends_with(".zip") {
        BundleFormat::Zip
    } else {
        anyhow::bail!(
            "{}: a revision is a directory or a .tar, .tar.gz, .tgz or .zip bundle",
            path.display()
        );
    };
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((reqwest::Body::wrap_stream(stream), format))
}

/// Follows deployment `id` on the live feed until it ends, printing each
/// host's events as they end (when `table`). Returns its last view.
async fn follow(client: &Client, id: &str, table: bool) -> anyhow::Result<HostDeploymentView> {
    let mut shown: BTreeSet<(String, usize)> = BTreeSet::new();
    let mut hosts_done: BTreeSet<String> = BTreeSet::new();
    let mut feed = Feed::new(client, Topic::HostDeployment(id.to_string()));
    loop {
        let v = feed
            .next_of(|e| match e {
                StreamEvent::HostDeployment(v) => Some(*v),
                _ => None,
            })
            .await?;
        if table {
            for t in &v.targets {
                for line in progress(t, &mut shown, &mut hosts_done) {
                    println!("{line}");
                }
            }
        }
        if v.finished_at_ms.is_some() {
            if table {
                println!(
                    "deployment {id} {}{}",
                    wire(&v.status),
                    v.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
            }
            return Ok(v);
        }
    }
}

/// The lines for what `t` finished since the last call: each event that
/// ended, then the host's own outcome once it is done.
fn progress(
    t: &HostTargetView,
    shown: &mut BTreeSet<(String, usize)>,
    hosts_done: &mut BTreeSet<String>,
) -> Vec<String> {
    use cutover_api::host_deployments::HostTargetStatus as S;
    let mut lines = Vec::new();
    for (i, e) in t.events.iter().enumerate() {
        if e.status != HostEventStatus::InProgress && shown.insert((t.host.clone(), i)) {
            let mut line = format!(
                "  {:<16} {:<20} {}",
                t.host,
                e.event.to_string(),
                wire(&e.status)
            );
            if let Some(err) = &e.error {
                line.push_str(&format!(": {err}"));
            }
            lines.push(line);
        }
    }
    if matches!(t.status, S::Succeeded | S::Failed) && hosts_done.insert(t.host.clone()) {
        lines.push(format!("  {:<16} {}", t.host, wire(&t.status)));
    }
    lines
}

/// `cutover deployments get ID` of a host deployment.
pub(crate) async fn get(g: &Globals, client: &Client, id: &str) -> anyhow::Result<ExitCode> {
    let v: HostDeploymentView = client.get(&format!("/v1/host-deployments/{id}")).await?;
    print(g, &v)?;
    Ok(ExitCode::SUCCESS)
}

fn print(g: &Globals, v: &HostDeploymentView) -> anyhow::Result<()> {
    if g.output == Output::Json {
        return output::print_json(v);
    }
    println!("DEPLOYMENT  {}", v.id);
    println!("GROUP       {}/{}", v.application, v.deployment_group);
    println!("STATUS      {}", wire(&v.status));
    if let Some(r) = &v.reason {
        println!("REASON      {r}");
    }
    println!("REVISION    {} ({})", v.source, v.revision.digest);
    println!("CONFIG      {}", v.config);
    if let Some(r) = &v.rollback_of {
        println!("ROLLS BACK  {r}");
    }
    if let Some(r) = &v.rolled_back_by {
        println!("ROLLED BACK {r}");
    }
    for t in &v.targets {
        println!(
            "\nHOST {}{}  {}",
            t.host,
            t.zone
                .as_deref()
                .map(|z| format!(" (zone {z})"))
                .unwrap_or_default(),
            wire(&t.status)
        );
        let rows: Vec<_> = t
            .events
            .iter()
            .map(|e| {
                vec![
                    e.event.to_string(),
                    wire(&e.status),
                    watch::clock(e.started_at_ms),
                    opt(e.ended_at_ms.map(watch::clock)),
                    opt(e.error.as_deref()),
                ]
            })
            .collect();
        if !rows.is_empty() {
            print!(
                "{}",
                output::table(&["EVENT", "STATUS", "STARTED", "ENDED", "ERROR"], &rows)
            );
        }
        for e in t.events.iter().filter(|e| !e.output.is_empty()) {
            println!("  {} output:", e.event);
            for line in e.output.lines() {
                println!("    {line}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_api::host_deployments::{HostEventView, HostTargetStatus};
    use cutover_spec::HostEvent;

    fn event(event: HostEvent, status: HostEventStatus) -> HostEventView {
        HostEventView {
            event,
            status,
            command: None,
            output: String::new(),
            error: None,
            started_at_ms: 0,
            ended_at_ms: None,
        }
    }

    #[test]
    fn progress_prints_each_ended_event_and_host_once() {
        let mut t = HostTargetView {
            host: "h1".into(),
            zone: None,
            status: HostTargetStatus::InProgress,
            events: vec![
                event(HostEvent::ApplicationStop, HostEventStatus::Succeeded),
                event(HostEvent::DownloadBundle, HostEventStatus::InProgress),
            ],
        };
        let (mut shown, mut done) = (BTreeSet::new(), BTreeSet::new());
        let first = progress(&t, &mut shown, &mut done);
        assert_eq!(first.len(), 1);
        assert!(first[0].contains("ApplicationStop"), "{first:?}");
        t.events[1].status = HostEventStatus::Succeeded;
        t.status = HostTargetStatus::Succeeded;
        let second = progress(&t, &mut shown, &mut done);
        assert_eq!(second.len(), 2, "{second:?}");
        assert!(second[0].contains("DownloadBundle"));
        assert!(progress(&t, &mut shown, &mut done).is_empty());
    }
}
