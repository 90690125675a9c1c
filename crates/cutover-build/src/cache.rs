//! The build cache (`cache.paths`): files kept from one build to the next.
//!
//! Before the install phase, the files saved in the project's cache
//! directory are copied back into place; after the build (when artifacts
//! are collected), the files the patterns select replace the cache's
//! contents. Relative patterns are relative to the source directory;
//! absolute ones (`/root/.m2/**/*`) name host paths. The cache directory
//! holds `files/src/<relative path>` and `files/root/<absolute path>`; a new
//! cache is built beside the old one and swapped in by rename, so an
//! interrupted save leaves the previous cache intact.

use std::io;
use std::path::{Path, PathBuf};

use crate::glob::{Pattern, slash_path, walk_files};

/// A cache operation failed.
#[derive(Debug, thiserror::Error)]
#[error("cache: {path}: {source}")]
pub struct CacheError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The error.
    pub source: io::Error,
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a pattern's files live and are saved.
fn roots(src_dir: &Path, cache_files: &Path, pattern: &Pattern) -> (PathBuf, PathBuf) {
    if pattern.is_absolute() {
        (PathBuf::from("/"), cache_files.join("root"))
    } else {
        (src_dir.to_path_buf(), cache_files.join("src"))
    }
}

fn compile(patterns: &[String]) -> Vec<Pattern> {
    patterns
        .iter()
        .filter_map(|p| Pattern::new(p).ok())
        .collect()
}

/// Copies the cached files back into place; returns how many.
pub fn restore(cache_dir: &Path, patterns: &[String], src_dir: &Path) -> Result<usize, CacheError> {
    let files_dir = cache_dir.join("files");
    let compiled = compile(patterns);
    let mut restored = 0;
    for absolute in [false, true] {
        let (target, stored) = if absolute {
            (PathBuf::from("/"), files_dir.join("root"))
        } else {
            (src_dir.to_path_buf(), files_dir.join("src"))
        };
        for rel in walk_files(&stored).map_err(err(&stored))? {
            let key = slash_path(&rel);
            if !compiled
                .iter()
                .any(|p| p.is_absolute() == absolute && p.selects(&key))
            {
                continue;
            }
            let to = target.join(&rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(err(parent))?;
            }
            std::fs::copy(stored.join(&rel), &to).map_err(err(&to))?;
            restored += 1;
        }
    }
    Ok(restored)
}

/// Replaces the cache with the files the patterns select now; returns how
/// many were saved.
pub fn save(cache_dir: &Path, patterns: &[String], src_dir: &Path) -> Result<usize, CacheError> {
    let files_dir = cache_dir.join("files");
    let new_dir = cache_dir.join("files.new");
    let old_dir = cache_dir.join("files.old");
    for d in [&new_dir, &old_dir] {
        match std::fs::remove_dir_all(d) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(d)(e)),
            _ => {}
        }
    }
    std::fs::create_dir_all(&new_dir).map_err(err(&new_dir))?;
    let mut saved = 0;
    for pattern in compile(patterns) {
        let (root, stored) = roots(src_dir, &new_dir, &pattern);
        let prefix = pattern.literal_prefix();
        let start = root.join(&prefix);
        for rel in walk_files(&start).map_err(err(&start))? {
            let rel = prefix.join(rel);
            if !pattern.selects(&slash_path(&rel)) {
                continue;
            }
            let to = stored.join(&rel);
            if to.exists() {
                continue;
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(err(parent))?;
            }
            let from = root.join(&rel);
            match std::fs::copy(&from, &to) {
                Ok(_) => saved += 1,
                // A dangling symlink or a file removed meanwhile: not cached.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(&from)(e)),
            }
        }
    }
    if files_dir.exists() {
        std::fs::rename(&files_dir, &old_dir).map_err(err(&files_dir))?;
    }
    std::fs::rename(&new_dir, &files_dir).map_err(err(&new_dir))?;
    let _ = std::fs::remove_dir_all(&old_dir);
    Ok(saved)
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
        assert_eq!(save(cache.path(), &patterns, src.path()).unwrap(), 1);

        let fresh = tempfile::tempdir().unwrap();
        assert_eq!(restore(cache.path(), &patterns, fresh.path()).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(fresh.path().join("node_modules/left-pad/index.js")).unwrap(),
            "pad"
        );
        assert!(!fresh.path().join("other.txt").exists());
        // A pattern no longer listed is not restored.
        assert_eq!(
            restore(cache.path(), &["vendor/**/*".to_owned()], fresh.path()).unwrap(),
            0
        );
    }
}
