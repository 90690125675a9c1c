//! Alarm rows: the declaration (typed, or kept as text when unreadable)
//! and the last state.

use super::status;
use crate::{AlarmRow, AlarmSpec, StoreError};
use cutover_deploy::alarm::AlarmState;
use rusqlite::{Connection, params};

/// Inserts or replaces an alarm.
pub fn put_alarm(c: &Connection, a: &AlarmRow) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO alarms (name, spec, state, reason, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            a.name,
            a.spec.to_column().map_err(StoreError::json("alarm spec"))?,
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
    Ok(rows
        .into_iter()
        .map(|(name, spec, state, reason, at)| AlarmRow {
            name,
            spec: AlarmSpec::from_column(spec),
            state,
            reason,
            updated_at: at as u64,
        })
        .collect())
}
