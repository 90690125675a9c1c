//! The transitions of [`BlueGreen`]: entering lifecycle events, reacting to
//! inputs, firing due timers, and ending a deployment (flip back to blue,
//! teardown, `Finished`). Kept apart from the public surface in `mod.rs`.

use super::{
    BlueGreen, DEFAULT_CALLBACK_DELAY_MS, DeploymentStatus, Effect, EventStatus, HookOutcome,
    HookRun, HookWait, PendingTraffic, Phase, TRAFFIC_ACK_TIMEOUT_MS, TRAFFIC_MAX_ATTEMPTS,
};
use crate::config::{LifecycleEvent, ReadyOption, ReadyTimeoutAction};
use crate::schedule;
use crate::time::Millis;

/// Formats a duration for history lines: whole seconds as `90s`, else `1500ms`.
fn duration(ms: Millis) -> String {
    if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

fn push_event(out: &mut Vec<Effect>, message: String) {
    out.push(Effect::Event { message });
}

impl BlueGreen {
    // ----- inputs -------------------------------------------------------

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
        let Some(pending) = self.traffic.pending.take_if(|p| p.request_id == request_id) else {
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

    // ----- lifecycle ----------------------------------------------------

    /// Starts `event`.
    fn enter(&mut self, now: Millis, event: LifecycleEvent, out: &mut Vec<Effect>) {
        let record = self.record(event);
        record.status = EventStatus::InProgress;
        record.started_at = Some(now);
        push_event(out, format!("{event} started"));
        match event {
            LifecycleEvent::Install => {
                self.green_provisioned = true;
                out.push(Effect::ProvisionGreen);
                let deadline = now.saturating_add(self.spec.install_timeout_ms);
                self.phase = Phase::Install { deadline };
            }
            LifecycleEvent::AllowTestTraffic => {
                if self.spec.has_test_listener {
                    self.phase = Phase::TestTraffic;
                    self.apply(now, 0, true, out);
                } else {
                    self.close(now, event, EventStatus::Skipped, "no test listener".into());
                    push_event(out, format!("{event} skipped: no test listener"));
                    self.after(now, event, out);
                }
            }
            LifecycleEvent::AllowTraffic => {
                // The first step is due at once; `advance` issues it.
                self.phase = Phase::Traffic {
                    started_at: now,
                    next_step: 0,
                };
            }
            hook_event => match self.spec.hooks.get(&hook_event).copied() {
                Some(hook) => {
                    let run = HookRun {
                        attempt: 0,
                        live_ids: Vec::new(),
                        details: None,
                        deadline: now.saturating_add(hook.timeout_ms),
                        timeout_ms: hook.timeout_ms,
                        wait: HookWait::Result,
                    };
                    self.phase = Phase::Hook {
                        event: hook_event,
                        run,
                    };
                    self.invoke_hook(None, false, out);
                }
                None => self.succeed(now, hook_event, "no hook configured", out),
            },
        }
    }

    /// Marks `event` succeeded and moves on.
    fn succeed(
        &mut self,
        now: Millis,
        event: LifecycleEvent,
        message: &str,
        out: &mut Vec<Effect>,
    ) {
        self.close(now, event, EventStatus::Succeeded, message.into());
        push_event(out, format!("{event} succeeded: {message}"));
        self.after(now, event, out);
    }

    /// What follows a finished (succeeded or skipped) event.
    fn after(&mut self, now: Millis, event: LifecycleEvent, out: &mut Vec<Effect>) {
        match event {
            LifecycleEvent::AfterAllowTestTraffic => match self.spec.ready {
                ReadyOption::Wait { timeout_ms, .. } => {
                    self.status = DeploymentStatus::Ready;
                    self.phase = Phase::Ready {
                        deadline: now.saturating_add(timeout_ms),
                    };
                    push_event(
                        out,
                        format!(
                            "ready: waiting up to {} for a continue before rerouting",
                            duration(timeout_ms)
                        ),
                    );
                }
                ReadyOption::Immediately => {
                    self.enter(now, LifecycleEvent::BeforeAllowTraffic, out)
                }
            },
            LifecycleEvent::AfterAllowTraffic => {
                let wait = self.spec.termination_wait_ms;
                self.status = DeploymentStatus::Baking;
                self.phase = Phase::Baking {
                    until: now.saturating_add(wait),
                };
                push_event(out, format!("baking: blue kept for {}", duration(wait)));
            }
            other => match other.next() {
                Some(next) => self.enter(now, next, out),
                None => unreachable!("AfterAllowTraffic is the last event"),
            },
        }
    }

    /// Invokes the current hook again (next attempt, fresh execution id).
    /// With `keep_live`, results of the earlier live invocations still count
    /// (used by `resume`, which cannot know whether they ran).
    fn invoke_hook(&mut self, details: Option<String>, keep_live: bool, out: &mut Vec<Effect>) {
        let deployment_id = &self.spec.deployment_id;
        let Phase::Hook { event, run } = &mut self.phase else {
            return;
        };
        run.attempt += 1;
        let execution_id = format!("{deployment_id}:{event}:{}", run.attempt);
        if !keep_live {
            run.live_ids.clear();
        }
        run.live_ids.push(execution_id.clone());
        run.details = details.clone();
        run.wait = HookWait::Result;
        out.push(Effect::InvokeHook {
            event: *event,
            execution_id,
            attempt: run.attempt,
            details,
        });
    }

    fn record(&mut self, event: LifecycleEvent) -> &mut super::LifecycleEventRecord {
        let i = LifecycleEvent::ALL
            .iter()
            .position(|e| *e == event)
            .unwrap_or(0);
        &mut self.lifecycle[i]
    }

    fn close(&mut self, now: Millis, event: LifecycleEvent, status: EventStatus, message: String) {
        let record = self.record(event);
        record.status = status;
        record.started_at.get_or_insert(now);
        record.ended_at = Some(now);
        record.message = Some(message);
    }

    /// The lifecycle event the current phase belongs to.
    fn current_event(&self) -> Option<LifecycleEvent> {
        match &self.phase {
            Phase::Hook { event, .. } => Some(*event),
            Phase::Install { .. } => Some(LifecycleEvent::Install),
            Phase::TestTraffic => Some(LifecycleEvent::AllowTestTraffic),
            Phase::Traffic { .. } => Some(LifecycleEvent::AllowTraffic),
            _ => None,
        }
    }

    // ----- traffic ------------------------------------------------------

    /// Issues an absolute traffic change under a new request id; it replaces
    /// any change in flight.
    fn apply(
        &mut self,
        now: Millis,
        prod_green_percent: u8,
        test_on_green: bool,
        out: &mut Vec<Effect>,
    ) {
        self.apply_attempt(now, prod_green_percent, test_on_green, 1, None, out);
    }

    /// Issues a split; `first_request_id` is the first id of the same split
    /// when this re-issues it.
    fn apply_attempt(
        &mut self,
        now: Millis,
        prod_green_percent: u8,
        test_on_green: bool,
        attempt: u32,
        first_request_id: Option<u64>,
        out: &mut Vec<Effect>,
    ) {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        self.traffic.pending = Some(PendingTraffic {
            request_id,
            first_request_id: first_request_id.unwrap_or(request_id),
            prod_green_percent,
            test_on_green,
            issued_at: now,
            attempt,
        });
        out.push(Effect::ApplyTraffic {
            request_id,
            prod_green_percent,
            test_on_green,
        });
    }

    /// A traffic change failed or timed out: retry it, or fail the
    /// deployment after [`TRAFFIC_MAX_ATTEMPTS`]. A flip back to blue is
    /// retried forever: there is nothing safer to do.
    fn retry_or_fail(
        &mut self,
        now: Millis,
        failed: PendingTraffic,
        reason: &str,
        out: &mut Vec<Effect>,
    ) {
        let PendingTraffic {
            prod_green_percent: green,
            test_on_green: test,
            attempt,
            first_request_id,
            ..
        } = failed;
        push_event(
            out,
            format!("traffic change to {green}% on green failed (attempt {attempt}): {reason}"),
        );
        let ending = matches!(self.phase, Phase::Ending { .. });
        if ending || attempt < TRAFFIC_MAX_ATTEMPTS {
            let next = attempt.saturating_add(1);
            self.apply_attempt(now, green, test, next, Some(first_request_id), out);
            return;
        }
        self.fail(
            now,
            format!("traffic change to {green}% on green failed {attempt} times: {reason}"),
            out,
        );
    }

    /// Issues again what was in flight (see [`BlueGreen::resume`]).
    pub(super) fn reissue_in_flight(&mut self, now: Millis, out: &mut Vec<Effect>) {
        match &self.phase {
            Phase::Install { .. } => out.push(Effect::ProvisionGreen),
            Phase::Hook { run, .. } if run.wait == HookWait::Result => {
                let details = run.details.clone();
                self.invoke_hook(details, true, out);
            }
            _ => {}
        }
        if let Some(p) = self.traffic.pending.clone() {
            let (green, test) = (p.prod_green_percent, p.test_on_green);
            self.apply_attempt(now, green, test, p.attempt, Some(p.first_request_id), out);
        }
    }

    // ----- timers -------------------------------------------------------

    /// Fires everything due at `now`, until nothing moves.
    pub(super) fn advance(&mut self, now: Millis, out: &mut Vec<Effect>) {
        while self.step(now, out) {}
    }

    /// Fires one due thing; false when nothing is due.
    fn step(&mut self, now: Millis, out: &mut Vec<Effect>) -> bool {
        if self.phase != Phase::Done {
            let overdue = self
                .traffic
                .pending
                .take_if(|p| now >= p.issued_at.saturating_add(TRAFFIC_ACK_TIMEOUT_MS));
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

    // ----- ending -------------------------------------------------------

    /// Fails the deployment (`DEPLOYMENT_FAILURE`).
    fn fail(&mut self, now: Millis, reason: String, out: &mut Vec<Effect>) {
        tracing::warn!(deployment_id = %self.spec.deployment_id, reason, "deployment failed");
        let rollback = self.spec.auto_rollback.on_failure;
        self.end(now, DeploymentStatus::Failed, rollback, reason, out);
    }

    /// Ends the deployment with `status`.
    ///
    /// - Production traffic may be on green and no rollback: everything stays
    ///   as it is (green keeps its share, nothing is removed).
    /// - Otherwise, when any traffic (production or test) may be on green:
    ///   one atomic change back to all-blue, then, once acknowledged, green
    ///   is removed.
    /// - Otherwise green, if it was created, is removed at once.
    fn end(
        &mut self,
        now: Millis,
        status: DeploymentStatus,
        rollback: bool,
        reason: String,
        out: &mut Vec<Effect>,
    ) {
        if self.status.is_final() {
            return;
        }
        self.status = status;
        if let Some(event) = self.current_event() {
            self.close(now, event, EventStatus::Failed, reason.clone());
        }
        push_event(
            out,
            format!(
                "deployment {}: {reason}",
                format!("{status:?}").to_lowercase()
            ),
        );
        let pending = self.traffic.pending.as_ref();
        let prod_on_green = self.traffic.prod_green_percent > 0
            || pending.is_some_and(|p| p.prod_green_percent > 0);
        let test_on_green = self.traffic.test_on_green || pending.is_some_and(|p| p.test_on_green);
        if prod_on_green && !rollback {
            push_event(out, "no rollback: traffic left as it is".into());
            self.finish(now, false, Some(reason), Vec::new(), out);
            return;
        }
        if prod_on_green || test_on_green {
            if rollback {
                push_event(out, "rolling back: all traffic to blue".into());
            }
            self.phase = Phase::Ending {
                rollback,
                reason: Some(reason),
            };
            self.apply(now, 0, false, out);
            return;
        }
        let teardown = if self.green_provisioned {
            vec![Effect::TeardownGreen]
        } else {
            Vec::new()
        };
        self.finish(now, rollback, Some(reason), teardown, out);
    }

    fn finish(
        &mut self,
        now: Millis,
        rollback: bool,
        reason: Option<String>,
        mut effects: Vec<Effect>,
        out: &mut Vec<Effect>,
    ) {
        effects.push(Effect::Finished {
            status: self.status,
            rollback,
            reason: reason.clone(),
        });
        tracing::info!(
            deployment_id = %self.spec.deployment_id,
            status = ?self.status,
            rollback,
            "deployment finished"
        );
        self.outcome = Some(super::Outcome {
            status: self.status,
            rollback,
            reason,
            finished_at: now,
        });
        self.final_effects = effects.clone();
        self.phase = Phase::Done;
        out.extend(effects);
    }
}
