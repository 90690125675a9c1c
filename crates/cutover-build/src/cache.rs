//! The build cache (`cache.paths`): files kept from one build to the next.
//!
//! Before the install phase, the files saved in the project's cache
//! directory are copied back into place; after the build (when artifacts
//! are collected), the files the patterns select replace the cache's
//! contents. Patterns are relative to the source directory. The cache
//! directory holds `files/src/<relative path>`; a new cache is built beside
//! the old one and swapped in by rename, so an interrupted save leaves the
//! previous cache intact.
//!
//! What a build may not do through its cache:
//!
//! - absolute patterns (`/root/.m2/**/*`, which CodeBuild allows) and
//!   patterns with a `..` segment are refused with a line in the build's
//!   log: they would read and write the host's files outside the build
//!   (for a build in a container, the host's, not the container's), which
//!   crosses the trust boundary between a build and the server;
//! - symlinks are saved and restored as symlinks, never read through;
//! - a restore never writes through a symlink (one committed to the
//!   repository, say): every path is opened component by component without
//!   following links (see [`crate::safe_fs`]); such a file is skipped with
//!   a log line.

use std::io;
use std::path::{Path, PathBuf};

use crate::glob::{Pattern, slash_path, walk_files};
use crate::safe_fs;

/// A cache operation failed.
#[derive(Debug, thiserror::Error)]
#[error("cache: {path}: {source}")]
pub struct CacheError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The error.
    pub source: io::Error,
}

/// What a save or a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheReport {
    /// Files (and symlinks) copied.
    pub files: usize,
    /// Why patterns or files were left out, one line each.
    pub skipped: Vec<String>,
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError {
        path: path.to_path_buf(),
        source,
    }
}

/// The usable patterns; the others are reported in `skipped`.
fn compile(patterns: &[String], skipped: &mut Vec<String>) -> Vec<Pattern> {
    let mut out = Vec::new();
    for p in patterns {
        match Pattern::new(p) {
            Ok(c) if c.is_absolute() || p.split('/').any(|s| s == "..") => skipped.push(format!(
                "cache path {p:?} is outside the source directory: not cached (only paths under CODEBUILD_SRC_DIR are)"
            )),
            Ok(c) => out.push(c),
            Err(e) => skipped.push(format!("cache path {p:?}: {e}")),
        }
    }
    out
}

/// Copies `rel` from `from` to `to`: a symlink as a symlink, a regular
/// file as a file; never through a symlink.
fn copy_entry(from: &Path, to: &Path, rel: &Path) -> io::Result<()> {
    if safe_fs::is_symlink_beneath(from, rel)? {
        safe_fs::copy_symlink_beneath(from, rel, to, rel)
    } else {
        safe_fs::copy_beneath(from, rel, to, rel).map(drop)
    }
}

/// Copies the cached files back into the source directory.
pub fn restore(
    cache_dir: &Path,
    patterns: &[String],
    src_dir: &Path,
) -> Result<CacheReport, CacheError> {
    let stored = cache_dir.join("files").join("src");
    let mut report = CacheReport::default();
    let compiled = compile(patterns, &mut report.skipped);
    for rel in walk_files(&stored).map_err(err(&stored))? {
        if !compiled.iter().any(|p| p.selects(&slash_path(&rel))) {
            continue;
        }
        match copy_entry(&stored, src_dir, &rel) {
            Ok(()) => report.files += 1,
            Err(e) => report
                .skipped
                .push(format!("{}: not restored: {e}", slash_path(&rel))),
        }
    }
    Ok(report)
}

