//! Store operations as functions over a connection, usable alone or inside
//! [`crate::Store::atomically`].

use crate::{
    AlarmRow, DeploymentRow, EventRow, ServiceRow, StoreError, TaskDefinitionRow, TaskRow,
};
use cutover_core::service::ServiceStatus;
use cutover_deploy::alarm::AlarmState;
use cutover_deploy::{DeploymentEngine, DeploymentKind};
use rusqlite::{Connection, OptionalExtension, Row, params};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

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

const SERVICE_COLS: &str = "name, task_definition, desired_count, runtime, spec, status, generation, created_at, updated_at, lb_group";

fn service_from(r: &Row<'_>) -> rusqlite::Result<(ServiceRow, String)> {
    let spec: String = r.get(4)?;
    Ok((
        ServiceRow {
            name: r.get(0)?,
            task_definition: r.get(1)?,
            desired_count: r.get(2)?,
            runtime: r.get(3)?,
            spec: Default::default(),
            status: status(r, 5)?,
            generation: r.get::<_, i64>(6)? as u64,
            created_at: r.get::<_, i64>(7)? as u64,
            updated_at: r.get::<_, i64>(8)? as u64,
            lb_group: r.get(9)?,
        },
        spec,
    ))
}

fn finish_service((mut row, spec): (ServiceRow, String)) -> Result<ServiceRow, StoreError> {
    row.spec = serde_json::from_str(&spec).map_err(StoreError::json("service spec"))?;
    Ok(row)
}

/// Inserts or replaces a service row.
pub fn put_service(c: &Connection, s: &ServiceRow) -> Result<(), StoreError> {
    c.execute(
        &format!(
            "INSERT INTO services ({SERVICE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(name) DO UPDATE SET task_definition = excluded.task_definition,
               desired_count = excluded.desired_count, runtime = excluded.runtime, spec = excluded.spec,
               status = excluded.status, generation = excluded.generation, updated_at = excluded.updated_at,
               lb_group = excluded.lb_group"
        ),
        params![
            s.name,
            s.task_definition,
            s.desired_count,
            s.runtime,
            serde_json::to_string(&s.spec).map_err(StoreError::json("service spec"))?,
            s.status.as_str(),
            s.generation as i64,
            s.created_at as i64,
            s.updated_at as i64,
            s.lb_group
        ],
    )
    .map_err(StoreError::sql("write service"))?;
    Ok(())
}

/// One service.
pub fn service(c: &Connection, name: &str) -> Result<Option<ServiceRow>, StoreError> {
    c.query_row(
        &format!("SELECT {SERVICE_COLS} FROM services WHERE name = ?1"),
        [name],
        service_from,
    )
    .optional()
    .map_err(StoreError::sql("read service"))?
    .map(finish_service)
    .transpose()
}

/// All services, by name.
pub fn list_services(c: &Connection) -> Result<Vec<ServiceRow>, StoreError> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {SERVICE_COLS} FROM services ORDER BY name"
        ))
        .map_err(StoreError::sql("list services"))?;
    let rows = stmt
        .query_map([], service_from)
        .map_err(StoreError::sql("list services"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list services"))?;
    rows.into_iter().map(finish_service).collect()
}

/// Removes a service row (its tasks' history stays).
/// Deletes a service whose deletion has finished: still DRAINING (an apply
/// may have made it ACTIVE again since it was read) and with no task that is
/// not STOPPED, judged in the one statement. Returns whether it was deleted.
pub fn delete_drained_service(c: &Connection, name: &str) -> Result<bool, StoreError> {
    let deleted = c
        .execute(
            "DELETE FROM services WHERE name = ?1 AND status = ?2
               AND NOT EXISTS (SELECT 1 FROM tasks WHERE service = ?1 AND last_status != 'STOPPED')",
            params![name, ServiceStatus::Draining.as_str()],
        )
        .map_err(StoreError::sql("delete service"))?;
    Ok(deleted == 1)
}

const TASK_COLS: &str = "id, service, task_set, task_definition, runtime, last_status, desired_status, health_status, endpoint, handle, stop_code, stopped_reason, exit_code, created_at, started_at, stopping_at, stopped_at";

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.map(|x| x as u64)
}

