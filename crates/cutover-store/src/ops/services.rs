//! Service rows: write, read, list, and the deletion of a drained service.

use super::status;
use crate::{ServiceRow, StoreError};
use cutover_core::service::ServiceStatus;
use rusqlite::{Connection, OptionalExtension, Row, params};

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
