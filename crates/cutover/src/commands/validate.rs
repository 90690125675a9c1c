//! `cutover validate FILE... [--kind KIND] [--stack STACK] [-o json]`:
//! checks files offline, with no server, through the very parsers the
//! server uses (`cutover-spec`, `cutover-build`'s buildspec reader,
//! `cutover-pipeline`, `cutover-ci`'s stack sections, `cutover-proxy`'s
//! configuration, and the server's own apply validation for stacks).
//!
//! A file's kind is `--kind`, else found from its name, else from its
//! content (the report says which rule decided). Diagnostics read as the
//! server's rejections do (`file:line:col: path: message`); the exit code
//! is 1 when any file has an error.

use crate::cli::{Globals, Output, ValidateArgs, ValidateKind as Kind};
use crate::client::render_diagnostic;
use crate::output;
use anyhow::Context;
use cutover_api::apply::ApplyRequest;
use cutover_spec::diag::{Diagnostic, Parsed, Severity, SourceMap, SpecError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

/// What `-o json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    files: Vec<FileReport>,
    errors: usize,
    warnings: usize,
}

/// One file's verdict.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileReport {
    file: String,
    kind: Kind,
    /// The rule that decided the kind: `--kind`, `file name`, or the
    /// content key that gave it away.
    detected_by: String,
    accepted: bool,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

