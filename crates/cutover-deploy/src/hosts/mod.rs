//! Host deployments (CodeDeploy for EC2/on-premises): the pure planner.
//!
//! - [`lifecycle`]: each host's events in CodeDeploy's order, and whose
//!   scripts each runs.
//! - [`rules`]: the minimum healthy hosts arithmetic.
//! - [`types`]: hosts, spec, host states, statuses, inputs and effects.
//! - [`inplace`]: [`HostDeployment`], the in-place state machine (waves,
//!   zones, failure rules, rollback).
//! - [`bluegreen`]: [`HostBlueGreen`], blue/green onto replacement hosts.
//! - [`plan`]: [`HostPlan`], either of the two behind one interface (what
//!   the driver feeds and the store keeps).
//!
//! # Driving
//!
//! As with [`crate::BlueGreen`]: the driver feeds an input with the current
//! time, **persists the state, then executes the returned effects** and
//! feeds their results back. After a crash it reloads the state and calls
//! `resume()`, which re-issues only what was in flight (the current step
//! of each running host, the wait). Each `Run` effect is idempotent per
//! (deployment, host, event): a repeated or late result is ignored.
//!
//! # In place: states and what each waits for
//!
//! | status | where | waits for |
//! |---|---|---|
//! | Created | - | `Start` |
//! | InProgress | hosts running | each running host's `StepSucceeded`/`StepFailed`/`AgentLost`; then the next step, or the next hosts the rules allow |
//! | InProgress | zone done, monitor time | `Tick` at [`HostDeployment::next_wakeup`] (then the next zone) |
//! | Succeeded / Failed / Stopped | ended | nothing |
//!
//! Hosts start when fewer than the configuration's concurrency run (in the
//! zone and overall) and taking one out of service leaves at least the
//! minimum healthy hosts (overall, and per zone with
//! `minimumHealthyHostsPerZone`); unhealthy hosts go first. The deployment
//! fails as soon as too few hosts can still succeed, or when hosts remain
//! and none may start (`HEALTH_CONSTRAINTS`). An alarm or a stop ends it
//! as Stopped. Ending cancels running hosts and, under the rollback policy
//! and if a last good revision exists, asks for a rollback deployment of
//! the hosts that got the revision (`RollBack`).

pub mod bluegreen;
pub mod inplace;
pub mod lifecycle;
pub mod plan;
pub mod rules;
pub mod types;

pub use bluegreen::HostBlueGreen;
pub use inplace::HostDeployment;
pub use plan::HostPlan;
pub use types::{
    EndReason, HostDeploymentStatus, HostEffect, HostInput, HostRollback, HostRun, HostState,
    HostTarget, HostsSpec,
};
