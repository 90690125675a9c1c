//! Blobs: content-addressed files, read with HTTP ranges, linked into
//! repositories (a blob is visible in a repository only once pushed or
//! mounted there), unlinked by DELETE, mounted across repositories.

use std::path::{Path, PathBuf};

use cutover_store::registry as rows;

use crate::Registry;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::names::Digest;

/// A blob opened for reading: the file positioned at `start`, `len` bytes
/// to send.
#[derive(Debug)]
pub struct BlobBody {
    /// The open file, at `start`.
    pub file: tokio::fs::File,
    /// The blob's whole size.
    pub size: u64,
    /// The first byte sent.
    pub start: u64,
    /// How many bytes to send.
    pub len: u64,
    /// Whether a range was asked for (HTTP 206).
    pub partial: bool,
}

impl Registry {
    /// The file of blob `digest`.
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join("sha256")
            .join(&hex[..2])
            .join(hex)
    }

    /// The size of `digest` in `repo` (a blob pushed or mounted there, or
    /// one of its manifests); `BLOB_UNKNOWN` otherwise.
    pub async fn blob_size(&self, repo: &str, digest: &str) -> Result<(Digest, u64)> {
        let repo = self.repository(repo).await?.name;
        let digest = Digest::parse(digest)?;
        let d = digest.as_str().to_string();
        let linked = self
            .store
            .call(move |c| {
                Ok(match rows::linked_blob(c, &repo, &d)? {
                    Some(size) => Some(size),
                    None => rows::get_image(c, &repo, rows::ImageRef::Digest(&d))?
                        .map(|m| m.manifest_size),
                })
            })
            .await?;
        let unknown = || {
            RegistryError::refused(
                ErrorCode::BlobUnknown,
                format!("blob {digest} is unknown to the repository"),
            )
        };
        let size = linked.ok_or_else(unknown)?;
        // A link whose file went missing (removed by hand) is unknown too.
        match tokio::fs::metadata(self.blob_path(&digest)).await {
            Ok(_) => Ok((digest, size)),
            Err(_) => Err(unknown()),
        }
    }

    /// Opens blob `digest` of `repo` for a GET, honouring a `Range` header
    /// (`bytes=START-END` or `bytes=START-`).
    pub async fn open_blob(
        &self,
        repo: &str,
        digest: &str,
        range: Option<&str>,
    ) -> Result<BlobBody> {
        use tokio::io::AsyncSeekExt;
        let (digest, _) = self.blob_size(repo, digest).await?;
        let path = self.blob_path(&digest);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(RegistryError::io("open", &path))?;
        let size = file
            .metadata()
            .await
            .map_err(RegistryError::io("stat", &path))?
            .len();
        let (start, len, partial) = match range {
            None => (0, size, false),
            Some(r) => {
                let (start, end) = parse_range(r, size)?;
                (start, end - start + 1, true)
            }
        };
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(RegistryError::io("seek", &path))?;
        }
        Ok(BlobBody {
            file,
            size,
            start,
            len,
            partial,
        })
    }

    /// Unlinks blob `digest` from `repo` (its file goes at the next
    /// garbage collection if nothing else holds it).
    pub async fn delete_blob(&self, repo: &str, digest: &str) -> Result<()> {
        let repo = self.repository(repo).await?.name;
        let digest = Digest::parse(digest)?;
        let d = digest.as_str().to_string();
        if !self
            .store
            .call(move |c| rows::unlink_blob(c, &repo, &d))
            .await?
        {
            return Err(RegistryError::refused(
                ErrorCode::BlobUnknown,
                format!("blob {digest} is unknown to the repository"),
            ));
        }
        Ok(())
    }

    /// Mounts blob `digest` from repository `from` into `repo`; `false`
    /// when `from` does not hold it (the client then uploads it).
    pub async fn mount(&self, repo: &str, digest: &Digest, from: &str) -> Result<bool> {
        let repo = self.repository(repo).await?.name;
        let Ok(from) = crate::check_name(from) else {
            return Ok(false);
        };
        let from = from.to_string();
        let d = digest.as_str().to_string();
        let now = self.now();
        let _reachable = self.gc_lock.read().await;
        if tokio::fs::metadata(self.blob_path(digest)).await.is_err() {
            return Ok(false);
        }
        Ok(self
            .store
            .transact(move |c| match rows::linked_blob(c, &from, &d)? {
                Some(size) => rows::link_blob(c, &repo, &d, size, now).map(|()| true),
                None => Ok(false),
            })
            .await?)
    }

    /// Installs the file at `from` as blob `digest` (or drops it when the
    /// blob is already stored: same name, same bytes).
    pub(crate) async fn install(&self, from: &Path, digest: &Digest) -> Result<()> {
        let to = self.blob_path(digest);
        if tokio::fs::metadata(&to).await.is_ok() {
            let _ = tokio::fs::remove_file(from).await;
            return Ok(());
        }
        let dir = to.parent().expect("a blob path has a parent");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(RegistryError::io("create", dir))?;
        tokio::fs::rename(from, &to)
            .await
            .map_err(RegistryError::io("install", &to))
    }
}

/// Reads `bytes=START-END` or `bytes=START-` against a blob of `size`.
fn parse_range(r: &str, size: u64) -> Result<(u64, u64)> {
    let bad = || RegistryError::RangeNotSatisfiable { size };
    let spec = r.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.parse().map_err(|_| bad())?;
    let end: u64 = if b.is_empty() {
        size.saturating_sub(1)
    } else {
        b.parse().map_err(|_| bad())?
    };
    if start > end || end >= size {
        return Err(bad());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inside_the_blob() {
        assert_eq!(parse_range("bytes=0-9", 10).unwrap(), (0, 9));
        assert_eq!(parse_range("bytes=4-", 10).unwrap(), (4, 9));
        for bad in [
            "bytes=5-4",
            "bytes=0-10",
            "0-3",
            "bytes=a-b",
            "bytes=-3",
            "bytes=10-",
        ] {
            assert!(parse_range(bad, 10).is_err(), "{bad}");
        }
    }
}
