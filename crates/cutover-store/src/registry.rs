//! The OCI registry's metadata (migration 9): repositories with ECR's
//! settings, manifests (their exact bytes are blobs in the registry's
//! content-addressed store, `cutover-registry`), what each manifest
//! references, tags, and the blobs linked into each repository.
//!
//! These are the operations both the registry's `/v2/` API and ECR's API
//! need. A repository must exist before anything is pushed to it (ECR
//! refuses a push to an unknown repository); deleting it removes its
//! manifests, tags and blob links (the blobs themselves go at the next
//! garbage collection).

use std::collections::{BTreeMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

mod images;
#[cfg(test)]
mod tests;

pub use images::{
    delete_image, delete_manifest, delete_tag, get_image, list_images, list_tags, put_manifest,
    put_tag, referrers,
};

/// Whether a tag, once pushed, may point at other content: the stack's
/// and ECR's one type (`cutover-spec`), stored by its ECR name.
pub use cutover_spec::ecr::TagMutability;

/// A repository and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRow {
    /// The repository name (`team/web`), checked by the registry's grammar.
    pub name: String,
    /// Creation time (ms since the epoch).
    pub created_at_ms: u64,
    /// Whether tags may move.
    pub tag_mutability: TagMutability,
    /// Whether a pushed image is scanned.
    pub scan_on_push: bool,
    /// Whether pulls need no credentials.
    pub anonymous_pull: bool,
    /// The lifecycle policy's JSON text, as given.
    pub lifecycle_policy: Option<String>,
}

/// What a manifest references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefKind {
    /// A blob: a config or a layer.
    Blob,
    /// Another manifest: an index's entry.
    Manifest,
}

impl RefKind {
    fn as_str(self) -> &'static str {
        match self {
            RefKind::Blob => "blob",
            RefKind::Manifest => "manifest",
        }
    }
}

/// A manifest to store.
#[derive(Debug, Clone)]
pub struct NewManifest {
    /// `sha256:<hex>` of its exact bytes.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// The length of its bytes.
    pub size: u64,
    /// The sum of its layers' sizes (ECR's `imageSizeInBytes`).
    pub image_size: u64,
    /// Its `artifactType` (or its config's media type for an artifact).
    pub artifact_type: Option<String>,
    /// The digest of its `subject`, for the referrers API.
    pub subject: Option<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// The blobs and manifests it references.
    pub refs: Vec<(String, RefKind)>,
}

/// A stored manifest (an image, in ECR's words) with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// The repository.
    pub repository: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's own length.
    pub manifest_size: u64,
    /// The sum of its layers' sizes.
    pub image_size: u64,
    /// When it was pushed (ms).
    pub pushed_at_ms: u64,
    /// Its `artifactType`.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// The tags naming it, sorted.
    pub tags: Vec<String>,
}

/// Which image: by tag or by digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRef<'a> {
    /// A tag.
    Tag(&'a str),
    /// A `sha256:<hex>` digest.
    Digest(&'a str),
}

/// What a manifest or tag write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Written (or already so).
    Stored,
    /// The repository is IMMUTABLE and the tag names other content;
    /// nothing was written.
    TagImmutable {
        /// What the tag names.
        current: String,
    },
    /// Referenced blobs or manifests are not in the repository; nothing
    /// was written.
    MissingReferences(Vec<String>),
}

fn not_found(kind: &'static str, name: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        name: name.to_string(),
    }
}

/// Creates a repository; a repository of that name is a conflict.
pub fn create_repository(c: &Connection, r: &RepositoryRow) -> Result<(), StoreError> {
    let n = c
        .execute(
            "INSERT OR IGNORE INTO registry_repositories
             (name, created_at, tag_mutability, scan_on_push, anonymous_pull, lifecycle_policy)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                r.name,
                r.created_at_ms as i64,
                r.tag_mutability.as_str(),
                r.scan_on_push,
                r.anonymous_pull,
                r.lifecycle_policy,
            ],
        )
        .map_err(StoreError::sql("create repository"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "the repository {:?} already exists",
            r.name
        )));
    }
    Ok(())
}

