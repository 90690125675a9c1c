//! Store operations on the pipeline tables: repositories, build projects,
//! pipelines (definition and engine state), repository heads and builds.

use crate::{BuildProjectRow, BuildRow, PipelineRow, RepositoryRow, StoreError};
use cutover_api::builds::BuildStatus;
use rusqlite::{Connection, OptionalExtension, Row, params};

fn typed_col<T: serde::de::DeserializeOwned>(
    what: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(StoreError::json(what))
}

fn typed_text<T: serde::Serialize>(what: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::json(what))
}

fn json_col(what: &'static str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(StoreError::json(what))
}

fn named_rows(
    c: &Connection,
    table: &'static str,
    op: &'static str,
) -> Result<Vec<(String, String, u64)>, StoreError> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT name, spec, updated_at FROM {table} ORDER BY name"
        ))
        .map_err(StoreError::sql(op))?;
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
    })
    .map_err(StoreError::sql(op))?
    .collect::<Result<Vec<_>, _>>()
    .map_err(StoreError::sql(op))
}

/// Inserts or replaces a repository.
pub fn put_repository(c: &Connection, r: &RepositoryRow) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO repositories (name, spec, updated_at) VALUES (?1, ?2, ?3)",
        params![
            r.name,
            typed_text("repository spec", &r.spec)?,
            r.updated_at as i64
        ],
    )
    .map_err(StoreError::sql("write repository"))?;
    Ok(())
}

/// Every repository, by name.
pub fn list_repositories(c: &Connection) -> Result<Vec<RepositoryRow>, StoreError> {
    named_rows(c, "repositories", "list repositories")?
        .into_iter()
        .map(|(name, spec, updated_at)| {
            Ok(RepositoryRow {
                name,
                spec: typed_col("repository spec", &spec)?,
                updated_at,
            })
        })
        .collect()
}

/// One repository.
pub fn repository(c: &Connection, name: &str) -> Result<Option<RepositoryRow>, StoreError> {
    Ok(list_repositories(c)?.into_iter().find(|r| r.name == name))
}

/// Removes a repository (its recorded heads stay, harmlessly).
pub fn delete_repository(c: &Connection, name: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM repositories WHERE name = ?1", [name])
        .map_err(StoreError::sql("delete repository"))?;
    Ok(())
}

/// Inserts or replaces a build project.
pub fn put_build_project(c: &Connection, p: &BuildProjectRow) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO build_projects (name, spec, updated_at) VALUES (?1, ?2, ?3)",
        params![
            p.name,
            typed_text("build project spec", &p.spec)?,
            p.updated_at as i64
        ],
    )
    .map_err(StoreError::sql("write build project"))?;
    Ok(())
}

/// Every build project, by name.
pub fn list_build_projects(c: &Connection) -> Result<Vec<BuildProjectRow>, StoreError> {
    named_rows(c, "build_projects", "list build projects")?
        .into_iter()
        .map(|(name, spec, updated_at)| {
            Ok(BuildProjectRow {
                name,
                spec: typed_col("build project spec", &spec)?,
                updated_at,
            })
        })
        .collect()
}

/// One build project.
pub fn build_project(c: &Connection, name: &str) -> Result<Option<BuildProjectRow>, StoreError> {
    Ok(list_build_projects(c)?.into_iter().find(|p| p.name == name))
}

/// Removes a build project (its builds stay in history).
pub fn delete_build_project(c: &Connection, name: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM build_projects WHERE name = ?1", [name])
        .map_err(StoreError::sql("delete build project"))?;
    Ok(())
}

fn pipeline_from(r: &Row<'_>) -> rusqlite::Result<(String, String, Option<String>, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn finish_pipeline(
    (name, definition, state, at): (String, String, Option<String>, i64),
) -> Result<PipelineRow, StoreError> {
    Ok(PipelineRow {
        name,
        definition: json_col("pipeline definition", &definition)?,
        state: state.map(|s| json_col("pipeline state", &s)).transpose()?,
        updated_at: at as u64,
    })
}

