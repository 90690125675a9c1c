//! Entering and finishing lifecycle events in CodeDeploy's order, hook
//! invocations and the lifecycle records.

use super::util::{duration, push_event};
use super::{BlueGreen, DeploymentStatus, Effect, EventStatus, HookRun, HookWait, Phase};
use crate::config::{LifecycleEvent, ReadyOption};
use crate::time::Millis;

impl BlueGreen {
    /// Starts `event`.
    pub(super) fn enter(&mut self, now: Millis, event: LifecycleEvent, out: &mut Vec<Effect>) {
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
    pub(super) fn succeed(
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
    pub(super) fn after(&mut self, now: Millis, event: LifecycleEvent, out: &mut Vec<Effect>) {
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
    pub(super) fn invoke_hook(
        &mut self,
        details: Option<String>,
        keep_live: bool,
        out: &mut Vec<Effect>,
    ) {
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

    pub(super) fn record(&mut self, event: LifecycleEvent) -> &mut super::LifecycleEventRecord {
        let i = LifecycleEvent::ALL
            .iter()
            .position(|e| *e == event)
            .unwrap_or(0);
        &mut self.lifecycle[i]
    }

    pub(super) fn close(
        &mut self,
        now: Millis,
        event: LifecycleEvent,
        status: EventStatus,
        message: String,
    ) {
        let record = self.record(event);
        record.status = status;
        record.started_at.get_or_insert(now);
        record.ended_at = Some(now);
        record.message = Some(message);
    }

    /// The lifecycle event the current phase belongs to.
    pub(super) fn current_event(&self) -> Option<LifecycleEvent> {
        match &self.phase {
            Phase::Hook { event, .. } => Some(*event),
            Phase::Install { .. } => Some(LifecycleEvent::Install),
            Phase::TestTraffic => Some(LifecycleEvent::AllowTestTraffic),
            Phase::Traffic { .. } => Some(LifecycleEvent::AllowTraffic),
            _ => None,
        }
    }
}
