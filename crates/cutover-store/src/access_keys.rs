//! Access keys for AWS's protocols (SigV4), and the installation's settings
//! (its AWS account id).
//!
//! A key is an id and a secret. The secret is kept in the clear because
//! SigV4 verification recomputes an HMAC with it (AWS keeps it so too); it
//! lives in the database file, which only the server's user can read, and
//! is a [`SecretString`], so it never appears in a `Debug` print or a log.
//! A key with an `owner` (a build, a hook command) is short-lived: it has
//! an expiry and is deleted with [`delete_owned`] when its owner ends.

use rusqlite::{Connection, OptionalExtension, params};
use secrecy::SecretString;

use crate::StoreError;

pub use cutover_aws::keys::AccessKeyStatus;

/// A stored access key.
#[derive(Debug, Clone)]
pub struct AccessKeyRow {
    /// The access key id (`AKIA...`, or `ASIA...` for a short-lived key).
    pub id: String,
    /// The secret access key.
    pub secret: SecretString,
    /// Who the key is for (IAM's `UserName`).
    pub name: String,
    /// Whether it may sign.
    pub status: AccessKeyStatus,
    /// Creation time (ms since the epoch).
    pub created_at: u64,
    /// Past this time (ms) the key is refused; `None`: never expires.
    pub expires_at: Option<u64>,
    /// What the key was made for (`build:ID`, `hook:ID`); `None` for a key
    /// an operator created.
    pub owner: Option<String>,
}

impl AccessKeyRow {
    /// Whether the key may sign a request at `now`.
    pub fn usable_at(&self, now: u64) -> bool {
        self.status == AccessKeyStatus::Active && self.expires_at.is_none_or(|t| now < t)
    }
}

/// Stores a new key.
pub fn insert(c: &Connection, key: &AccessKeyRow) -> Result<(), StoreError> {
    use secrecy::ExposeSecret;
    c.execute(
        "INSERT INTO access_keys (id, secret, name, status, created_at, expires_at, owner)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            key.id,
            key.secret.expose_secret(),
            key.name,
            key.status.as_str(),
            key.created_at as i64,
            key.expires_at.map(|t| t as i64),
            key.owner,
        ],
    )
    .map_err(StoreError::sql("insert access key"))?;
    Ok(())
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccessKeyRow> {
    let status: String = r.get(3)?;
    Ok(AccessKeyRow {
        id: r.get(0)?,
        secret: SecretString::from(r.get::<_, String>(1)?),
        name: r.get(2)?,
        status: status.parse().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?,
        created_at: r.get::<_, i64>(4)? as u64,
        expires_at: r.get::<_, Option<i64>>(5)?.map(|t| t as u64),
        owner: r.get(6)?,
    })
}

const COLUMNS: &str = "id, secret, name, status, created_at, expires_at, owner";

/// Every key, oldest first.
pub fn list(c: &Connection) -> Result<Vec<AccessKeyRow>, StoreError> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM access_keys ORDER BY created_at, id"
        ))
        .map_err(StoreError::sql("list access keys"))?;
    let rows = stmt
        .query_map([], from_row)
        .map_err(StoreError::sql("list access keys"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list access keys"))?;
    Ok(rows)
}

/// The key `id`, if stored.
pub fn get(c: &Connection, id: &str) -> Result<Option<AccessKeyRow>, StoreError> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM access_keys WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
    .map_err(StoreError::sql("read access key"))
}

/// Deletes key `id`; returns whether it existed.
pub fn delete(c: &Connection, id: &str) -> Result<bool, StoreError> {
    let n = c
        .execute("DELETE FROM access_keys WHERE id = ?1", [id])
        .map_err(StoreError::sql("delete access key"))?;
    Ok(n == 1)
}

