//! Manifests and indexes (OCI image manifest and index, Docker schema2
//! manifest and manifest list), read with `oci-spec`'s types: their exact
//! bytes are kept as a blob and named by the digest of those bytes; what
//! they reference must be in the repository (as distribution checks); an
//! IMMUTABLE repository's tag never moves; the referrers API answers from
//! their `subject`.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use bytes::BytesMut;
use cutover_store::registry::{self as rows, ImageRef, NewManifest, PutOutcome, RefKind};
use futures_util::StreamExt;
use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType,
};
use sha2::{Digest as _, Sha256};

use crate::error::{ErrorCode, RegistryError, Result};
use crate::names::{Digest, Reference};
use crate::{Body, Registry};

/// The largest manifest accepted (distribution's limit).
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A stored manifest, as a GET or HEAD answers it.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its length.
    pub size: u64,
}

/// A manifest with its bytes (GET).
#[derive(Debug, Clone)]
pub struct Manifest {
    /// What it is.
    pub stored: StoredManifest,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
}

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::refused(ErrorCode::ManifestInvalid, message)
}

fn manifest_unknown(reference: &str) -> RegistryError {
    RegistryError::refused(
        ErrorCode::ManifestUnknown,
        format!("manifest {reference:?} is unknown to the repository"),
    )
}

fn descriptor_digest(d: &Descriptor) -> Result<String> {
    Digest::parse(d.digest().as_ref()).map(|d| d.as_str().to_string())
}

fn sorted(map: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Reads manifest `bytes` of `media_type` into what the store keeps.
pub(crate) fn describe(digest: &Digest, media_type: &str, bytes: &[u8]) -> Result<NewManifest> {
    let declared: Option<String> = serde_json::from_slice::<MediaTypeOnly>(bytes)
        .map_err(|e| invalid(format!("the manifest is not valid JSON: {e}")))?
        .media_type;
    if let Some(declared) = &declared
        && declared != media_type
    {
        return Err(invalid(format!(
            "the manifest's mediaType {declared:?} differs from its Content-Type {media_type:?}"
        )));
    }
    let mut m = NewManifest {
        digest: digest.as_str().to_string(),
        media_type: media_type.to_string(),
        size: bytes.len() as u64,
        image_size: 0,
        artifact_type: None,
        subject: None,
        annotations: BTreeMap::new(),
        refs: Vec::new(),
    };
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let im: ImageManifest = serde_json::from_slice(bytes)
                .map_err(|e| invalid(format!("invalid image manifest: {e}")))?;
            m.refs
                .push((descriptor_digest(im.config())?, RefKind::Blob));
            for layer in im.layers() {
                m.refs.push((descriptor_digest(layer)?, RefKind::Blob));
                m.image_size += layer.size();
            }
            m.artifact_type = Some(
                im.artifact_type()
                    .as_ref()
                    .unwrap_or(im.config().media_type())
                    .to_string(),
            );
            m.subject = im.subject().as_ref().map(descriptor_digest).transpose()?;
            m.annotations = sorted(im.annotations().as_ref());
        }
        OCI_INDEX | DOCKER_LIST => {
            let ix: ImageIndex = serde_json::from_slice(bytes)
                .map_err(|e| invalid(format!("invalid image index: {e}")))?;
            for child in ix.manifests() {
                m.refs.push((descriptor_digest(child)?, RefKind::Manifest));
                m.image_size += child.size();
            }
            m.artifact_type = ix.artifact_type().as_ref().map(ToString::to_string);
            m.subject = ix.subject().as_ref().map(descriptor_digest).transpose()?;
            m.annotations = sorted(ix.annotations().as_ref());
        }
        other => {
            return Err(invalid(format!(
                "unsupported manifest media type {:?}",
                other.chars().take(100).collect::<String>()
            )));
        }
    }
    m.refs.sort();
    m.refs.dedup();
    Ok(m)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaTypeOnly {
    media_type: Option<String>,
}

