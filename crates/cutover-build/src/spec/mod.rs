//! `buildspec.yml`: the typed build specification and its parser.
//!
//! [`parse_buildspec`] reads version 0.2 (and 0.1) of CodeBuild's format as
//! aws-formats.md section 8 describes it. Every mistake is reported at once,
//! each located by line, column and field path
//! (`buildspec.yml:12:9: phases.build.commands[2]: expected a string, found a mapping`),
//! before anything runs. AWS features Cutover does not implement (`run-as`,
//! `runtime-versions`, `batch`, `proxy`, `git-credential-helper`, report
//! formats other than JUnit XML, ...) are warnings, never errors, so that
//! real buildspecs keep working.
//!
//! YAML traps handled here: `version: 0.2` is a float (and `"0.2"` a string;
//! both are accepted); booleans such as `discard-paths` take YAML 1.1's
//! `yes`/`no`/`on`/`off` as well as `true`/`false`, quoted or not; a single
//! string stands for a list of one (`files: imagedefinitions.json`); numbers
//! and booleans are accepted where text is expected (`PORT: 8080`).
//!
//! Version 0.1 is supported: it runs each command in a fresh shell (a
//! subshell of the build's session), so `cd` and `export` do not carry over.

mod model;
mod read;

pub use model::{
    ArtifactSpec, Artifacts, BuildSpec, Env, OnFailure, Phase, PhaseName, Phases, ReportFormat,
    ReportGroup, Shell, Version,
};

use cutover_spec::diag::{Parsed, SpecError};
use cutover_spec::doc::{Document, Format, Node, Path, Value};

use crate::glob::Pattern;
use crate::vars;
use read::{Reader, quote};

const ROOT_KEYS: &[&str] = &["version", "env", "phases", "reports", "artifacts", "cache"];
const ROOT_UNSUPPORTED: &[&str] = &["run-as", "batch", "proxy", "fleet"];
const ENV_KEYS: &[&str] = &[
    "shell",
    "variables",
    "parameter-store",
    "secrets-manager",
    "exported-variables",
];
const ENV_UNSUPPORTED: &[&str] = &["git-credential-helper"];
const PHASE_NAMES: &[&str] = &["install", "pre_build", "build", "post_build"];
const PHASE_KEYS: &[&str] = &["commands", "finally", "on-failure"];
const PHASE_UNSUPPORTED: &[&str] = &["run-as", "runtime-versions"];
const ARTIFACT_KEYS: &[&str] = &[
    "files",
    "name",
    "base-directory",
    "discard-paths",
    "exclude-paths",
    "secondary-artifacts",
];
const ARTIFACT_UNSUPPORTED: &[&str] = &["enable-symlinks", "s3-prefix"];
const REPORT_KEYS: &[&str] = &["files", "base-directory", "discard-paths", "file-format"];
const CACHE_KEYS: &[&str] = &["paths"];
const CACHE_UNSUPPORTED: &[&str] = &["key", "fallback-keys", "action"];
const REPORT_FORMATS: &[&str] = &[
    "JUNITXML",
    "CUCUMBERJSON",
    "TESTNGXML",
    "VISUALSTUDIOTRX",
    "NUNITXML",
    "NUNIT3XML",
    "CLOVERXML",
    "COBERTURAXML",
    "JACOCOXML",
    "SIMPLECOV",
];

/// Parses a buildspec. `file` names the file in diagnostics only.
///
/// ```
/// let text = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n";
/// let parsed = cutover_build::spec::parse_buildspec("buildspec.yml", text).unwrap();
/// assert_eq!(parsed.value.phases.build.commands, ["echo hi"]);
/// ```
pub fn parse_buildspec(file: &str, text: &str) -> Result<Parsed<BuildSpec>, SpecError> {
    // Always YAML (JSON is YAML too), whatever the file is named.
    let doc = Document::parse(file, text, Format::Yaml)?;
    let sink = doc.sink(false);
    let spec = read_root(&mut Reader::new(&sink), doc.root());
    sink.finish(spec)
}

