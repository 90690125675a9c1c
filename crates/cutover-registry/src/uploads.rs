//! Blob uploads: monolithic, chunked (`PATCH` with `Content-Range`, a chunk
//! that does not start where the upload ends is refused with 416) or
//! streamed, finished by `PUT ?digest=` once the SHA-256 computed while
//! writing matches. An upload's bytes and its repository are on disk, so
//! after a restart `GET` answers the persisted offset and the client
//! continues; the running hash is rebuilt from the file then.

use std::path::PathBuf;
use std::sync::Arc;

use cutover_store::registry as rows;
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::error::{ErrorCode, RegistryError, Result};
use crate::names::Digest;
use crate::{Body, Registry};

/// The write buffer of an upload's file.
const WRITE_BUFFER: usize = 1024 * 1024;

/// An upload's running hash: the SHA-256 of the first `offset` bytes.
#[derive(Clone)]
pub(crate) struct Hashing {
    hasher: Sha256,
    offset: u64,
}

/// What `info.json` of an upload holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct UploadInfo {
    pub(crate) repository: String,
    pub(crate) started_at_ms: u64,
}

/// Reads a `Content-Range` of a chunk: `START-END` (inclusive), also
/// accepted with a `bytes ` or `bytes=` prefix and a `/TOTAL` suffix.
pub fn parse_content_range(s: &str) -> Result<(u64, u64)> {
    let bad = || {
        RegistryError::refused(
            ErrorCode::BlobUploadInvalid,
            format!(
                "invalid Content-Range {:?}",
                s.chars().take(64).collect::<String>()
            ),
        )
    };
    let s = s.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split_once('/').map_or(s, |(r, _)| r);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (start, end): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if end < start {
        return Err(bad());
    }
    Ok((start, end))
}

fn unknown_upload() -> RegistryError {
    RegistryError::refused(
        ErrorCode::BlobUploadUnknown,
        "upload unknown to the registry",
    )
}

impl Registry {
    fn upload_dir(&self, id: &Uuid) -> PathBuf {
        self.root.join("uploads").join(id.to_string())
    }

    /// Starts an upload into `repo`; its id.
    pub async fn start_upload(&self, repo: &str) -> Result<Uuid> {
        let repository = self.repository(repo).await?.name;
        let id = Uuid::new_v4();
        let dir = self.upload_dir(&id);
        tokio::fs::create_dir(&dir)
            .await
            .map_err(RegistryError::io("create", &dir))?;
        let info = UploadInfo {
            repository,
            started_at_ms: self.now(),
        };
        let json = serde_json::to_vec(&info).expect("upload info serialises");
        let path = dir.join("info.json");
        tokio::fs::write(&path, json)
            .await
            .map_err(RegistryError::io("write", &path))?;
        let data = dir.join("data");
        tokio::fs::write(&data, b"")
            .await
            .map_err(RegistryError::io("write", &data))?;
        Ok(id)
    }

