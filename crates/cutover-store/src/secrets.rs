//! The one secret store: Secrets Manager secrets and SSM Parameter Store
//! parameters, answered over AWS's protocols (`aws secretsmanager`,
//! `aws ssm`) and read by builds (`env.secrets-manager`,
//! `env.parameter-store`, see [`build_ref`]).
//!
//! One table, `secrets`, with a `kind` column (`secret` or `parameter`),
//! because both are the same thing to the store: a named value with a
//! description, a version and dates, written and read under one rule (only
//! the server's user can read the database file; values are
//! [`SecretString`]s, never printed by `Debug` nor logged). Each kind uses
//! its own few columns, and the typed rows ([`SecretRow`],
//! [`ParameterRow`]) hide the rest. A name is unique per kind, as on AWS
//! (a secret and a parameter may share one).
//!
//! What is kept of a secret's versions: the one labelled `AWSCURRENT` and
//! the one labelled `AWSPREVIOUS`. AWS also keeps older, unlabelled
//! versions for a while (reachable only by their `VersionId`); Cutover drops
//! a version when it loses its `AWSPREVIOUS` label. A parameter keeps only
//! its current value and version number (no `GetParameterHistory`).
//!
//! A secret scheduled for deletion stays, refused to readers, until its
//! `purge_at`; [`purge_deleted`] removes those whose time has come.

pub mod build_ref;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::StoreError;

pub use cutover_aws::shapes::ssm::ParameterType;

/// The label of a secret's current version.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The label of a secret's version before the current one.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// A secret's value: text (`SecretString`) or bytes (`SecretBinary`).
#[derive(Debug, Clone)]
pub enum SecretValue {
    /// `SecretString`.
    Text(SecretString),
    /// `SecretBinary`.
    Binary(SecretSlice<u8>),
}

impl SecretValue {
    /// Whether two values are the same (an idempotent retry).
    pub fn same_as(&self, other: &SecretValue) -> bool {
        match (self, other) {
            (SecretValue::Text(a), SecretValue::Text(b)) => a.expose_secret() == b.expose_secret(),
            (SecretValue::Binary(a), SecretValue::Binary(b)) => {
                a.expose_secret() == b.expose_secret()
            }
            _ => false,
        }
    }

    fn to_sql(&self) -> rusqlite::types::Value {
        match self {
            SecretValue::Text(t) => rusqlite::types::Value::Text(t.expose_secret().to_string()),
            SecretValue::Binary(b) => rusqlite::types::Value::Blob(b.expose_secret().to_vec()),
        }
    }

    fn from_sql(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<SecretValue>> {
        Ok(match r.get_ref(i)? {
            ValueRef::Null => None,
            ValueRef::Text(t) => Some(SecretValue::Text(SecretString::from(
                String::from_utf8_lossy(t).into_owned(),
            ))),
            ValueRef::Blob(b) => Some(SecretValue::Binary(SecretSlice::from(b.to_vec()))),
            _ => {
                return Err(rusqlite::Error::InvalidColumnType(
                    i,
                    "value".into(),
                    rusqlite::types::Type::Integer,
                ));
            }
        })
    }
}

/// One version of a secret.
#[derive(Debug, Clone)]
pub struct SecretVersion {
    /// Its `VersionId` (a UUID, or the client's `ClientRequestToken`).
    pub id: String,
    /// The value.
    pub value: SecretValue,
    /// When it was created (ms since the epoch).
    pub created_at: u64,
}

/// A Secrets Manager secret.
#[derive(Debug, Clone)]
pub struct SecretRow {
    /// Its name (`prod/db`).
    pub name: String,
    /// The six random characters AWS appends to the name in the ARN
    /// (`arn:...:secret:prod/db-a1B2c3`), without the hyphen.
    pub arn_suffix: String,
    /// `Description`.
    pub description: Option<String>,
    /// The `AWSCURRENT` version; `None` for a secret created without a value.
    pub current: Option<SecretVersion>,
    /// The `AWSPREVIOUS` version.
    pub previous: Option<SecretVersion>,
    /// `CreatedDate` (ms).
    pub created_at: u64,
    /// `LastChangedDate` (ms).
    pub changed_at: u64,
    /// `DeletedDate`: when `DeleteSecret` scheduled its deletion (ms).
    pub deleted_at: Option<u64>,
    /// `DeletionDate`: when a scheduled deletion happens (ms).
    pub purge_at: Option<u64>,
}

/// Why no version of a secret matched a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoVersion {
    /// No version has this `VersionId`.
    Id(String),
    /// No version carries this staging label.
    Stage(String),
}