/// A status column read as its enum; an unknown value is a conversion
/// error naming the column, never a silently wrong state.
fn status<T: std::str::FromStr>(r: &Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = r.get(i)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn task_from(r: &Row<'_>) -> rusqlite::Result<(TaskRow, Option<String>)> {
    Ok((
        TaskRow {
            id: r.get(0)?,
            service: r.get(1)?,
            task_set: r.get(2)?,
            task_definition: r.get(3)?,
            runtime: r.get(4)?,
            last_status: status(r, 5)?,
            desired_status: status(r, 6)?,
            health_status: status(r, 7)?,
            endpoint: r.get(8)?,
            handle: None,
            stop_code: r.get(10)?,
            stopped_reason: r.get(11)?,
            exit_code: r.get(12)?,
            created_at: r.get::<_, i64>(13)? as u64,
            started_at: opt_u64(r.get(14)?),
            stopping_at: opt_u64(r.get(15)?),
            stopped_at: opt_u64(r.get(16)?),
        },
        r.get(9)?,
    ))
}

fn finish_task((mut t, handle): (TaskRow, Option<String>)) -> Result<TaskRow, StoreError> {
    t.handle = handle
        .map(|h| serde_json::from_str(&h))
        .transpose()
        .map_err(StoreError::json("task handle"))?;
    Ok(t)
}

/// Inserts a new task row (PROVISIONING, before its runtime starts it).
///
/// The columns of a task row have one writer each (see [`TaskRow`]): this
/// insert writes them all once; afterwards [`update_task_lifecycle`] owns
/// the lifecycle columns and [`relabel_task_set`] the task set. An id that
/// is already stored is refused, never replaced.
pub fn insert_task(c: &Connection, t: &TaskRow) -> Result<(), StoreError> {
    c.execute(
        &format!(
            "INSERT INTO tasks ({TASK_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        ),
        params![
            t.id,
            t.service,
            t.task_set,
            t.task_definition,
            t.runtime,
            t.last_status.as_str(),
            t.desired_status.as_str(),
            t.health_status.as_str(),
            t.endpoint,
            t.handle.as_ref().map(|h| h.to_string()),
            t.stop_code,
            t.stopped_reason,
            t.exit_code,
            t.created_at as i64,
            t.started_at.map(|x| x as i64),
            t.stopping_at.map(|x| x as i64),
            t.stopped_at.map(|x| x as i64),
        ],
    )
    .map_err(StoreError::sql("insert task"))?;
    Ok(())
}

/// Writes the lifecycle columns of a task from `t`: status, desired status,
/// health, endpoint, handle, stop code and reason, exit code and the
/// start/stopping/stop times. Never the identity columns nor the task set,
/// so a row read before a promotion relabelled its task set cannot undo the
/// relabelling.
///
/// The status change goes through [`cutover_core::task::TaskState::can_become`]
/// against the *stored* status, compared and set in one statement: a move
/// backwards (from a stale read, say) is refused with
/// [`StoreError::Conflict`]; a task that does not exist is
/// [`StoreError::NotFound`].
pub fn update_task_lifecycle(c: &Connection, t: &TaskRow) -> Result<(), StoreError> {
    let stored: Option<String> = c
        .query_row(
            "SELECT last_status FROM tasks WHERE id = ?1",
            [&t.id],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sql("read task status"))?;
    let Some(stored) = stored else {
        return Err(StoreError::NotFound {
            kind: "task",
            name: t.id.clone(),
        });
    };
    let from: cutover_core::task::TaskState = stored.parse().map_err(|_| {
        StoreError::Conflict(format!("task {}: unknown stored status {stored:?}", t.id))
    })?;
    let mut moved = TaskRow {
        last_status: from,
        ..t.clone()
    };
    moved
        .set_status(t.last_status)
        .map_err(|e| StoreError::Conflict(e.to_string()))?;
    let n = c
        .execute(
            "UPDATE tasks SET last_status = ?2, desired_status = ?3, health_status = ?4,
                 endpoint = ?5, handle = ?6, stop_code = ?7, stopped_reason = ?8,
                 exit_code = ?9, started_at = ?10, stopping_at = ?11, stopped_at = ?12
             WHERE id = ?1 AND last_status = ?13",
            params![
                t.id,
                t.last_status.as_str(),
                t.desired_status.as_str(),
                t.health_status.as_str(),
                t.endpoint,
                t.handle.as_ref().map(|h| h.to_string()),
                t.stop_code,
                t.stopped_reason,
                t.exit_code,
                t.started_at.map(|x| x as i64),
                t.stopping_at.map(|x| x as i64),
                t.stopped_at.map(|x| x as i64),
                stored,
            ],
        )
        .map_err(StoreError::sql("update task"))?;
    if n == 0 {
        // Outside a transaction another connection moved it in between.
        return Err(StoreError::Conflict(format!(
            "task {}: its status changed while it was being written",
            t.id
        )));
    }
    Ok(())
}

/// Moves every task of `service` in task set `from` that is not STOPPED to
/// task set `to` (a blue/green promotion: the replacement joins the live
/// set, the original is retired). Writes only the task set column; returns
/// how many tasks moved.
pub fn relabel_task_set(
    c: &Connection,
    service: &str,
    from: &str,
    to: &str,
) -> Result<usize, StoreError> {
    c.execute(
        "UPDATE tasks SET task_set = ?3
         WHERE service = ?1 AND task_set = ?2 AND last_status != 'STOPPED'",
        params![service, from, to],
    )
    .map_err(StoreError::sql("relabel task set"))
}

/// One task.
pub fn task(c: &Connection, id: &str) -> Result<Option<TaskRow>, StoreError> {
    c.query_row(
        &format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"),
        [id],
        task_from,
    )
    .optional()
    .map_err(StoreError::sql("read task"))?
    .map(finish_task)
    .transpose()
}

/// Tasks, optionally of one service, optionally only those not STOPPED;
/// newest first. `limit` bounds how many stopped tasks come back.
pub fn list_tasks(
    c: &Connection,
    service: Option<&str>,
    include_stopped: bool,
    limit: u32,
) -> Result<Vec<TaskRow>, StoreError> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {TASK_COLS} FROM tasks
             WHERE (?1 IS NULL OR service = ?1) AND (?2 OR last_status != 'STOPPED')
             ORDER BY (last_status = 'STOPPED'), created_at DESC, id LIMIT ?3"
        ))
        .map_err(StoreError::sql("list tasks"))?;
    let rows = stmt
        .query_map(params![service, include_stopped, limit], task_from)
        .map_err(StoreError::sql("list tasks"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list tasks"))?;
    rows.into_iter().map(finish_task).collect()
}

/// Live task counts of one service, as `describe-services` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Tasks RUNNING.
    pub running: u32,
    /// Tasks PROVISIONING or PENDING.
    pub pending: u32,
    /// Tasks RUNNING and HEALTHY.
    pub healthy: u32,
}