fn repository_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RepositoryRow, String)> {
    let mutability: String = r.get(2)?;
    Ok((
        RepositoryRow {
            name: r.get(0)?,
            created_at_ms: r.get::<_, i64>(1)? as u64,
            tag_mutability: TagMutability::Mutable,
            scan_on_push: r.get(3)?,
            anonymous_pull: r.get(4)?,
            lifecycle_policy: r.get(5)?,
        },
        mutability,
    ))
}

fn typed(row: (RepositoryRow, String)) -> Result<RepositoryRow, StoreError> {
    let (mut r, m) = row;
    r.tag_mutability = TagMutability::parse(&m).ok_or_else(|| {
        StoreError::Conflict(format!(
            "repository {:?}: unknown stored tag mutability {m:?}",
            r.name
        ))
    })?;
    Ok(r)
}

const REPO_COLUMNS: &str =
    "name, created_at, tag_mutability, scan_on_push, anonymous_pull, lifecycle_policy";

/// The repository `name`, if it exists.
pub fn get_repository(c: &Connection, name: &str) -> Result<Option<RepositoryRow>, StoreError> {
    c.query_row(
        &format!("SELECT {REPO_COLUMNS} FROM registry_repositories WHERE name = ?1"),
        [name],
        repository_row,
    )
    .optional()
    .map_err(StoreError::sql("read repository"))?
    .map(typed)
    .transpose()
}

/// Repositories sorted by name, after `last` (exclusive), at most `limit`.
pub fn list_repositories(
    c: &Connection,
    last: Option<&str>,
    limit: usize,
) -> Result<Vec<RepositoryRow>, StoreError> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {REPO_COLUMNS} FROM registry_repositories
             WHERE name > ?1 ORDER BY name LIMIT ?2"
        ))
        .map_err(StoreError::sql("list repositories"))?;
    let rows = stmt
        .query_map(
            params![last.unwrap_or(""), limit.min(i64::MAX as usize) as i64],
            repository_row,
        )
        .map_err(StoreError::sql("list repositories"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list repositories"))?;
    rows.into_iter().map(typed).collect()
}

/// Deletes a repository. One holding images is refused unless `force`
/// (ECR's `RepositoryNotEmptyException`).
pub fn delete_repository(c: &Connection, name: &str, force: bool) -> Result<(), StoreError> {
    get_repository(c, name)?.ok_or_else(|| not_found("repository", name))?;
    if count_images(c, name)? > 0 && !force {
        return Err(StoreError::Conflict(format!(
            "the repository {name:?} cannot be deleted because it still contains images"
        )));
    }
    // Tags and references first: their foreign keys name manifests.
    for sql in [
        "DELETE FROM registry_tags WHERE repository = ?1",
        "DELETE FROM registry_manifest_refs WHERE repository = ?1",
        "DELETE FROM registry_manifests WHERE repository = ?1",
        "DELETE FROM registry_blobs WHERE repository = ?1",
        "DELETE FROM registry_repositories WHERE name = ?1",
    ] {
        c.execute(sql, [name])
            .map_err(StoreError::sql("delete repository"))?;
    }
    Ok(())
}

fn update_repo(
    c: &Connection,
    name: &str,
    sql: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<(), StoreError> {
    let n = c
        .execute(sql, params![name, value])
        .map_err(StoreError::sql("update repository"))?;
    if n == 0 {
        return Err(not_found("repository", name));
    }
    Ok(())
}

/// Sets a repository's tag mutability.
pub fn set_tag_mutability(c: &Connection, name: &str, m: TagMutability) -> Result<(), StoreError> {
    let sql = "UPDATE registry_repositories SET tag_mutability = ?2 WHERE name = ?1";
    update_repo(c, name, sql, &m.as_str())
}

/// Sets whether pushed images are scanned.
pub fn set_scan_on_push(c: &Connection, name: &str, on: bool) -> Result<(), StoreError> {
    let sql = "UPDATE registry_repositories SET scan_on_push = ?2 WHERE name = ?1";
    update_repo(c, name, sql, &on)
}

/// Sets whether pulls need no credentials.
pub fn set_anonymous_pull(c: &Connection, name: &str, on: bool) -> Result<(), StoreError> {
    let sql = "UPDATE registry_repositories SET anonymous_pull = ?2 WHERE name = ?1";
    update_repo(c, name, sql, &on)
}

/// Sets (or clears) the lifecycle policy text.
pub fn set_lifecycle_policy(
    c: &Connection,
    name: &str,
    policy: Option<&str>,
) -> Result<(), StoreError> {
    let sql = "UPDATE registry_repositories SET lifecycle_policy = ?2 WHERE name = ?1";
    update_repo(c, name, sql, &policy)
}

/// Links a blob into a repository (after an upload or a mount).
pub fn link_blob(
    c: &Connection,
    repo: &str,
    digest: &str,
    size: u64,
    now: u64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO registry_blobs (repository, digest, size, linked_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (repository, digest) DO UPDATE SET linked_at = excluded.linked_at",
        params![repo, digest, size as i64, now as i64],
    )
    .map_err(StoreError::sql("link blob"))?;
    Ok(())
}

/// The size of a blob linked into `repo`, if it is.
pub fn linked_blob(c: &Connection, repo: &str, digest: &str) -> Result<Option<u64>, StoreError> {
    c.query_row(
        "SELECT size FROM registry_blobs WHERE repository = ?1 AND digest = ?2",
        [repo, digest],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|s| s.map(|s| s as u64))
    .map_err(StoreError::sql("read blob link"))
}

/// Unlinks a blob from a repository; whether it was linked.
pub fn unlink_blob(c: &Connection, repo: &str, digest: &str) -> Result<bool, StoreError> {
    c.execute(
        "DELETE FROM registry_blobs WHERE repository = ?1 AND digest = ?2",
        [repo, digest],
    )
    .map(|n| n > 0)
    .map_err(StoreError::sql("unlink blob"))
}

/// Garbage collection's mark: every digest some manifest of any
/// repository is or references (blobs and manifests alike), and every blob
/// linked at or after `linked_since` (a blob pushed within the grace
/// period, whose manifest may still be on its way).
pub fn live_digests(c: &Connection, linked_since: u64) -> Result<HashSet<String>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT digest FROM registry_manifests
             UNION SELECT child FROM registry_manifest_refs
             UNION SELECT digest FROM registry_blobs WHERE linked_at >= ?1",
        )
        .map_err(StoreError::sql("mark blobs"))?;
    stmt.query_map([linked_since as i64], |r| r.get(0))
        .map_err(StoreError::sql("mark blobs"))?
        .collect::<Result<HashSet<String>, _>>()
        .map_err(StoreError::sql("mark blobs"))
}

