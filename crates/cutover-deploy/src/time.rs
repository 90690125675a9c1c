//! Injected time. The engine never reads a clock: every call carries `now` as
//! unix milliseconds, so a fifteen-minute canary runs in a test in microseconds
//! and a replayed deployment is reproducible.

/// Unix time in milliseconds, supplied by the caller on every call.
pub type Millis = u64;

/// Milliseconds in one second.
pub const SECOND_MS: Millis = 1_000;

/// Milliseconds in one minute.
pub const MINUTE_MS: Millis = 60 * SECOND_MS;

/// Milliseconds in one hour.
pub const HOUR_MS: Millis = 60 * MINUTE_MS;