fn read_root(r: &mut Reader<'_>, root: &Node) -> Option<BuildSpec> {
    let path = Path::root();
    let map = match &root.value {
        Value::Map(m) => m,
        Value::Null => {
            r.error(&path, "the buildspec is empty");
            return None;
        }
        _ => {
            r.error(
                &path,
                format!("expected a mapping, found {}", read::describe(root)),
            );
            return None;
        }
    };
    let entries = r.entries(map);
    r.check_keys(&entries, &path, ROOT_KEYS, ROOT_UNSUPPORTED);
    let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| *v);

    let version = match get("version") {
        None => {
            r.error(&path, "missing field \"version\"");
            None
        }
        Some(v) => read_version(r, v, &path.key("version")),
    };
    let env = get("env")
        .map(|v| read_env(r, v, &path.key("env")))
        .unwrap_or_default();
    let phases = match get("phases") {
        Some(v) => read_phases(r, v, &path.key("phases")),
        None => {
            r.warn(&path, "no \"phases\": the build runs no commands");
            Phases::default()
        }
    };
    let artifacts = get("artifacts").and_then(|v| read_artifacts(r, v, &path.key("artifacts")));
    let reports = get("reports")
        .map(|v| read_reports(r, v, &path.key("reports")))
        .unwrap_or_default();
    let cache_paths = get("cache")
        .map(|v| read_cache(r, v, &path.key("cache")))
        .unwrap_or_default();

    Some(BuildSpec {
        version: version?,
        env,
        phases,
        artifacts,
        reports,
        cache_paths,
    })
}

fn read_version(r: &mut Reader<'_>, v: &Node, path: &Path) -> Option<Version> {
    let text = match &v.value {
        Value::Int(_) | Value::Float(_) => read::scalar_text(v).unwrap_or_default(),
        Value::Str(s) => s.trim().to_owned(),
        _ => String::new(),
    };
    match text.as_str() {
        "0.2" => Some(Version::V0_2),
        "0.1" => Some(Version::V0_1),
        _ => {
            r.error(
                path,
                format!("expected 0.2 or 0.1, found {}", read::describe(v)),
            );
            None
        }
    }
}

fn read_env(r: &mut Reader<'_>, v: &Node, path: &Path) -> Env {
    let mut env = Env::default();
    let Some(map) = r.mapping(v, path) else {
        return env;
    };
    let entries = r.entries(map);
    r.check_keys(&entries, path, ENV_KEYS, ENV_UNSUPPORTED);
    for (key, value) in &entries {
        let at = path.key(key);
        match key.as_str() {
            "shell" => {
                if let Some(s) = r.string(value, &at) {
                    match s.as_str() {
                        "bash" | "/bin/bash" | "/usr/bin/bash" => env.shell = Shell::Bash,
                        "sh" | "/bin/sh" | "/usr/bin/sh" => env.shell = Shell::Sh,
                        "powershell.exe" => env.shell = Shell::PowerShell,
                        "pwsh" => env.shell = Shell::Pwsh,
                        "cmd.exe" => env.shell = Shell::Cmd,
                        _ => r.error(
                            &at,
                            format!(
                                "expected bash or sh (or powershell.exe, pwsh or cmd.exe for Windows images), found {}",
                                quote(&s)
                            ),
                        ),
                    }
                    if env.shell.is_windows() {
                        r.warn(
                            &at,
                            format!(
                                "{} runs only on CodeBuild's Windows images; Windows builds are not supported here, so a build of this buildspec fails at start",
                                quote(&s)
                            ),
                        );
                    }
                }
            }
            "variables" => env.variables = read_names(r, value, &at, true),
            "parameter-store" => env.parameter_store = read_names(r, value, &at, false),
            "secrets-manager" => env.secrets_manager = read_names(r, value, &at, false),
            "exported-variables" => {
                let list = r.strings(value, &at);
                for (i, name) in list.iter().enumerate() {
                    if !vars::is_var_name(name) {
                        r.error(
                            &at.index(i),
                            format!("{} is not a valid variable name", quote(name)),
                        );
                    }
                }
                env.exported_variables = list;
            }
            _ => {}
        }
    }
    env
}

/// A mapping whose keys are environment variable names.
fn read_names(r: &mut Reader<'_>, v: &Node, path: &Path, plain: bool) -> Vec<(String, String)> {
    let pairs = r.string_map(v, path);
    for (name, _) in &pairs {
        let at = path.key(name);
        if !vars::is_var_name(name) {
            r.error(&at, format!("{} is not a valid variable name", quote(name)));
        } else if plain && name.starts_with("CODEBUILD_") {
            r.warn(
                &at,
                "names starting with CODEBUILD_ are reserved for built-in variables, which take precedence",
            );
        }
    }
    pairs
}

