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
//!
//! The build controls the files it leaves, symlinks included, so nothing
//! is read through a symlink: a selected symlink is copied as a symlink
//! (its target is not read), a `base-directory` that is absolute, climbs
//! with `..` or passes through a symlink is refused, and files are opened
//! component by component without following links (see
//! [`crate::safe_fs`]).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::glob::{GlobError, Pattern, slash_path, walk_files};
use crate::safe_fs;

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
    /// The base directory is not a directory inside the source directory.
    #[error("{artifact}: base-directory {base:?} is not a directory inside the source directory")]
    Outside {
        /// `primary` or the secondary identifier.
        artifact: String,
        /// The base directory as given.
        base: String,
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
    /// The directory nothing is read from outside of (the source).
    pub root: PathBuf,
    /// Where the files are looked for: `root` or a directory inside it.
    pub base: PathBuf,
    /// `files`.
    pub files: Vec<String>,
    /// `exclude-paths`.
    pub exclude: Vec<String>,
    /// `discard-paths`.
    pub discard_paths: bool,
}

/// The base directory: `base` relative to `src_dir`; `None` if it would
/// leave it (absolute, or with a `..` component).
pub fn base_dir(src_dir: &Path, base: Option<&str>) -> Option<PathBuf> {
    match base {
        None | Some("") => Some(src_dir.to_path_buf()),
        Some(b) => {
            let rel = Path::new(b);
            rel.components()
                .all(|c| {
                    matches!(
                        c,
                        std::path::Component::Normal(_) | std::path::Component::CurDir
                    )
                })
                .then(|| src_dir.join(rel))
        }
    }
}

/// `base` relative to `root`, if it is inside it and no component of the
/// way is a symlink.
pub(crate) fn checked_base(root: &Path, base: &Path) -> Option<PathBuf> {
    let rel = base.strip_prefix(root).ok()?;
    let mut prefix = PathBuf::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => prefix.push(n),
            std::path::Component::CurDir => continue,
            _ => return None,
        }
        if safe_fs::is_symlink_beneath(root, &prefix).unwrap_or(true) {
            return None;
        }
    }
    Some(rel.to_path_buf())
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
    let base_rel = checked_base(&sel.root, &sel.base).ok_or_else(|| ArtifactError::Outside {
        artifact: sel.label.clone(),
        base: sel.base.to_string_lossy().into_owned(),
    })?;
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
        let from = base_rel.join(&src);
        let copied = match safe_fs::is_symlink_beneath(&sel.root, &from) {
            Ok(true) => safe_fs::copy_symlink_beneath(&sel.root, &from, dest, &dst),
            Ok(false) => safe_fs::copy_beneath(&sel.root, &from, dest, &dst).map(drop),
            Err(e) => Err(e),
        };
        copied.map_err(|e| io_err(&sel.base.join(&src), e))?;
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
    fn base_directory_is_relative_to_the_source_and_stays_in_it() {
        assert_eq!(
            base_dir(Path::new("/src"), Some("dist")),
            Some(PathBuf::from("/src/dist"))
        );
        assert_eq!(base_dir(Path::new("/src"), Some("/abs/out")), None);
        assert_eq!(base_dir(Path::new("/src"), Some("a/../../x")), None);
        assert_eq!(
            base_dir(Path::new("/src"), None),
            Some(PathBuf::from("/src"))
        );
    }

    #[test]
    fn symlinks_are_collected_as_symlinks_and_never_read() {
        let src = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("id_rsa"), "host key").unwrap();
        std::fs::write(src.path().join("app.txt"), "app").unwrap();
        std::os::unix::fs::symlink(host.path().join("id_rsa"), src.path().join("key")).unwrap();
        std::os::unix::fs::symlink(host.path(), src.path().join("linked")).unwrap();
        let sel = |base: &Path| Selection {
            label: "primary".into(),
            root: src.path().to_path_buf(),
            base: base.to_path_buf(),
            files: vec!["**/*".into()],
            exclude: Vec::new(),
            discard_paths: false,
        };
        let dest = tempfile::tempdir().unwrap();
        let files = collect(&sel(src.path()), dest.path()).unwrap();
        assert_eq!(
            files,
            [PathBuf::from("app.txt"), "key".into(), "linked".into()]
        );
        assert!(
            std::fs::symlink_metadata(dest.path().join("key"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // A base directory through a symlink is refused.
        let err = collect(&sel(&src.path().join("linked")), dest.path()).unwrap_err();
        assert!(matches!(err, ArtifactError::Outside { .. }), "{err}");
    }
}
