//! How [`BlueGreen`] reacts to each [`super::Input`]: start, green ready or
//! failed, hook results, traffic acknowledgements, alarms and operator
//! commands.

use super::util::{duration, push_event};
use super::{
    BlueGreen, DEFAULT_CALLBACK_DELAY_MS, DeploymentStatus, Effect, HookOutcome, HookWait,
    PendingTraffic, Phase,
};
use crate::config::LifecycleEvent;
use crate::schedule;
use crate::time::Millis;

impl BlueGreen {
    pub(super) fn on_enqueue(&mut self, out: &mut Vec<Effect>) {
        if self.phase == Phase::Created {
            self.status = DeploymentStatus::Queued;
            self.phase = Phase::Queued;
            push_event(out, "deployment queued".into());
        }
    }

    pub(super) fn on_start(&mut self, now: Millis, out: &mut Vec<Effect>) {
        if matches!(self.phase, Phase::Created | Phase::Queued) {
            tracing::info!(deployment_id = %self.spec.deployment_id, "deployment started");
            self.status = DeploymentStatus::InProgress;
            push_event(out, "deployment started".into());
            self.enter(now, LifecycleEvent::BeforeInstall, out);
        }
    }

    pub(super) fn on_green_ready(&mut self, now: Millis, out: &mut Vec<Effect>) {
        if matches!(self.phase, Phase::Install { .. }) {
            self.succeed(
                now,
                LifecycleEvent::Install,
                "green tasks registered and healthy",
                out,
            );
        }
    }

    pub(super) fn on_green_failed(&mut self, now: Millis, reason: &str, out: &mut Vec<Effect>) {
        if self.status.is_final() || !self.green_provisioned {
            return;
        }
        let reason = if matches!(self.phase, Phase::Install { .. }) {
            format!("green tasks failed to become healthy: {reason}")
        } else {
            format!("green tasks failed: {reason}")
        };
        self.fail(now, reason, out);
    }

    pub(super) fn on_hook_result(
        &mut self,
        now: Millis,
        execution_id: &str,
        outcome: HookOutcome,
        out: &mut Vec<Effect>,
    ) {
        let Phase::Hook { event, run } = &mut self.phase else {
            tracing::debug!(execution_id, "ignoring hook result outside a hook event");
            return;
        };
        if run.wait != HookWait::Result || !run.live_ids.iter().any(|id| id == execution_id) {
            tracing::debug!(execution_id, "ignoring stale hook result");
            return;
        }
        let event = *event;
        match outcome {
            HookOutcome::Succeeded => self.succeed(now, event, "hook succeeded", out),
            HookOutcome::Failed { reason } => {
                self.fail(now, format!("{event} hook failed: {reason}"), out)
            }
            HookOutcome::InProgress {
                callback_delay_ms,
                details,
            } => {
                let delay = callback_delay_ms.unwrap_or(DEFAULT_CALLBACK_DELAY_MS);
                run.wait = HookWait::Callback {
                    at: now.saturating_add(delay),
                    details,
                };
                run.live_ids.clear();
                push_event(
                    out,
                    format!(
                        "{event} hook in progress, invoking again in {}",
                        duration(delay)
                    ),
                );
            }
        }
    }

    pub(super) fn on_traffic_applied(
        &mut self,
        now: Millis,
        request_id: u64,
        out: &mut Vec<Effect>,
    ) {
        let confirms =
            |p: &mut PendingTraffic| (p.first_request_id..=p.request_id).contains(&request_id);
        let Some(pending) = self.traffic.pending.take_if(confirms) else {
            tracing::debug!(
                request_id,
                "ignoring acknowledgement of a superseded traffic change"
            );
            return;
        };
        self.traffic.prod_green_percent = pending.prod_green_percent;
        self.traffic.test_on_green = pending.test_on_green;
        push_event(
            out,
            format!(
                "traffic applied: {}% of production on green, test listener on {}",
                pending.prod_green_percent,
                if pending.test_on_green {
                    "green"
                } else {
                    "blue"
                }
            ),
        );
        match self.phase {
            Phase::TestTraffic => self.succeed(
                now,
                LifecycleEvent::AllowTestTraffic,
                "test listener on green",
                out,
            ),
            Phase::Traffic { next_step, .. }
                if next_step >= schedule::steps(&self.spec.routing).len()
                    && self.traffic.prod_green_percent == 100 =>
            {
                self.succeed(
                    now,
                    LifecycleEvent::AllowTraffic,
                    "all production traffic on green",
                    out,
                )
            }
            _ => {}
        }
    }

    pub(super) fn on_traffic_failed(
        &mut self,
        now: Millis,
        request_id: u64,
        reason: &str,
        out: &mut Vec<Effect>,
    ) {
        // A failure of a request already counted (the split waits for its
        // retry) changes nothing.
        let Some(pending) = self
            .traffic
            .pending
            .take_if(|p| p.request_id == request_id && p.retry_at.is_none())
        else {
            return;
        };
        if self.phase == Phase::Done {
            return;
        }
        // An explicit failure means the proxy did not apply the change.
        self.retry_or_fail(now, pending, reason, out);
    }

    pub(super) fn on_alarm(&mut self, now: Millis, alarm: &str, out: &mut Vec<Effect>) {
        let watched = self.spec.alarms.iter().any(|a| a == alarm);
        let running = matches!(
            self.status,
            DeploymentStatus::InProgress | DeploymentStatus::Ready | DeploymentStatus::Baking
        );
        if !watched || !running {
            tracing::debug!(alarm, watched, running, "ignoring alarm");
            return;
        }
        tracing::warn!(deployment_id = %self.spec.deployment_id, alarm, "alarm stops deployment");
        let rollback = self.spec.auto_rollback.on_alarm;
        self.end(
            now,
            DeploymentStatus::Stopped,
            rollback,
            format!("alarm {alarm} fired"),
            out,
        );
    }

    pub(super) fn on_stop(&mut self, now: Millis, rollback: Option<bool>, out: &mut Vec<Effect>) {
        if self.status.is_final() {
            push_event(
                out,
                format!("stop ignored: deployment already {:?}", self.status),
            );
            return;
        }
        let rollback = rollback.unwrap_or(self.spec.auto_rollback.on_request);
        self.end(
            now,
            DeploymentStatus::Stopped,
            rollback,
            "stopped by request".into(),
            out,
        );
    }

    pub(super) fn on_rollback(&mut self, now: Millis, out: &mut Vec<Effect>) {
        if self.status.is_final() {
            push_event(
                out,
                format!(
                    "rollback ignored: deployment already {:?}; roll back with a new deployment",
                    self.status
                ),
            );
            return;
        }
        self.end(
            now,
            DeploymentStatus::Stopped,
            true,
            "rolled back by request".into(),
            out,
        );
    }

    pub(super) fn on_continue(&mut self, now: Millis, out: &mut Vec<Effect>) {
        match &mut self.phase {
            Phase::Ready { .. } => {
                push_event(
                    out,
                    "continued by request: rerouting production traffic".into(),
                );
                self.status = DeploymentStatus::InProgress;
                self.enter(now, LifecycleEvent::BeforeAllowTraffic, out);
            }
            Phase::Baking { until } => {
                *until = now;
                push_event(out, "termination wait ended by request".into());
            }
            _ => push_event(
                out,
                format!("continue ignored: deployment is {:?}", self.status),
            ),
        }
    }
}