impl SecretRow {
    /// The resource part of the secret's ARN: `secret:NAME-SUFFIX`.
    pub fn arn_resource(&self) -> String {
        format!("secret:{}-{}", self.name, self.arn_suffix)
    }

    /// Whether a deletion is scheduled (readers are refused).
    pub fn scheduled_for_deletion(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The version a `GetSecretValue` names: by id, by label (default
    /// `AWSCURRENT`), or both, which must then be the same version.
    pub fn version(
        &self,
        id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<(&SecretVersion, &'static str), NoVersion> {
        let labelled = [
            (self.current.as_ref(), AWSCURRENT),
            (self.previous.as_ref(), AWSPREVIOUS),
        ];
        let by_stage = |stage: &str| {
            labelled
                .iter()
                .find_map(|(v, label)| v.filter(|_| *label == stage).map(|v| (v, *label)))
                .ok_or_else(|| NoVersion::Stage(stage.to_string()))
        };
        match id {
            Some(id) => {
                let found = labelled
                    .iter()
                    .find_map(|(v, label)| v.filter(|v| v.id == id).map(|v| (v, *label)))
                    .ok_or_else(|| NoVersion::Id(id.to_string()))?;
                match stage {
                    Some(stage) if stage != found.1 => Err(NoVersion::Stage(stage.to_string())),
                    _ => Ok(found),
                }
            }
            None => by_stage(stage.unwrap_or(AWSCURRENT)),
        }
    }

    /// The version with `id`, whichever its label.
    pub fn version_by_id(&self, id: &str) -> Option<&SecretVersion> {
        [self.current.as_ref(), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|v| v.id == id)
    }

    /// Makes `version` `AWSCURRENT`; the current one becomes `AWSPREVIOUS`
    /// and the previous one is dropped (see the module header).
    pub fn push_version(&mut self, version: SecretVersion) {
        self.changed_at = version.created_at;
        self.previous = self.current.replace(version);
    }

    /// Each kept version's id and its labels (`SecretVersionsToStages`).
    pub fn versions_to_stages(&self) -> Vec<(String, &'static str)> {
        [
            (self.current.as_ref(), AWSCURRENT),
            (self.previous.as_ref(), AWSPREVIOUS),
        ]
        .into_iter()
        .filter_map(|(v, label)| v.map(|v| (v.id.clone(), label)))
        .collect()
    }
}

/// An SSM parameter.
#[derive(Debug, Clone)]
pub struct ParameterRow {
    /// Its name: `name` or a hierarchy, `/a/b/c`.
    pub name: String,
    /// `String`, `StringList` or `SecureString`.
    pub type_: ParameterType,
    /// The value (of any type: a plain `String` is no less guarded).
    pub value: SecretString,
    /// The version, 1 at creation, +1 at each overwrite.
    pub version: i64,
    /// `LastModifiedDate` (ms).
    pub last_modified: u64,
    /// `Description`.
    pub description: Option<String>,
}

const SECRET: &str = "secret";
const PARAMETER: &str = "parameter";

const SECRET_COLUMNS: &str = "name, arn_suffix, description, value, version_id, version_at, \
     previous_value, previous_version_id, previous_at, created_at, changed_at, deleted_at, purge_at";

fn millis(v: Option<i64>) -> Option<u64> {
    v.map(|t| t as u64)
}

fn version_at(
    r: &Row<'_>,
    value: usize,
    id: usize,
    at: usize,
) -> rusqlite::Result<Option<SecretVersion>> {
    let Some(value) = SecretValue::from_sql(r, value)? else {
        return Ok(None);
    };
    Ok(Some(SecretVersion {
        id: r.get::<_, Option<String>>(id)?.unwrap_or_default(),
        value,
        created_at: r.get::<_, Option<i64>>(at)?.unwrap_or_default() as u64,
    }))
}

fn secret_from_row(r: &Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        name: r.get(0)?,
        arn_suffix: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        description: r.get(2)?,
        current: version_at(r, 3, 4, 5)?,
        previous: version_at(r, 6, 7, 8)?,
        created_at: r.get::<_, i64>(9)? as u64,
        changed_at: r.get::<_, i64>(10)? as u64,
        deleted_at: millis(r.get(11)?),
        purge_at: millis(r.get(12)?),
    })
}

/// Stores `s`, replacing the secret of the same name if there is one.
pub fn put_secret(c: &Connection, s: &SecretRow) -> Result<(), StoreError> {
    let part = |v: &Option<SecretVersion>| {
        (
            v.as_ref()
                .map_or(rusqlite::types::Value::Null, |v| v.value.to_sql()),
            v.as_ref().map(|v| v.id.clone()),
            v.as_ref().map(|v| v.created_at as i64),
        )
    };
    let (value, version_id, version_at) = part(&s.current);
    let (prev, prev_id, prev_at) = part(&s.previous);
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO secrets (kind, {SECRET_COLUMNS})
             VALUES ('{SECRET}', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ),
        params![
            s.name,
            s.arn_suffix,
            s.description,
            value,
            version_id,
            version_at,
            prev,
            prev_id,
            prev_at,
            s.created_at as i64,
            s.changed_at as i64,
            s.deleted_at.map(|t| t as i64),
            s.purge_at.map(|t| t as i64),
        ],
    )
    .map_err(StoreError::sql("write secret"))?;
    Ok(())
}

