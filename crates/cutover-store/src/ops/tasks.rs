//! Task rows, each column with one writer: the insert, the lifecycle
//! update (compare-and-set on the stored status) and the task-set
//! relabelling of a promotion; reads and live counts.

use super::{opt_u64, status};
use crate::{StoreError, TaskRow};
use rusqlite::{Connection, OptionalExtension, Row, params};

const TASK_COLS: &str = "id, service, task_set, task_definition, runtime, last_status, desired_status, health_status, endpoint, handle, stop_code, stopped_reason, exit_code, created_at, started_at, stopping_at, stopped_at";

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

/// The handle column's text: the runtime handle's JSON.
fn handle_column(t: &TaskRow) -> Result<Option<String>, StoreError> {
    t.handle
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(StoreError::json("task handle"))
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
            handle_column(t)?,
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
                handle_column(t)?,
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
