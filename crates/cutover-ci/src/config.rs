//! The pipeline sections of `stack.yaml`: `repositories:`, `buildProjects:`
//! and `pipelines:`, read with located errors and cross-checked (a source
//! action names a declared repository, a build action a declared project, an
//! ECS deploy an existing service) before `apply` writes anything.
//!
//! ```yaml
//! repositories:
//!   app: {url: /path/to/repo, pollIntervalSeconds: 1, webhookSecretEnv: APP_HOOK_SECRET}
//! buildProjects:
//!   app-build: {environment: host, buildspec: ci/buildspec.yml, cache: true, timeoutInMinutes: 30}
//! pipelines:
//!   app: {file: ./pipeline.json}     # or the pipeline object inline
//! ```
//!
//! A project's `buildspec` that was sent with the stack (a path relative to
//! the stack file), or written inline (a value of several lines, as
//! CodeBuild's project `buildspec` may be), is validated now and stored with
//! the project; a path written as local (`./`, `../`, `/`) that was not sent
//! is an error; any other path names a file in the source, read when the
//! build starts, as CodeBuild does (default `buildspec.yml`), with a warning
//! at apply that says so. Builds run on the host
//! (`environment: host`, the default), or in a container of the image a
//! project names (`environment: {image: alpine:3.20}`) on the server's
//! container engine.

use std::collections::{BTreeMap, BTreeSet};

use cutover_api::apply::{PlanAction, PlanItem, PlanSubject};
use cutover_pipeline::catalog::{self, Provider};
use cutover_pipeline::engine::{Input, PipelineState};
use cutover_pipeline::model::Pipeline;
use cutover_spec::diag::{Diagnostic, Parsed, SourceMap, SpecError};
use cutover_spec::doc::{Document, Format, Path};
pub use cutover_spec::stack::ci::{BuildEnvironment, BuildProjectSpec, RepositorySpec};
use cutover_store::{BuildProjectRow, RepositoryRow, StoreError, pipeline_ops};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The pipeline sections of a stack, validated.
#[derive(Debug, Default)]
pub struct Declared {
    /// The stack file, as the client named it (for messages).
    pub file: String,
    /// The stack's identity ([`stack_key`]): pipelines the last apply of
    /// the same stack declared and this one does not are deleted.
    pub stack: String,
    /// Repositories by name.
    pub repositories: Vec<(String, RepositorySpec)>,
    /// Build projects by name.
    pub projects: Vec<(String, BuildProjectSpec)>,
    /// Pipelines by name.
    pub pipelines: Vec<(String, Pipeline)>,
}

/// What [`check`] needs to know about the stack.
pub struct StackInput<'a> {
    /// The stack file, as the client named it.
    pub file: &'a str,
    /// The stack's identity ([`stack_key`]).
    pub stack: &'a str,
    /// The stack's text, located.
    pub map: &'a SourceMap,
    /// The `repositories:` section as written.
    pub repositories: Option<&'a Value>,
    /// The `buildProjects:` section as written.
    pub build_projects: Option<&'a Value>,
    /// The `pipelines:` section as written.
    pub pipelines: Option<&'a Value>,
    /// Files sent with the stack, by the path written in it.
    pub files: &'a BTreeMap<String, String>,
    /// Services of the stack and of the store.
    pub services: &'a BTreeSet<String>,
    /// Host applications (`applications:`) of the stack and of the store,
    /// each with its deployment groups' names.
    pub applications: &'a BTreeMap<String, BTreeSet<String>>,
}

/// Each application's deployment group names ([`StackInput::applications`]).
pub fn application_groups<'a>(
    apps: impl Iterator<
        Item = (
            &'a String,
            &'a cutover_spec::stack::applications::Application,
        ),
    >,
) -> BTreeMap<String, BTreeSet<String>> {
    apps.map(|(n, a)| (n.clone(), a.deployment_groups.keys().cloned().collect()))
        .collect()
}

