//! `cutover apply -f stack.yaml [--dry-run]`.
//!
//! The client sends the stack file and every file it references (task
//! definitions given as paths, resolved against the stack file's folder), so
//! the server validates everything together and never reads the client's
//! disk.

use crate::cli::{ApplyArgs, Globals, Output};
use crate::client::{Client, render_diagnostic};
use crate::output;
use anyhow::Context;
use cutover_api::apply::{ApplyDeployment, ApplyRequest, ApplyResponse, PlanAction};
use cutover_spec::doc::{Format, Path as DocPath};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

pub(crate) async fn run(g: &Globals, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let content = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let base = args.file.parent().unwrap_or(Path::new("."));
    let files = referenced_files(&content, base);
    let body = ApplyRequest {
        file: args.file.display().to_string(),
        stack: stack_identity(&args.file),
        content,
        files,
        dry_run: args.dry_run,
    };
    let resp: ApplyResponse = Client::new(g)?.post("/v1/apply", &body).await?;
    if g.output == Output::Json {
        output::print_json(&resp)?;
        return Ok(ExitCode::SUCCESS);
    }
    for w in &resp.warnings {
        eprintln!("warning: {}", render_diagnostic(w));
    }
    let verb = if args.dry_run { "would" } else { "will" };
    for item in &resp.plan {
        let (kind, name) = item.subject.kind_and_name();
        if kind != "service" && item.action == PlanAction::Unchanged {
            continue;
        }
        let sign = match item.action {
            PlanAction::Create => "+",
            PlanAction::Update => "~",
            PlanAction::Unchanged => "=",
            PlanAction::Delete => "-",
        };
        println!("{sign} {kind} {name}: {}", item.action.as_str());
        for c in &item.changes {
            println!("    {c}");
        }
    }
    let changed = resp
        .plan
        .iter()
        .filter(|p| p.action != PlanAction::Unchanged && p.subject.service.is_some())
        .count();
    for d in &resp.deployments {
        match d {
            ApplyDeployment::Failed { service, error } => eprintln!(
                "error: service {service} was updated but its deployment was not created: {error}"
            ),
            ApplyDeployment::Started { id, service, .. } => println!(
                "deployment {id} of service {service} started (follow it: cutover deployments watch {id})"
            ),
        }
    }
    if args.dry_run {
        println!("dry run: {changed} service(s) {verb} change; nothing was applied");
    } else if changed == 0 {
        println!("no changes");
    } else {
        println!("applied: {changed} service(s) changed");
    }
    Ok(ExitCode::SUCCESS)
}

/// The stack's identity the server records its applies under: the file's
/// canonical absolute path, so `./stack.yaml`, `stack.yaml` and its
/// absolute path are one stack (the pipelines it drops are deleted).
fn stack_identity(file: &Path) -> Option<String> {
    std::fs::canonicalize(file)
        .ok()
        .map(|p| p.display().to_string())
}

/// Reads the files a stack references by path: `services.*.taskDefinition`
/// values that look like paths. A file that cannot be read is left out; the
/// server then reports it against the line that names it.
pub(crate) fn referenced_files(stack: &str, base: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let doc = match cutover_spec::doc::Document::parse("stack.yaml", stack, Format::Yaml) {
        Ok(doc) => doc.to_json(&DocPath::root()).unwrap_or(Value::Null),
        Err(_) => return out,
    };
    let mut add = |p: &str| {
        if let Ok(text) = std::fs::read_to_string(base.join(p)) {
            out.insert(p.to_string(), text);
        }
    };
    let entries = |section: &str| {
        doc.get(section)
            .and_then(|s| s.as_object())
            .map(|m| m.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    for svc in entries("services") {
        if let Some(p) = svc.get("taskDefinition").and_then(|v| v.as_str())
            && (p.contains('/') || p.ends_with(".json"))
        {
            add(p);
        }
    }
    // Pipelines given as files, and build projects' buildspec files (a
    // buildspec path that is not found here is read from the source root
    // at build time, as CodeBuild does).
    for pipeline in entries("pipelines") {
        if let Some(p) = pipeline.get("file").and_then(|v| v.as_str()) {
            add(p);
        }
    }
    for project in entries("buildProjects") {
        if let Some(p) = project.get("buildspec").and_then(|v| v.as_str()) {
            add(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_task_definitions_given_as_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("taskdef.json"), "{}").unwrap();
        let stack = "services:\n  web: {taskDefinition: ./taskdef.json}\n  api: {taskDefinition: api:3}\n  gone: {taskDefinition: ./missing.json}\n";
        let files = referenced_files(stack, dir.path());
        assert_eq!(files.len(), 1);
        assert_eq!(files["./taskdef.json"], "{}");
    }

    #[test]
    fn a_stack_is_the_same_whichever_path_names_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("stack.yaml"), "services: {}").unwrap();
        let plain = stack_identity(&dir.path().join("stack.yaml")).unwrap();
        assert!(plain.starts_with('/'), "{plain}");
        for other in ["./stack.yaml", "sub/../stack.yaml", "sub/.././stack.yaml"] {
            assert_eq!(
                stack_identity(&dir.path().join(other)).as_deref(),
                Some(plain.as_str()),
                "{other}"
            );
        }
        assert_eq!(stack_identity(&dir.path().join("missing.yaml")), None);
    }

    #[test]
    fn collects_pipeline_files_and_buildspecs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pipeline.json"), "{\"pipeline\": {}}").unwrap();
        std::fs::write(dir.path().join("ci.yml"), "version: 0.2").unwrap();
        let stack = "pipelines:\n  app: {file: ./pipeline.json}\nbuildProjects:\n  b: {buildspec: ci.yml}\n  c: {buildspec: in-source.yml}\n";
        let files = referenced_files(stack, dir.path());
        assert_eq!(files.len(), 2);
        assert_eq!(files["./pipeline.json"], "{\"pipeline\": {}}");
        assert_eq!(files["ci.yml"], "version: 0.2");
    }
}
