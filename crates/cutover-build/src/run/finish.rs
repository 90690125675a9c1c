//! The end of a build: reading variables and artifact names from the
//! shell, and collecting the artifacts.

use std::collections::BTreeMap;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::{LogLine, Logger};
use crate::artifacts::{self, ArtifactSet, Selection};
use crate::shell::{CommandEnd, Shell, sh_quote};
use crate::spec::{ArtifactSpec, BuildSpec};
use crate::vars;

/// Values read from the shell at the end of the build.
pub(super) struct ShellValues {
    /// Variables by name (only those that are set).
    pub(super) vars: BTreeMap<String, String>,
    /// Artifact names, expanded: primary first, then secondary in order.
    pub(super) names: Vec<Option<String>>,
}

fn artifact_specs(spec: &BuildSpec) -> Vec<(Option<&str>, &ArtifactSpec)> {
    let mut out = Vec::new();
    if let Some(a) = &spec.artifacts {
        if let Some(p) = &a.primary {
            out.push((None, p));
        }
        for (id, s) in &a.secondary {
            out.push((Some(id.as_str()), s));
        }
    }
    out
}

/// Asks the shell for the exported variables, the variables the paths
/// refer to and the artifact names. `None` if the build was stopped meanwhile.
pub(super) async fn read_shell_values<F: FnMut(LogLine) + Send>(
    shell: &mut Shell,
    logger: &mut Logger<F>,
    spec: &BuildSpec,
    cancel: &CancellationToken,
) -> Option<ShellValues> {
    let mut names: Vec<String> = spec.env.exported_variables.clone();
    let mut texts: Vec<&str> = Vec::new();
    for (_, a) in artifact_specs(spec) {
        texts.extend(a.files.iter().map(String::as_str));
        texts.extend(a.exclude_paths.iter().map(String::as_str));
        texts.extend(a.base_directory.as_deref());
    }
    for g in &spec.reports {
        texts.extend(g.files.iter().map(String::as_str));
        texts.extend(g.base_directory.as_deref());
    }
    texts.extend(spec.cache_paths.iter().map(String::as_str));
    for t in texts {
        for n in vars::references(t) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let dir = shell.dir().to_path_buf();
    let mut script = String::new();
    for n in &names {
        let file = sh_quote(&dir.join(format!("v.{n}")).to_string_lossy());
        script.push_str(&format!(
            "if [ \"${{{n}+x}}\" = x ]; then (umask 077; printf '%s' \"${n}\" > {file}); fi\n"
        ));
    }
    let specs = artifact_specs(spec);
    for (i, (_, a)) in specs.iter().enumerate() {
        if let Some(name) = &a.name {
            let file = sh_quote(&dir.join(format!("n.{i}")).to_string_lossy());
            let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
            script.push_str(&format!("printf '%s' \"{escaped}\" > {file}\n"));
        }
    }
    script.push_str("true\n");
    let end = {
        let mut emit = |line: String| logger.output(line);
        shell.run_internal(&script, &mut emit, cancel).await
    };
    match end {
        Ok(CommandEnd::Cancelled) => return None,
        Ok(_) => {}
        Err(e) => logger.system(format!("Could not read the build's variables: {e}")),
    }
    let vars = names
        .iter()
        .filter_map(|n| {
            std::fs::read(dir.join(format!("v.{n}")))
                .ok()
                .map(|v| (n.clone(), String::from_utf8_lossy(&v).into_owned()))
        })
        .collect();
    let names = (0..specs.len())
        .map(|i| {
            std::fs::read(dir.join(format!("n.{i}")))
                .ok()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        })
        .collect();
    Some(ShellValues { vars, names })
}

pub(super) fn upload_artifacts(
    spec: &BuildSpec,
    src_dir: &Path,
    work_dir: &Path,
    values: &ShellValues,
    out: &mut Vec<ArtifactSet>,
) -> Result<(), artifacts::ArtifactError> {
    let lookup = |n: &str| values.vars.get(n).cloned();
    let root = work_dir.join("artifacts");
    // The build may have left anything there (symlinks included): start
    // from nothing.
    match std::fs::remove_dir_all(&root) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(artifacts::ArtifactError::Io {
                artifact: "primary".to_owned(),
                path: root,
                source: e,
            });
        }
        _ => {}
    }
    for (i, (id, a)) in artifact_specs(spec).into_iter().enumerate() {
        let dest = match id {
            None => root.join("primary"),
            Some(id) => root.join("secondary").join(id),
        };
        let label = id.unwrap_or("primary").to_owned();
        let base_text = a.base_directory.as_deref().map(|b| vars::expand(b, lookup));
        let base = artifacts::base_dir(src_dir, base_text.as_deref()).ok_or_else(|| {
            artifacts::ArtifactError::Outside {
                artifact: label.clone(),
                base: base_text.clone().unwrap_or_default(),
            }
        })?;
        let sel = Selection {
            label,
            root: src_dir.to_path_buf(),
            base,
            files: a.files.iter().map(|f| vars::expand(f, lookup)).collect(),
            exclude: a
                .exclude_paths
                .iter()
                .map(|f| vars::expand(f, lookup))
                .collect(),
            discard_paths: a.discard_paths,
        };
        let files = artifacts::collect(&sel, &dest)?;
        out.push(ArtifactSet {
            identifier: id.map(str::to_owned),
            name: values.names.get(i).cloned().flatten(),
            dir: dest,
            files,
        });
    }
    Ok(())
}
