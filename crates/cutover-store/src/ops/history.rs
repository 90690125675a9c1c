//! History a user reads (events) and the applied stack files, with the
//! deployment configurations of the last one.

use crate::{EventRow, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;

/// Appends a history line.
pub fn add_event(c: &Connection, at: u64, subject: &str, message: &str) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO events (at, subject, message) VALUES (?1, ?2, ?3)",
        params![at as i64, subject, message],
    )
    .map_err(StoreError::sql("add event"))?;
    Ok(c.last_insert_rowid())
}

/// The newest `limit` events of a subject prefix (e.g. `service/web`), oldest first.
///
/// The prefix's children (`service/web/...`) are the index range
/// `['service/web/', 'service/web0')` (`0` follows `/`): a `LIKE` would scan
/// the whole table (114 µs at 2,000 events against 4 µs, bench/aws-api.sh),
/// and treat `_` and `%` in a name as wildcards.
pub fn events(
    c: &Connection,
    subject_prefix: &str,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT id, at, subject, message FROM (
               SELECT id, at, subject, message FROM events
               WHERE subject = ?1 OR (subject >= ?1 || '/' AND subject < ?1 || '0')
               ORDER BY id DESC LIMIT ?2) ORDER BY id",
        )
        .map_err(StoreError::sql("list events"))?;
    stmt.query_map(params![subject_prefix, limit], |r| {
        Ok(EventRow {
            id: r.get(0)?,
            at: r.get::<_, i64>(1)? as u64,
            subject: r.get(2)?,
            message: r.get(3)?,
        })
    })
    .map_err(StoreError::sql("list events"))?
    .collect::<Result<Vec<_>, _>>()
    .map_err(StoreError::sql("list events"))
}

/// Records an applied stack file (its canonical JSON).
pub fn record_stack(
    c: &Connection,
    at: u64,
    file: &str,
    body: &serde_json::Value,
) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO stacks (applied_at, file, body) VALUES (?1, ?2, ?3)",
        params![at as i64, file, body.to_string()],
    )
    .map_err(StoreError::sql("record stack"))?;
    Ok(c.last_insert_rowid())
}

/// The last stack applied under each stack key (`stacks.file`), oldest
/// first: `(key, stored body)`. The one query behind every "which stack
/// declares what" reader.
pub fn latest_stack_bodies(c: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT file, body FROM stacks WHERE id IN (SELECT MAX(id) FROM stacks GROUP BY file)
             ORDER BY id",
        )
        .map_err(StoreError::sql("list stacks"))?;
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(StoreError::sql("list stacks"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list stacks"))
}

/// The stack file that last declared each service: the newest apply of
/// every stack, read for its `services` (a stored body that cannot be read
/// names nothing).
pub fn stack_files_by_service(c: &Connection) -> Result<BTreeMap<String, String>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        services: BTreeMap<String, serde::de::IgnoredAny>,
    }
    let mut out = BTreeMap::new();
    for (file, body) in latest_stack_bodies(c)? {
        if let Ok(body) = serde_json::from_str::<Body>(&body) {
            for svc in body.services.into_keys() {
                out.insert(svc, file.clone());
            }
        }
    }
    Ok(out)
}

/// The `functions` of the newest apply of the stack that declares
/// `name` under `section` (`services` or `pipelines`); empty when no stack
/// does. Each stack maps its own functions: a service or pipeline resolves
/// names only against the stack that declares it.
pub fn stack_functions(
    c: &Connection,
    section: StackSection,
    name: &str,
) -> Result<BTreeMap<String, cutover_spec::stack::HookSpec>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        services: BTreeMap<String, serde::de::IgnoredAny>,
        #[serde(default)]
        pipelines: Option<BTreeMap<String, serde::de::IgnoredAny>>,
        #[serde(default)]
        functions: BTreeMap<String, cutover_spec::stack::HookSpec>,
    }
    let mut stmt = c
        .prepare(
            "SELECT body FROM stacks WHERE id IN (SELECT MAX(id) FROM stacks GROUP BY file)
             ORDER BY id DESC",
        )
        .map_err(StoreError::sql("list stacks"))?;
    let bodies = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(StoreError::sql("list stacks"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list stacks"))?;
    for body in bodies {
        let Ok(b) = serde_json::from_str::<Body>(&body) else {
            continue;
        };
        let declares = match section {
            StackSection::Services => b.services.contains_key(name),
            StackSection::Pipelines => b.pipelines.is_some_and(|p| p.contains_key(name)),
        };
        if declares {
            return Ok(b.functions);
        }
    }
    Ok(BTreeMap::new())
}

/// The section of a stack that declares something, for [`stack_functions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackSection {
    /// `services:`.
    Services,
    /// `pipelines:`.
    Pipelines,
}

/// The `deploymentConfigs` of the last applied stack (empty when none was
/// applied), typed.
pub fn latest_deployment_configs(
    c: &Connection,
) -> Result<BTreeMap<String, cutover_spec::stack::DeploymentConfig>, StoreError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Stored {
        #[serde(default)]
        deployment_configs: BTreeMap<String, cutover_spec::stack::DeploymentConfig>,
    }
    let body: Option<String> = c
        .query_row(
            "SELECT body FROM stacks ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sql("read latest stack"))?;
    match body {
        None => Ok(BTreeMap::new()),
        Some(b) => serde_json::from_str::<Stored>(&b)
            .map(|s| s.deployment_configs)
            .map_err(StoreError::json("stack deploymentConfigs")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn functions_come_from_the_newest_apply_of_the_declaring_stack() {
        let s = Store::open_in_memory().unwrap();
        let record = |at: u64, file: &str, body: serde_json::Value| {
            s.with(|c| record_stack(c, at, file, &body)).unwrap();
        };
        let hook = |cmd: &str| serde_json::json!({"command": [cmd]});
        record(
            1,
            "a.yaml",
            serde_json::json!({"services": {"web": {}}, "functions": {"F": hook("old")}}),
        );
        record(
            2,
            "b.yaml",
            serde_json::json!({"services": {"api": {}}, "pipelines": {"app": {}}, "functions": {"F": hook("b")}}),
        );
        record(
            3,
            "a.yaml",
            serde_json::json!({"services": {"web": {}}, "functions": {"F": hook("new")}}),
        );
        let command = |section, name: &str| {
            s.with(|c| stack_functions(c, section, name))
                .unwrap()
                .get("F")
                .map(|h| h.command.join(" "))
        };
        assert_eq!(
            command(StackSection::Services, "web").as_deref(),
            Some("new")
        );
        assert_eq!(command(StackSection::Services, "api").as_deref(), Some("b"));
        assert_eq!(
            command(StackSection::Pipelines, "app").as_deref(),
            Some("b")
        );
        assert_eq!(command(StackSection::Pipelines, "web"), None);
    }
}
