//! The deployments of pipelines' deploy actions: `cutover_ci::Deployments`
//! over the [`Deployer`] and the store. An action's deployment is an
//! ordinary one of its service (rolling or blue/green, as the service
//! declares), tagged `started_by = pipeline/<action key>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cutover_ci::{DeploymentRequest, DeploymentState, Deployments, DeploymentsError};
use cutover_deploy::DeploymentStatus;
use cutover_store::{Store, StoreError, ops};
use serde_json::Value;

use super::{DeployError, DeployRequest, Deployer};

/// [`Deployments`] for the pipelines of this control plane.
pub(crate) struct PipelineDeployments {
    pub(crate) store: Arc<Store>,
    pub(crate) deployer: Arc<Deployer>,
}

#[async_trait]
impl Deployments for PipelineDeployments {
    async fn current_task_definition(
        &self,
        service: &str,
    ) -> Result<(String, Value), DeploymentsError> {
        let name = service.to_string();
        let found = self
            .store
            .call(move |c| {
                let Some(svc) = ops::service(c, &name)? else {
                    return Ok(None);
                };
                let current = svc
                    .task_definition
                    .rsplit_once(':')
                    .and_then(|(f, r)| Some((f, r.parse().ok()?)))
                    .map(|(family, revision)| ops::task_definition(c, family, Some(revision)))
                    .transpose()?
                    .flatten()
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "task definition",
                        name: svc.task_definition.clone(),
                    })?;
                Ok(Some((svc.task_definition, current.body)))
            })
            .await?;
        found.ok_or_else(|| DeploymentsError::ServiceNotFound(service.to_string()))
    }

    async fn started_by(
        &self,
        service: &str,
        started_by: &str,
    ) -> Result<Option<String>, DeploymentsError> {
        let name = service.to_string();
        let rows = self
            .store
            .call(move |c| ops::list_deployments(c, Some(&name), 200))
            .await?;
        Ok(rows
            .into_iter()
            .find(|d| d.started_by == started_by)
            .map(|d| d.id))
    }

    async fn create(
        &self,
        request: DeploymentRequest,
    ) -> Result<(String, String), DeploymentsError> {
        let mut appspec_hooks = BTreeMap::new();
        if let Some(a) = &request.appspec {
            let hooks = self
                .deployer
                .appspec_hooks(&request.service, &a.file, &a.text, &a.appspec)
                .await?
                .map_err(|e| DeploymentsError::Refused(e.to_string()))?;
            for w in &hooks.warnings {
                tracing::warn!(service = %request.service, "{w}");
            }
            appspec_hooks = hooks.value;
        }
        let now = self.deployer.clock.now_ms();
        let (family, body) = (request.family.clone(), request.task_definition.clone());
        let row = self
            .store
            .call(move |c| ops::register_task_definition(c, &family, &body, now, false))
            .await?
            .0;
        let created = self
            .deployer
            .create(DeployRequest {
                service: request.service,
                task_definition: row.name(),
                config: None,
                appspec_hooks,
                started_by: request.started_by,
                rollback_of: None,
            })
            .await
            .map_err(|e| match e {
                DeployError::ServiceNotFound(s) => DeploymentsError::ServiceNotFound(s),
                DeployError::Store(e) => DeploymentsError::Store(e),
                other => DeploymentsError::Refused(format!("{}: {other}", row.name())),
            })?;
        Ok((created.id, row.name()))
    }

    async fn state(&self, id: &str) -> Result<DeploymentState, DeploymentsError> {
        let owned = id.to_string();
        let row = self
            .store
            .call(move |c| ops::deployment(c, &owned))
            .await?
            .ok_or_else(|| DeploymentsError::DeploymentNotFound(id.to_string()))?;
        Ok(match (row.finished_at, row.status) {
            (None, _) => DeploymentState::Running,
            (Some(_), DeploymentStatus::Succeeded) => DeploymentState::Succeeded,
            (Some(_), status) => DeploymentState::Failed(format!(
                "deployment {id} {}{}",
                status.as_str().to_lowercase(),
                row.outcome.map(|o| format!(": {o}")).unwrap_or_default()
            )),
        })
    }
}