/// Reads a body of at most [`MAX_MANIFEST`] bytes.
async fn read_capped(mut body: Body) -> Result<Vec<u8>> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(RegistryError::Body)?;
        if buf.len() + chunk.len() > MAX_MANIFEST {
            return Err(RegistryError::refused(
                ErrorCode::SizeInvalid,
                format!("a manifest is at most {MAX_MANIFEST} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.to_vec())
}

impl Registry {
    /// Stores a manifest pushed as `reference` (`PUT`); its digest and its
    /// subject's.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        content_type: Option<&str>,
        body: Body,
    ) -> Result<(Digest, Option<String>)> {
        let repo = self.repository(repo).await?;
        let reference = Reference::parse(reference)?;
        let bytes = read_capped(body).await?;
        let digest = Digest::from_sha256(&Sha256::digest(&bytes));
        if let Reference::Digest(claimed) = &reference
            && *claimed != digest
        {
            return Err(RegistryError::refused(
                ErrorCode::DigestInvalid,
                format!("the manifest's digest is {digest}, not {claimed}"),
            ));
        }
        let media_type = match content_type.map(|c| c.split(';').next().unwrap_or("").trim()) {
            Some(c) if !c.is_empty() => c.to_string(),
            _ => serde_json::from_slice::<MediaTypeOnly>(&bytes)
                .ok()
                .and_then(|m| m.media_type)
                .ok_or_else(|| {
                    invalid("the manifest has neither a Content-Type nor a mediaType")
                })?,
        };
        let described = describe(&digest, &media_type, &bytes)?;
        let subject = described.subject.clone();
        let tag = match reference {
            Reference::Tag(t) => Some(t),
            Reference::Digest(_) => None,
        };
        let now = self.now();
        let _reachable = self.gc_lock.read().await;
        self.write_manifest_blob(&digest, &bytes).await?;
        let name = repo.name.clone();
        let tag_shown = tag.clone();
        let outcome = self
            .store
            .transact(move |c| rows::put_manifest(c, &name, &described, tag.as_deref(), now))
            .await?;
        match outcome {
            PutOutcome::Stored => Ok((digest, subject)),
            PutOutcome::TagImmutable { .. } => Err(RegistryError::refused(
                ErrorCode::TagInvalid,
                format!(
                    "The image tag '{}' already exists in the '{}' repository and cannot be overwritten because the repository is immutable.",
                    tag_shown.unwrap_or_default(),
                    repo.name
                ),
            )),
            PutOutcome::MissingReferences(missing) => Err(RegistryError::refused(
                ErrorCode::ManifestBlobUnknown,
                format!(
                    "the manifest references what the repository does not hold: {}",
                    missing.join(", ")
                ),
            )),
        }
    }

    async fn write_manifest_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if tokio::fs::metadata(self.blob_path(digest)).await.is_ok() {
            return Ok(());
        }
        let tmp = self
            .root
            .join("uploads")
            .join(format!("manifest-{}", uuid::Uuid::new_v4()));
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(RegistryError::io("create", &tmp))?;
        use tokio::io::AsyncWriteExt;
        file.write_all(bytes)
            .await
            .map_err(RegistryError::io("write", &tmp))?;
        file.sync_all()
            .await
            .map_err(RegistryError::io("sync", &tmp))?;
        self.install(&tmp, digest).await
    }

    /// What `reference` names in `repo` (`HEAD`).
    pub async fn stat_manifest(&self, repo: &str, reference: &str) -> Result<StoredManifest> {
        let repo = self.repository(repo).await?.name;
        let parsed = Reference::parse(reference).map_err(|_| manifest_unknown(reference))?;
        let image = self
            .store
            .call(move |c| {
                let which = match &parsed {
                    Reference::Tag(t) => ImageRef::Tag(t),
                    Reference::Digest(d) => ImageRef::Digest(d.as_str()),
                };
                rows::get_image(c, &repo, which)
            })
            .await?
            .ok_or_else(|| manifest_unknown(reference))?;
        Ok(StoredManifest {
            digest: image.digest,
            media_type: image.media_type,
            size: image.manifest_size,
        })
    }

    /// The manifest `reference` names, with its bytes (`GET`).
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest> {
        let stored = self.stat_manifest(repo, reference).await?;
        let path = self.blob_path(&Digest::parse(&stored.digest)?);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|_| manifest_unknown(reference))?;
        Ok(Manifest { stored, bytes })
    }

    /// Deletes a manifest by digest (with its tags) or a tag (`DELETE`).
    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> Result<()> {
        let repo = self.repository(repo).await?.name;
        let parsed = Reference::parse(reference)?;
        let found = self
            .store
            .transact(move |c| match &parsed {
                Reference::Tag(t) => rows::delete_tag(c, &repo, t),
                Reference::Digest(d) => rows::delete_manifest(c, &repo, d.as_str()),
            })
            .await?;
        if !found {
            return Err(manifest_unknown(reference));
        }
        Ok(())
    }

    /// The referrers of `digest` in `repo` as an OCI index (its JSON), and
    /// whether the `artifactType` filter was applied.
    pub async fn referrers(
        &self,
        repo: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<u8>> {
        let repo = self.repository(repo).await?.name;
        let digest = Digest::parse(digest)?;
        let d = digest.as_str().to_string();
        let images = self
            .store
            .call(move |c| rows::referrers(c, &repo, &d))
            .await?;
        let mut manifests = Vec::new();
        for image in images {
            if artifact_type.is_some_and(|a| image.artifact_type.as_deref() != Some(a)) {
                continue;
            }
            let mut b = DescriptorBuilder::default()
                .media_type(MediaType::from(image.media_type.as_str()))
                .digest(
                    oci_spec::image::Digest::from_str(&image.digest)
                        .map_err(|e| invalid(e.to_string()))?,
                )
                .size(image.manifest_size);
            if let Some(a) = &image.artifact_type {
                b = b.artifact_type(MediaType::from(a.as_str()));
            }
            if !image.annotations.is_empty() {
                b = b.annotations(image.annotations.into_iter().collect::<HashMap<_, _>>());
            }
            manifests.push(b.build().map_err(|e| invalid(e.to_string()))?);
        }
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(serde_json::to_vec(&index).expect("an index serialises"))
    }
}
