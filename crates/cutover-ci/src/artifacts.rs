//! The content-addressed artifact store: each artifact is a directory tree
//! under `<data_dir>/artifacts/sha256-<hex>/`, named by the digest of a
//! deterministic walk of its contents.
//!
//! The digest covers, for every entry in byte order of its relative path:
//! the kind (file, executable file, directory, symlink), the path, and the
//! file's sha256 or the link's target. Equal trees get equal names, so a
//! rebuilt artifact that did not change is stored once. Storing is a copy
//! into a staging directory, a digest, then a rename: an artifact directory
//! that exists is complete.

use std::io;
use std::path::{Path, PathBuf};

use cutover_pipeline::engine::ArtifactRef;
use sha2::{Digest, Sha256};

/// Why an artifact could not be stored or found.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArtifactError {
    /// Reading or writing a path failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The reference is not one this store made.
    #[error("artifact {0:?} is not in the artifact store")]
    Missing(String),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The artifact store of one data directory.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactStore {
    root: PathBuf,
}

impl ArtifactStore {
    /// The store under `<data_dir>/artifacts`.
    pub(crate) fn new(data_dir: &Path) -> ArtifactStore {
        ArtifactStore {
            root: data_dir.join("artifacts"),
        }
    }

    /// A fresh staging directory inside the store (same file system, so
    /// [`ArtifactStore::commit`] is a rename).
    pub(crate) fn staging(&self) -> Result<PathBuf, ArtifactError> {
        let dir = self
            .root
            .join("staging")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        Ok(dir)
    }

    /// Stores a filled staging directory under its digest (consuming it).
    pub(crate) fn commit(&self, staged: &Path) -> Result<ArtifactRef, ArtifactError> {
        let digest = tree_digest(staged)?;
        let name = format!("sha256-{digest}");
        let dest = self.root.join(&name);
        if dest.exists() {
            std::fs::remove_dir_all(staged).map_err(io_at(staged))?;
        } else if let Err(e) = std::fs::rename(staged, &dest) {
            // Another writer stored the same tree meanwhile.
            if !dest.exists() {
                return Err(io_at(&dest)(e));
            }
            std::fs::remove_dir_all(staged).map_err(io_at(staged))?;
        }
        Ok(ArtifactRef(name))
    }

    /// Copies `dir` into the store.
    pub(crate) fn put_copy(&self, dir: &Path) -> Result<ArtifactRef, ArtifactError> {
        let staged = self.staging()?;
        copy_tree(dir, &staged)?;
        self.commit(&staged)
    }

    /// The directory of a stored artifact.
    pub(crate) fn path(&self, artifact: &ArtifactRef) -> Result<PathBuf, ArtifactError> {
        let name = &artifact.0;
        let valid = name
            .strip_prefix("sha256-")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let dir = self.root.join(name);
        if !valid || !dir.is_dir() {
            return Err(ArtifactError::Missing(name.clone()));
        }
        Ok(dir)
    }
}

/// Copies the tree at `from` into the existing directory `to`, keeping
/// permissions and symlinks.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), ArtifactError> {
    for entry in std::fs::read_dir(from).map_err(io_at(from))? {
        let entry = entry.map_err(io_at(from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let ft = entry.file_type().map_err(io_at(&src))?;
        if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(io_at(&src))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(io_at(&dst))?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dst).map_err(io_at(&dst))?;
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(io_at(&src))?;
        }
    }
    Ok(())
}

/// The digest of the tree at `root` (see the module header).
pub(crate) fn tree_digest(root: &Path) -> Result<String, ArtifactError> {
    let mut entries = Vec::new();
    walk(root, Path::new(""), &mut entries)?;
    entries.sort_by(|a, b| {
        a.0.as_os_str()
            .as_encoded_bytes()
            .cmp(b.0.as_os_str().as_encoded_bytes())
    });
    let mut hasher = Sha256::new();
    for (rel, kind, content) in entries {
        hasher.update([kind]);
        hasher.update(rel.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(content);
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn walk(
    root: &Path,
    rel: &Path,
    out: &mut Vec<(PathBuf, u8, Vec<u8>)>,
) -> Result<(), ArtifactError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join(rel);
    for entry in std::fs::read_dir(&dir).map_err(io_at(&dir))? {
        let entry = entry.map_err(io_at(&dir))?;
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&path).map_err(io_at(&path))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(io_at(&path))?;
            out.push((rel, b'l', target.as_os_str().as_encoded_bytes().to_vec()));
        } else if meta.is_dir() {
            out.push((rel.clone(), b'd', Vec::new()));
            walk(root, &rel, out)?;
        } else {
            let mut file = std::fs::File::open(&path).map_err(io_at(&path))?;
            let mut h = Sha256::new();
            io::copy(&mut file, &mut h).map_err(io_at(&path))?;
            let kind = if meta.permissions().mode() & 0o111 != 0 {
                b'x'
            } else {
                b'f'
            };
            out.push((rel, kind, h.finalize().to_vec()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, files: &[(&str, &str)]) {
        for (p, text) in files {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn equal_trees_share_one_artifact_and_any_change_makes_another() {
        let data = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(data.path());
        let a = tempfile::tempdir().unwrap();
        tree(a.path(), &[("x/y.txt", "1"), ("z", "2")]);
        let b = tempfile::tempdir().unwrap();
        tree(b.path(), &[("z", "2"), ("x/y.txt", "1")]);
        let ra = store.put_copy(a.path()).unwrap();
        let rb = store.put_copy(b.path()).unwrap();
        assert_eq!(ra, rb);
        assert_eq!(
            std::fs::read_to_string(store.path(&ra).unwrap().join("x/y.txt")).unwrap(),
            "1"
        );
        tree(b.path(), &[("x/y.txt", "changed")]);
        assert_ne!(store.put_copy(b.path()).unwrap(), ra);
        // A rename is a change too.
        let c = tempfile::tempdir().unwrap();
        tree(c.path(), &[("x/w.txt", "1"), ("z", "2")]);
        assert_ne!(store.put_copy(c.path()).unwrap(), ra);
    }

    #[test]
    fn the_executable_bit_and_symlinks_count() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().unwrap();
        tree(a.path(), &[("run.sh", "echo")]);
        let plain = tree_digest(a.path()).unwrap();
        std::fs::set_permissions(
            a.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let exec = tree_digest(a.path()).unwrap();
        assert_ne!(plain, exec);
        std::os::unix::fs::symlink("run.sh", a.path().join("link")).unwrap();
        assert_ne!(tree_digest(a.path()).unwrap(), exec);
    }

    #[test]
    fn unknown_references_are_refused() {
        let data = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(data.path());
        for bad in ["../etc", "sha256-zz", &format!("sha256-{}", "a".repeat(64))] {
            assert!(matches!(
                store.path(&ArtifactRef(bad.to_string())),
                Err(ArtifactError::Missing(_))
            ));
        }
    }
}