fn read_phases(r: &mut Reader<'_>, v: &Node, path: &Path) -> Phases {
    let mut phases = Phases::default();
    let Some(map) = r.mapping(v, path) else {
        return phases;
    };
    for (key, value) in r.entries(map) {
        let at = path.key(&key);
        let Some(name) = PhaseName::ALL.into_iter().find(|p| p.key() == key) else {
            let hint = match cutover_spec::suggest(&key, PHASE_NAMES.iter().copied()) {
                Some(s) => format!(" (did you mean {}?)", quote(s)),
                None => String::new(),
            };
            r.error(
                &at,
                format!(
                    "unknown phase {}, expected install, pre_build, build or post_build{hint}",
                    quote(&key)
                ),
            );
            continue;
        };
        *phases.get_mut(name) = read_phase(r, value, &at);
    }
    phases
}

fn read_phase(r: &mut Reader<'_>, v: &Node, path: &Path) -> Phase {
    let mut phase = Phase::default();
    let Some(map) = r.mapping(v, path) else {
        return phase;
    };
    let entries = r.entries(map);
    r.check_keys(&entries, path, PHASE_KEYS, PHASE_UNSUPPORTED);
    for (key, value) in &entries {
        let at = path.key(key);
        match key.as_str() {
            "commands" => phase.commands = read_commands(r, value, &at),
            "finally" => phase.finally = read_commands(r, value, &at),
            "on-failure" => phase.on_failure = read_on_failure(r, value, &at),
            _ => {}
        }
    }
    phase
}

fn read_commands(r: &mut Reader<'_>, v: &Node, path: &Path) -> Vec<String> {
    match &v.value {
        Value::Seq(_) | Value::Null => {}
        _ => {
            r.error(
                path,
                format!("expected a list of commands, found {}", read::describe(v)),
            );
            return Vec::new();
        }
    }
    let commands = r.strings(v, path);
    for (i, c) in commands.iter().enumerate() {
        if c.contains('\0') {
            r.error(&path.index(i), "a command cannot contain a NUL character");
        }
    }
    commands
}

fn read_on_failure(r: &mut Reader<'_>, v: &Node, path: &Path) -> Option<OnFailure> {
    let s = r.string(v, path)?;
    match s.to_ascii_uppercase().as_str() {
        "ABORT" => Some(OnFailure::Abort),
        "CONTINUE" => Some(OnFailure::Continue),
        up if up.starts_with("RETRY") => {
            r.warn(
                path,
                format!(
                    "{} is not supported by cutover, the phase aborts the build on failure",
                    quote(&s)
                ),
            );
            Some(OnFailure::Abort)
        }
        _ => {
            r.error(
                path,
                format!("expected ABORT or CONTINUE, found {}", quote(&s)),
            );
            None
        }
    }
}

fn read_artifacts(r: &mut Reader<'_>, v: &Node, path: &Path) -> Option<Artifacts> {
    let map = r.mapping(v, path)?;
    let entries = r.entries(map);
    r.check_keys(&entries, path, ARTIFACT_KEYS, ARTIFACT_UNSUPPORTED);
    let has_primary = entries
        .iter()
        .any(|(k, _)| k != "secondary-artifacts" && ARTIFACT_KEYS.contains(&k.as_str()));
    let mut secondary = Vec::new();
    if let Some((_, sec)) = entries.iter().find(|(k, _)| k == "secondary-artifacts") {
        let at = path.key("secondary-artifacts");
        if let Some(sec_map) = r.mapping(sec, &at) {
            for (id, value) in r.entries(sec_map) {
                let item = at.key(&id);
                if id.is_empty()
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    r.error(
                        &item,
                        format!(
                            "artifact identifier {} may only contain letters, digits, _ and -",
                            quote(&id)
                        ),
                    );
                }
                let Some(m) = r.mapping(value, &item) else {
                    r.error(&item, "missing field \"files\"");
                    continue;
                };
                let e = r.entries(m);
                let mut known: Vec<&str> = ARTIFACT_KEYS.to_vec();
                known.retain(|k| *k != "secondary-artifacts");
                r.check_keys(&e, &item, &known, ARTIFACT_UNSUPPORTED);
                if let Some(spec) = read_artifact_spec(r, &e, &item) {
                    secondary.push((id, spec));
                }
            }
        }
    }
    let primary = if has_primary || secondary.is_empty() {
        read_artifact_spec(r, &entries, path)
    } else {
        None
    };
    Some(Artifacts { primary, secondary })
}