/// Replaces the cache with the files the patterns select now.
pub fn save(
    cache_dir: &Path,
    patterns: &[String],
    src_dir: &Path,
) -> Result<CacheReport, CacheError> {
    let files_dir = cache_dir.join("files");
    let new_dir = cache_dir.join("files.new");
    let old_dir = cache_dir.join("files.old");
    for d in [&new_dir, &old_dir] {
        match std::fs::remove_dir_all(d) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(d)(e)),
            _ => {}
        }
    }
    let stored = new_dir.join("src");
    safe_fs::private_dir(&stored).map_err(err(&stored))?;
    let mut report = CacheReport::default();
    for pattern in compile(patterns, &mut report.skipped) {
        let prefix = pattern.literal_prefix();
        let start = src_dir.join(&prefix);
        // Never walk through a symlinked directory: it could list host
        // directories into the build log.
        if crate::artifacts::checked_base(src_dir, &start).is_none() {
            if std::fs::symlink_metadata(&start).is_ok() {
                report.skipped.push(format!(
                    "{}: not cached: the path passes through a symbolic link",
                    slash_path(&prefix)
                ));
            }
            continue;
        }
        for rel in walk_files(&start).map_err(err(&start))? {
            let rel = prefix.join(rel);
            if !pattern.selects(&slash_path(&rel)) || stored.join(&rel).exists() {
                continue;
            }
            match copy_entry(src_dir, &stored, &rel) {
                Ok(()) => report.files += 1,
                // A file removed meanwhile: not cached.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => report
                    .skipped
                    .push(format!("{}: not cached: {e}", slash_path(&rel))),
            }
        }
    }
    if files_dir.exists() {
        std::fs::rename(&files_dir, &old_dir).map_err(err(&files_dir))?;
    }
    std::fs::rename(&new_dir, &files_dir).map_err(err(&new_dir))?;
    let _ = std::fs::remove_dir_all(&old_dir);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_restores_relative_paths() {
        let src = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("node_modules/left-pad")).unwrap();
        std::fs::write(src.path().join("node_modules/left-pad/index.js"), "pad").unwrap();
        std::fs::write(src.path().join("other.txt"), "no").unwrap();
        let patterns = vec!["node_modules/**/*".to_owned()];
        assert_eq!(save(cache.path(), &patterns, src.path()).unwrap().files, 1);

        let fresh = tempfile::tempdir().unwrap();
        assert_eq!(
            restore(cache.path(), &patterns, fresh.path())
                .unwrap()
                .files,
            1
        );
        assert_eq!(
            std::fs::read_to_string(fresh.path().join("node_modules/left-pad/index.js")).unwrap(),
            "pad"
        );
        assert!(!fresh.path().join("other.txt").exists());
        // A pattern no longer listed is not restored.
        assert_eq!(
            restore(cache.path(), &["vendor/**/*".to_owned()], fresh.path())
                .unwrap()
                .files,
            0
        );
    }

    #[test]
    fn absolute_paths_are_refused_and_symlinks_never_followed() {
        let src = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("bashrc"), "host").unwrap();
        std::fs::create_dir_all(src.path().join("deps")).unwrap();
        std::fs::write(src.path().join("deps/lib.txt"), "v1").unwrap();
        std::os::unix::fs::symlink(host.path().join("bashrc"), src.path().join("deps/rc")).unwrap();
        let host_pattern = format!("{}/**/*", host.path().display());
        let patterns = vec!["deps/**/*".to_owned(), host_pattern];
        let saved = save(cache.path(), &patterns, src.path()).unwrap();
        assert_eq!(saved.files, 2, "{saved:?}");
        assert!(saved.skipped[0].contains("is outside the source directory"));
        // The symlink was saved as a symlink; the host file was not read.
        let stored = cache.path().join("files/src/deps/rc");
        assert!(
            std::fs::symlink_metadata(&stored)
                .unwrap()
                .file_type()
                .is_symlink()
        );

        // A fresh source whose repository made `deps` a symlink to the host:
        // restoring must not write through it.
        let fresh = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host.path(), fresh.path().join("deps")).unwrap();
        let restored = restore(cache.path(), &patterns, fresh.path()).unwrap();
        assert_eq!(restored.files, 0, "{restored:?}");
        assert!(!host.path().join("lib.txt").exists());
        assert_eq!(
            std::fs::read_to_string(host.path().join("bashrc")).unwrap(),
            "host"
        );
    }

    #[test]
    fn saving_never_walks_a_symlinked_directory() {
        let src = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(host.path().join("secret-names")).unwrap();
        std::fs::write(host.path().join("secret-names/payroll.xlsx"), "x").unwrap();
        std::os::unix::fs::symlink(host.path(), src.path().join("link")).unwrap();
        let patterns = vec!["link/**/*".to_owned()];
        let saved = save(cache.path(), &patterns, src.path()).unwrap();
        assert_eq!(saved.files, 0, "{saved:?}");
        let log = saved.skipped.join("\n");
        assert!(log.contains("passes through a symbolic link"), "{log}");
        assert!(!log.contains("payroll"), "host file names leaked: {log}");
    }
}