    /// The upload `id` of `repo`, its session locked (the running hash,
    /// rebuilt from the file if this process has not seen it yet).
    async fn session(
        &self,
        repo: &str,
        id: &str,
    ) -> Result<(Uuid, PathBuf, tokio::sync::OwnedMutexGuard<Option<Hashing>>)> {
        let repo = self.repository(repo).await?.name;
        let id = Uuid::parse_str(id).map_err(|_| unknown_upload())?;
        let dir = self.upload_dir(&id);
        let info: UploadInfo = match tokio::fs::read(dir.join("info.json")).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| unknown_upload())?,
            Err(_) => return Err(unknown_upload()),
        };
        if info.repository != repo {
            return Err(unknown_upload());
        }
        let slot = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(sessions.entry(id).or_default())
        };
        let mut guard = slot.lock_owned().await;
        let data = dir.join("data");
        if guard.is_none() {
            *guard = Some(rehash(&data).await?);
        }
        // Cancelled or finished while this request waited for its turn.
        if tokio::fs::metadata(&data).await.is_err() {
            return Err(unknown_upload());
        }
        Ok((id, data, guard))
    }

    /// How many bytes upload `id` holds (`GET` of an upload).
    pub async fn upload_offset(&self, repo: &str, id: &str) -> Result<u64> {
        let (_, _, guard) = self.session(repo, id).await?;
        Ok(guard.as_ref().map_or(0, |h| h.offset))
    }

    /// Appends a chunk (`PATCH`); the new offset. With a `Content-Range`
    /// the chunk must start at the offset and be exactly that long. A
    /// chunk that breaks off leaves the upload as it was.
    pub async fn patch_upload(
        &self,
        repo: &str,
        id: &str,
        range: Option<(u64, u64)>,
        body: Body,
    ) -> Result<u64> {
        let (_, data, mut guard) = self.session(repo, id).await?;
        let hashing = guard.as_mut().expect("a session holds its hash");
        append(&data, hashing, range, body).await?;
        Ok(hashing.offset)
    }

    /// Appends the last chunk (if any) and finishes the upload (`PUT`):
    /// the computed digest must equal `digest`, then the blob is installed
    /// and linked into the repository.
    pub async fn finish_upload(
        &self,
        repo: &str,
        id: &str,
        digest: &str,
        range: Option<(u64, u64)>,
        body: Body,
    ) -> Result<(Digest, u64)> {
        let claimed = Digest::parse(digest)?;
        let (uuid, data, mut guard) = self.session(repo, id).await?;
        let hashing = guard.as_mut().expect("a session holds its hash");
        append(&data, hashing, range, body).await?;
        let actual = Digest::from_sha256(&hashing.hasher.clone().finalize());
        if actual != claimed {
            return Err(RegistryError::refused(
                ErrorCode::DigestInvalid,
                format!("the content's digest is {actual}, not {claimed}"),
            ));
        }
        let size = hashing.offset;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&data)
            .await
            .map_err(RegistryError::io("open", &data))?;
        file.sync_all()
            .await
            .map_err(RegistryError::io("sync", &data))?;
        let repo = repo.to_string();
        let d = actual.as_str().to_string();
        let now = self.now();
        {
            let _reachable = self.gc_lock.read().await;
            self.install(&data, &actual).await?;
            self.store
                .transact(move |c| rows::link_blob(c, &repo, &d, size, now))
                .await?;
        }
        self.drop_upload(&uuid).await;
        drop(guard);
        Ok((actual, size))
    }

    /// A monolithic upload: the whole blob in one request.
    pub async fn put_blob(&self, repo: &str, digest: &str, body: Body) -> Result<(Digest, u64)> {
        Digest::parse(digest)?;
        let id = self.start_upload(repo).await?.to_string();
        let out = self.finish_upload(repo, &id, digest, None, body).await;
        if out.is_err()
            && let Ok(uuid) = Uuid::parse_str(&id)
        {
            self.drop_upload(&uuid).await;
        }
        out
    }

    /// Cancels upload `id` (`DELETE`).
    pub async fn cancel_upload(&self, repo: &str, id: &str) -> Result<()> {
        let (uuid, _, guard) = self.session(repo, id).await?;
        self.drop_upload(&uuid).await;
        drop(guard);
        Ok(())
    }

    /// Removes an upload's directory and session.
    pub(crate) async fn drop_upload(&self, id: &Uuid) {
        let dir = self.upload_dir(id);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(upload = %id, error = %e, "cannot remove an upload's directory");
        }
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// The running hash of an upload's file as it is on disk.
async fn rehash(data: &std::path::Path) -> Result<Hashing> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(data)
        .await
        .map_err(|_| unknown_upload())?;
    let mut hashing = Hashing {
        hasher: Sha256::new(),
        offset: 0,
    };
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(RegistryError::io("read", data))?;
        if n == 0 {
            return Ok(hashing);
        }
        hashing.hasher.update(&buf[..n]);
        hashing.offset += n as u64;
    }
}

/// Appends `body` to the upload's file, hashing as it writes; on any
/// refusal or break the file is cut back and the hash restored.
async fn append(
    data: &std::path::Path,
    hashing: &mut Hashing,
    range: Option<(u64, u64)>,
    mut body: Body,
) -> Result<()> {
    if let Some((start, _)) = range
        && start != hashing.offset
    {
        return Err(RegistryError::RangeInvalid {
            start,
            offset: hashing.offset,
        });
    }
    let before = hashing.clone();
    let file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(data)
        .await
        .map_err(|_| unknown_upload())?;
    // Fewer, larger writes on the blocking pool than one per body chunk.
    let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let too_long = |written: u64| {
        RegistryError::refused(
            ErrorCode::SizeInvalid,
            format!("the chunk holds {written} bytes or more, more than its Content-Range says"),
        )
    };
    let outcome: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(RegistryError::Body)?;
            let written = hashing.offset - before.offset + chunk.len() as u64;
            if let Some((start, end)) = range
                && written > end - start + 1
            {
                return Err(too_long(written));
            }
            file.write_all(&chunk)
                .await
                .map_err(RegistryError::io("write", data))?;
            hashing.hasher.update(&chunk);
            hashing.offset += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(RegistryError::io("write", data))?;
        if let Some((start, end)) = range
            && hashing.offset - start != end - start + 1
        {
            return Err(RegistryError::refused(
                ErrorCode::SizeInvalid,
                format!(
                    "the chunk holds {} bytes, its Content-Range says {}",
                    hashing.offset - start,
                    end - start + 1
                ),
            ));
        }
        Ok(())
    }
    .await;
    if outcome.is_err() {
        *hashing = before;
        // What is still buffered is dropped with the writer.
        file.into_inner()
            .set_len(hashing.offset)
            .await
            .map_err(RegistryError::io("truncate", data))?;
    }
    outcome
}
