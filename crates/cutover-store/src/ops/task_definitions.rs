//! Task definition revisions: registration (idempotent on the canonical
//! JSON's digest) and lookups.

use crate::{StoreError, TaskDefinitionRow};
use rusqlite::{Connection, OptionalExtension, Row, params};
use sha2::{Digest, Sha256};

/// sha256 of a JSON value's canonical text (serde_json sorts nothing, so the
/// caller passes the canonical form it stores).
pub fn digest(body: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

/// Registers a new revision of `family`, unless the newest revision has the
/// same body, in which case that revision is returned (`false` = reused).
pub fn register_task_definition(
    c: &Connection,
    family: &str,
    body: &serde_json::Value,
    now: u64,
    force_new: bool,
) -> Result<(TaskDefinitionRow, bool), StoreError> {
    let digest = digest(body);
    if !force_new
        && let Some(latest) = task_definition(c, family, None)?
        && latest.digest == digest
    {
        return Ok((latest, false));
    }
    let next: u32 = c
        .query_row(
            "SELECT COALESCE(MAX(revision), 0) + 1 FROM task_definitions WHERE family = ?1",
            [family],
            |r| r.get(0),
        )
        .map_err(StoreError::sql("next revision"))?;
    c.execute(
        "INSERT INTO task_definitions (family, revision, body, digest, registered_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![family, next, body.to_string(), digest, now as i64],
    )
    .map_err(StoreError::sql("insert task definition"))?;
    Ok((
        TaskDefinitionRow {
            family: family.to_string(),
            revision: next,
            body: body.clone(),
            digest,
            registered_at: now,
        },
        true,
    ))
}

fn taskdef_row(r: &Row<'_>) -> rusqlite::Result<(String, u32, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn taskdef_from(
    (family, revision, body, digest, at): (String, u32, String, String, i64),
) -> Result<TaskDefinitionRow, StoreError> {
    Ok(TaskDefinitionRow {
        family,
        revision,
        body: serde_json::from_str(&body).map_err(StoreError::json("task definition body"))?,
        digest,
        registered_at: at as u64,
    })
}

/// One revision, or the newest when `revision` is `None`.
pub fn task_definition(
    c: &Connection,
    family: &str,
    revision: Option<u32>,
) -> Result<Option<TaskDefinitionRow>, StoreError> {
    let raw = match revision {
        Some(rev) => c
            .query_row(
                "SELECT family, revision, body, digest, registered_at FROM task_definitions WHERE family = ?1 AND revision = ?2",
                params![family, rev],
                taskdef_row,
            )
            .optional(),
        None => c
            .query_row(
                "SELECT family, revision, body, digest, registered_at FROM task_definitions WHERE family = ?1 ORDER BY revision DESC LIMIT 1",
                [family],
                taskdef_row,
            )
            .optional(),
    }
    .map_err(StoreError::sql("read task definition"))?;
    raw.map(taskdef_from).transpose()
}

/// Every revision, optionally of one family, oldest first.
pub fn list_task_definitions(
    c: &Connection,
    family: Option<&str>,
) -> Result<Vec<TaskDefinitionRow>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT family, revision, body, digest, registered_at FROM task_definitions
             WHERE (?1 IS NULL OR family = ?1) ORDER BY family, revision",
        )
        .map_err(StoreError::sql("list task definitions"))?;
    let rows = stmt
        .query_map([family], taskdef_row)
        .map_err(StoreError::sql("list task definitions"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list task definitions"))?;
    rows.into_iter().map(taskdef_from).collect()
}
