//! Traffic changes: issuing absolute splits under new request ids, retrying
//! failed or unacknowledged ones, and re-issuing them after a restart.

use super::util::{duration, push_event};
use super::{
    BlueGreen, Effect, HookWait, PendingTraffic, Phase, TRAFFIC_MAX_ATTEMPTS, traffic_retry_pause,
};
use crate::time::Millis;

impl BlueGreen {
    /// Issues an absolute traffic change under a new request id; it replaces
    /// any change in flight.
    pub(super) fn apply(
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
    pub(super) fn apply_attempt(
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
            retry_at: None,
        });
        out.push(Effect::ApplyTraffic {
            request_id,
            prod_green_percent,
            test_on_green,
        });
    }

    /// A traffic change failed or timed out: issue it again after
    /// [`traffic_retry_pause`], or fail the deployment after
    /// [`TRAFFIC_MAX_ATTEMPTS`]. A flip back to blue is retried forever:
    /// there is nothing safer to do.
    pub(super) fn retry_or_fail(
        &mut self,
        now: Millis,
        failed: PendingTraffic,
        reason: &str,
        out: &mut Vec<Effect>,
    ) {
        let (green, attempt) = (failed.prod_green_percent, failed.attempt);
        let ending = matches!(self.phase, Phase::Ending { .. });
        if ending || attempt < TRAFFIC_MAX_ATTEMPTS {
            let pause = traffic_retry_pause(attempt);
            push_event(
                out,
                format!(
                    "traffic change to {green}% on green failed (attempt {attempt}): {reason}; trying again in {}",
                    duration(pause)
                ),
            );
            self.traffic.pending = Some(PendingTraffic {
                retry_at: Some(now.saturating_add(pause)),
                ..failed
            });
            return;
        }
        push_event(
            out,
            format!("traffic change to {green}% on green failed (attempt {attempt}): {reason}"),
        );
        self.fail(
            now,
            format!("traffic change to {green}% on green failed {attempt} times: {reason}"),
            out,
        );
    }

    /// Issues a failed split again once its pause is over; true if it did.
    pub(super) fn retry_due(&mut self, now: Millis, out: &mut Vec<Effect>) -> bool {
        let Some(p) = self
            .traffic
            .pending
            .take_if(|p| p.retry_at.is_some_and(|at| now >= at))
        else {
            return false;
        };
        let next = p.attempt.saturating_add(1);
        let (green, test) = (p.prod_green_percent, p.test_on_green);
        self.apply_attempt(now, green, test, next, Some(p.first_request_id), out);
        true
    }

    /// Issues again what was in flight (see [`BlueGreen::resume`]); a failed
    /// split waiting for its pause is left to it.
    pub(super) fn reissue_in_flight(&mut self, now: Millis, out: &mut Vec<Effect>) {
        match &self.phase {
            Phase::Install { .. } => out.push(Effect::ProvisionGreen),
            Phase::Hook { run, .. } if run.wait == HookWait::Result => {
                let details = run.details.clone();
                self.invoke_hook(details, true, out);
            }
            _ => {}
        }
        if let Some(p) = self.traffic.pending.clone()
            && p.retry_at.is_none()
        {
            let (green, test) = (p.prod_green_percent, p.test_on_green);
            self.apply_attempt(now, green, test, p.attempt, Some(p.first_request_id), out);
        }
    }
}
