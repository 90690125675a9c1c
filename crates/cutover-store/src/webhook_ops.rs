//! Webhook deliveries already acted on, so that a replayed delivery (the
//! same `X-GitHub-Delivery`, `X-Gitlab-Event-UUID`, `X-Gitea-Delivery` id)
//! starts nothing. Ids are kept for [`DELIVERY_RETENTION_MS`]; older ones
//! are pruned whenever a delivery is recorded, which bounds the table.

use rusqlite::{Connection, params};

use crate::StoreError;

/// How long a delivery id is remembered: 7 days (GitHub lets a delivery be
/// redelivered for 3 days).
pub const DELIVERY_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;

/// Records delivery `id` for `repository` at `now`; returns `false` if it
/// was already recorded (a replay). Prunes ids past the retention.
pub fn record_delivery(
    c: &Connection,
    repository: &str,
    id: &str,
    now: u64,
) -> Result<bool, StoreError> {
    c.execute(
        "DELETE FROM webhook_deliveries WHERE received_at < ?1",
        params![now.saturating_sub(DELIVERY_RETENTION_MS) as i64],
    )
    .map_err(StoreError::sql("prune webhook deliveries"))?;
    let added = c
        .execute(
            "INSERT OR IGNORE INTO webhook_deliveries (repository, delivery, received_at) VALUES (?1, ?2, ?3)",
            params![repository, id, now as i64],
        )
        .map_err(StoreError::sql("record webhook delivery"))?;
    Ok(added == 1)
}

/// Forgets delivery `id` (it could not be acted on; a redelivery may try
/// again).
pub fn forget_delivery(c: &Connection, repository: &str, id: &str) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM webhook_deliveries WHERE repository = ?1 AND delivery = ?2",
        params![repository, id],
    )
    .map_err(StoreError::sql("forget webhook delivery"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn a_delivery_counts_once_per_repository_until_it_expires() {
        let s = Store::open_in_memory().unwrap();
        let rec =
            |repo: &str, id: &str, now: u64| s.with(|c| record_delivery(c, repo, id, now)).unwrap();
        assert!(rec("app", "d1", 1000));
        assert!(!rec("app", "d1", 2000));
        assert!(rec("other", "d1", 2000));
        s.with(|c| forget_delivery(c, "app", "d1")).unwrap();
        assert!(rec("app", "d1", 3000));
        // Past the retention, the id is pruned and counts again.
        assert!(rec("app", "d1", 3000 + DELIVERY_RETENTION_MS + 1));
    }
}
