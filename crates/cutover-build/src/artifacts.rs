//! Artifacts: which files of the build an artifact takes, and where they go.
//!
//! For each artifact (the primary one and every `secondary-artifacts`
//! entry), the files under `base-directory` (default: the source directory)
//! that some `files` pattern selects and no `exclude-paths` pattern selects
//! are copied to `<work_dir>/artifacts/primary/` or
//! `<work_dir>/artifacts/secondary/<identifier>/`, keeping their path
//! relative to the base directory, or only their file name with
//! `discard-paths: yes`. An artifact that selects no file fails the upload,
//! as in CodeBuild ("no matching artifact paths found"); so do two files
//! that `discard-paths` would put at the same name.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::glob::{GlobError, Pattern, slash_path, walk_files};

/// A collected artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactSet {
    /// `None` for the primary artifact, else the secondary identifier.
    pub identifier: Option<String>,
    /// The artifact's `name`, variables expanded, if the buildspec gave one.
    pub name: Option<String>,
    /// The directory holding the files.
    pub dir: PathBuf,
    /// The files, relative to `dir`, sorted.
    pub files: Vec<PathBuf>,
}

/// Why an artifact could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// No file matched.
    #[error("{artifact}: no matching artifact paths found under {base}")]
    NoMatch {
        /// `primary` or the secondary identifier.
        artifact: String,
        /// The base directory searched.
        base: PathBuf,
    },
    /// `discard-paths` maps two files to one name.
    #[error("{artifact}: discard-paths puts both {first} and {second} at {name}")]
    Collision {
        /// `primary` or the secondary identifier.
        artifact: String,
        /// The shared file name.
        name: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// A pattern does not compile (after variable expansion).
    #[error("{artifact}: invalid pattern {pattern:?}: {source}")]
    Pattern {
        /// `primary` or the secondary identifier.
        artifact: String,
        /// The pattern.
        pattern: String,
        /// Why.
        source: GlobError,
    },
    /// Reading or copying failed.
    #[error("{artifact}: {path}: {source}")]
    Io {
        /// `primary` or the secondary identifier.
        artifact: String,
        /// The file or directory concerned.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// An artifact with its variables expanded, ready to collect.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `primary` or the secondary identifier, for messages.
    pub label: String,
    /// Where the files are looked for.
    pub base: PathBuf,
    /// `files`.
    pub files: Vec<String>,
    /// `exclude-paths`.
    pub exclude: Vec<String>,
    /// `discard-paths`.
    pub discard_paths: bool,
}

/// The base directory: `base` relative to `src_dir`, or as is if absolute.
pub fn base_dir(src_dir: &Path, base: Option<&str>) -> PathBuf {
    match base {
        None | Some("") => src_dir.to_path_buf(),
        Some(b) => src_dir.join(b),
    }
}

/// Pure: for the `files` (relative to the base directory), the pairs
/// (source, destination), both relative, in file order.
pub fn map_files(
    files: &[PathBuf],
    include: &[Pattern],
    exclude: &[Pattern],
    discard_paths: bool,
) -> Result<Vec<(PathBuf, PathBuf)>, (String, String, String)> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for file in files {
        let rel = slash_path(file);
        if !include.iter().any(|p| p.selects(&rel)) || exclude.iter().any(|p| p.selects(&rel)) {
            continue;
        }
        let dest = if discard_paths {
            PathBuf::from(file.file_name().unwrap_or(file.as_os_str()))
        } else {
            file.clone()
        };
        if let Some(first) = seen.insert(dest.clone(), file.clone()) {
            return Err((slash_path(&dest), slash_path(&first), rel));
        }
        out.push((file.clone(), dest));
    }
    Ok(out)
}

fn compile(label: &str, patterns: &[String]) -> Result<Vec<Pattern>, ArtifactError> {
    patterns
        .iter()
        .map(|p| {
            Pattern::new(p).map_err(|source| ArtifactError::Pattern {
                artifact: label.to_owned(),
                pattern: p.clone(),
                source,
            })
        })
        .collect()
}

/// Copies the files `sel` selects into `dest` (created), returning them
/// relative to `dest`.
pub fn collect(sel: &Selection, dest: &Path) -> Result<Vec<PathBuf>, ArtifactError> {
    let io_err = |path: &Path, source| ArtifactError::Io {
        artifact: sel.label.clone(),
        path: path.to_path_buf(),
        source,
    };
    let include = compile(&sel.label, &sel.files)?;
    let exclude = compile(&sel.label, &sel.exclude)?;
    let files = walk_files(&sel.base).map_err(|e| io_err(&sel.base, e))?;
    let pairs = map_files(&files, &include, &exclude, sel.discard_paths).map_err(
        |(name, first, second)| ArtifactError::Collision {
            artifact: sel.label.clone(),
            name,
            first,
            second,
        },
    )?;
    if pairs.is_empty() {
        return Err(ArtifactError::NoMatch {
            artifact: sel.label.clone(),
            base: sel.base.clone(),
        });
    }
    std::fs::create_dir_all(dest).map_err(|e| io_err(dest, e))?;
    let mut out = Vec::with_capacity(pairs.len());
    for (src, dst) in pairs {
        let from = sel.base.join(&src);
        let to = dest.join(&dst);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        std::fs::copy(&from, &to).map_err(|e| io_err(&from, e))?;
        out.push(dst);
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(list: &[&str]) -> Vec<Pattern> {
        list.iter().map(|p| Pattern::new(p).unwrap()).collect()
    }

    fn files(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn keeps_paths_and_applies_excludes() {
        let all = files(&[
            "app.js",
            "app.js.map",
            "lib/a.js",
            "lib/a.js.map",
            "README.md",
        ]);
        let got = map_files(&all, &pats(&["**/*"]), &pats(&["**/*.map"]), false).unwrap();
        let dests: Vec<_> = got.iter().map(|(_, d)| slash_path(d)).collect();
        assert_eq!(dests, ["app.js", "lib/a.js", "README.md"]);
    }

    #[test]
    fn discard_paths_flattens_and_refuses_collisions() {
        let all = files(&["build/libs/app.jar", "scripts/start.sh"]);
        let got = map_files(&all, &pats(&["build/libs/*.jar", "scripts/*"]), &[], true).unwrap();
        let dests: Vec<_> = got.iter().map(|(_, d)| slash_path(d)).collect();
        assert_eq!(dests, ["app.jar", "start.sh"]);
        let clash = files(&["a/x.txt", "b/x.txt"]);
        assert_eq!(
            map_files(&clash, &pats(&["**/*"]), &[], true),
            Err(("x.txt".into(), "a/x.txt".into(), "b/x.txt".into()))
        );
    }

    #[test]
    fn base_directory_is_relative_to_the_source() {
        assert_eq!(
            base_dir(Path::new("/src"), Some("dist")),
            PathBuf::from("/src/dist")
        );
        assert_eq!(
            base_dir(Path::new("/src"), Some("/abs/out")),
            PathBuf::from("/abs/out")
        );
        assert_eq!(base_dir(Path::new("/src"), None), PathBuf::from("/src"));
    }
}