/// The secret named exactly `name`.
pub fn secret(c: &Connection, name: &str) -> Result<Option<SecretRow>, StoreError> {
    c.query_row(
        &format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE kind = '{SECRET}' AND name = ?1"),
        [name],
        secret_from_row,
    )
    .optional()
    .map_err(StoreError::sql("read secret"))
}

/// The secret a `SecretId` names: its name, its ARN, or its ARN without
/// the random suffix (a partial ARN), as AWS accepts.
pub fn find_secret(c: &Connection, secret_id: &str) -> Result<Option<SecretRow>, StoreError> {
    let Some(resource) = secret_id.strip_prefix("arn:") else {
        return secret(c, secret_id);
    };
    // arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME[-SUFFIX]
    let Some(name) = resource
        .splitn(5, ':')
        .nth(4)
        .and_then(|r| r.strip_prefix("secret:"))
    else {
        return Ok(None);
    };
    if let Some((base, suffix)) = name.rsplit_once('-')
        && let Some(s) = secret(c, base)?
        && s.arn_suffix == suffix
    {
        return Ok(Some(s));
    }
    secret(c, name)
}

/// Every secret, oldest first.
pub fn list_secrets(c: &Connection) -> Result<Vec<SecretRow>, StoreError> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE kind = '{SECRET}' ORDER BY created_at, name"
        ))
        .map_err(StoreError::sql("list secrets"))?;
    stmt.query_map([], secret_from_row)
        .map_err(StoreError::sql("list secrets"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list secrets"))
}

/// Deletes the secret `name`; returns whether it existed.
pub fn delete_secret(c: &Connection, name: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            &format!("DELETE FROM secrets WHERE kind = '{SECRET}' AND name = ?1"),
            [name],
        )
        .map_err(StoreError::sql("delete secret"))?;
    Ok(n == 1)
}

/// Deletes the secrets whose scheduled deletion is due at `now`; returns
/// their names.
pub fn purge_deleted(c: &Connection, now: u64) -> Result<Vec<String>, StoreError> {
    let mut stmt = c
        .prepare_cached(&format!(
            "DELETE FROM secrets WHERE kind = '{SECRET}' AND purge_at IS NOT NULL AND purge_at <= ?1
             RETURNING name"
        ))
        .map_err(StoreError::sql("purge deleted secrets"))?;
    stmt.query_map([now as i64], |r| r.get(0))
        .map_err(StoreError::sql("purge deleted secrets"))?
        .collect::<Result<Vec<String>, _>>()
        .map_err(StoreError::sql("purge deleted secrets"))
}

const PARAMETER_COLUMNS: &str =
    "name, parameter_type, value, parameter_version, changed_at, description";

