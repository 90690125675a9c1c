//! Store operations as functions over a connection, usable alone or inside
//! [`crate::Store::atomically`]: one module per table (or group of tables),
//! all re-exported here, so a caller writes `ops::put_alarm`.

mod alarms;
mod deployments;
mod history;
mod services;
mod task_definitions;
mod tasks;

pub use alarms::{delete_alarm, list_alarms, put_alarm};
pub use deployments::{
    deployment, list_deployments, put_deployment, unfinished_deployments, unfinished_deployments_of,
};
pub use history::{
    StackSection, add_event, events, latest_deployment_configs, latest_stack_bodies, record_stack,
    stack_files_by_service, stack_functions,
};
pub use services::{delete_drained_service, list_services, put_service, service};
pub use task_definitions::{
    digest, list_task_definitions, register_task_definition, task_definition,
};
pub use tasks::{
    TaskCounts, insert_task, list_tasks, relabel_task_set, task, task_counts, update_task_lifecycle,
};

use crate::StoreError;
use rusqlite::{Connection, Row};

/// The schema version of the database (after the migrations that ran at
/// open).
pub fn schema_version(c: &Connection) -> Result<u32, StoreError> {
    crate::migrations::version(c)
}

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
