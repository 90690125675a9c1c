//! Timers: everything that falls due with time (hook callbacks and
//! timeouts, install timeout, traffic steps, ready timeout, end of the
//! termination wait, acknowledgement timeouts).

use super::util::{duration, push_event};
use super::{BlueGreen, DeploymentStatus, Effect, HookWait, Phase, TRAFFIC_ACK_TIMEOUT_MS};
use crate::config::{LifecycleEvent, ReadyOption, ReadyTimeoutAction};
use crate::schedule;
use crate::time::Millis;

impl BlueGreen {
    /// Fires everything due at `now`, until nothing moves.
    pub(super) fn advance(&mut self, now: Millis, out: &mut Vec<Effect>) {
        while self.step(now, out) {}
    }

    /// Fires one due thing; false when nothing is due.
    pub(super) fn step(&mut self, now: Millis, out: &mut Vec<Effect>) -> bool {
        if self.phase != Phase::Done {
            if self.retry_due(now, out) {
                return true;
            }
            let overdue = self.traffic.pending.take_if(|p| {
                p.retry_at.is_none() && now >= p.issued_at.saturating_add(TRAFFIC_ACK_TIMEOUT_MS)
            });
            if let Some(p) = overdue {
                // The change may have been applied: keep it as in flight so
                // that an ending deployment treats green as carrying it.
                self.traffic.pending = Some(p.clone());
                let reason = format!(
                    "no acknowledgement within {}",
                    duration(TRAFFIC_ACK_TIMEOUT_MS)
                );
                self.retry_or_fail(now, p, &reason, out);
                return true;
            }
        }
        match &mut self.phase {
            Phase::Created | Phase::Queued | Phase::TestTraffic | Phase::Done => false,
            Phase::Hook { event, run } => {
                let event = *event;
                if now >= run.deadline {
                    let timeout = duration(run.timeout_ms);
                    self.fail(now, format!("{event} hook timed out after {timeout}"), out);
                    return true;
                }
                match &run.wait {
                    HookWait::Callback { at, details } if now >= *at => {
                        let details = details.clone();
                        self.invoke_hook(details, false, out);
                        true
                    }
                    _ => false,
                }
            }
            Phase::Install { deadline } => {
                if now < *deadline {
                    return false;
                }
                let timeout = duration(self.spec.install_timeout_ms);
                self.fail(
                    now,
                    format!("green tasks did not become healthy within {timeout}"),
                    out,
                );
                true
            }
            Phase::Traffic {
                started_at,
                next_step,
            } => {
                if self.traffic.pending.is_some() {
                    return false;
                }
                let steps = schedule::steps(&self.spec.routing);
                let Some(step) = steps.get(*next_step) else {
                    return false;
                };
                let due = started_at.saturating_add(step.at_offset_ms);
                if now < due {
                    return false;
                }
                *next_step += 1;
                let (green, test) = (step.green_percent, self.spec.has_test_listener);
                push_event(
                    out,
                    format!(
                        "shifting {green}% of production traffic to green (planned at +{})",
                        duration(step.at_offset_ms)
                    ),
                );
                self.apply(now, green, test, out);
                true
            }
            Phase::Ready { deadline } => {
                if now < *deadline {
                    return false;
                }
                let ReadyOption::Wait {
                    timeout_ms,
                    on_timeout,
                } = self.spec.ready
                else {
                    return false;
                };
                match on_timeout {
                    ReadyTimeoutAction::ContinueDeployment => {
                        push_event(
                            out,
                            format!("no continue within {}: rerouting", duration(timeout_ms)),
                        );
                        self.status = DeploymentStatus::InProgress;
                        self.enter(now, LifecycleEvent::BeforeAllowTraffic, out);
                    }
                    ReadyTimeoutAction::StopDeployment => {
                        let reason = format!("no continue within {}", duration(timeout_ms));
                        self.end(now, DeploymentStatus::Stopped, false, reason, out);
                    }
                }
                true
            }
            Phase::Baking { until } => {
                if now < *until || self.traffic.pending.is_some() {
                    return false;
                }
                self.status = DeploymentStatus::Succeeded;
                push_event(out, "termination wait over: removing blue".into());
                self.finish(now, false, None, vec![Effect::TeardownBlue], out);
                true
            }
            Phase::Ending { rollback, reason } => {
                let flipped = self.traffic.pending.is_none()
                    && self.traffic.prod_green_percent == 0
                    && !self.traffic.test_on_green;
                if !flipped {
                    return false;
                }
                let (rollback, reason) = (*rollback, reason.take());
                push_event(out, "all traffic back on blue: removing green".into());
                self.finish(now, rollback, reason, vec![Effect::TeardownGreen], out);
                true
            }
        }
    }
}