/// Deletes every key made for `owner`; returns their ids.
pub fn delete_owned(c: &Connection, owner: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = c
        .prepare_cached("DELETE FROM access_keys WHERE owner = ?1 RETURNING id")
        .map_err(StoreError::sql("delete owned access keys"))?;
    stmt.query_map([owner], |r| r.get(0))
        .map_err(StoreError::sql("delete owned access keys"))?
        .collect::<Result<Vec<String>, _>>()
        .map_err(StoreError::sql("delete owned access keys"))
}

/// Deletes every key that expired before `now`; returns their ids.
pub fn delete_expired(c: &Connection, now: u64) -> Result<Vec<String>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "DELETE FROM access_keys WHERE expires_at IS NOT NULL AND expires_at <= ?1 RETURNING id",
        )
        .map_err(StoreError::sql("delete expired access keys"))?;
    stmt.query_map([now as i64], |r| r.get(0))
        .map_err(StoreError::sql("delete expired access keys"))?
        .collect::<Result<Vec<String>, _>>()
        .map_err(StoreError::sql("delete expired access keys"))
}

/// The setting `key`, or `candidate` stored as its value if it has none
/// yet: the first caller's candidate wins, for good.
pub fn setting_or_insert(c: &Connection, key: &str, candidate: &str) -> Result<String, StoreError> {
    c.execute(
        "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
        params![key, candidate],
    )
    .map_err(StoreError::sql("write setting"))?;
    c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .map_err(StoreError::sql("read setting"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use secrecy::ExposeSecret;

    fn key(id: &str, owner: Option<&str>, expires_at: Option<u64>) -> AccessKeyRow {
        AccessKeyRow {
            id: id.into(),
            secret: SecretString::from(format!("secret-of-{id}")),
            name: "ci".into(),
            status: AccessKeyStatus::Active,
            created_at: 1000,
            expires_at,
            owner: owner.map(str::to_string),
        }
    }

    #[test]
    fn keys_round_trip_and_owned_ones_go_with_their_owner() {
        let s = Store::open_in_memory().unwrap();
        s.with(|c| {
            insert(c, &key("AKIA1", None, None))?;
            insert(c, &key("ASIA2", Some("build:b1"), Some(5000)))?;
            insert(c, &key("ASIA3", Some("build:b2"), Some(9000)))
        })
        .unwrap();
        let k = s.with(|c| get(c, "AKIA1")).unwrap().unwrap();
        assert_eq!(k.secret.expose_secret(), "secret-of-AKIA1");
        assert!(!format!("{k:?}").contains("secret-of"), "{k:?}");
        assert!(k.usable_at(u64::MAX));
        let temp = s.with(|c| get(c, "ASIA2")).unwrap().unwrap();
        assert!(temp.usable_at(4999) && !temp.usable_at(5000));

        assert_eq!(
            s.with(|c| delete_owned(c, "build:b1")).unwrap(),
            vec!["ASIA2".to_string()]
        );
        assert_eq!(
            s.with(|c| delete_expired(c, 9000)).unwrap(),
            vec!["ASIA3".to_string()]
        );
        let ids: Vec<_> = s.with(list).unwrap().into_iter().map(|k| k.id).collect();
        assert_eq!(ids, ["AKIA1"]);
        assert!(s.with(|c| delete(c, "AKIA1")).unwrap());
        assert!(!s.with(|c| delete(c, "AKIA1")).unwrap());
    }

    #[test]
    fn the_first_setting_written_stays() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(
            s.with(|c| setting_or_insert(c, "account", "111")).unwrap(),
            "111"
        );
        assert_eq!(
            s.with(|c| setting_or_insert(c, "account", "222")).unwrap(),
            "111"
        );
    }

    #[test]
    fn an_unknown_stored_status_is_an_error() {
        let s = Store::open_in_memory().unwrap();
        s.with(|c| insert(c, &key("AKIA1", None, None))).unwrap();
        s.with(|c| {
            c.execute("UPDATE access_keys SET status = 'Weird'", [])
                .map_err(StoreError::sql("test"))
        })
        .unwrap();
        assert!(s.with(|c| get(c, "AKIA1")).is_err());
    }
}
