//! Pure domain logic shared by the control plane: time, task lifecycle,
//! service status, container health checks and the service reconcile
//! decision.
//!
//! Nothing in this crate performs IO or reads a clock. Every function that
//! depends on time takes `now: Millis` from the caller, so the control plane
//! drives it with the wall clock and tests drive it with simulated time.

pub mod health;
pub mod placement;
pub mod reconcile;
pub mod service;
pub mod task;

/// Milliseconds since the Unix epoch, injected by the caller.
pub type Millis = u64;
