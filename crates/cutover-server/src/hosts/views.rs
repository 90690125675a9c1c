//! A stored host deployment as the API shows it (`cutover deployments
//! get`, CodeDeploy's `GetDeployment`, `ListDeploymentTargets` and
//! `BatchGetDeploymentTargets`).

use cutover_api::host_deployments::{
    HostDeploymentView, HostEventStatus, HostEventView, HostTargetStatus, HostTargetView,
};
use cutover_deploy::hosts::{HostPlan, HostState};
use cutover_store::host_deployments::HostDeploymentRow;

/// The view of `row`.
pub(crate) fn view(row: &HostDeploymentRow) -> HostDeploymentView {
    HostDeploymentView {
        id: row.id.clone(),
        application: row.application.clone(),
        deployment_group: row.deployment_group.clone(),
        status: row.status,
        reason: row.body.plan.reason().map(|r| format!("{r:?}")),
        revision: row.body.revision.clone(),
        source: row.body.source.clone(),
        config: row.body.config.clone(),
        rollback_of: row.body.rollback_of.clone(),
        rolled_back_by: row.body.rolled_back_by.clone(),
        created_at_ms: row.created_at,
        finished_at_ms: row.finished_at,
        targets: targets(row),
    }
}

/// Each host of `row`, in the group's order (blue/green: the replacement
/// hosts, then the originals), with its events.
pub(crate) fn targets(row: &HostDeploymentRow) -> Vec<HostTargetView> {
    let events = |h: &str| row.body.events.get(h).cloned().unwrap_or_default();
    let ended = row.finished_at.is_some();
    match &row.body.plan {
        HostPlan::InPlace(d) => {
            let zones = d.zones();
            d.hosts()
                .iter()
                .map(|h| HostTargetView {
                    host: h.name.clone(),
                    zone: zones.get(h.zone).filter(|z| !z.is_empty()).cloned(),
                    status: match h.state {
                        HostState::Pending if ended => HostTargetStatus::Skipped,
                        HostState::Pending => HostTargetStatus::Pending,
                        HostState::Running { .. } => HostTargetStatus::InProgress,
                        HostState::Succeeded => HostTargetStatus::Succeeded,
                        HostState::Failed { .. } | HostState::Lost { .. } => {
                            HostTargetStatus::Failed
                        }
                        HostState::Stopped { .. } | HostState::Skipped => HostTargetStatus::Skipped,
                    },
                    events: events(&h.name),
                })
                .collect()
        }
        // The blue/green planner keeps no per-host state past each phase:
        // a host's status is what its event records say.
        HostPlan::BlueGreen { .. } => row
            .body
            .plan
            .targets()
            .into_iter()
            .map(|h| {
                let events = events(&h.name);
                HostTargetView {
                    host: h.name.clone(),
                    zone: h.zone.clone(),
                    status: from_events(&events, ended),
                    events,
                }
            })
            .collect(),
    }
}

/// A host's status from its event records.
fn from_events(events: &[HostEventView], ended: bool) -> HostTargetStatus {
    if events.iter().any(|e| e.status == HostEventStatus::Failed) {
        HostTargetStatus::Failed
    } else if events
        .iter()
        .any(|e| e.status == HostEventStatus::InProgress)
    {
        HostTargetStatus::InProgress
    } else if events.is_empty() {
        if ended {
            HostTargetStatus::Skipped
        } else {
            HostTargetStatus::Pending
        }
    } else if events.iter().all(|e| e.status == HostEventStatus::Skipped) {
        HostTargetStatus::Skipped
    } else {
        HostTargetStatus::Succeeded
    }
}