pub(crate) fn run(g: &Globals, args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let stack = match &args.stack {
        Some(p) => Some(read_stack(p)?),
        None => None,
    };
    let mut files = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file = path.display().to_string();
        let (kind, detected_by) = match args.kind {
            Some(k) => (k, "--kind".to_string()),
            None => detect(&file, &text).with_context(|| {
                format!("{file}: cannot tell what kind of file this is; give --kind")
            })?,
        };
        let (errors, warnings) = match check(kind, path, &file, &text, stack.as_ref()) {
            Ok(w) => (Vec::new(), w),
            Err(e) => (e.diagnostics, e.warnings),
        };
        files.push(FileReport {
            file,
            kind,
            detected_by,
            accepted: errors.is_empty(),
            errors,
            warnings,
        });
    }
    let report = Report {
        errors: files.iter().map(|f| f.errors.len()).sum(),
        warnings: files.iter().map(|f| f.warnings.len()).sum(),
        files,
    };
    if g.output == Output::Json {
        output::print_json(&report)?;
    } else {
        for f in &report.files {
            let what = format!("{} (by {})", f.kind.name(), f.detected_by);
            if f.accepted {
                println!("{}: {what}: accepted", f.file);
            } else {
                let n = f.errors.len();
                println!(
                    "{} was rejected ({n} error{}): {what}",
                    f.file,
                    if n == 1 { "" } else { "s" }
                );
            }
            for d in &f.errors {
                println!("  {}", render_diagnostic(d));
            }
            for d in &f.warnings {
                println!("  warning: {}", render_diagnostic(d));
            }
        }
    }
    Ok(if report.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The kind of a file, and the rule that told: its name first, then the
/// keys of its content.
fn detect(file: &str, text: &str) -> Option<(Kind, String)> {
    let name = Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    const BY_NAME: [(&str, Kind); 8] = [
        ("imagedefinitions", Kind::Imagedefinitions),
        ("imagedetail", Kind::Imagedetail),
        ("taskdef", Kind::Taskdef),
        ("task-definition", Kind::Taskdef),
        ("appspec", Kind::Appspec),
        ("buildspec", Kind::Buildspec),
        ("pipeline", Kind::Pipeline),
        ("stack", Kind::Stack),
    ];
    if let Some((_, k)) = BY_NAME.iter().find(|(n, _)| name.contains(n)) {
        return Some((*k, "file name".to_string()));
    }
    if name.starts_with("lb.") {
        return Some((Kind::Lb, "file name".to_string()));
    }
    let value = cutover_spec::read_document(file, text).ok()?.value;
    let has = |k: &str| value.get(k).is_some();
    let by = |k: Kind, key: &str| Some((k, format!("content: {key}")));
    if let Some(items) = value.as_array() {
        return items
            .iter()
            .all(|i| i.get("imageUri").is_some())
            .then(|| (Kind::Imagedefinitions, "content: [].imageUri".to_string()));
    }
    if has("containerDefinitions") {
        by(Kind::Taskdef, "containerDefinitions")
    } else if value
        .pointer("/taskDefinition/containerDefinitions")
        .is_some()
    {
        by(Kind::Taskdef, "taskDefinition.containerDefinitions")
    } else if has("family") {
        by(Kind::Taskdef, "family")
    } else if has("Resources") {
        by(Kind::Appspec, "Resources")
    } else if has("version") && (has("os") || has("files") || has("hooks")) {
        by(Kind::Appspec, "version with os, files or hooks")
    } else if has("phases") {
        by(Kind::Buildspec, "phases")
    } else if has("ImageURI") {
        by(Kind::Imagedetail, "ImageURI")
    } else if has("stages") || value.pointer("/pipeline/stages").is_some() {
        by(Kind::Pipeline, "stages")
    } else if has("services") {
        by(Kind::Stack, "services")
    } else if has("listeners") || has("targetGroups") {
        by(Kind::Lb, "listeners")
    } else {
        None
    }
}

/// A stack named by `--stack`: its text and the files it references.
struct StackFile {
    file: String,
    content: String,
    files: BTreeMap<String, String>,
}

fn read_stack(path: &Path) -> anyhow::Result<StackFile> {
    let content =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(StackFile {
        file: path.display().to_string(),
        files: super::apply::referenced_files(&content, base),
        content,
    })
}

/// Warnings of an accepted file, or every diagnostic.
type Checked = Result<Vec<Diagnostic>, SpecError>;

fn warnings<T>(r: Result<Parsed<T>, SpecError>) -> Checked {
    r.map(|p| p.warnings)
}

fn check(kind: Kind, path: &Path, file: &str, text: &str, stack: Option<&StackFile>) -> Checked {
    match kind {
        Kind::Taskdef => warnings(cutover_spec::parse_task_definition(file, text)),
        // Offline, the task definition deployed is not known: the appspec is
        // checked as `cutover deploy --task-definition` and CodeDeployToECS
        // read it.
        // An EC2/on-premises appspec is told apart by its content (`os`,
        // `files` or `hooks` and no `Resources`) and read as one.
        Kind::Appspec if cutover_spec::is_host_appspec(file, text) => {
            warnings(cutover_spec::parse_host_appspec(file, text))
        }
        Kind::Appspec => {
            let parsed = cutover_spec::parse_appspec_for(
                file,
                text,
                cutover_spec::TaskDefinitionFrom::Elsewhere,
            )?;
            match stack {
                // Its hooks as a deployment resolves them: through the
                // stack's `functions:`.
                Some(stack) => {
                    let declared = cutover_spec::parse_stack(&stack.file, &stack.content)?;
                    let hooks = cutover_spec::stack::functions::resolve_appspec_hooks(
                        file,
                        text,
                        &parsed.value,
                        &declared.value.functions,
                    )?;
                    Ok(parsed.warnings.into_iter().chain(hooks.warnings).collect())
                }
                None => Ok(parsed.warnings),
            }
        }
        Kind::Buildspec => warnings(cutover_build::parse_buildspec(file, text)),
        Kind::Imagedefinitions => warnings(cutover_spec::parse_image_definitions(file, text)),
        Kind::Imagedetail => warnings(cutover_spec::parse_image_detail(file, text)),
        Kind::Pipeline => {
            let parsed = cutover_pipeline::parse_pipeline(file, text)?;
            match stack {
                Some(stack) => pipeline_in_stack(file, text, &parsed.value.name, stack),
                None => Ok(parsed.warnings),
            }
        }
        Kind::Stack => {
            let base = path.parent().unwrap_or(Path::new("."));
            cutover_server::validate_stack_offline(&ApplyRequest {
                file: file.to_string(),
                stack: None,
                content: text.to_string(),
                files: super::apply::referenced_files(text, base),
                dry_run: true,
            })
        }
        Kind::Lb => cutover_proxy::config::parse(file, text)
            .map(|_| Vec::new())
            .map_err(|e| SpecError {
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    file: e.file,
                    line: e.location.map(|l| l.line),
                    column: e.location.map(|l| l.col),
                    path: e.path,
                    message: e.message,
                }],
                warnings: Vec::new(),
            }),
    }
}

/// A pipeline file checked as if the stack declared it (`pipelines:
/// {NAME: {file: FILE}}`): its repositories, build projects and services
/// must be the stack's.
fn pipeline_in_stack(file: &str, text: &str, name: &str, stack: &StackFile) -> Checked {
    let parsed = cutover_spec::parse_stack(&stack.file, &stack.content)?;
    let map = SourceMap::new(&stack.file, &stack.content);
    let mut files = stack.files.clone();
    files.insert(file.to_string(), text.to_string());
    let pipelines = serde_json::json!({ name: { "file": file } });
    let services: BTreeSet<String> = parsed.value.services.keys().cloned().collect();
    let applications = cutover_ci::config::application_groups(parsed.value.applications.iter());
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    cutover_ci::config::check(
        &cutover_ci::config::StackInput {
            file: &stack.file,
            stack: &stack.file,
            map: &map,
            repositories: parsed.value.repositories.as_ref(),
            build_projects: parsed.value.build_projects.as_ref(),
            pipelines: Some(&pipelines),
            files: &files,
            services: &services,
            applications: &applications,
        },
        &mut errors,
        &mut warnings,
    );
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(SpecError {
            diagnostics: errors,
            warnings,
        })
    }
}
