//! Pure deployment engine: blue/green lifecycle, traffic schedules, alarm
//! evaluation, rolling updates. No IO, no clock, no randomness: time comes in
//! as [`Millis`] on every call, so a fifteen-minute canary runs in a test in
//! microseconds and every run is reproducible.
//!
//! # Driving a blue/green deployment
//!
//! [`BlueGreen`] is a serializable value. The driver (in the control plane)
//! loops: wait until [`BlueGreen::next_wakeup`] or an input (a hook result, a
//! proxy acknowledgement, an alarm, an operator command); call
//! [`BlueGreen::handle`] with the current time; **persist the state; then
//! execute the returned [`Effect`]s** and feed their results back as
//! [`Input`]s. After a crash it loads the state and calls
//! [`BlueGreen::resume`], which re-issues what was in flight. Every effect is
//! safe to execute twice: `ProvisionGreen` and the teardowns are idempotent,
//! `ApplyTraffic` sets an absolute split under a strictly increasing request
//! id, and each hook invocation has its own execution id
//! (`{deployment_id}:{event}:{attempt}`).
//!
//! # States and what each waits for
//!
//! | status | position | waits for |
//! |---|---|---|
//! | Created | - | `Start` (or `Enqueue`) |
//! | Queued | - | `Start` |
//! | InProgress | BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic (hooks) | the hook's result; after `IN_PROGRESS` its callback time (then a new invocation with the details); the hook timeout (from the first invocation) fails the event. Without a hook the event succeeds at once |
//! | InProgress | Install | `GreenReady`, `GreenFailed`, or the install timeout |
//! | InProgress | AllowTestTraffic | the proxy's acknowledgement of "test listener to green" (skipped without a test listener) |
//! | Ready | between AfterAllowTestTraffic and BeforeAllowTraffic, with a ready wait | `Continue`, or the ready timeout (continue or stop) |
//! | InProgress | AllowTraffic | each step's planned time (AllowTraffic start + offset, see [`schedule::steps`]) **and** the acknowledgement of the previous step; the event succeeds when 100% is acknowledged |
//! | Baking | termination wait | its end or `Continue`; then `TeardownBlue`, Succeeded |
//! | Failed / Stopped | flipping back | the acknowledgement of the one `ApplyTraffic{0%, test to blue}`; then `TeardownGreen` and `Finished` |
//! | Succeeded / Failed / Stopped | finished | nothing ([`BlueGreen::is_terminal`]) |
//!
//! In any non-final state a traffic change the data plane refused, or did not
//! acknowledge within [`bluegreen::TRAFFIC_ACK_TIMEOUT_MS`], is issued again
//! after a pause ([`bluegreen::traffic_retry_pause`]: 1 s, doubling, at most
//! 8 s), during which it still counts as in flight; a forward change fails
//! the deployment after [`bluegreen::TRAFFIC_MAX_ATTEMPTS`] attempts, a flip
//! back to blue is retried forever at that pace.
//!
//! # Ending
//!
//! A failure (hook failed or timed out, green failed or not healthy in time,
//! traffic not applied), an alarm named by the spec (during InProgress, Ready
//! or Baking), `Stop` or `Rollback` end the deployment. The rollback policy
//! is `auto_rollback.on_failure` / `on_alarm` / `on_request` (or the stop's
//! own flag; `Rollback` always rolls back). Then:
//!
//! - production traffic may be on green and no rollback: nothing moves,
//!   nothing is removed (`Finished` with `rollback: false`);
//! - else, if any traffic (production or test) may be on green: one atomic
//!   `ApplyTraffic { prod_green_percent: 0, test_on_green: false }` (never a
//!   walk back through the steps), then after its acknowledgement
//!   `TeardownGreen` and `Finished`;
//! - else `TeardownGreen` (if green was provisioned) and `Finished` at once.
//!
//! A rollback after the deployment finished is a new deployment of the
//! previous revision; that is the driver's job.
//!
//! # Modules
//!
//! - [`config`]: routing (with the five predefined ECS configurations),
//!   hooks, ready option, rollback policy; [`config::BlueGreenSpec::validate`].
//! - [`schedule`]: the traffic steps of a routing.
//! - [`bluegreen`]: the state machine.
//! - [`rolling`]: the ECS rolling-update planner with circuit breaker.
//! - [`deployment`]: a stored deployment's kind and engine state, and the
//!   names of kinds and statuses.
//! - [`hosts`]: host deployments (CodeDeploy for EC2/on-premises): each
//!   host's lifecycle, the minimum healthy hosts rules, the in-place
//!   planner (waves, zones, rollback) and blue/green onto replacement
//!   hosts; its module documentation has their state tables.
//! - [`alarm`]: CloudWatch-style metric alarms at one-second resolution and
//!   composite alarm rules.

pub mod alarm;
pub mod bluegreen;
pub mod config;
pub mod deployment;
pub mod hosts;
pub mod rolling;
pub mod schedule;
pub mod time;

pub use bluegreen::{BlueGreen, DeploymentStatus, Effect, Input};
pub use config::{BlueGreenSpec, LifecycleEvent, TrafficRouting};
pub use deployment::{DeploymentEngine, DeploymentKind};
pub use time::Millis;