/// The parameter type AWS spells `text`, if it is one.
pub fn parse_parameter_type(text: &str) -> Option<ParameterType> {
    [
        ParameterType::String,
        ParameterType::StringList,
        ParameterType::SecureString,
    ]
    .into_iter()
    .find(|t| t.as_str() == text)
}

fn parameter_type(r: &Row<'_>, i: usize) -> rusqlite::Result<ParameterType> {
    let text: String = r.get(i)?;
    parse_parameter_type(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown parameter type {text:?}").into(),
        )
    })
}

fn parameter_from_row(r: &Row<'_>) -> rusqlite::Result<ParameterRow> {
    Ok(ParameterRow {
        name: r.get(0)?,
        type_: parameter_type(r, 1)?,
        value: SecretString::from(r.get::<_, String>(2)?),
        version: r.get(3)?,
        last_modified: r.get::<_, i64>(4)? as u64,
        description: r.get(5)?,
    })
}

/// The other spelling of a top-level parameter name: `name` and `/name`
/// are the same parameter (a hierarchy always starts with `/`).
fn other_spelling(name: &str) -> Option<String> {
    match name.strip_prefix('/') {
        Some(rest) if !rest.is_empty() && !rest.contains('/') => Some(rest.to_string()),
        None if !name.contains('/') => Some(format!("/{name}")),
        _ => None,
    }
}

/// The parameter `name` (either spelling of a top-level name).
pub fn parameter(c: &Connection, name: &str) -> Result<Option<ParameterRow>, StoreError> {
    let other = other_spelling(name).unwrap_or_else(|| name.to_string());
    c.query_row(
        &format!(
            "SELECT {PARAMETER_COLUMNS} FROM secrets
             WHERE kind = '{PARAMETER}' AND name IN (?1, ?2) ORDER BY name = ?1 DESC LIMIT 1"
        ),
        [name, &other],
        parameter_from_row,
    )
    .optional()
    .map_err(StoreError::sql("read parameter"))
}

/// Stores `p`, replacing the parameter of the same name.
pub fn put_parameter(c: &Connection, p: &ParameterRow) -> Result<(), StoreError> {
    c.execute(
        &format!(
            "INSERT INTO secrets (kind, {PARAMETER_COLUMNS}, created_at)
             VALUES ('{PARAMETER}', ?1, ?2, ?3, ?4, ?5, ?6, ?5)
             ON CONFLICT (kind, name) DO UPDATE SET parameter_type = ?2, value = ?3,
                 parameter_version = ?4, changed_at = ?5, description = ?6"
        ),
        params![
            p.name,
            p.type_.as_str(),
            p.value.expose_secret(),
            p.version,
            p.last_modified as i64,
            p.description,
        ],
    )
    .map_err(StoreError::sql("write parameter"))?;
    Ok(())
}

/// Deletes the parameter `name` (as [`parameter`] finds it); returns
/// whether it existed.
pub fn delete_parameter(c: &Connection, name: &str) -> Result<bool, StoreError> {
    let Some(p) = parameter(c, name)? else {
        return Ok(false);
    };
    c.execute(
        &format!("DELETE FROM secrets WHERE kind = '{PARAMETER}' AND name = ?1"),
        [&p.name],
    )
    .map_err(StoreError::sql("delete parameter"))?;
    Ok(true)
}

/// The parameters under `path` (which starts with `/`), by name: its
/// direct children, or with `recursive` every level below it. The path
/// `/` also holds the top-level names written without a `/`.
pub fn parameters_under(
    c: &Connection,
    path: &str,
    recursive: bool,
) -> Result<Vec<ParameterRow>, StoreError> {
    let prefix = format!("{}/", path.trim_end_matches('/'));
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {PARAMETER_COLUMNS} FROM secrets WHERE kind = '{PARAMETER}' ORDER BY name"
        ))
        .map_err(StoreError::sql("list parameters"))?;
    let all = stmt
        .query_map([], parameter_from_row)
        .map_err(StoreError::sql("list parameters"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list parameters"))?;
    Ok(all
        .into_iter()
        .filter(|p| {
            let name = if p.name.starts_with('/') {
                p.name.clone()
            } else {
                format!("/{}", p.name)
            };
            name.strip_prefix(&prefix)
                .is_some_and(|rest| !rest.is_empty() && (recursive || !rest.contains('/')))
        })
        .collect())
}

#[cfg(test)]
mod tests;
