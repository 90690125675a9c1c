//! Manifests (images, in ECR's words), their references and tags: the
//! put that checks references and the immutable rule in one go, reads by
//! tag or digest, pagination of tags, the referrers of a subject, and
//! ECR's delete semantics.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    ImageRef, ImageRow, NewManifest, PutOutcome, RefKind, RepositoryRow, TagMutability,
    get_repository, linked_blob, not_found,
};
use crate::StoreError;

/// The digest a tag names, if any.
fn tag_digest(c: &Connection, repo: &str, tag: &str) -> Result<Option<String>, StoreError> {
    c.query_row(
        "SELECT digest FROM registry_tags WHERE repository = ?1 AND tag = ?2",
        [repo, tag],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sql("read tag"))
}

fn check_tag(
    c: &Connection,
    repo: &RepositoryRow,
    tag: &str,
    digest: &str,
) -> Result<Option<PutOutcome>, StoreError> {
    if repo.tag_mutability == TagMutability::Immutable
        && let Some(current) = tag_digest(c, &repo.name, tag)?
        && current != digest
    {
        return Ok(Some(PutOutcome::TagImmutable { current }));
    }
    Ok(None)
}

fn write_tag(
    c: &Connection,
    repo: &str,
    tag: &str,
    digest: &str,
    now: u64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO registry_tags (repository, tag, digest, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at
         WHERE digest != excluded.digest",
        params![repo, tag, digest, now as i64],
    )
    .map_err(StoreError::sql("write tag"))?;
    Ok(())
}

fn manifest_exists(c: &Connection, repo: &str, digest: &str) -> Result<bool, StoreError> {
    c.query_row(
        "SELECT 1 FROM registry_manifests WHERE repository = ?1 AND digest = ?2",
        [repo, digest],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(StoreError::sql("read manifest"))
}

/// Stores a manifest (and points `tag` at it), checking first, as
/// distribution does, that everything it references is in the repository,
/// and that an IMMUTABLE repository's tag does not move. A refusal writes
/// nothing. Storing the same manifest again keeps its first push time.
pub fn put_manifest(
    c: &Connection,
    repo: &str,
    m: &NewManifest,
    tag: Option<&str>,
    now: u64,
) -> Result<PutOutcome, StoreError> {
    let row = get_repository(c, repo)?.ok_or_else(|| not_found("repository", repo))?;
    if let Some(tag) = tag
        && let Some(refused) = check_tag(c, &row, tag, &m.digest)?
    {
        return Ok(refused);
    }
    let mut missing = Vec::new();
    for (child, kind) in &m.refs {
        let present = match kind {
            RefKind::Blob => linked_blob(c, repo, child)?.is_some(),
            RefKind::Manifest => manifest_exists(c, repo, child)?,
        };
        if !present {
            missing.push(child.clone());
        }
    }
    if !missing.is_empty() {
        return Ok(PutOutcome::MissingReferences(missing));
    }
    let annotations = (!m.annotations.is_empty())
        .then(|| serde_json::to_string(&m.annotations))
        .transpose()
        .map_err(StoreError::json("manifest annotations"))?;
    let inserted = c
        .execute(
            "INSERT OR IGNORE INTO registry_manifests
             (repository, digest, media_type, size, image_size, pushed_at, artifact_type, subject, annotations)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                repo,
                m.digest,
                m.media_type,
                m.size as i64,
                m.image_size as i64,
                now as i64,
                m.artifact_type,
                m.subject,
                annotations,
            ],
        )
        .map_err(StoreError::sql("write manifest"))?;
    if inserted > 0 {
        for (child, kind) in &m.refs {
            c.execute(
                "INSERT OR IGNORE INTO registry_manifest_refs (repository, digest, child, kind)
                 VALUES (?1, ?2, ?3, ?4)",
                params![repo, m.digest, child, kind.as_str()],
            )
            .map_err(StoreError::sql("write manifest reference"))?;
        }
    }
    if let Some(tag) = tag {
        write_tag(c, repo, tag, &m.digest, now)?;
    }
    Ok(PutOutcome::Stored)
}

/// Points `tag` at the stored manifest `digest` (ECR's PutImage with a
/// manifest already there), with the same immutability rule.
pub fn put_tag(
    c: &Connection,
    repo: &str,
    tag: &str,
    digest: &str,
    now: u64,
) -> Result<PutOutcome, StoreError> {
    let row = get_repository(c, repo)?.ok_or_else(|| not_found("repository", repo))?;
    if !manifest_exists(c, repo, digest)? {
        return Ok(PutOutcome::MissingReferences(vec![digest.to_string()]));
    }
    if let Some(refused) = check_tag(c, &row, tag, digest)? {
        return Ok(refused);
    }
    write_tag(c, repo, tag, digest, now)?;
    Ok(PutOutcome::Stored)
}

const IMAGE_COLUMNS: &str = "m.repository, m.digest, m.media_type, m.size, m.image_size, m.pushed_at, m.artifact_type, m.annotations,
     (SELECT group_concat(tag, char(10)) FROM (SELECT tag FROM registry_tags t
       WHERE t.repository = m.repository AND t.digest = m.digest ORDER BY tag))";