/// Sets a pipeline's definition, keeping its engine state.
pub fn put_pipeline_definition(
    c: &Connection,
    name: &str,
    definition: &serde_json::Value,
    now: u64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO pipelines (name, definition, state, updated_at) VALUES (?1, ?2, NULL, ?3)
         ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at",
        params![name, definition.to_string(), now as i64],
    )
    .map_err(StoreError::sql("write pipeline"))?;
    Ok(())
}

/// Saves a pipeline's engine state.
pub fn save_pipeline_state(
    c: &Connection,
    name: &str,
    state: &serde_json::Value,
    now: u64,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE pipelines SET state = ?2, updated_at = ?3 WHERE name = ?1",
            params![name, state.to_string(), now as i64],
        )
        .map_err(StoreError::sql("write pipeline state"))?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "pipeline",
            name: name.to_string(),
        });
    }
    Ok(())
}

/// One pipeline.
pub fn pipeline(c: &Connection, name: &str) -> Result<Option<PipelineRow>, StoreError> {
    c.query_row(
        "SELECT name, definition, state, updated_at FROM pipelines WHERE name = ?1",
        [name],
        pipeline_from,
    )
    .optional()
    .map_err(StoreError::sql("read pipeline"))?
    .map(finish_pipeline)
    .transpose()
}

/// Every pipeline, by name.
pub fn list_pipelines(c: &Connection) -> Result<Vec<PipelineRow>, StoreError> {
    let mut stmt = c
        .prepare("SELECT name, definition, state, updated_at FROM pipelines ORDER BY name")
        .map_err(StoreError::sql("list pipelines"))?;
    let rows = stmt
        .query_map([], pipeline_from)
        .map_err(StoreError::sql("list pipelines"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list pipelines"))?;
    rows.into_iter().map(finish_pipeline).collect()
}

/// Removes a pipeline and its state.
pub fn delete_pipeline(c: &Connection, name: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM pipelines WHERE name = ?1", [name])
        .map_err(StoreError::sql("delete pipeline"))?;
    Ok(())
}

/// The last head seen on a repository branch.
pub fn repository_head(
    c: &Connection,
    repository: &str,
    branch: &str,
) -> Result<Option<String>, StoreError> {
    c.query_row(
        "SELECT commit_id FROM repository_heads WHERE repository = ?1 AND branch = ?2",
        [repository, branch],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sql("read repository head"))
}

/// Records the head seen on a repository branch.
pub fn set_repository_head(
    c: &Connection,
    repository: &str,
    branch: &str,
    commit: &str,
    now: u64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO repository_heads (repository, branch, commit_id, updated_at) VALUES (?1, ?2, ?3, ?4)",
        params![repository, branch, commit, now as i64],
    )
    .map_err(StoreError::sql("write repository head"))?;
    Ok(())
}

const BUILD_COLS: &str = "id, project, number, status, initiator, action_key, source, work_dir, detail, message, started_at, finished_at";

fn build_from(r: &Row<'_>) -> rusqlite::Result<(BuildRow, String)> {
    Ok((
        BuildRow {
            id: r.get(0)?,
            project: r.get(1)?,
            number: r.get::<_, i64>(2)? as u64,
            status: build_status(r, 3)?,
            initiator: r.get(4)?,
            action_key: r.get(5)?,
            source: r.get(6)?,
            work_dir: r.get(7)?,
            detail: serde_json::Value::Null,
            message: r.get(9)?,
            started_at: r.get::<_, i64>(10)? as u64,
            finished_at: r.get::<_, Option<i64>>(11)?.map(|x| x as u64),
        },
        r.get(8)?,
    ))
}

/// A stored build status (`IN_PROGRESS`, ...); an unknown name is an
/// error naming it.
fn build_status(r: &Row<'_>, i: usize) -> rusqlite::Result<BuildStatus> {
    let text: String = r.get(i)?;
    BuildStatus::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown build status {text:?}").into(),
        )
    })
}

