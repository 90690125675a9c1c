//! The blue/green deployment state machine. [`BlueGreen`] is a value: the
//! driver persists it (serde JSON), feeds it [`Input`]s with the current time,
//! persists it again and only then executes the [`Effect`]s it returned. After
//! a crash the driver reloads it and calls [`BlueGreen::resume`], which
//! re-issues whatever was in flight. See the crate documentation for the
//! states and what each waits for.

mod ending;
mod inputs;
mod lifecycle;
mod timers;
mod traffic;
mod types;
mod util;

use serde::{Deserialize, Serialize};

use crate::config::{BlueGreenSpec, LifecycleEvent};
use crate::schedule;
use crate::time::Millis;

pub use types::{
    DEFAULT_CALLBACK_DELAY_MS, DeploymentStatus, Effect, EventStatus, HookOutcome, HookStatus,
    Input, LifecycleEventRecord, Outcome, PendingTraffic, TrafficState,
};

/// Time the proxy has to acknowledge a traffic change before the engine
/// re-issues it (counted as a failed attempt).
pub const TRAFFIC_ACK_TIMEOUT_MS: Millis = 10_000;

/// Attempts at one forward traffic change before the deployment fails.
/// A flip back to blue is retried without limit.
pub const TRAFFIC_MAX_ATTEMPTS: u32 = 4;

/// The pause before a failed traffic change is issued again: 1 s after the
/// first failure, doubling, at most [`TRAFFIC_RETRY_MAX_MS`]. A data plane
/// that is briefly away (a node's proxy being replaced) does not fail a
/// deployment within milliseconds, and a flip back to blue that keeps
/// failing is not a busy loop.
pub const TRAFFIC_RETRY_FIRST_MS: Millis = 1_000;

/// The longest pause between two attempts at one traffic change.
pub const TRAFFIC_RETRY_MAX_MS: Millis = 8_000;

/// The pause after failed attempt `attempt` (1-based).
pub fn traffic_retry_pause(attempt: u32) -> Millis {
    let doublings = attempt.saturating_sub(1).min(16);
    TRAFFIC_RETRY_FIRST_MS
        .saturating_mul(1 << doublings)
        .min(TRAFFIC_RETRY_MAX_MS)
}

/// One blue/green deployment: spec, position in the lifecycle, traffic split
/// and history. Pure: no IO, no clock; time comes in as `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlueGreen {
    spec: BlueGreenSpec,
    created_at: Millis,
    status: DeploymentStatus,
    phase: Phase,
    lifecycle: Vec<LifecycleEventRecord>,
    traffic: TrafficState,
    next_request_id: u64,
    green_provisioned: bool,
    outcome: Option<Outcome>,
    /// The effects of the end of the deployment, re-issued by `resume` on a
    /// finished deployment (teardowns are idempotent).
    final_effects: Vec<Effect>,
}

/// Where the deployment is, with what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Waits for `Start` (or `Enqueue`).
    Created,
    /// Waits for `Start`.
    Queued,
    /// A hook event; waits for the hook's result, its callback time or its
    /// timeout.
    Hook { event: LifecycleEvent, run: HookRun },
    /// Waits for `GreenReady`, `GreenFailed` or the install timeout.
    Install { deadline: Millis },
    /// Waits for the acknowledgement of "test listener to green".
    TestTraffic,
    /// Walks the schedule: the next step is due at `started_at` plus its
    /// offset, and only once the previous change was acknowledged.
    Traffic {
        started_at: Millis,
        next_step: usize,
    },
    /// `Ready`: waits for `Continue` or the ready timeout.
    Ready { deadline: Millis },
    /// `Baking`: waits for the end of the termination wait or `Continue`.
    Baking { until: Millis },
    /// Final status decided; waits for the acknowledgement of the flip back
    /// to blue before removing green.
    Ending {
        rollback: bool,
        reason: Option<String>,
    },
    /// Finished.
    Done,
}

/// The current invocation of a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HookRun {
    attempt: u32,
    /// Ids of the invocations whose result is awaited: the latest one, plus
    /// the ones re-issued by `resume` (the first result of any wins).
    live_ids: Vec<String>,
    /// `hookDetails` handed to this invocation.
    details: Option<String>,
    /// First invocation plus the hook's timeout.
    deadline: Millis,
    timeout_ms: Millis,
    wait: HookWait,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum HookWait {
    /// Waiting for the result of one of `live_ids`.
    Result,
    /// The hook said `IN_PROGRESS`: invoke again at `at` with `details`.
    Callback { at: Millis, details: Option<String> },
}

impl BlueGreen {
    /// A deployment in state `Created`; nothing happens until
    /// [`Input::Start`].
    pub fn new(spec: BlueGreenSpec, now: Millis) -> Self {
        let lifecycle = LifecycleEvent::ALL
            .iter()
            .map(|&event| LifecycleEventRecord {
                event,
                status: EventStatus::Pending,
                started_at: None,
                ended_at: None,
                message: None,
            })
            .collect();
        Self {
            spec,
            created_at: now,
            status: DeploymentStatus::Created,
            phase: Phase::Created,
            lifecycle,
            traffic: TrafficState::default(),
            next_request_id: 1,
            green_provisioned: false,
            outcome: None,
            final_effects: Vec::new(),
        }
    }