fn image_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ImageRow, Option<String>)> {
    let tags: Option<String> = r.get(8)?;
    Ok((
        ImageRow {
            repository: r.get(0)?,
            digest: r.get(1)?,
            media_type: r.get(2)?,
            manifest_size: r.get::<_, i64>(3)? as u64,
            image_size: r.get::<_, i64>(4)? as u64,
            pushed_at_ms: r.get::<_, i64>(5)? as u64,
            artifact_type: r.get(6)?,
            annotations: BTreeMap::new(),
            tags: tags
                .map(|t| t.split('\n').map(str::to_string).collect())
                .unwrap_or_default(),
        },
        r.get(7)?,
    ))
}

fn typed_image(row: (ImageRow, Option<String>)) -> Result<ImageRow, StoreError> {
    let (mut image, annotations) = row;
    if let Some(text) = annotations {
        image.annotations =
            serde_json::from_str(&text).map_err(StoreError::json("manifest annotations"))?;
    }
    Ok(image)
}

fn query_images(
    c: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<ImageRow>, StoreError> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {IMAGE_COLUMNS} FROM registry_manifests m WHERE {filter}"
        ))
        .map_err(StoreError::sql("list images"))?;
    let rows = stmt
        .query_map(args, image_row)
        .map_err(StoreError::sql("list images"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list images"))?;
    rows.into_iter().map(typed_image).collect()
}

/// Every image of a repository, oldest push first.
pub fn list_images(c: &Connection, repo: &str) -> Result<Vec<ImageRow>, StoreError> {
    query_images(
        c,
        "m.repository = ?1 ORDER BY m.pushed_at, m.digest",
        &[&repo],
    )
}

/// The image a tag or digest names.
pub fn get_image(
    c: &Connection,
    repo: &str,
    which: ImageRef<'_>,
) -> Result<Option<ImageRow>, StoreError> {
    let digest = match which {
        ImageRef::Digest(d) => d.to_string(),
        ImageRef::Tag(t) => match tag_digest(c, repo, t)? {
            Some(d) => d,
            None => return Ok(None),
        },
    };
    Ok(
        query_images(c, "m.repository = ?1 AND m.digest = ?2", &[&repo, &digest])?
            .into_iter()
            .next(),
    )
}

/// The manifests whose `subject` is `digest` (the referrers API).
pub fn referrers(c: &Connection, repo: &str, digest: &str) -> Result<Vec<ImageRow>, StoreError> {
    query_images(
        c,
        "m.repository = ?1 AND m.subject = ?2 ORDER BY m.digest",
        &[&repo, &digest],
    )
}

/// Tags of a repository, sorted, after `last` (exclusive), at most `limit`.
pub fn list_tags(
    c: &Connection,
    repo: &str,
    last: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT tag FROM registry_tags WHERE repository = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3",
        )
        .map_err(StoreError::sql("list tags"))?;
    stmt.query_map(
        params![
            repo,
            last.unwrap_or(""),
            limit.min(i64::MAX as usize) as i64
        ],
        |r| r.get(0),
    )
    .map_err(StoreError::sql("list tags"))?
    .collect::<Result<Vec<String>, _>>()
    .map_err(StoreError::sql("list tags"))
}

/// Removes a tag (the manifest stays); whether it existed.
pub fn delete_tag(c: &Connection, repo: &str, tag: &str) -> Result<bool, StoreError> {
    c.execute(
        "DELETE FROM registry_tags WHERE repository = ?1 AND tag = ?2",
        [repo, tag],
    )
    .map(|n| n > 0)
    .map_err(StoreError::sql("delete tag"))
}

/// Removes a manifest and every tag naming it; whether it existed.
pub fn delete_manifest(c: &Connection, repo: &str, digest: &str) -> Result<bool, StoreError> {
    for sql in [
        "DELETE FROM registry_tags WHERE repository = ?1 AND digest = ?2",
        "DELETE FROM registry_manifest_refs WHERE repository = ?1 AND digest = ?2",
    ] {
        c.execute(sql, [repo, digest])
            .map_err(StoreError::sql("delete manifest"))?;
    }
    c.execute(
        "DELETE FROM registry_manifests WHERE repository = ?1 AND digest = ?2",
        [repo, digest],
    )
    .map(|n| n > 0)
    .map_err(StoreError::sql("delete manifest"))
}

/// ECR's BatchDeleteImage for one image id: by digest, the image and its
/// tags; by tag, the tag, and the image too when it was its last tag.
/// Returns the digest the id named, or `None` when it names nothing.
pub fn delete_image(
    c: &Connection,
    repo: &str,
    which: ImageRef<'_>,
) -> Result<Option<String>, StoreError> {
    let Some(image) = get_image(c, repo, which)? else {
        return Ok(None);
    };
    match which {
        ImageRef::Digest(d) => {
            delete_manifest(c, repo, d)?;
        }
        ImageRef::Tag(t) => {
            delete_tag(c, repo, t)?;
            if image.tags.len() == 1 {
                delete_manifest(c, repo, &image.digest)?;
            }
        }
    }
    Ok(Some(image.digest))
}
