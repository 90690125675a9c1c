//! Per-rule throttling: a token bucket per client key (API Gateway usage plans' `rate` and
//! `burst`), on the proxy's clock.
//!
//! Memory is bounded whatever the clients do: keys are hashed to a `u64` with a per-process
//! random seed (a long header value costs nothing to keep, and collisions cannot be aimed at),
//! the table holds at most [`MAX_KEYS`] buckets, a bucket that has refilled is the same as no
//! bucket and is dropped by a sweep, and when the table is full of clients still being
//! throttled, new keys share one overflow bucket, so rotating keys buys no extra requests.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

use crate::config::{ThrottleConfig, ThrottleKey};

/// The most buckets one rule keeps.
pub(crate) const MAX_KEYS: usize = 65_536;
/// The least time between two sweeps of a full table (a sweep is O(table)).
const SWEEP_INTERVAL_MS: u64 = 1_000;

/// Units of one token: integer arithmetic keeps the counts exact (a rate of 0.1 per second
/// refills exactly one token in 10 s).
const UNIT: u64 = 1_000_000;

#[derive(Clone, Copy)]
struct Bucket {
    /// Tokens, in [`UNIT`]s.
    tokens: u64,
    at_ms: u64,
}

struct Table {
    buckets: HashMap<u64, Bucket>,
    overflow: Bucket,
    swept_ms: u64,
}

/// A compiled throttle.
pub(crate) struct Throttle {
    /// What identifies a client.
    pub(crate) key: ThrottleKey,
    /// Refill, in [`UNIT`]s per millisecond.
    per_ms: u64,
    /// Capacity, in [`UNIT`]s.
    burst: u64,
    seed: std::collections::hash_map::RandomState,
    table: Mutex<Table>,
}

impl Throttle {
    pub(crate) fn new(c: &ThrottleConfig) -> Self {
        let burst = u64::from(c.burst) * UNIT;
        Throttle {
            key: c.key.clone(),
            // `rate` is validated to at least 0.001 per second: at least one unit per ms.
            per_ms: ((c.rate * (UNIT / 1000) as f64).round() as u64).max(1),
            burst,
            seed: Default::default(),
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                overflow: Bucket {
                    tokens: burst,
                    at_ms: 0,
                },
                swept_ms: 0,
            }),
        }
    }

    /// Hashes a client key.
    pub(crate) fn hash(&self, key: impl Hash) -> u64 {
        self.seed.hash_one(key)
    }

    /// The tokens of `b` at `now_ms`.
    fn level(&self, b: &Bucket, now_ms: u64) -> u64 {
        let elapsed = now_ms.saturating_sub(b.at_ms);
        b.tokens
            .saturating_add(elapsed.saturating_mul(self.per_ms))
            .min(self.burst)
    }

    /// Takes a token for client `key` at `now_ms`: `Ok` when it had one, else the seconds
    /// until it will (for `Retry-After`, at least 1).
    pub(crate) fn take(&self, key: u64, now_ms: u64) -> Result<(), u64> {
        let mut guard = self.table.lock().unwrap();
        let t = &mut *guard;
        if !t.buckets.contains_key(&key)
            && t.buckets.len() >= MAX_KEYS
            && now_ms.saturating_sub(t.swept_ms) >= SWEEP_INTERVAL_MS
        {
            t.swept_ms = now_ms;
            t.buckets.retain(|_, b| self.level(b, now_ms) < self.burst);
        }
        let fresh = Bucket {
            tokens: self.burst,
            at_ms: now_ms,
        };
        let bucket = if t.buckets.len() < MAX_KEYS || t.buckets.contains_key(&key) {
            t.buckets.entry(key).or_insert(fresh)
        } else {
            &mut t.overflow
        };
        bucket.tokens = self.level(bucket, now_ms);
        bucket.at_ms = bucket.at_ms.max(now_ms);
        if bucket.tokens >= UNIT {
            bucket.tokens -= UNIT;
            return Ok(());
        }
        let wait_ms = (UNIT - bucket.tokens).div_ceil(self.per_ms);
        Err(wait_ms.div_ceil(1000).max(1))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap().buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(rate: f64, burst: u32) -> Throttle {
        Throttle::new(&ThrottleConfig {
            rate,
            burst,
            key: ThrottleKey::SourceIp,
        })
    }

    #[test]
    fn a_burst_then_the_steady_rate() {
        let t = throttle(10.0, 5);
        let ok = (0..20).filter(|_| t.take(1, 1_000).is_ok()).count();
        assert_eq!(ok, 5, "the burst");
        assert_eq!(t.take(1, 1_000), Err(1));
        // 10/s: one token every 100 ms.
        assert!(t.take(1, 1_100).is_ok());
        assert!(t.take(1, 1_100).is_err());
        let ok = (0..100)
            .filter(|i| t.take(1, 1_100 + 10 * (i + 1)).is_ok())
            .count();
        assert_eq!(ok, 10, "one second at 10/s");
        assert!(t.take(2, 2_000).is_ok(), "another key has its own bucket");
    }

    #[test]
    fn retry_after_is_the_wait_for_one_token() {
        let t = throttle(0.25, 1);
        assert!(t.take(1, 0).is_ok());
        assert_eq!(t.take(1, 0), Err(4));
        assert_eq!(t.take(1, 3_500), Err(1));
    }

    #[test]
    fn rotating_keys_cannot_grow_the_table_or_escape_the_limit() {
        let t = throttle(1.0, 2);
        for k in 0..MAX_KEYS as u64 {
            assert!(t.take(k, 0).is_ok());
        }
        assert_eq!(t.len(), MAX_KEYS);
        // The table is full of throttled clients: new keys share the overflow bucket.
        let ok = (0..1000u64)
            .filter(|k| t.take(MAX_KEYS as u64 + k, 0).is_ok())
            .count();
        assert_eq!(ok, 2);
        assert_eq!(t.len(), MAX_KEYS);
        // Once buckets have refilled, a sweep frees them for new keys.
        assert!(t.take(u64::MAX, 10_000).is_ok());
        assert_eq!(t.len(), 1);
    }
}