    /// Feeds one input at time `now` and returns the effects to execute, in
    /// order. Inputs that do not apply in the current state (a late hook
    /// result, an acknowledgement of a superseded request, a continue outside
    /// `Ready` and `Baking`) change nothing.
    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        let _span =
            tracing::debug_span!("bluegreen", deployment_id = %self.spec.deployment_id).entered();
        match input {
            Input::Enqueue => self.on_enqueue(&mut out),
            Input::Start => self.on_start(now, &mut out),
            Input::Tick => {}
            Input::GreenReady => self.on_green_ready(now, &mut out),
            Input::GreenFailed { reason } => self.on_green_failed(now, &reason, &mut out),
            Input::HookResult {
                execution_id,
                outcome,
            } => self.on_hook_result(now, &execution_id, outcome, &mut out),
            Input::TrafficApplied { request_id } => {
                self.on_traffic_applied(now, request_id, &mut out)
            }
            Input::TrafficFailed { request_id, reason } => {
                self.on_traffic_failed(now, request_id, &reason, &mut out)
            }
            Input::AlarmFired { alarm } => self.on_alarm(now, &alarm, &mut out),
            Input::Stop { rollback } => self.on_stop(now, rollback, &mut out),
            Input::Continue => self.on_continue(now, &mut out),
            Input::Rollback => self.on_rollback(now, &mut out),
        }
        self.advance(now, &mut out);
        out
    }

    /// Re-issues what was in flight when the control plane stopped, for a
    /// state just loaded from storage. Then handles whatever fell due while
    /// the control plane was down (a hook timeout, a traffic step).
    ///
    /// - `Install`: `ProvisionGreen` again (idempotent).
    /// - A hook waiting for its result: the hook is invoked again with a new
    ///   execution id (attempt + 1) and the same details, since the first
    ///   invocation may never have run. The first result of either
    ///   invocation counts, the other is ignored; hooks must therefore
    ///   tolerate running twice. The event's timeout still counts from the
    ///   first invocation. A hook waiting for its callback time needs
    ///   nothing.
    /// - Traffic: the change in flight is applied again under a new request
    ///   id; an acknowledgement of either request confirms it, and the next
    ///   step waits for it. An acknowledged split is not re-applied (each
    ///   restart would otherwise create new work, and a crash loop would
    ///   never settle): if the proxy lost its routes too, restore them from
    ///   [`BlueGreen::intended_split`] when the proxy starts.
    /// - A finished deployment: its final effects (teardown, `Finished`)
    ///   again, in case they were persisted but never executed.
    pub fn resume(&mut self, now: Millis) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            out.extend(self.final_effects.iter().cloned());
            return out;
        }
        if matches!(self.phase, Phase::Created | Phase::Queued) {
            return out;
        }
        tracing::info!(deployment_id = %self.spec.deployment_id, "resuming deployment");
        out.push(Effect::Event {
            message: "resumed after a control-plane restart".into(),
        });
        self.reissue_in_flight(now, &mut out);
        self.advance(now, &mut out);
        out
    }

    /// The earliest time something falls due (a timeout, a traffic step, the
    /// end of a wait); the driver calls `handle(t, Input::Tick)` then, or
    /// earlier when an input arrives. `None` when only an input can move the
    /// deployment on.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let ack = self.traffic.pending.as_ref().map(|p| {
            p.retry_at
                .unwrap_or(p.issued_at.saturating_add(TRAFFIC_ACK_TIMEOUT_MS))
        });
        let phase = match &self.phase {
            Phase::Created | Phase::Queued | Phase::TestTraffic | Phase::Ending { .. } => None,
            Phase::Done => return None,
            Phase::Hook { run, .. } => match run.wait {
                HookWait::Result => Some(run.deadline),
                HookWait::Callback { at, .. } => Some(at.min(run.deadline)),
            },
            Phase::Install { deadline } | Phase::Ready { deadline } => Some(*deadline),
            Phase::Traffic {
                started_at,
                next_step,
            } => {
                if self.traffic.pending.is_some() {
                    None
                } else {
                    schedule::steps(&self.spec.routing)
                        .get(*next_step)
                        .map(|s| started_at.saturating_add(s.at_offset_ms))
                }
            }
            Phase::Baking { until } => Some(*until),
        };
        match (ack, phase) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The deployment's status. Once the deployment failed or stopped this
    /// is final even while traffic is still being flipped back.
    pub fn status(&self) -> DeploymentStatus {
        self.status
    }

    /// The lifecycle events in order, with status, times and message.
    pub fn lifecycle(&self) -> &[LifecycleEventRecord] {
        &self.lifecycle
    }

    /// The acknowledged traffic split and the change in flight.
    pub fn traffic(&self) -> &TrafficState {
        &self.traffic
    }

    /// The split the proxy should have now: the change in flight if any,
    /// else the acknowledged one, as `(prod_green_percent, test_on_green)`.
    /// For restoring a proxy that restarted; it needs no acknowledgement.
    pub fn intended_split(&self) -> (u8, bool) {
        match &self.traffic.pending {
            Some(p) => (p.prod_green_percent, p.test_on_green),
            None => (self.traffic.prod_green_percent, self.traffic.test_on_green),
        }
    }

    /// How the deployment ended, once [`Effect::Finished`] was emitted.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Whether the deployment has finished (emitted [`Effect::Finished`]).
    pub fn is_terminal(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The spec the deployment runs.
    pub fn spec(&self) -> &BlueGreenSpec {
        &self.spec
    }

    /// When the deployment was created.
    pub fn created_at(&self) -> Millis {
        self.created_at
    }
}
