//! Whether a task definition revision is ACTIVE or INACTIVE (deregistered
//! through ECS's `DeregisterTaskDefinition`). Kept beside the revisions,
//! not in them: a revision's body and digest never change once written.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// Marks `family:revision` deregistered at `now` (again: keeps the first
/// time). The caller checks the revision exists.
pub fn deregister(
    c: &Connection,
    family: &str,
    revision: u32,
    now: u64,
) -> Result<u64, StoreError> {
    c.execute(
        "INSERT OR IGNORE INTO task_definition_deregistrations (family, revision, deregistered_at)
         VALUES (?1, ?2, ?3)",
        params![family, revision, now as i64],
    )
    .map_err(StoreError::sql("deregister a task definition"))?;
    Ok(deregistered_at(c, family, revision)?.unwrap_or(now))
}

/// When `family:revision` was deregistered, if it was.
pub fn deregistered_at(
    c: &Connection,
    family: &str,
    revision: u32,
) -> Result<Option<u64>, StoreError> {
    c.query_row(
        "SELECT deregistered_at FROM task_definition_deregistrations WHERE family = ?1 AND revision = ?2",
        params![family, revision],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|t| t.map(|t| t as u64))
    .map_err(StoreError::sql("read a task definition's status"))
}

/// Every deregistered revision, as `(family, revision)`.
pub fn deregistered(
    c: &Connection,
) -> Result<std::collections::HashSet<(String, u32)>, StoreError> {
    let mut stmt = c
        .prepare_cached("SELECT family, revision FROM task_definition_deregistrations")
        .map_err(StoreError::sql("list deregistered task definitions"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
        .map_err(StoreError::sql("list deregistered task definitions"))?
        .collect::<Result<_, _>>()
        .map_err(StoreError::sql("list deregistered task definitions"))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn a_deregistration_is_kept_once_and_read_back() {
        let store = Store::open_in_memory().unwrap();
        store
            .with(|c| {
                assert_eq!(deregistered_at(c, "web", 1)?, None);
                assert_eq!(deregister(c, "web", 1, 10)?, 10);
                assert_eq!(deregister(c, "web", 1, 20)?, 10);
                assert_eq!(deregistered_at(c, "web", 1)?, Some(10));
                assert!(deregistered(c)?.contains(&("web".to_string(), 1)));
                assert!(!deregistered(c)?.contains(&("web".to_string(), 2)));
                Ok(())
            })
            .unwrap();
    }
}
