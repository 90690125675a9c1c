//! Deployment rows: the kind column beside the engine's JSON, and the
//! unfinished deployments a restart resumes.

use super::{opt_u64, status};
use crate::{DeploymentRow, StoreError};
use cutover_deploy::{DeploymentEngine, DeploymentKind};
use rusqlite::{Connection, OptionalExtension, Row, params};

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