fn finish_build((mut b, detail): (BuildRow, String)) -> Result<BuildRow, StoreError> {
    b.detail = json_col("build detail", &detail)?;
    Ok(b)
}

fn query_builds(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    op: &'static str,
) -> Result<Vec<BuildRow>, StoreError> {
    let mut stmt = c.prepare(sql).map_err(StoreError::sql(op))?;
    let rows = stmt
        .query_map(params, build_from)
        .map_err(StoreError::sql(op))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql(op))?;
    rows.into_iter().map(finish_build).collect()
}

/// The next build number of `project`.
pub fn next_build_number(c: &Connection, project: &str) -> Result<u64, StoreError> {
    c.query_row(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM builds WHERE project = ?1",
        [project],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(StoreError::sql("next build number"))
}

/// Inserts or replaces a build.
pub fn put_build(c: &Connection, b: &BuildRow) -> Result<(), StoreError> {
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO builds ({BUILD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            b.id,
            b.project,
            b.number as i64,
            b.status.as_str(),
            b.initiator,
            b.action_key,
            b.source,
            b.work_dir,
            b.detail.to_string(),
            b.message,
            b.started_at as i64,
            b.finished_at.map(|x| x as i64),
        ],
    )
    .map_err(StoreError::sql("write build"))?;
    Ok(())
}

/// One build.
pub fn build(c: &Connection, id: &str) -> Result<Option<BuildRow>, StoreError> {
    Ok(query_builds(
        c,
        &format!("SELECT {BUILD_COLS} FROM builds WHERE id = ?1"),
        [id],
        "read build",
    )?
    .pop())
}

/// The newest build run for a pipeline action key, if any.
pub fn build_for_action(c: &Connection, action_key: &str) -> Result<Option<BuildRow>, StoreError> {
    Ok(query_builds(
        c,
        &format!(
            "SELECT {BUILD_COLS} FROM builds WHERE action_key = ?1 ORDER BY started_at DESC LIMIT 1"
        ),
        [action_key],
        "read build by action",
    )?
    .pop())
}

/// Builds, optionally of one project, newest first.
pub fn list_builds(
    c: &Connection,
    project: Option<&str>,
    limit: u32,
) -> Result<Vec<BuildRow>, StoreError> {
    query_builds(
        c,
        &format!(
            "SELECT {BUILD_COLS} FROM builds WHERE (?1 IS NULL OR project = ?1)
             ORDER BY started_at DESC, number DESC LIMIT ?2"
        ),
        params![project, limit],
        "list builds",
    )
}

/// Builds not finished (`finished_at` unset), oldest first.
pub fn unfinished_builds(c: &Connection) -> Result<Vec<BuildRow>, StoreError> {
    query_builds(
        c,
        &format!("SELECT {BUILD_COLS} FROM builds WHERE finished_at IS NULL ORDER BY started_at"),
        [],
        "list unfinished builds",
    )
}

/// Records the head seen on a repository branch unless one is recorded
/// already; returns whether it was recorded now.
pub fn set_repository_head_if_absent(
    c: &Connection,
    repository: &str,
    branch: &str,
    commit: &str,
    now: u64,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            "INSERT OR IGNORE INTO repository_heads (repository, branch, commit_id, updated_at) VALUES (?1, ?2, ?3, ?4)",
            params![repository, branch, commit, now as i64],
        )
        .map_err(StoreError::sql("write repository head"))?;
    Ok(n > 0)
}

/// The names under `pipelines:` of a recorded stack body.
fn stack_pipelines(body: &str) -> Result<Vec<String>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Stored {
        #[serde(default)]
        pipelines: Option<serde_json::Map<String, serde_json::Value>>,
    }
    serde_json::from_str::<Stored>(body)
        .map(|s| {
            s.pipelines
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        })
        .map_err(StoreError::json("stack pipelines"))
}

