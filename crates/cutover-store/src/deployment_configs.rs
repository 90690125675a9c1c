//! Deployment configurations created through CodeDeploy's
//! `CreateDeploymentConfig`, typed as the stack's own
//! [`DeploymentConfig`]: a deployment resolves a name against the
//! predefined ones, the applied stack's, then these.

use std::collections::BTreeMap;

use cutover_spec::stack::DeploymentConfig;
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// A stored configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentConfigRow {
    /// Its name.
    pub name: String,
    /// CodeDeploy's `deploymentConfigId` (a uuid).
    pub id: String,
    /// The traffic routing.
    pub config: DeploymentConfig,
    /// Creation time, ms.
    pub created_at: u64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn finish(raw: (String, String, String, i64)) -> Result<DeploymentConfigRow, StoreError> {
    let (name, id, body, created_at) = raw;
    Ok(DeploymentConfigRow {
        config: serde_json::from_str(&body).map_err(StoreError::json("deployment config"))?,
        name,
        id,
        created_at: created_at as u64,
    })
}

/// Stores a new configuration; `false` if the name is taken.
pub fn insert(c: &Connection, r: &DeploymentConfigRow) -> Result<bool, StoreError> {
    let body = serde_json::to_string(&r.config).map_err(StoreError::json("deployment config"))?;
    let n = c
        .execute(
            "INSERT OR IGNORE INTO deployment_configs (name, id, body, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![r.name, r.id, body, r.created_at as i64],
        )
        .map_err(StoreError::sql("store a deployment config"))?;
    Ok(n == 1)
}

/// The configuration `name`, if stored.
pub fn get(c: &Connection, name: &str) -> Result<Option<DeploymentConfigRow>, StoreError> {
    c.query_row(
        "SELECT name, id, body, created_at FROM deployment_configs WHERE name = ?1",
        [name],
        row,
    )
    .optional()
    .map_err(StoreError::sql("read a deployment config"))?
    .map(finish)
    .transpose()
}

/// Every stored configuration, by name.
pub fn all(c: &Connection) -> Result<BTreeMap<String, DeploymentConfigRow>, StoreError> {
    let mut stmt = c
        .prepare_cached("SELECT name, id, body, created_at FROM deployment_configs ORDER BY name")
        .map_err(StoreError::sql("list deployment configs"))?;
    let raw = stmt
        .query_map([], row)
        .map_err(StoreError::sql("list deployment configs"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list deployment configs"))?;
    raw.into_iter()
        .map(|r| finish(r).map(|r| (r.name.clone(), r)))
        .collect()
}

/// Deletes `name`; whether it existed.
pub fn delete(c: &Connection, name: &str) -> Result<bool, StoreError> {
    c.execute("DELETE FROM deployment_configs WHERE name = ?1", [name])
        .map(|n| n == 1)
        .map_err(StoreError::sql("delete a deployment config"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn configs_round_trip_typed_and_names_are_unique() {
        let store = Store::open_in_memory().unwrap();
        let config: DeploymentConfig = serde_json::from_str(
            r#"{"trafficRouting": {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 1}}}"#,
        )
        .unwrap();
        let r = DeploymentConfigRow {
            name: "Linear25".into(),
            id: "id-1".into(),
            config,
            created_at: 5,
        };
        store
            .with(|c| {
                assert!(insert(c, &r)?);
                assert!(!insert(c, &r)?);
                assert_eq!(get(c, "Linear25")?.as_ref(), Some(&r));
                assert_eq!(all(c)?.len(), 1);
                assert!(delete(c, "Linear25")?);
                assert!(!delete(c, "Linear25")?);
                assert_eq!(get(c, "Linear25")?, None);
                Ok(())
            })
            .unwrap();
    }
}
