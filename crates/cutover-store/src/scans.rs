//! Image scans (migration 10): one row per manifest digest, since findings
//! depend only on an image's content and the advisory data, holding the
//! status, the findings of the last completed scan (typed JSON of
//! `cutover_scan::Finding`) and the advisory database version they were
//! matched against; and the advisory database's metadata (the database
//! itself is a file, `<data>/advisories.db`).
//!
//! A rescan replaces a row's findings in one statement, so a reader sees
//! the old findings or the new ones, never a mix.

use cutover_api::registry::ScanStatus;
use cutover_scan::Finding;
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// One image's scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRow {
    /// The manifest digest.
    pub digest: String,
    /// Where it is.
    pub status: ScanStatus,
    /// Why it failed, or a summary.
    pub description: String,
    /// The advisory database version of the findings (`None` before the
    /// first completed scan).
    pub db_version: Option<String>,
    /// When the last completed scan ended (ms).
    pub completed_at_ms: Option<u64>,
    /// When the advisory data of the findings was updated (ms).
    pub advisories_updated_at_ms: Option<u64>,
    /// The OSV ecosystems of the image's packages (`Debian`, `npm`).
    pub ecosystems: Vec<String>,
    /// The findings of the last completed scan.
    pub findings: Vec<Finding>,
}

/// The advisory database's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryMeta {
    /// Its content version.
    pub version: String,
    /// How many advisories it holds.
    pub advisories: u64,
    /// When it last changed (ms).
    pub updated_at_ms: u64,
}

const COLUMNS: &str = "digest, status, description, db_version, completed_at, advisories_updated_at, ecosystems, findings";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ScanRow, String, String, String)> {
    Ok((
        ScanRow {
            digest: r.get(0)?,
            status: ScanStatus::InProgress,
            description: r.get(2)?,
            db_version: r.get(3)?,
            completed_at_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
            advisories_updated_at_ms: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
            ecosystems: Vec::new(),
            findings: Vec::new(),
        },
        r.get(1)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn typed(raw: (ScanRow, String, String, String)) -> Result<ScanRow, StoreError> {
    let (mut s, status, ecosystems, findings) = raw;
    s.status = ScanStatus::parse(&status).ok_or_else(|| {
        StoreError::Conflict(format!(
            "scan of {}: unknown stored status {status:?}",
            s.digest
        ))
    })?;
    s.ecosystems =
        serde_json::from_str(&ecosystems).map_err(StoreError::json("scan ecosystems"))?;
    s.findings = serde_json::from_str(&findings).map_err(StoreError::json("scan findings"))?;
    Ok(s)
}

/// The scan of `digest`, if it was ever scanned.
pub fn get_scan(c: &Connection, digest: &str) -> Result<Option<ScanRow>, StoreError> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM registry_scans WHERE digest = ?1"),
        [digest],
        row,
    )
    .optional()
    .map_err(StoreError::sql("read scan"))?
    .map(typed)
    .transpose()
}

/// Writes a whole row (a finished scan replaces the findings atomically).
pub fn put_scan(c: &Connection, s: &ScanRow) -> Result<(), StoreError> {
    let ecosystems =
        serde_json::to_string(&s.ecosystems).map_err(StoreError::json("scan ecosystems"))?;
    let findings = serde_json::to_string(&s.findings).map_err(StoreError::json("scan findings"))?;
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO registry_scans ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ),
        params![
            s.digest,
            s.status.as_str(),
            s.description,
            s.db_version,
            s.completed_at_ms.map(|v| v as i64),
            s.advisories_updated_at_ms.map(|v| v as i64),
            ecosystems,
            findings,
        ],
    )
    .map_err(StoreError::sql("write scan"))?;
    Ok(())
}

/// Marks `digest` as being scanned, keeping the findings of its last
/// completed scan (a new image gets an empty row).
pub fn mark_in_progress(c: &Connection, digest: &str) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO registry_scans (digest, status, description, ecosystems, findings)
         VALUES (?1, ?2, 'The scan is in progress.', '[]', '[]')
         ON CONFLICT (digest) DO UPDATE SET status = excluded.status, description = excluded.description",
        params![digest, ScanStatus::InProgress.as_str()],
    )
    .map_err(StoreError::sql("mark scan in progress"))?;
    Ok(())
}

/// Forgets the scan of `digest` (no repository holds it any more).
pub fn delete_scan(c: &Connection, digest: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM registry_scans WHERE digest = ?1", [digest])
        .map_err(StoreError::sql("delete scan"))?;
    Ok(())
}