/// Garbage collection's sweep in the store: the links to a blob whose
/// file was deleted.
pub fn forget_blob(c: &Connection, digest: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM registry_blobs WHERE digest = ?1", [digest])
        .map_err(StoreError::sql("forget blob"))?;
    Ok(())
}

/// The last stack applied under each stack key (`stacks.file`), oldest
/// first, with the names under its `imageRepositories:` (a stored body
/// that cannot be read names none).
pub fn stack_image_repositories(c: &Connection) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default, rename = "imageRepositories")]
        image_repositories: BTreeMap<String, serde::de::IgnoredAny>,
    }
    let rows = crate::ops::latest_stack_bodies(c)?;
    Ok(rows
        .into_iter()
        .map(|(file, body)| {
            let names = serde_json::from_str::<Body>(&body)
                .map(|b| b.image_repositories.into_keys().collect())
                .unwrap_or_default();
            (file, names)
        })
        .collect())
}

/// How many images (manifests) `repo` holds.
pub fn count_images(c: &Connection, repo: &str) -> Result<u64, StoreError> {
    c.query_row(
        "SELECT COUNT(*) FROM registry_manifests WHERE repository = ?1",
        [repo],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(StoreError::sql("count images"))
}

/// Whether an index (manifest list) of `repo` lists the manifest `digest`
/// (ECR then refuses to delete it: `ImageReferencedByManifestList`).
pub fn in_an_index(c: &Connection, repo: &str, digest: &str) -> Result<bool, StoreError> {
    c.query_row(
        "SELECT 1 FROM registry_manifest_refs
         WHERE repository = ?1 AND child = ?2 AND kind = ?3 LIMIT 1",
        params![repo, digest, RefKind::Manifest.as_str()],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(StoreError::sql("read manifest references"))
}
