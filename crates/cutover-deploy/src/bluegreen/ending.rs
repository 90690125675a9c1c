//! Ending a deployment: the decision between leaving traffic as it is,
//! flipping it back to blue in one change, or just removing green, and the
//! final `Finished` effect.

use super::util::push_event;
use super::{BlueGreen, DeploymentStatus, Effect, EventStatus, Phase};
use crate::time::Millis;

impl BlueGreen {
    /// Fails the deployment (`DEPLOYMENT_FAILURE`).
    pub(super) fn fail(&mut self, now: Millis, reason: String, out: &mut Vec<Effect>) {
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
    pub(super) fn end(
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

    pub(super) fn finish(
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