/// [`TaskCounts`] of every service that has live tasks, in one query.
pub fn task_counts(
    c: &Connection,
) -> Result<std::collections::HashMap<String, TaskCounts>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "SELECT service,
                    SUM(last_status = 'RUNNING'),
                    SUM(last_status IN ('PENDING', 'PROVISIONING')),
                    SUM(last_status = 'RUNNING' AND health_status = 'HEALTHY')
             FROM tasks WHERE last_status != 'STOPPED' GROUP BY service",
        )
        .map_err(StoreError::sql("count tasks"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                TaskCounts {
                    running: r.get::<_, i64>(1)? as u32,
                    pending: r.get::<_, i64>(2)? as u32,
                    healthy: r.get::<_, i64>(3)? as u32,
                },
            ))
        })
        .map_err(StoreError::sql("count tasks"))?
        .collect::<Result<_, _>>()
        .map_err(StoreError::sql("count tasks"))?;
    Ok(rows)
}

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
pub fn events(
    c: &Connection,
    subject_prefix: &str,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT id, at, subject, message FROM (
               SELECT id, at, subject, message FROM events
               WHERE subject = ?1 OR subject LIKE ?1 || '/%'
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

const DEPLOYMENT_COLS: &str = "id, service, kind, status, from_task_definition, to_task_definition, config, engine, green_provisioned, prod_green_percent, test_on_green, started_by, rollback_of, rolled_back_by, outcome, created_at, updated_at, finished_at";

fn deployment_from(r: &Row<'_>) -> rusqlite::Result<(DeploymentRow, DeploymentKind, String)> {
    Ok((
        DeploymentRow {
            id: r.get(0)?,
            service: r.get(1)?,
            status: status(r, 3)?,
            from_task_definition: r.get(4)?,
            to_task_definition: r.get(5)?,
            config: r.get(6)?,
            engine: DeploymentEngine::Rolling,
            green_provisioned: r.get(8)?,
            prod_green_percent: r.get(9)?,
            test_on_green: r.get(10)?,
            started_by: r.get(11)?,
            rollback_of: r.get(12)?,
            rolled_back_by: r.get(13)?,
            outcome: r.get(14)?,
            created_at: r.get::<_, i64>(15)? as u64,
            updated_at: r.get::<_, i64>(16)? as u64,
            finished_at: opt_u64(r.get(17)?),
        },
        status(r, 2)?,
        r.get(7)?,
    ))
}

/// The engine column of a deployment of `kind`: a blue/green one holds the
/// engine's JSON, the others `null`.
fn finish_deployment(
    (mut d, kind, engine): (DeploymentRow, DeploymentKind, String),
) -> Result<DeploymentRow, StoreError> {
    d.engine = match kind {
        DeploymentKind::BlueGreen => DeploymentEngine::BlueGreen(
            serde_json::from_str(&engine).map_err(StoreError::json("deployment engine state"))?,
        ),
        DeploymentKind::Rolling => DeploymentEngine::Rolling,
        DeploymentKind::Rollback => DeploymentEngine::Rollback,
    };
    Ok(d)
}

/// The engine column's text (see [`finish_deployment`]).
fn engine_column(engine: &DeploymentEngine) -> Result<String, StoreError> {
    match engine.blue_green() {
        Some(bg) => serde_json::to_string(bg).map_err(StoreError::json("deployment engine state")),
        None => Ok("null".to_string()),
    }
}

/// Inserts or replaces a deployment.
pub fn put_deployment(c: &Connection, d: &DeploymentRow) -> Result<(), StoreError> {
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO deployments ({DEPLOYMENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        ),
        params![
            d.id,
            d.service,
            d.kind().as_str(),
            d.status.as_str(),
            d.from_task_definition,
            d.to_task_definition,
            d.config,
            engine_column(&d.engine)?,
            d.green_provisioned,
            d.prod_green_percent,
            d.test_on_green,
            d.started_by,
            d.rollback_of,
            d.rolled_back_by,
            d.outcome,
            d.created_at as i64,
            d.updated_at as i64,
            d.finished_at.map(|x| x as i64),
        ],
    )
    .map_err(StoreError::sql("write deployment"))?;
    Ok(())
}

/// One deployment.
pub fn deployment(c: &Connection, id: &str) -> Result<Option<DeploymentRow>, StoreError> {
    c.query_row(
        &format!("SELECT {DEPLOYMENT_COLS} FROM deployments WHERE id = ?1"),
        [id],
        deployment_from,
    )
    .optional()
    .map_err(StoreError::sql("read deployment"))?
    .map(finish_deployment)
    .transpose()
}

/// Deployments, optionally of one service, newest first.
pub fn list_deployments(
    c: &Connection,
    service: Option<&str>,
    limit: u32,
) -> Result<Vec<DeploymentRow>, StoreError> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {DEPLOYMENT_COLS} FROM deployments WHERE (?1 IS NULL OR service = ?1)
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        ))
        .map_err(StoreError::sql("list deployments"))?;
    let rows = stmt
        .query_map(params![service, limit], deployment_from)
        .map_err(StoreError::sql("list deployments"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list deployments"))?;
    rows.into_iter().map(finish_deployment).collect()
}

/// Deployments not yet finished (`finished_at` unset), oldest first.
pub fn unfinished_deployments(c: &Connection) -> Result<Vec<DeploymentRow>, StoreError> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {DEPLOYMENT_COLS} FROM deployments WHERE finished_at IS NULL ORDER BY created_at, id"
        ))
        .map_err(StoreError::sql("list unfinished deployments"))?;
    let rows = stmt
        .query_map([], deployment_from)
        .map_err(StoreError::sql("list unfinished deployments"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list unfinished deployments"))?;
    rows.into_iter().map(finish_deployment).collect()
}

/// The unfinished deployments of one service, oldest first.
pub fn unfinished_deployments_of(
    c: &Connection,
    service: &str,
) -> Result<Vec<DeploymentRow>, StoreError> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {DEPLOYMENT_COLS} FROM deployments
             WHERE service = ?1 AND finished_at IS NULL ORDER BY created_at, id"
        ))
        .map_err(StoreError::sql("list unfinished deployments"))?;
    let rows = stmt
        .query_map([service], deployment_from)
        .map_err(StoreError::sql("list unfinished deployments"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list unfinished deployments"))?;
    rows.into_iter().map(finish_deployment).collect()
}

/// Inserts or replaces an alarm.
pub fn put_alarm(c: &Connection, a: &AlarmRow) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO alarms (name, spec, state, reason, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            a.name,
            a.spec.to_string(),
            a.state.as_str(),
            a.reason,
            a.updated_at as i64
        ],
    )
    .map_err(StoreError::sql("write alarm"))?;
    Ok(())
}

/// Removes an alarm.
pub fn delete_alarm(c: &Connection, name: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM alarms WHERE name = ?1", [name])
        .map_err(StoreError::sql("delete alarm"))?;
    Ok(())
}

/// All alarms by name.
pub fn list_alarms(c: &Connection) -> Result<Vec<AlarmRow>, StoreError> {
    let mut stmt = c
        .prepare("SELECT name, spec, state, reason, updated_at FROM alarms ORDER BY name")
        .map_err(StoreError::sql("list alarms"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                status::<AlarmState>(r, 2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(StoreError::sql("list alarms"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list alarms"))?;
    rows.into_iter()
        .map(|(name, spec, state, reason, at)| {
            Ok(AlarmRow {
                name,
                spec: serde_json::from_str(&spec).map_err(StoreError::json("alarm spec"))?,
                state,
                reason,
                updated_at: at as u64,
            })
        })
        .collect()
}

/// The most recently applied stack (canonical JSON), if any.
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