/// The last stack applied under each stack key (`stacks.file`), oldest
/// first: `(key, names under its pipelines:)`.
pub fn latest_stacks(c: &Connection) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let rows = crate::ops::latest_stack_bodies(c)?;
    rows.into_iter()
        .map(|(file, body)| Ok((file, stack_pipelines(&body)?)))
        .collect()
}

/// Files the records of stack key `from` under `to` (a stack first applied
/// under another name for it).
pub fn rename_stack(c: &Connection, from: &str, to: &str) -> Result<(), StoreError> {
    c.execute("UPDATE stacks SET file = ?2 WHERE file = ?1", [from, to])
        .map_err(StoreError::sql("rename stack"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, ops};

    #[test]
    fn a_head_recorded_if_absent_never_moves_a_recorded_one() {
        let s = Store::open_in_memory().unwrap();
        let set = |commit: &str| {
            s.with(|c| set_repository_head_if_absent(c, "app", "main", commit, 1))
                .unwrap()
        };
        assert!(set("aaa"));
        assert!(!set("bbb"));
        let head = s.with(|c| repository_head(c, "app", "main")).unwrap();
        assert_eq!(head.as_deref(), Some("aaa"));
    }

    #[test]
    fn the_latest_stack_of_each_key_names_its_pipelines() {
        let s = Store::open_in_memory().unwrap();
        let latest = || s.with(latest_stacks).unwrap();
        assert!(latest().is_empty());
        let record = |at: u64, file: &str, body: serde_json::Value| {
            s.with(|c| ops::record_stack(c, at, file, &body)).unwrap();
        };
        record(
            1,
            "stack.yaml",
            serde_json::json!({"pipelines": {"a": {}, "b": {}}}),
        );
        record(2, "other.yaml", serde_json::json!({"services": {}}));
        record(3, "stack.yaml", serde_json::json!({"pipelines": {"b": {}}}));
        let names = |l: Vec<(String, Vec<String>)>| {
            l.into_iter()
                .map(|(f, p)| format!("{f}:{}", p.join(",")))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(latest()), ["other.yaml:", "stack.yaml:b"]);
        s.with(|c| rename_stack(c, "stack.yaml", "/srv/app/stack.yaml"))
            .unwrap();
        record(4, "other.yaml", serde_json::json!({"pipelines": {"a": {}}}));
        assert_eq!(names(latest()), ["/srv/app/stack.yaml:b", "other.yaml:a"]);
    }

    #[test]
    fn build_statuses_are_stored_by_name_and_unknown_names_are_refused() {
        let s = Store::open_in_memory().unwrap();
        let mut row = BuildRow {
            id: "p:1".into(),
            project: "p".into(),
            number: 1,
            status: BuildStatus::TimedOut,
            initiator: "test".into(),
            action_key: None,
            source: None,
            work_dir: "/nowhere".into(),
            detail: serde_json::json!({}),
            message: None,
            started_at: 1,
            finished_at: Some(2),
        };
        s.with(|c| put_build(c, &row)).unwrap();
        let text: String = s
            .with(|c| {
                c.query_row("SELECT status FROM builds", [], |r| r.get(0))
                    .map_err(StoreError::sql("read"))
            })
            .unwrap();
        assert_eq!(text, "TIMED_OUT");
        assert_eq!(
            s.with(|c| build(c, "p:1")).unwrap().unwrap().status,
            BuildStatus::TimedOut
        );
        row.id = "p:2".into();
        s.with(|c| put_build(c, &row)).unwrap();
        s.with(|c| {
            c.execute("UPDATE builds SET status = 'RUNNING' WHERE id = 'p:2'", [])
                .map_err(StoreError::sql("corrupt"))
        })
        .unwrap();
        let err = s.with(|c| build(c, "p:2")).unwrap_err();
        assert!(format!("{err:?}").contains("RUNNING"), "{err:?}");
    }
}
