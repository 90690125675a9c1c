//! The image digest each service's task definition revision runs
//! (migration 10). A pin is written once, when a deployment of the revision
//! (or, for a revision that reached the service without one, its first task)
//! resolves the image's tag, and never changed: restarts, scale-ups,
//! rollbacks and resumes after a crash all run the recorded digest.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::StoreError;

/// One pinned image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePinRow {
    /// The service.
    pub service: String,
    /// `family:revision`.
    pub task_definition: String,
    /// The container whose image this is (the essential one).
    pub container: String,
    /// The image as the task definition writes it (`repo:tag`).
    pub image: String,
    /// What tasks run: `repo@sha256:...`.
    pub reference: String,
    /// `sha256:...`.
    pub digest: String,
    /// The deployment that resolved it; `None` when the first task did.
    pub deployment: Option<String>,
    /// When it was resolved (Unix ms).
    pub resolved_at: u64,
}

const COLUMNS: &str =
    "service, task_definition, container, image, reference, digest, deployment, resolved_at";

fn read(r: &Row<'_>) -> rusqlite::Result<ImagePinRow> {
    Ok(ImagePinRow {
        service: r.get(0)?,
        task_definition: r.get(1)?,
        container: r.get(2)?,
        image: r.get(3)?,
        reference: r.get(4)?,
        digest: r.get(5)?,
        deployment: r.get(6)?,
        resolved_at: r.get::<_, i64>(7)? as u64,
    })
}

/// Records `pin` unless the revision already has one; returns the pin the
/// store holds afterwards (the earlier one, if any: pins never change).
pub fn record(c: &Connection, pin: &ImagePinRow) -> Result<ImagePinRow, StoreError> {
    c.execute(
        &format!(
            "INSERT OR IGNORE INTO image_pins ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ),
        params![
            pin.service,
            pin.task_definition,
            pin.container,
            pin.image,
            pin.reference,
            pin.digest,
            pin.deployment,
            pin.resolved_at as i64
        ],
    )
    .map_err(StoreError::sql("record an image pin"))?;
    Ok(get(c, &pin.service, &pin.task_definition)?.unwrap_or_else(|| pin.clone()))
}

/// The pin of `service`'s `task_definition`, if recorded.
pub fn get(
    c: &Connection,
    service: &str,
    task_definition: &str,
) -> Result<Option<ImagePinRow>, StoreError> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM image_pins WHERE service = ?1 AND task_definition = ?2"),
        params![service, task_definition],
        read,
    )
    .optional()
    .map_err(StoreError::sql("read an image pin"))
}

/// Every pin of `service`, or of all services.
pub fn list(c: &Connection, service: Option<&str>) -> Result<Vec<ImagePinRow>, StoreError> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM image_pins WHERE ?1 IS NULL OR service = ?1
             ORDER BY service, resolved_at"
        ))
        .map_err(StoreError::sql("list image pins"))?;
    let rows = stmt
        .query_map(params![service], read)
        .map_err(StoreError::sql("list image pins"))?
        .collect::<Result<_, _>>()
        .map_err(StoreError::sql("list image pins"))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn pin(digest: &str, at: u64) -> ImagePinRow {
        ImagePinRow {
            service: "web".into(),
            task_definition: "web:1".into(),
            container: "web".into(),
            image: "127.0.0.1:5000/web:v1".into(),
            reference: format!("127.0.0.1:5000/web@{digest}"),
            digest: digest.into(),
            deployment: Some("d-1".into()),
            resolved_at: at,
        }
    }

    #[test]
    fn a_pin_is_written_once_and_read_back() {
        let store = Store::open_in_memory().unwrap();
        store
            .with(|c| {
                assert_eq!(get(c, "web", "web:1")?, None);
                assert_eq!(record(c, &pin("sha256:a", 1))?, pin("sha256:a", 1));
                assert_eq!(
                    record(c, &pin("sha256:b", 2))?,
                    pin("sha256:a", 1),
                    "a later resolution never replaces the recorded digest"
                );
                assert_eq!(get(c, "web", "web:1")?, Some(pin("sha256:a", 1)));
                assert_eq!(list(c, Some("web"))?.len(), 1);
                assert_eq!(list(c, None)?.len(), 1);
                assert!(list(c, Some("api"))?.is_empty());
                Ok(())
            })
            .unwrap();
    }
}
