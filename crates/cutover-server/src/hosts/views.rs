//! A stored host deployment as the API shows it (`cutover deployments
//! get`, CodeDeploy's `GetDeployment`, `ListDeploymentTargets` and
//! `BatchGetDeploymentTargets`).

use cutover_api::host_deployments::{HostDeploymentView, HostTargetStatus, HostTargetView};
use cutover_deploy::hosts::HostState;
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

/// Each host of `row`, in the group's order, with its events.
pub(crate) fn targets(row: &HostDeploymentRow) -> Vec<HostTargetView> {
    let zones = row.body.plan.zones();
    row.body
        .plan
        .hosts()
        .iter()
        .map(|h| HostTargetView {
            host: h.name.clone(),
            zone: zones.get(h.zone).filter(|z| !z.is_empty()).cloned(),
            status: match h.state {
                HostState::Pending if row.finished_at.is_some() => HostTargetStatus::Skipped,
                HostState::Pending => HostTargetStatus::Pending,
                HostState::Running { .. } => HostTargetStatus::InProgress,
                HostState::Succeeded => HostTargetStatus::Succeeded,
                HostState::Failed { .. } | HostState::Lost { .. } => HostTargetStatus::Failed,
                HostState::Stopped { .. } | HostState::Skipped => HostTargetStatus::Skipped,
            },
            events: row.body.events.get(&h.name).cloned().unwrap_or_default(),
        })
        .collect()
}
