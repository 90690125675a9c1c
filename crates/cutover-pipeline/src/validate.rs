//! The structural rules of a pipeline, checked after it deserialized: stage
//! and action shape, known providers and their configuration keys, artifact
//! flow, namespaces and variable references, triggers and stage conditions.
//! Every problem is reported, each at its field path.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{self, CATEGORIES, DEFAULT_APPROVAL_TIMEOUT_MINUTES, Provider};
use crate::cron::DeploymentWindow;
use crate::glob::Glob;
use crate::model::{Action, ConditionResult, GlobFilter, Pipeline, Stage};
use cutover_spec::doc::{Document, Format, Path, Sink};

use crate::parse::quote;
use crate::vars::{self, CODEPIPELINE, EXECUTION_ID_KEY, PIPELINE_VARIABLES};

/// Where an artifact or namespace was produced: (stage index, run order, action name).
type Origin = (usize, u32, String);

pub(crate) fn validate(p: &Pipeline, root: &Path, r: &Sink<'_>) {
    if !is_name(&p.name) {
        r.error(&root.key("name"), name_message("pipeline", &p.name));
    }
    let stages = root.key("stages");
    if p.stages.len() < 2 {
        r.error(
            &stages,
            format!(
                "a pipeline needs at least 2 stages, found {}",
                p.stages.len()
            ),
        );
    }
    let variables = pipeline_variables(p, root, r);

    // Everything produced so far, by name.
    let mut artifacts: BTreeMap<String, Origin> = BTreeMap::new();
    let mut namespaces: BTreeMap<String, (Origin, Option<Provider>)> = BTreeMap::new();
    let mut stage_names = BTreeSet::new();
    for (si, stage) in p.stages.iter().enumerate() {
        let sp = stages.index(si);
        if !is_name(&stage.name) {
            r.error(&sp.key("name"), name_message("stage", &stage.name));
        } else if !stage_names.insert(stage.name.as_str()) {
            r.error(
                &sp.key("name"),
                format!("duplicate stage name {}", quote(&stage.name)),
            );
        }
        if stage.actions.is_empty() {
            r.error(&sp.key("actions"), "a stage needs at least one action");
        }
        stage_conditions(si, stage, &sp, r);
        let mut action_names = BTreeSet::new();
        for (ai, action) in stage.actions.iter().enumerate() {
            let ap = sp.key("actions").index(ai);
            if !is_name(&action.name) {
                r.error(&ap.key("name"), name_message("action", &action.name));
            } else if !action_names.insert(action.name.as_str()) {
                r.error(
                    &ap.key("name"),
                    format!(
                        "duplicate action name {} in stage {}",
                        quote(&action.name),
                        quote(&stage.name)
                    ),
                );
            }
            let order = action.run_order();
            if !(1..=999).contains(&order) {
                r.error(
                    &ap.key("runOrder"),
                    format!("runOrder must be between 1 and 999, found {order}"),
                );
            }
            let kind = action_type(si, action, &ap, r);
            let here = (si, order, action.name.clone());
            // Inputs: produced by an earlier stage, or a lower run order here.
            let mut inputs = BTreeSet::new();
            for (ii, input) in action.input_artifacts.iter().enumerate() {
                let path = ap.key("inputArtifacts").index(ii).key("name");
                inputs.insert(input.name.as_str());
                match artifacts.get(&input.name) {
                    Some(origin) if earlier(origin, &here) => {}
                    Some((s, _, a)) if *s == si => r.error(
                        &path,
                        format!(
                            "artifact {} is produced by action {} of the same stage, which does not run earlier (give it a lower runOrder)",
                            quote(&input.name),
                            quote(a)
                        ),
                    ),
                    _ => r.error(
                        &path,
                        format!(
                            "artifact {} is not produced by an earlier action",
                            quote(&input.name)
                        ),
                    ),
                }
            }
            for (oi, output) in action.output_artifacts.iter().enumerate() {
                let path = ap.key("outputArtifacts").index(oi).key("name");
                if !is_artifact_name(&output.name) {
                    r.error(
                        &path,
                        format!(
                            "invalid artifact name {}: use 1 to 100 letters, digits, _ and -",
                            quote(&output.name)
                        ),
                    );
                } else if let Some((_, _, a)) = artifacts.get(&output.name) {
                    r.error(
                        &path,
                        format!(
                            "artifact {} is already produced by action {}",
                            quote(&output.name),
                            quote(a)
                        ),
                    );
                } else {
                    artifacts.insert(output.name.clone(), here.clone());
                }
            }
            if let Some(kind) = kind {
                provider_rules(kind, action, &inputs, &ap, r);
            }
            references(action, &here, &variables, &namespaces, &ap, r);
            if let Some(ns) = &action.namespace {
                let path = ap.key("namespace");
                if !vars::is_namespace(ns) || ns == PIPELINE_VARIABLES || ns == CODEPIPELINE {
                    r.error(
                        &path,
                        format!(
                            "invalid namespace {}: use 1 to 100 letters, digits, @, _ and -, other than \"variables\" and \"codepipeline\"",
                            quote(ns)
                        ),
                    );
                } else if let Some(((_, _, a), _)) = namespaces.get(ns) {
                    r.error(
                        &path,
                        format!(
                            "namespace {} is already used by action {}",
                            quote(ns),
                            quote(a)
                        ),
                    );
                } else {
                    namespaces.insert(ns.clone(), (here.clone(), kind));
                }
            }
        }
    }
    triggers(p, root, r);
}