fn read_artifact_spec(
    r: &mut Reader<'_>,
    entries: &[(String, &Node)],
    path: &Path,
) -> Option<ArtifactSpec> {
    let mut spec = ArtifactSpec::default();
    let mut has_files = false;
    for (key, value) in entries {
        let at = path.key(key);
        match key.as_str() {
            "files" => {
                has_files = true;
                spec.files = read_patterns(r, value, &at);
            }
            "name" => spec.name = r.string(value, &at),
            "base-directory" => spec.base_directory = read_base_directory(r, value, &at),
            "discard-paths" => spec.discard_paths = r.boolean(value, &at).unwrap_or(false),
            "exclude-paths" => spec.exclude_paths = read_patterns(r, value, &at),
            _ => {}
        }
    }
    if !has_files {
        r.error(path, "missing field \"files\"");
        return None;
    }
    Some(spec)
}

fn read_base_directory(r: &mut Reader<'_>, v: &Node, path: &Path) -> Option<String> {
    let s = r.string(v, path)?;
    if s.split('/').any(|seg| seg == "..") {
        r.error(
            path,
            format!(
                "{} must not leave the source directory with \"..\"",
                quote(&s)
            ),
        );
    }
    Some(s)
}

/// A list of path patterns, each checked for syntax (with its variable
/// references standing for any value).
fn read_patterns(r: &mut Reader<'_>, v: &Node, path: &Path) -> Vec<String> {
    let list = r.strings(v, path);
    for (i, p) in list.iter().enumerate() {
        let at = if matches!(v.value, Value::Seq(_)) {
            path.index(i)
        } else {
            path.clone()
        };
        let probe = vars::expand(p, |_| Some("x".to_owned()));
        if let Err(e) = Pattern::new(&probe) {
            r.error(&at, format!("invalid pattern {}: {e}", quote(p)));
        }
    }
    list
}

fn read_reports(r: &mut Reader<'_>, v: &Node, path: &Path) -> Vec<ReportGroup> {
    let mut out = Vec::new();
    let Some(map) = r.mapping(v, path) else {
        return out;
    };
    for (name, value) in r.entries(map) {
        let at = path.key(&name);
        let Some(m) = r.mapping(value, &at) else {
            r.error(&at, "missing field \"files\"");
            continue;
        };
        let entries = r.entries(m);
        r.check_keys(&entries, &at, REPORT_KEYS, &[]);
        let mut group = ReportGroup {
            name: name.clone(),
            files: Vec::new(),
            base_directory: None,
            discard_paths: false,
            format: ReportFormat::JunitXml,
        };
        let mut has_files = false;
        for (key, value) in &entries {
            let k = at.key(key);
            match key.as_str() {
                "files" => {
                    has_files = true;
                    group.files = read_patterns(r, value, &k);
                }
                "base-directory" => group.base_directory = read_base_directory(r, value, &k),
                "discard-paths" => group.discard_paths = r.boolean(value, &k).unwrap_or(false),
                "file-format" => {
                    if let Some(f) = r.string(value, &k) {
                        let up = f.to_ascii_uppercase();
                        if up == "JUNITXML" {
                            group.format = ReportFormat::JunitXml;
                        } else if REPORT_FORMATS.contains(&up.as_str()) {
                            r.warn(
                                &k,
                                format!(
                                    "report format {} is not read by cutover, only JUNITXML",
                                    quote(&f)
                                ),
                            );
                            group.format = ReportFormat::Other(f);
                        } else {
                            r.error(&k, format!("unknown report format {}", quote(&f)));
                        }
                    }
                }
                _ => {}
            }
        }
        if !has_files {
            r.error(&at, "missing field \"files\"");
            continue;
        }
        out.push(group);
    }
    out
}

fn read_cache(r: &mut Reader<'_>, v: &Node, path: &Path) -> Vec<String> {
    let Some(map) = r.mapping(v, path) else {
        return Vec::new();
    };
    let entries = r.entries(map);
    r.check_keys(&entries, path, CACHE_KEYS, CACHE_UNSUPPORTED);
    match entries.iter().find(|(k, _)| k == "paths") {
        Some((_, v)) => read_patterns(r, v, &path.key("paths")),
        None => {
            r.error(path, "missing field \"paths\"");
            Vec::new()
        }
    }
}