/// The identity of a stack file, under which its applies are recorded and
/// its dropped pipelines found: the identity the client sent (`cutover
/// apply` sends the file's canonical absolute path), else the file name
/// normalised (`./stack.yaml`, `stack.yaml` and `a/../stack.yaml` are the
/// same stack).
pub fn stack_key(file: &str, identity: Option<&str>) -> String {
    if let Some(id) = identity.map(str::trim).filter(|id| !id.is_empty()) {
        return id.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    let absolute = file.starts_with('/');
    for part in file.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Reads and cross-checks the pipeline sections; errors and warnings are
/// appended, and what validated is returned.
pub fn check(
    input: &StackInput<'_>,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Declared {
    let mut out = Declared {
        file: input.file.to_string(),
        stack: input.stack.to_string(),
        ..Declared::default()
    };
    let Some(stack) = input.map.document() else {
        errors.push(input.map.error("", "could not be read"));
        return out;
    };
    for (name, _) in entries(input, input.repositories, "repositories", errors) {
        let path = Path::root().key("repositories").key(name);
        if let Some(spec) = read_typed::<RepositorySpec>(&stack, &path, errors, warnings) {
            if spec.url.trim().is_empty() {
                errors.push(
                    input
                        .map
                        .error(&path.key("url").to_string(), "must not be empty"),
                );
            }
            out.repositories.push((name.clone(), spec));
        }
    }
    for (name, _) in entries(input, input.build_projects, "buildProjects", errors) {
        let path = Path::root().key("buildProjects").key(name);
        let Some(mut spec) = read_typed::<BuildProjectSpec>(&stack, &path, errors, warnings) else {
            continue;
        };
        if spec
            .timeout_in_minutes
            .is_some_and(|m| !(5..=2160).contains(&m))
        {
            errors.push(input.map.error(
                &path.key("timeoutInMinutes").to_string(),
                "must be between 5 and 2160 minutes, as in CodeBuild",
            ));
        }
        if spec.buildspec_text.is_some() {
            errors.push(input.map.error(
                &path.key("buildspecText").to_string(),
                "is set by cutover; give `buildspec: <path>` instead",
            ));
            continue;
        }
        if let Some(buildspec) = &spec.buildspec {
            let at = path.key("buildspec").to_string();
            let (file, text) = match BuildspecRef::classify(buildspec, input.files) {
                BuildspecRef::Sent(text) => (buildspec.clone(), text.clone()),
                BuildspecRef::Inline => (format!("{}#{at}", input.file), buildspec.clone()),
                BuildspecRef::MissingLocal => {
                    errors.push(input.map.error(
                        &at,
                        format!(
                            "{buildspec:?} is not found beside the stack file (a path starting \
                             with ./, ../ or / names a file sent with the stack; a path in the \
                             build's source is written without them, as in CodeBuild)"
                        ),
                    ));
                    continue;
                }
                BuildspecRef::InSource => {
                    warnings.push(input.map.warning(
                        &at,
                        format!(
                            "{buildspec:?} is not beside the stack file, so it is read from the \
                             build's source when a build starts, as CodeBuild does; a build \
                             whose source lacks it fails"
                        ),
                    ));
                    out.projects.push((name.clone(), spec));
                    continue;
                }
            };
            match cutover_build::parse_buildspec(&file, &text) {
                Ok(parsed) => {
                    warnings.extend(parsed.warnings);
                    spec.buildspec_text = Some(text);
                }
                Err(e) => {
                    errors.extend(e.diagnostics);
                    warnings.extend(e.warnings);
                    continue;
                }
            }
        }
        out.projects.push((name.clone(), spec));
    }
    let repos: BTreeSet<&str> = out.repositories.iter().map(|(n, _)| n.as_str()).collect();
    let projects: BTreeSet<&str> = out.projects.iter().map(|(n, _)| n.as_str()).collect();
    for (name, spec) in &out.projects {
        if let Some(source) = &spec.source
            && !repos.contains(source.repository.as_str())
        {
            let at = Path::root()
                .key("buildProjects")
                .key(name)
                .key("source")
                .key("repository");
            errors.push(input.map.error(
                &at.to_string(),
                format!(
                    "repository {:?} is not declared under repositories:",
                    source.repository
                ),
            ));
        }
    }
    let mut pipelines = Vec::new();
    for (name, value) in entries(input, input.pipelines, "pipelines", errors) {
        let entry = Path::root().key("pipelines").key(name);
        let at = entry.to_string();
        let (map, prefix, parsed) = match value.get("file").and_then(Value::as_str) {
            Some(path) => {
                if value.as_object().is_some_and(|o| o.len() > 1) {
                    errors.push(
                        input
                            .map
                            .error(&at, "give either `file:` or the pipeline inline, not both"),
                    );
                    continue;
                }
                let Some(text) = input.files.get(path) else {
                    errors.push(input.map.error(
                        &entry.key("file").to_string(),
                        format!(
                            "cannot read the pipeline file {path:?} (relative to the stack file)"
                        ),
                    ));
                    continue;
                };
                let doc = match Document::parse(path, text, Format::for_file(path)) {
                    Ok(doc) => doc,
                    Err(e) => {
                        errors.extend(e.diagnostics);
                        continue;
                    }
                };
                let (prefix, parsed) = read_pipeline(&doc, &Path::root());
                (SourceMap::new(path, text), prefix, parsed)
            }
            None => {
                let (prefix, parsed) = read_pipeline(&stack, &entry);
                (input.map.clone(), prefix, parsed)
            }
        };
        let pipeline = match parsed {
            Ok(p) => {
                warnings.extend(p.warnings);
                p.value
            }
            Err(e) => {
                errors.extend(e.diagnostics);
                warnings.extend(e.warnings);
                continue;
            }
        };
        let field = |rest: &str| {
            if prefix.is_empty() {
                rest.to_string()
            } else {
                format!("{prefix}.{rest}")
            }
        };
        if pipeline.name != *name {
            errors.push(map.error(
                &field("name"),
                format!(
                    "the pipeline is named {:?} but declared as {name:?} in {}",
                    pipeline.name, input.file
                ),
            ));
        }
        for (si, stage) in pipeline.stages.iter().enumerate() {
            for (ai, action) in stage.actions.iter().enumerate() {
                let cfg =
                    |key: &str| field(&format!("stages[{si}].actions[{ai}].configuration.{key}"));
                let Some(spec) = catalog::lookup(
                    &action.action_type_id.category,
                    &action.action_type_id.provider,
                ) else {
                    continue;
                };
                let get = |k: &str| action.configuration.get(k).map(String::as_str);
                match spec.kind {
                    Provider::CodeCommit
                    | Provider::CodeStarSourceConnection
                    | Provider::GitHub => {
                        if let Some((key, repo)) =
                            catalog::source_repository(spec.kind, &action.configuration)
                            && !repos.contains(repo.as_str())
                        {
                            let how = if spec.kind == Provider::GitHub {
                                " (a GitHub version 1 source reads the repository named Owner/Repo)"
                            } else {
                                ""
                            };
                            errors.push(map.error(
                                &cfg(key),
                                format!(
                                    "repository {repo:?} is not declared under repositories: in {}{how}",
                                    input.file
                                ),
                            ));
                        }
                    }
                    Provider::CodeBuild => {
                        if let Some(p) = get("ProjectName")
                            && !projects.contains(p)
                        {
                            errors.push(map.error(
                                &cfg("ProjectName"),
                                format!(
                                    "build project {p:?} is not declared under buildProjects: in {}",
                                    input.file
                                ),
                            ));
                        }
                    }
                    Provider::Ecs => {
                        if let Some(s) = get("ServiceName")
                            && !s.contains("#{")
                            && !input.services.contains(s)
                        {
                            errors.push(map.error(
                                &cfg("ServiceName"),
                                format!("service {s:?} is not declared in the stack nor running"),
                            ));
                        }
                    }
                    Provider::CodeDeployToEcs => {
                        if let Some(s) = get("DeploymentGroupName")
                            && !s.contains("#{")
                            && !input.services.contains(s)
                        {
                            errors.push(map.error(
                                &cfg("DeploymentGroupName"),
                                format!(
                                    "cutover deploys deployment group {s:?} to the service of that name, which is not declared in the stack nor running"
                                ),
                            ));
                        }
                    }
                    Provider::CodeDeploy => {
                        let set = |k: &str| get(k).filter(|v| !v.contains("#{"));
                        let group = set("DeploymentGroupName");
                        match set("ApplicationName").map(|a| (a, input.applications.get(a))) {
                            Some((a, None)) => errors.push(map.error(
                                &cfg("ApplicationName"),
                                format!(
                                    "application {a:?} is not declared under applications: in {} nor applied",
                                    input.file
                                ),
                            )),
                            Some((a, Some(groups)))
                                if group.is_some_and(|g| !groups.contains(g)) =>
                            {
                                errors.push(map.error(
                                    &cfg("DeploymentGroupName"),
                                    format!(
                                        "application {a:?} has no deployment group {:?}",
                                        group.unwrap_or_default()
                                    ),
                                ));
                            }
                            _ => {}
                        }
                    }
                    Provider::Manual | Provider::Lambda | Provider::ImageScan => {}
                }
            }
        }
        pipelines.push((name.clone(), pipeline));
    }
    out.pipelines = pipelines;
    out
}

/// Writes what [`check`] validated (unless `dry_run`); returns the plan
/// entries (`{"repository"|"buildProject"|"pipeline": name, "action": ...}`).
///
/// As CodePipeline's CreatePipeline, a pipeline created here gets its first
/// execution at once, from the head of each source: it is started in the
/// engine state written with the definition (same transaction), and its
/// driver runs it when it starts. An updated pipeline starts nothing.
///
/// A pipeline the last apply of the same stack (by [`stack_key`], or by
/// the file name normalised for applies recorded before, which are filed
/// under the stack's key from now on) declared and this one does not is
/// deleted (plan action `delete`), unless the last apply of another stack
/// declares it: its row and state go in this
/// transaction, and its driver, told by [`crate::Pipelines::reload`], stops
/// its executions and kills their running actions.
pub fn store(
    c: &rusqlite::Connection,
    declared: &Declared,
    now: u64,
    dry_run: bool,
) -> Result<Vec<PlanItem>, StoreError> {
    fn action<T: PartialEq>(before: Option<&T>, after: &T) -> PlanAction {
        match before {
            None => PlanAction::Create,
            Some(b) if b != after => PlanAction::Update,
            Some(_) => PlanAction::Unchanged,
        }
    }
    fn item(subject: PlanSubject, action: PlanAction) -> PlanItem {
        PlanItem {
            subject,
            action,
            changes: Vec::new(),
        }
    }
    let mut plan = Vec::new();
    for (name, spec) in &declared.repositories {
        let before = pipeline_ops::repository(c, name)?.map(|r| r.spec);
        let act = action(before.as_ref(), spec);
        if !dry_run && act != PlanAction::Unchanged {
            pipeline_ops::put_repository(
                c,
                &RepositoryRow {
                    name: name.clone(),
                    spec: spec.clone(),
                    updated_at: now,
                },
            )?;
        }
        plan.push(item(
            PlanSubject {
                repository: Some(name.clone()),
                ..PlanSubject::default()
            },
            act,
        ));
    }
    for (name, spec) in &declared.projects {
        let before = pipeline_ops::build_project(c, name)?.map(|r| r.spec);
        let act = action(before.as_ref(), spec);
        if !dry_run && act != PlanAction::Unchanged {
            pipeline_ops::put_build_project(
                c,
                &BuildProjectRow {
                    name: name.clone(),
                    spec: spec.clone(),
                    updated_at: now,
                },
            )?;
        }
        plan.push(item(
            PlanSubject {
                build_project: Some(name.clone()),
                ..PlanSubject::default()
            },
            act,
        ));
    }
    for (name, pipeline) in &declared.pipelines {
        let definition =
            serde_json::to_value(pipeline).map_err(StoreError::json("pipeline definition"))?;
        let before = pipeline_ops::pipeline(c, name)?.map(|r| r.definition);
        let act = action(before.as_ref(), &definition);
        if !dry_run && act != PlanAction::Unchanged {
            pipeline_ops::put_pipeline_definition(c, name, &definition, now)?;
        }
        if !dry_run && act == PlanAction::Create {
            first_execution(c, name, pipeline, &declared.file, now)?;
        }
        plan.push(item(
            PlanSubject {
                pipeline: Some(name.clone()),
                ..PlanSubject::default()
            },
            act,
        ));
    }
    // This stack's records: under its key, or under another name for the
    // same file (recorded before applies carried the stack's identity, or
    // with `./` and the like), which become its own.
    let alias = stack_key(&declared.file, None);
    let ours = |key: &str| key == declared.stack || stack_key(key, None) == alias;
    let stacks = pipeline_ops::latest_stacks(c)?;
    let previous = stacks
        .iter()
        .rev()
        .find(|(key, _)| ours(key))
        .map(|(_, names)| names.clone())
        .unwrap_or_default();
    let elsewhere: BTreeSet<&String> = stacks
        .iter()
        .filter(|(key, _)| !ours(key))
        .flat_map(|(_, names)| names)
        .collect();
    if !dry_run {
        for (key, _) in stacks
            .iter()
            .filter(|(k, _)| ours(k) && *k != declared.stack)
        {
            pipeline_ops::rename_stack(c, key, &declared.stack)?;
        }
    }
    for name in previous {
        if declared.pipelines.iter().any(|(n, _)| *n == name)
            || elsewhere.contains(&name)
            || pipeline_ops::pipeline(c, &name)?.is_none()
        {
            continue;
        }
        if !dry_run {
            pipeline_ops::delete_pipeline(c, &name)?;
            cutover_store::ops::add_event(
                c,
                now,
                &format!("pipeline/{name}"),
                &format!(
                    "deleted: no longer declared in {}; its executions in progress are stopped",
                    declared.file
                ),
            )?;
        }
        plan.push(item(
            PlanSubject {
                pipeline: Some(name),
                ..PlanSubject::default()
            },
            PlanAction::Delete,
        ));
    }
    Ok(plan)
}

/// The execution a created pipeline runs at once (CodePipeline's
/// CreatePipeline does), saved as the pipeline's first engine state.
fn first_execution(
    c: &rusqlite::Connection,
    name: &str,
    pipeline: &Pipeline,
    file: &str,
    now: u64,
) -> Result<(), StoreError> {
    let mut state = PipelineState::new(pipeline.clone());
    let id = uuid::Uuid::new_v4().to_string();
    // The engine refuses only unknown variables and duplicate ids, neither
    // possible here; a refusal leaves the pipeline created without a run.
    if let Err(e) = state.handle(
        now,
        Input::StartExecution {
            id: id.clone(),
            trigger: format!("CreatePipeline: created by apply of {file}"),
            variables: BTreeMap::new(),
            source_revisions: BTreeMap::new(),
        },
    ) {
        tracing::warn!(pipeline = %name, error = %e, "the first execution was not started");
        return Ok(());
    }
    let saved = serde_json::to_value(&state).map_err(StoreError::json("pipeline state"))?;
    pipeline_ops::save_pipeline_state(c, name, &saved, now)?;
    cutover_store::ops::add_event(
        c,
        now,
        &format!("pipeline/{name}"),
        &format!("execution {id} started (created with the pipeline)"),
    )?;
    Ok(())
}

/// Reads the pipeline at `at` of `doc` (lenient: unknown fields are
/// warnings, as for AWS files); returns the field path of its pipeline
/// object too.
fn read_pipeline(doc: &Document<'_>, at: &Path) -> (String, Result<Parsed<Pipeline>, SpecError>) {
    let sink = doc.sink(false);
    let prefix = cutover_pipeline::pipeline_path(&sink, at).to_string();
    let pipeline = cutover_pipeline::read_pipeline(&sink, at);
    (prefix, sink.finish(pipeline))
}

fn entries<'a>(
    input: &StackInput<'_>,
    section: Option<&'a Value>,
    key: &str,
    errors: &mut Vec<Diagnostic>,
) -> Vec<(&'a String, &'a Value)> {
    match section {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map.iter().collect(),
        Some(other) => {
            errors.push(input.map.error(
                key,
                format!("expected a mapping of names, found {}", kind(other)),
            ));
            Vec::new()
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// What a project's `buildspec` value names, by CodeBuild's rules and the
/// stack's: text of its own (a value of several lines, as CodeBuild's
/// project `buildspec` may be inline), a file sent with the stack, or a
/// path in the build's source. A path written as local (`./`, `../`, `/`)
/// that was not sent is a mistake, never silently a source path.
enum BuildspecRef<'a> {
    Inline,
    Sent(&'a String),
    MissingLocal,
    InSource,
}

impl<'a> BuildspecRef<'a> {
    fn classify(value: &str, files: &'a BTreeMap<String, String>) -> Self {
        if value.trim_end().contains('\n') {
            Self::Inline
        } else if let Some(text) = files.get(value) {
            Self::Sent(text)
        } else if value.starts_with("./") || value.starts_with("../") || value.starts_with('/') {
            Self::MissingLocal
        } else {
            Self::InSource
        }
    }
}

/// Reads the `T` at `at` of the stack through the located-document layer:
/// strict, as Cutover's own files are (an unknown key is an error, with a
/// "did you mean" suggestion), every error at the value where it happened.
fn read_typed<T: DeserializeOwned>(
    stack: &Document<'_>,
    at: &Path,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<T> {
    let sink = stack.sink(true);
    let value = sink.read::<T>(at);
    match sink.finish(value) {
        Ok(parsed) => {
            warnings.extend(parsed.warnings);
            Some(parsed.value)
        }
        Err(e) => {
            errors.extend(e.diagnostics);
            warnings.extend(e.warnings);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = r#"{"pipeline": {"name": "app", "pipelineType": "V2", "stages": [
 {"name": "Source", "actions": [{"name": "Source", "namespace": "SourceVariables",
   "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "SourceArtifact"}]}]},
 {"name": "Build", "actions": [{"name": "Build",
   "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
   "configuration": {"ProjectName": "app-build"}, "inputArtifacts": [{"name": "SourceArtifact"}], "outputArtifacts": [{"name": "BuildArtifact"}]}]},
 {"name": "Deploy", "actions": [{"name": "Deploy",
   "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
   "configuration": {"ClusterName": "default", "ServiceName": "web", "FileName": "imagedefinitions.json"},
   "inputArtifacts": [{"name": "BuildArtifact"}]}]}]}}"#;

    fn run(stack: &str, files: &[(&str, &str)]) -> (Declared, Vec<Diagnostic>) {
        let (declared, errors, _) = run_with_warnings(stack, files);
        (declared, errors)
    }

    fn run_with_warnings(
        stack: &str,
        files: &[(&str, &str)],
    ) -> (Declared, Vec<Diagnostic>, Vec<Diagnostic>) {
        let map = SourceMap::new("stack.yaml", stack);
        let value = map.document().unwrap().to_json(&Path::root()).unwrap();
        let files: BTreeMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let services = BTreeSet::from(["web".to_string()]);
        let applications =
            BTreeMap::from([("shop".to_string(), BTreeSet::from(["prod".to_string()]))]);
        let input = StackInput {
            file: "stack.yaml",
            stack: "stack.yaml",
            map: &map,
            repositories: value.get("repositories"),
            build_projects: value.get("buildProjects"),
            pipelines: value.get("pipelines"),
            files: &files,
            services: &services,
            applications: &applications,
        };
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let declared = check(&input, &mut errors, &mut warnings);
        (declared, errors, warnings)
    }

    /// The contract pipeline with a GitHub version 1 source.
    fn github_v1_pipeline() -> String {
        let codecommit = r#""actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}"#;
        assert!(PIPELINE.contains(codecommit));
        PIPELINE.replace(
            codecommit,
            r#""actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
   "configuration": {"Owner": "me", "Repo": "app", "Branch": "main", "OAuthToken": "****"}"#,
        )
    }

    #[test]
    fn a_github_v1_source_reads_the_repository_owner_slash_repo() {
        let pipeline = github_v1_pipeline();
        let stack = "repositories:\n  me/app: {url: /srv/app}\nbuildProjects:\n  app-build: {environment: host}\npipelines:\n  app: {file: p.json}\n";
        let (d, errors, warnings) = run_with_warnings(stack, &[("p.json", &pipeline)]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(d.pipelines[0].1.stages[0].actions[0].name, "Source");
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "p.json:4:84: pipeline.stages[0].actions[0].configuration.OAuthToken: OAuthToken is ignored: the source is read from the repository Owner/Repo declared under repositories:"
            ]
        );
        let watches = crate::triggers::watches(&d.pipelines[0].1, "me/app");
        assert_eq!(watches.len(), 1);
        assert_eq!(watches[0].branch, "main");
        assert!(watches[0].poll);

        let stack = "repositories:\n  app: {url: /srv/app}\nbuildProjects:\n  app-build: {environment: host}\npipelines:\n  app: {file: p.json}\n";
        let (_, errors) = run(stack, &[("p.json", &pipeline)]);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "p.json:4:45: pipeline.stages[0].actions[0].configuration.Repo: repository \"me/app\" is not declared under repositories: in stack.yaml (a GitHub version 1 source reads the repository named Owner/Repo)"
            ]
        );
    }

    #[test]
    fn a_stack_is_one_stack_whichever_path_names_it() {
        for same in [
            "stack.yaml",
            "./stack.yaml",
            "a/../stack.yaml",
            ".//stack.yaml",
        ] {
            assert_eq!(stack_key(same, None), "stack.yaml", "{same}");
        }
        assert_eq!(
            stack_key("/srv/./app/../stack.yaml", None),
            "/srv/stack.yaml"
        );
        assert_eq!(stack_key("../stack.yaml", None), "../stack.yaml");
        assert_eq!(stack_key("/../stack.yaml", None), "/stack.yaml");
        assert_eq!(stack_key("dev/stack.yaml", None), "dev/stack.yaml");
        // The identity the client sent wins; a blank one is no identity.
        assert_eq!(
            stack_key("./stack.yaml", Some("/home/ann/app/stack.yaml")),
            "/home/ann/app/stack.yaml"
        );
        assert_eq!(stack_key("./stack.yaml", Some("  ")), "stack.yaml");
    }

    #[test]
    fn the_contract_stack_reads() {
        let stack = "repositories:\n  app: {url: /srv/app, pollIntervalSeconds: 1}\nbuildProjects:\n  app-build: {environment: host}\npipelines:\n  app: {file: ./pipeline.json}\n";
        let (d, errors) = run(stack, &[("./pipeline.json", PIPELINE)]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(d.repositories[0].1.poll_interval_seconds, 1);
        assert_eq!(d.projects[0].1.environment, BuildEnvironment::Host);
        assert_eq!(d.pipelines[0].1.stages.len(), 3);
    }

    #[test]
    fn undeclared_references_are_located_in_the_pipeline_file() {
        let stack = "repositories:\n  other: {url: /srv/app}\nbuildProjects: {}\npipelines:\n  app: {file: p.json}\n";
        let (_, errors) = run(stack, &[("p.json", PIPELINE)]);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{text:?}");
        assert!(text[0].starts_with(
            "p.json:4:40:"
        ) && text[0].contains(
            "pipeline.stages[0].actions[0].configuration.RepositoryName: repository \"app\" is not declared"
        ), "{text:?}");
        assert!(text[1].contains("configuration.ProjectName: build project \"app-build\""));
    }

    #[test]
    fn a_host_deploy_names_a_declared_application_and_group() {
        let ecs = r#""provider": "ECS", "version": "1"},
   "configuration": {"ClusterName": "default", "ServiceName": "web", "FileName": "imagedefinitions.json"}"#;
        let host = |app: &str, group: &str| {
            PIPELINE.replace(
                ecs,
                &format!(
                    r#""provider": "CodeDeploy", "version": "1"}},
   "configuration": {{"ApplicationName": "{app}", "DeploymentGroupName": "{group}"}}"#
                ),
            )
        };
        let stack = "repositories:\n  app: {url: /srv/app}\nbuildProjects:\n  app-build: {environment: host}\npipelines:\n  app: {file: p.json}\n";
        let (_, errors) = run(stack, &[("p.json", &host("shop", "prod"))]);
        assert!(errors.is_empty(), "{errors:?}");
        let (_, errors) = run(
            stack,
            &[("p.json", &host("#{SourceVariables.BranchName}", "prod"))],
        );
        assert!(errors.is_empty(), "{errors:?}");
        let text = |p: String| -> Vec<String> {
            run(stack, &[("p.json", &p)])
                .1
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            text(host("blog", "prod")),
            [
                "p.json:10:41: pipeline.stages[2].actions[0].configuration.ApplicationName: application \"blog\" is not declared under applications: in stack.yaml nor applied"
            ]
        );
        assert_eq!(
            text(host("shop", "staging")),
            [
                "p.json:10:72: pipeline.stages[2].actions[0].configuration.DeploymentGroupName: application \"shop\" has no deployment group \"staging\""
            ]
        );
    }

    #[test]
    fn a_build_source_names_a_declared_repository() {
        let stack = "repositories:\n  app: {url: /srv/app}\nbuildProjects:\n  ok: {source: {repository: app}}\n  bad:\n    source: {repository: nope}\n";
        let (declared, errors) = run(stack, &[]);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{text:?}");
        assert!(
            text[0].starts_with("stack.yaml:6:")
                && text[0].contains(
                    "buildProjects.bad.source.repository: repository \"nope\" is not declared"
                ),
            "{text:?}"
        );
        let ok = &declared.projects.iter().find(|(n, _)| n == "ok").unwrap().1;
        assert_eq!(ok.source.as_ref().unwrap().repository, "app");
    }

    #[test]
    fn a_build_environment_is_located_in_the_stack() {
        let stack = "buildProjects:\n  img: {environment: {image: node:20}}\n  bad: {environment: {image: 'a b'}}\n";
        let (declared, errors) = run(stack, &[]);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{text:?}");
        assert!(
            text[0].starts_with("stack.yaml:3:")
                && text[0]
                    .contains("buildProjects.bad.environment: image \"a b\" is not an image name"),
            "{text:?}"
        );
        assert_eq!(
            declared.projects[0].1.environment,
            BuildEnvironment::image("node:20")
        );
    }

    #[test]
    fn a_buildspec_is_sent_inline_in_the_source_or_a_located_mistake() {
        let stack = "buildProjects:\n  sent: {buildspec: ./ci.yml}\n  gone: {buildspec: ./nowhere.yml}\n  up: {buildspec: ../up.yml}\n  src: {buildspec: ci/in-source.yml}\n  inline:\n    buildspec: |\n      version: 0.2\n      phases:\n        build:\n          commands: [make]\n";
        let (declared, errors, warnings) = run_with_warnings(
            stack,
            &[(
                "./ci.yml",
                "version: 0.2\nphases:\n  build:\n    commands: [true]\n",
            )],
        );
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("stack.yaml:3:")
                && errors[0].contains("buildProjects.gone.buildspec: \"./nowhere.yml\" is not found beside the stack file"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("buildProjects.up.buildspec"),
            "{errors:?}"
        );
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert!(
            warnings.iter().any(|w| w.starts_with("stack.yaml:5:")
                && w.contains("buildProjects.src.buildspec: \"ci/in-source.yml\" is not beside the stack file, so it is read from the build's source")),
            "{warnings:?}"
        );
        let project = |name: &str| &declared.projects.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(
            project("sent")
                .buildspec_text
                .as_deref()
                .unwrap()
                .contains("[true]")
        );
        assert!(
            project("inline")
                .buildspec_text
                .as_deref()
                .unwrap()
                .contains("[make]")
        );
        assert_eq!(project("src").buildspec_text, None);

        // An inline buildspec with a mistake is refused, named by its field.
        let stack = "buildProjects:\n  inline:\n    buildspec: |\n      version: 0.2\n      phases: {build: {commands: {a: b}}}\n";
        let (_, errors) = run(stack, &[]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .to_string()
                .starts_with("stack.yaml#buildProjects.inline.buildspec:"),
            "{errors:?}"
        );
    }

    #[test]
    fn bad_entries_are_located_in_the_stack() {
        let stack = "repositories:\n  app: {url: /srv/app, pollEvery: 3}\nbuildProjects:\n  b: {buildspec: ci.yml}\n  c: {environment: {image: [node]}}\npipelines:\n  app: {file: missing.json}\n";
        let (_, errors) = run(
            stack,
            &[(
                "ci.yml",
                "version: 0.2\nphases:\n  build:\n    commands: {a: b}\n",
            )],
        );
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 4, "{text:?}");
        assert!(
            text[0].starts_with("stack.yaml:2:24: repositories.app.pollEvery: unknown key \"pollEvery\", expected one of url,"),
            "{text:?}"
        );
        assert!(text[1].starts_with("ci.yml:4:"), "{text:?}");
        assert!(
            text[2].starts_with("stack.yaml:5:")
                && text[2]
                    .contains("buildProjects.c.environment: expected `host` or `{image: NAME}`"),
            "{text:?}"
        );
        assert!(
            text[3].contains("pipelines.app.file: cannot read the pipeline file"),
            "{text:?}"
        );
    }
}
