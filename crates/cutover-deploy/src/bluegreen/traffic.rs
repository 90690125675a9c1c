//! Traffic changes: issuing absolute splits under new request ids, retrying
//! failed or unacknowledged ones, and re-issuing them after a restart.

use super::util::push_event;
use super::{BlueGreen, Effect, HookWait, PendingTraffic, Phase, TRAFFIC_MAX_ATTEMPTS};
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
    pub(super) fn retry_or_fail(
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
}