/// Scans to run again: those in progress (a restart interrupted them) and
/// completed ones matched against another advisory database version. Each
/// with a repository holding the digest, if any still does.
pub fn stale_scans(
    c: &Connection,
    db_version: &str,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT s.digest, (SELECT MIN(m.repository) FROM registry_manifests m WHERE m.digest = s.digest)
             FROM registry_scans s
             WHERE s.status = ?1 OR (s.status = ?2 AND (s.db_version IS NULL OR s.db_version != ?3))
             ORDER BY s.digest",
        )
        .map_err(StoreError::sql("list stale scans"))?;
    stmt.query_map(
        params![
            ScanStatus::InProgress.as_str(),
            ScanStatus::Complete.as_str(),
            db_version
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(StoreError::sql("list stale scans"))?
    .collect::<Result<Vec<_>, _>>()
    .map_err(StoreError::sql("list stale scans"))
}

/// The ecosystems of every scanned image, sorted, without duplicates.
pub fn image_ecosystems(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = c
        .prepare("SELECT DISTINCT value FROM registry_scans, json_each(registry_scans.ecosystems) ORDER BY value")
        .map_err(StoreError::sql("list ecosystems"))?;
    stmt.query_map([], |r| r.get(0))
        .map_err(StoreError::sql("list ecosystems"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list ecosystems"))
}

/// The advisory database's metadata, if one was ever imported.
pub fn advisory_meta(c: &Connection) -> Result<Option<AdvisoryMeta>, StoreError> {
    c.query_row(
        "SELECT version, advisories, updated_at FROM advisory_db WHERE id = 1",
        [],
        |r| {
            Ok(AdvisoryMeta {
                version: r.get(0)?,
                advisories: r.get::<_, i64>(1)? as u64,
                updated_at_ms: r.get::<_, i64>(2)? as u64,
            })
        },
    )
    .optional()
    .map_err(StoreError::sql("read advisory metadata"))
}

/// Records the advisory database's metadata after an import.
pub fn set_advisory_meta(c: &Connection, m: &AdvisoryMeta) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO advisory_db (id, version, advisories, updated_at) VALUES (1, ?1, ?2, ?3)",
        params![m.version, m.advisories as i64, m.updated_at_ms as i64],
    )
    .map_err(StoreError::sql("write advisory metadata"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_scan::Severity;

    fn finding() -> Finding {
        Finding {
            name: "CVE-2024-0001".into(),
            advisory_id: "DSA-1".into(),
            aliases: vec!["CVE-2024-0001".into()],
            package_name: "openssl".into(),
            package_version: "3.0.1-1".into(),
            ecosystem: "Debian:12".into(),
            fixed_version: Some("3.0.2-1".into()),
            severity: Severity::High,
            cvss: None,
            summary: "bad".into(),
            uri: "https://example.invalid".into(),
            path: "var/lib/dpkg/status".into(),
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)]
    fn rows_round_trip_and_stale_scans_follow_the_db_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("s.db")).unwrap();
        store
            .with(|c| {
                mark_in_progress(c, "sha256:a")?;
                assert_eq!(
                    get_scan(c, "sha256:a")?.unwrap().status,
                    ScanStatus::InProgress
                );
                let done = ScanRow {
                    digest: "sha256:a".into(),
                    status: ScanStatus::Complete,
                    description: "1 finding".into(),
                    db_version: Some("v1".into()),
                    completed_at_ms: Some(5),
                    advisories_updated_at_ms: Some(4),
                    ecosystems: vec!["Debian".into()],
                    findings: vec![finding()],
                };
                put_scan(c, &done)?;
                assert_eq!(get_scan(c, "sha256:a")?.unwrap(), done);
                assert!(stale_scans(c, "v1")?.is_empty());
                assert_eq!(stale_scans(c, "v2")?, vec![("sha256:a".to_string(), None)]);
                // In progress again: the last findings stay readable.
                mark_in_progress(c, "sha256:a")?;
                assert_eq!(get_scan(c, "sha256:a")?.unwrap().findings, vec![finding()]);
                assert_eq!(image_ecosystems(c)?, vec!["Debian".to_string()]);
                delete_scan(c, "sha256:a")?;
                assert!(get_scan(c, "sha256:a")?.is_none());
                assert!(advisory_meta(c)?.is_none());
                let m = AdvisoryMeta {
                    version: "v1".into(),
                    advisories: 3,
                    updated_at_ms: 9,
                };
                set_advisory_meta(c, &m)?;
                assert_eq!(advisory_meta(c)?, Some(m));
                Ok(())
            })
            .unwrap();
    }
}
