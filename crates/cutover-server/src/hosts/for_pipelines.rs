//! The host deployments as the pipelines' `CodeDeploy` action uses them
//! ([`cutover_ci::HostDeployments`]): an input artifact directory is
//! checked and deployed like any directory revision
//! ([`revisions::deploy_dir_with`]), tagged with the action's
//! `started_by`; its state is the stored row's status, with the reason a
//! failed or stopped one ended for (the planner's, and the first host
//! event that failed).

use std::sync::Arc;

use async_trait::async_trait;
use cutover_api::host_deployments::HostEventStatus;
use cutover_ci::{HostDeploymentRequest, HostDeploymentState, HostDeployments};
use cutover_deploy::hosts::HostDeploymentStatus;
use cutover_store::Store;
use cutover_store::host_deployments::{self as hd, HostDeploymentRow};

use super::bundles::DirBundles;
use super::deployer::HostDeployer;
use super::revisions::{self, Target};

/// The server's host deployments for the pipelines.
pub(crate) struct PipelineHostDeployments {
    pub(crate) store: Arc<Store>,
    pub(crate) bundles: Arc<DirBundles>,
    pub(crate) deployer: Arc<HostDeployer>,
}

#[async_trait]
impl HostDeployments for PipelineHostDeployments {
    async fn started_by(
        &self,
        application: &str,
        group: &str,
        started_by: &str,
    ) -> Result<Option<String>, String> {
        let (a, g, s) = (
            application.to_string(),
            group.to_string(),
            started_by.to_string(),
        );
        let row = self
            .store
            .call(move |c| hd::started_by_host_deployment(c, &a, &g, &s))
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.map(|r| r.id))
    }

    async fn create(&self, request: HostDeploymentRequest) -> Result<String, String> {
        revisions::deploy_dir_with(
            self.bundles.as_ref(),
            &self.deployer,
            Target {
                application: request.application,
                group: request.group,
                config: None,
            },
            request.dir,
            request.source,
            Some(request.started_by),
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn state(&self, id: &str) -> Result<HostDeploymentState, String> {
        let owned = id.to_string();
        let row = self
            .store
            .call(move |c| hd::host_deployment(c, &owned))
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("host deployment {id} does not exist"))?;
        Ok(match row.status {
            HostDeploymentStatus::Created | HostDeploymentStatus::InProgress => {
                HostDeploymentState::InProgress
            }
            HostDeploymentStatus::Succeeded => HostDeploymentState::Succeeded,
            HostDeploymentStatus::Failed => HostDeploymentState::Failed(reason(&row)),
            HostDeploymentStatus::Stopped => HostDeploymentState::Stopped(reason(&row)),
        })
    }

    async fn stop(&self, id: &str) -> Result<(), String> {
        match self.deployer.stop(id, false) {
            // It ended meanwhile: its state says how.
            Ok(()) | Err(super::deployer::HostDeployError::NotRunning(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Why `row` ended: the planner's reason and the first failed host event.
fn reason(row: &HostDeploymentRow) -> String {
    let mut why = row
        .body
        .plan
        .reason()
        .map_or_else(|| "no reason recorded".to_string(), |r| format!("{r:?}"));
    let failed = row.body.events.iter().find_map(|(host, events)| {
        events
            .iter()
            .find(|e| e.status == HostEventStatus::Failed)
            .map(|e| (host, e))
    });
    if let Some((host, e)) = failed {
        why.push_str(&format!("; host {host}: {:?} failed", e.event));
        if let Some(error) = &e.error {
            why.push_str(&format!(": {error}"));
        }
    }
    why
}
