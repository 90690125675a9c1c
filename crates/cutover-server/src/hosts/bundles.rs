//! [`DirBundles`]: revisions' bundles stored content-addressed under
//! `<data_dir>/bundles/<hex>.<format>`, where `<hex>` is the SHA-256 of the
//! stored bytes, computed while they are copied (never by reading them
//! twice). A directory revision is packed as a tar with a stable order and
//! stable headers (names sorted, mtime 0, owner 0, modes kept), so the same
//! tree always gives the same digest.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cutover_api::agents::{BundleFormat, BundleRef};
use sha2::{Digest, Sha256};

use super::fleet::{BundleStore, FleetError};

/// Bundles in a directory of the data dir.
pub(crate) struct DirBundles {
    dir: PathBuf,
}

fn extension(format: BundleFormat) -> &'static str {
    match format {
        BundleFormat::Tar => "tar",
        BundleFormat::Tgz => "tgz",
        BundleFormat::Zip => "zip",
    }
}

/// The hex of a `sha256:<64 hex>` digest, if it is one.
pub(crate) fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl DirBundles {
    /// Bundles under `<data_dir>/bundles`.
    pub(crate) fn new(data_dir: &Path) -> Self {
        DirBundles {
            dir: data_dir.join("bundles"),
        }
    }

    /// Writes what `fill` produces to a temporary file, then moves it to
    /// its content address.
    fn store(
        &self,
        format: BundleFormat,
        fill: impl FnOnce(&mut Hashing<File>) -> io::Result<()>,
    ) -> io::Result<BundleRef> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        let mut out = Hashing {
            inner: tmp.reopen()?,
            hash: Sha256::new(),
        };
        fill(&mut out)?;
        out.inner.sync_all()?;
        let hex = hex::encode(out.hash.finalize());
        let path = self.dir.join(format!("{hex}.{}", extension(format)));
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(BundleRef {
            digest: format!("sha256:{hex}"),
            format,
        })
    }

    /// The stored file of `digest`, whatever its format.
    pub(crate) fn find(&self, digest: &str) -> Option<(PathBuf, BundleFormat)> {
        let hex = digest_hex(digest)?;
        [BundleFormat::Tar, BundleFormat::Tgz, BundleFormat::Zip]
            .into_iter()
            .map(|f| (self.dir.join(format!("{hex}.{}", extension(f))), f))
            .find(|(p, _)| p.is_file())
    }
}

/// Packs `dir` as a tar with stable order and headers into `out`.
/// Symbolic links are kept as links; other special files are skipped.
/// The same directory always packs to the same bytes (the CLI packs
/// directory revisions with it, so they are content-addressed alike).
pub fn pack_dir(dir: &Path, out: &mut impl Write) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        // Depth-first in name order: push in reverse so the smallest pops first.
        let mut subdirs = Vec::new();
        for name in entries {
            let rel = rel.join(&name);
            let path = dir.join(&rel);
            let meta = std::fs::symlink_metadata(&path)?;
            let mut header = tar::Header::new_gnu();
            header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
            header.set_mtime(0);
            use std::os::unix::fs::PermissionsExt;
            header.set_mode(meta.permissions().mode() & 0o7777);
            if meta.is_dir() {
                tar.append_data(&mut header, &rel, io::empty())?;
                subdirs.push(rel);
            } else if meta.is_symlink() {
                let target = std::fs::read_link(&path)?;
                header.set_size(0);
                tar.append_link(&mut header, &rel, target)?;
            } else if meta.is_file() {
                tar.append_data(&mut header, &rel, File::open(&path)?)?;
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    tar.finish()
}

#[async_trait]
impl BundleStore for DirBundles {
    async fn put_file(&self, path: PathBuf, format: BundleFormat) -> Result<BundleRef, FleetError> {
        let this = DirBundles {
            dir: self.dir.clone(),
        };
        let r = tokio::task::spawn_blocking(move || {
            this.store(format, |out| {
                io::copy(&mut File::open(&path)?.take(u64::MAX), out).map(|_| ())
            })
        })
        .await
        .map_err(io::Error::other)??;
        Ok(r)
    }

    async fn put_dir(&self, dir: PathBuf) -> Result<BundleRef, FleetError> {
        let this = DirBundles {
            dir: self.dir.clone(),
        };
        let r = tokio::task::spawn_blocking(move || {
            this.store(BundleFormat::Tar, |out| pack_dir(&dir, out))
        })
        .await
        .map_err(io::Error::other)??;
        Ok(r)
    }

    async fn path(&self, bundle: &BundleRef) -> Result<Option<PathBuf>, FleetError> {
        let Some(hex) = digest_hex(&bundle.digest) else {
            return Ok(None);
        };
        let path = self.dir.join(format!("{hex}.{}", extension(bundle.format)));
        Ok(tokio::fs::try_exists(&path).await?.then_some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn directories_pack_stably_and_files_are_content_addressed() {
        let data = tempfile::tempdir().unwrap();
        let store = DirBundles::new(data.path());
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("scripts")).unwrap();
        std::fs::write(src.path().join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        std::fs::write(src.path().join("scripts/start.sh"), "#!/bin/sh\n").unwrap();
        let a = store.put_dir(src.path().to_path_buf()).await.unwrap();
        // Same tree, touched later: same digest.
        std::fs::write(src.path().join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        let b = store.put_dir(src.path().to_path_buf()).await.unwrap();
        assert_eq!(a, b);
        let path = store.path(&a).await.unwrap().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            a.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
        );
        let names: Vec<String> = tar::Archive::new(&bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["appspec.yml", "scripts", "scripts/start.sh"]);

        let file = src.path().join("b.tgz");
        std::fs::write(&file, b"not really gzip").unwrap();
        let c = store.put_file(file, BundleFormat::Tgz).await.unwrap();
        assert_eq!(
            c.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(b"not really gzip")))
        );
        assert_eq!(store.find(&c.digest).unwrap().1, BundleFormat::Tgz);
        assert!(store.find("sha256:../../etc/passwd").is_none());
        assert!(
            store
                .path(&BundleRef {
                    digest: "sha256:zz".into(),
                    format: BundleFormat::Tar
                })
                .await
                .unwrap()
                .is_none()
        );
    }
}