/// Declared pipeline variables, checked.
fn pipeline_variables(p: &Pipeline, root: &Path, r: &Sink<'_>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, v) in p.variables.iter().enumerate() {
        let path = root.key("variables").index(i).key("name");
        if !vars::is_namespace(&v.name) {
            r.error(
                &path,
                format!(
                    "invalid variable name {}: use letters, digits, @, _ and -",
                    quote(&v.name)
                ),
            );
        } else if !names.insert(v.name.clone()) {
            r.error(&path, format!("duplicate variable {}", quote(&v.name)));
        }
    }
    names
}

/// Checks category, owner, provider and version; returns the provider when known.
fn action_type(si: usize, action: &Action, ap: &Path, r: &Sink<'_>) -> Option<Provider> {
    let t = &action.action_type_id;
    let tp = ap.key("actionTypeId");
    if !CATEGORIES.contains(&t.category.as_str()) {
        r.error(
            &tp.key("category"),
            format!(
                "unknown category {}, expected one of {}",
                quote(&t.category),
                CATEGORIES
                    .iter()
                    .map(|c| quote(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    }
    if si == 0 && t.category != "Source" {
        r.error(
            &tp.key("category"),
            format!(
                "the first stage may hold only Source actions, found a {} action",
                t.category
            ),
        );
    }
    if si > 0 && t.category == "Source" {
        r.error(
            &tp.key("category"),
            "Source actions are allowed only in the first stage",
        );
    }
    let owner = catalog::lookup(&t.category, &t.provider).map_or("AWS", |s| s.owner);
    if t.owner != owner {
        r.error(
            &tp.key("owner"),
            format!(
                "owner {} is not supported, expected {}",
                quote(&t.owner),
                quote(owner)
            ),
        );
    }
    if t.version != "1" {
        r.error(
            &tp.key("version"),
            format!(
                "version {} is not supported, expected \"1\"",
                quote(&t.version)
            ),
        );
    }
    let Some(spec) = catalog::lookup(&t.category, &t.provider) else {
        r.error(
            &tp.key("provider"),
            format!(
                "provider {} is not supported for category {}, supported: {}",
                quote(&t.provider),
                t.category,
                catalog::providers_of(&t.category)
            ),
        );
        return None;
    };
    let cp = ap.key("configuration");
    for key in spec.required {
        if !action.configuration.contains_key(*key) {
            r.error(
                &cp,
                format!(
                    "missing configuration key {} required by {}",
                    quote(key),
                    spec.provider
                ),
            );
        }
    }
    for key in action.configuration.keys() {
        if !spec.required.contains(&key.as_str()) && !spec.optional.contains(&key.as_str()) {
            r.warning(
                &cp.key(key),
                format!(
                    "unknown configuration key {} for {}, ignored",
                    quote(key),
                    spec.provider
                ),
            );
        }
    }
    Some(spec.kind)
}

/// Provider-specific rules on artifacts and configuration values.
fn provider_rules(
    kind: Provider,
    action: &Action,
    inputs: &BTreeSet<&str>,
    ap: &Path,
    r: &Sink<'_>,
) {
    let cp = ap.key("configuration");
    let config = &action.configuration;
    let must_be_input = |key: &str, r: &Sink<'_>| {
        if let Some(name) = config.get(key)
            && !inputs.contains(name.as_str())
        {
            r.error(
                &cp.key(key),
                format!("{} is not an input artifact of this action", quote(name)),
            );
        }
    };
    match kind {
        Provider::CodeCommit | Provider::CodeStarSourceConnection | Provider::GitHub => {
            if kind == Provider::GitHub && config.contains_key("OAuthToken") {
                r.warning(
                    &cp.key("OAuthToken"),
                    "OAuthToken is ignored: the source is read from the repository Owner/Repo declared under repositories:",
                );
            }
            if !action.input_artifacts.is_empty() {
                r.error(
                    &ap.key("inputArtifacts"),
                    "a Source action takes no input artifacts",
                );
            }
            if action.output_artifacts.len() != 1 {
                r.error(
                    &ap.key("outputArtifacts"),
                    format!(
                        "a Source action produces exactly one artifact, found {}",
                        action.output_artifacts.len()
                    ),
                );
            }
        }
        Provider::CodeBuild => {
            if action.input_artifacts.is_empty() {
                r.error(
                    &ap.key("inputArtifacts"),
                    "a CodeBuild action needs at least one input artifact",
                );
            }
            if let Some(env) = config.get("EnvironmentVariables")
                && let Some(e) = env_var_error(env)
            {
                r.error(
                    &cp.key("EnvironmentVariables"),
                    format!(
                        "EnvironmentVariables must be a JSON array of {{\"name\", \"value\", \"type\"}}: {e}"
                    ),
                );
            }
            must_be_input("PrimarySource", r);
        }
        Provider::CodeDeployToEcs => {
            for key in ["TaskDefinitionTemplateArtifact", "AppSpecTemplateArtifact"] {
                must_be_input(key, r);
            }
            for n in 1..=4 {
                must_be_input(&format!("Image{n}ArtifactName"), r);
            }
        }
        Provider::Ecs => {
            if action.input_artifacts.len() != 1 {
                r.error(
                    &ap.key("inputArtifacts"),
                    format!(
                        "an ECS deploy reads exactly one input artifact, found {}",
                        action.input_artifacts.len()
                    ),
                );
            }
        }
        Provider::CodeDeploy => {
            if action.input_artifacts.len() != 1 {
                r.error(
                    &ap.key("inputArtifacts"),
                    format!(
                        "a CodeDeploy deploy reads exactly one input artifact (the revision, appspec.yml at its root), found {}",
                        action.input_artifacts.len()
                    ),
                );
            }
            if !action.output_artifacts.is_empty() {
                r.error(
                    &ap.key("outputArtifacts"),
                    "a CodeDeploy deploy produces no output artifacts",
                );
            }
        }
        Provider::Manual => {
            if let Some(t) = action.timeout_in_minutes
                && !(1..=DEFAULT_APPROVAL_TIMEOUT_MINUTES).contains(&t)
            {
                r.error(
                    &ap.key("timeoutInMinutes"),
                    format!(
                        "a manual approval times out after 1 to {DEFAULT_APPROVAL_TIMEOUT_MINUTES} minutes, found {t}"
                    ),
                );
            }
        }
        Provider::Lambda => {}
        Provider::ImageScan => {
            if config.contains_key("ImageTag") && config.contains_key("ImageDigest") {
                r.error(
                    &cp.key("ImageDigest"),
                    "name the image by ImageTag or by ImageDigest, not both",
                );
            }
        }
    }
}

/// One entry of CodeBuild's `EnvironmentVariables`.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // Read only to check the shape.
struct EnvVar {
    name: String,
    value: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// What is wrong with an `EnvironmentVariables` value, read through the
/// located document layer so that its words are every reader's
/// (`[0]: missing field "value"`); `None` if it reads.
fn env_var_error(text: &str) -> Option<String> {
    let first = |e: cutover_spec::SpecError| {
        e.diagnostics.first().map(|d| match d.path.as_str() {
            "" => d.message.clone(),
            path => format!("{path}: {}", d.message),
        })
    };
    let doc = match Document::parse("EnvironmentVariables", text, Format::Json) {
        Ok(doc) => doc,
        Err(e) => return first(e),
    };
    let sink = doc.sink(false);
    let value = sink.read::<Vec<EnvVar>>(&Path::root());
    sink.finish(value).err().and_then(first)
}

/// Checks the variable references in the action's configuration values.
fn references(
    action: &Action,
    here: &Origin,
    variables: &BTreeSet<String>,
    namespaces: &BTreeMap<String, (Origin, Option<Provider>)>,
    ap: &Path,
    r: &Sink<'_>,
) {
    for (key, value) in &action.configuration {
        let path = ap.key("configuration").key(key);
        let refs = match vars::references(value) {
            Ok(refs) => refs,
            Err(e) => {
                r.error(&path, e.to_string());
                continue;
            }
        };
        for v in refs {
            let whole = format!("#{{{}.{}}}", v.namespace, v.key);
            if v.namespace == PIPELINE_VARIABLES {
                if !variables.contains(v.key) {
                    r.error(
                        &path,
                        format!(
                            "{whole}: the pipeline declares no variable {}",
                            quote(v.key)
                        ),
                    );
                }
            } else if v.namespace == CODEPIPELINE {
                if v.key != EXECUTION_ID_KEY {
                    r.error(
                        &path,
                        format!("{whole}: the codepipeline namespace has only {EXECUTION_ID_KEY}"),
                    );
                }
            } else {
                match namespaces.get(v.namespace) {
                    Some((origin, kind)) if earlier(origin, here) => {
                        let known = kind
                            .and_then(|k| catalog::PROVIDERS.iter().find(|p| p.kind == k))
                            .map(|p| p.output_variables)
                            .unwrap_or_default();
                        if !known.is_empty() && !known.contains(&v.key) {
                            r.error(
                                &path,
                                format!(
                                    "{whole}: action {} does not output {}, it outputs {}",
                                    quote(&origin.2),
                                    quote(v.key),
                                    known.join(", ")
                                ),
                            );
                        }
                    }
                    _ => r.error(
                        &path,
                        format!(
                            "{whole}: no earlier action has the namespace {}",
                            quote(v.namespace)
                        ),
                    ),
                }
            }
        }
    }
}

/// Checks `beforeEntry` and `onFailure`.
fn stage_conditions(si: usize, stage: &Stage, sp: &Path, r: &Sink<'_>) {
    if let Some(before) = &stage.before_entry {
        let bp = sp.key("beforeEntry");
        if si == 0 {
            r.error(&bp, "the first stage cannot have entry conditions");
        }
        for (ci, condition) in before.conditions.iter().enumerate() {
            let cp = bp.key("conditions").index(ci);
            if let Some(result @ (ConditionResult::Rollback | ConditionResult::Retry)) =
                condition.result
            {
                r.error(
                    &cp.key("result"),
                    format!(
                        "an entry condition's result must be FAIL or SKIP, found {}",
                        result_name(result)
                    ),
                );
            }
            if condition.rules.is_empty() {
                r.error(&cp.key("rules"), "a condition needs at least one rule");
            }
            for (ri, rule) in condition.rules.iter().enumerate() {
                let rp = cp.key("rules").index(ri);
                let t = &rule.rule_type_id;
                if t.category != "Rule" || t.provider != "DeploymentWindow" {
                    r.error(
                        &rp.key("ruleTypeId").key("provider"),
                        format!(
                            "rule {} is not supported, supported: \"DeploymentWindow\" (category \"Rule\")",
                            quote(&t.provider)
                        ),
                    );
                    continue;
                }
                match rule.configuration.get("Cron") {
                    None => r.error(
                        &rp.key("configuration"),
                        "missing configuration key \"Cron\" required by DeploymentWindow",
                    ),
                    Some(cron) => {
                        let tz = rule.configuration.get("TimeZone").map(String::as_str);
                        if let Err(e) = DeploymentWindow::new(cron, tz) {
                            r.error(&rp.key("configuration").key("Cron"), e.to_string());
                        }
                    }
                }
            }
        }
    }
    if let Some(on_failure) = &stage.on_failure {
        let fp = sp.key("onFailure").key("result");
        match on_failure.result {
            Some(ConditionResult::Rollback) if si == 0 => {
                r.error(&fp, "the first stage cannot roll back")
            }
            Some(ConditionResult::Skip) => r.error(
                &fp,
                "a stage's failure result must be ROLLBACK, FAIL or RETRY, found SKIP",
            ),
            _ => {}
        }
        if on_failure.retry_configuration.is_some()
            && on_failure.result != Some(ConditionResult::Retry)
        {
            r.warning(
                &sp.key("onFailure").key("retryConfiguration"),
                "retryConfiguration is used only with result RETRY, ignored",
            );
        }
    }
}

/// Checks the triggers.
fn triggers(p: &Pipeline, root: &Path, r: &Sink<'_>) {
    let sources: BTreeSet<&str> = p
        .stages
        .first()
        .map(|s| s.actions.iter().map(|a| a.name.as_str()).collect())
        .unwrap_or_default();
    for (ti, trigger) in p.triggers.iter().enumerate() {
        let tp = root.key("triggers").index(ti);
        let gp = tp.key("gitConfiguration");
        let name = &trigger.git_configuration.source_action_name;
        if !sources.contains(name.as_str()) {
            r.error(
                &gp.key("sourceActionName"),
                format!("no source action is named {}", quote(name)),
            );
        }
        for (fi, filter) in trigger.git_configuration.push.iter().enumerate() {
            let fp = gp.key("push").index(fi);
            match (&filter.tags, &filter.branches) {
                (Some(_), Some(_)) => {
                    r.error(&fp, "a push filter has either tags or branches, not both")
                }
                (None, None) => r.error(&fp, "a push filter needs tags or branches"),
                (Some(_), None) if filter.file_paths.is_some() => r.error(
                    &fp.key("filePaths"),
                    "file paths filter branch pushes, not tags",
                ),
                _ => {}
            }
            globs(filter.tags.as_ref(), &fp.key("tags"), r);
            globs(filter.branches.as_ref(), &fp.key("branches"), r);
            globs(filter.file_paths.as_ref(), &fp.key("filePaths"), r);
        }
        for (fi, filter) in trigger.git_configuration.pull_request.iter().enumerate() {
            let fp = gp.key("pullRequest").index(fi);
            globs(filter.branches.as_ref(), &fp.key("branches"), r);
            globs(filter.file_paths.as_ref(), &fp.key("filePaths"), r);
        }
    }
}

fn globs(filter: Option<&GlobFilter>, path: &Path, r: &Sink<'_>) {
    let Some(filter) = filter else { return };
    for (field, patterns) in [
        ("includes", &filter.includes),
        ("excludes", &filter.excludes),
    ] {
        for (i, pattern) in patterns.iter().enumerate() {
            if let Err(e) = Glob::new(pattern) {
                r.error(&path.key(field).index(i), e.to_string());
            }
        }
    }
}

/// Whether something produced at `origin` is available to an action at `here`.
fn earlier(origin: &Origin, here: &Origin) -> bool {
    origin.0 < here.0 || (origin.0 == here.0 && origin.1 < here.1)
}

/// Pipeline, stage and action names: `[A-Za-z0-9.@_-]{1,100}`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '_' | '-'))
}

fn name_message(what: &str, name: &str) -> String {
    format!(
        "invalid {what} name {}: use 1 to 100 letters, digits, ., @, _ and -",
        quote(name)
    )
}

/// Artifact names: `[A-Za-z0-9_-]{1,100}`.
fn is_artifact_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

fn result_name(result: ConditionResult) -> &'static str {
    match result {
        ConditionResult::Rollback => "ROLLBACK",
        ConditionResult::Fail => "FAIL",
        ConditionResult::Retry => "RETRY",
        ConditionResult::Skip => "SKIP",
    }
}
