//! Host deployments (`cutover deploy --application`, `cutover deployments
//! get` of a host deployment, CodeDeploy's `ListDeploymentTargets`): what
//! happened on each host, event by event.

use cutover_spec::HostEvent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where one lifecycle event of one host is (CodeDeploy's
/// `LifecycleEventStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum HostEventStatus {
    /// Sent to the agent (or to the data plane), not finished.
    InProgress,
    /// Finished successfully.
    Succeeded,
    /// A script failed, timed out, or the agent could not do it.
    Failed,
    /// The deployment ended, or the agent was lost, while it ran.
    Skipped,
}

/// One lifecycle event of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostEventView {
    /// The event.
    #[schema(value_type = String)]
    pub event: HostEvent,
    /// Where it is.
    pub status: HostEventStatus,
    /// The command id sent to the agent (`None` for the data plane's events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The scripts' output (its tail).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was issued (ms since the epoch, the server's clock).
    pub started_at_ms: u64,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<u64>,
}

/// Where one host of a deployment is (CodeDeploy's `TargetStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum HostTargetStatus {
    /// Not started.
    Pending,
    /// Running its lifecycle.
    InProgress,
    /// Every event succeeded.
    Succeeded,
    /// An event failed, or its agent was lost.
    Failed,
    /// The deployment ended before or while it ran.
    Skipped,
}

/// One host of a host deployment (CodeDeploy's deployment target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostTargetView {
    /// The host's name.
    pub host: String,
    /// Its zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Where it is.
    pub status: HostTargetStatus,
    /// Its lifecycle events so far, in order.
    pub events: Vec<HostEventView>,
}

/// A host deployment, as `cutover deployments get` and CodeDeploy's
/// `GetDeployment` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostDeploymentView {
    /// Its id.
    pub id: String,
    /// The application.
    pub application: String,
    /// The deployment group.
    pub deployment_group: String,
    /// Where it is.
    #[schema(value_type = String)]
    pub status: cutover_deploy::hosts::HostDeploymentStatus,
    /// Why it ended, unless it succeeded (the planner's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The revision's bundle.
    pub revision: crate::agents::BundleRef,
    /// Where the revision came from.
    pub source: String,
    /// The deployment configuration.
    pub config: String,
    /// The deployment it rolls back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// Its automatic rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_by: Option<String>,
    /// When it was created (ms since the epoch).
    pub created_at_ms: u64,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// Each host and its events.
    pub targets: Vec<HostTargetView>,
}

/// `POST /v1/host-deployments`: the bundle's bytes are the body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CreateHostDeploymentQuery {
    /// The application.
    pub application: String,
    /// The deployment group.
    pub deployment_group: String,
    /// A deployment configuration overriding the group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_config: Option<String>,
    /// The bundle's format (default `tar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>)]
    pub format: Option<crate::agents::BundleFormat>,
    /// Where the revision came from, for people (a path, a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Instead of a bundle (the body is then empty): a commit of a stack
    /// repository, `REPOSITORY@REF` or `REF` when the stack declares one
    /// repository (`cutover deploy --revision git:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<String>,
}

/// `POST /v1/host-deployments/{id}/stop`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StopHostDeploymentQuery {
    /// Roll the stopped deployment back to the last good revision.
    #[serde(default)]
    pub rollback: bool,
}

/// `GET /v1/host-deployments`: newest first, optionally one group's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListHostDeploymentsQuery {
    /// Only this application's deployments.
    #[serde(default)]
    pub application: Option<String>,
    /// Only this deployment group's (with `application`).
    #[serde(default)]
    pub deployment_group: Option<String>,
    /// At most this many (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One host deployment in a list: [`HostDeploymentView`] without its hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostDeploymentSummary {
    /// Its id.
    pub id: String,
    /// The application.
    pub application: String,
    /// The deployment group.
    pub deployment_group: String,
    /// Where it is.
    #[schema(value_type = String)]
    pub status: cutover_deploy::hosts::HostDeploymentStatus,
    /// Why it ended, unless it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the revision came from.
    pub source: String,
    /// How many hosts it deploys to.
    pub hosts: usize,
    /// When it was created (ms since the epoch).
    pub created_at_ms: u64,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
}

impl From<HostDeploymentView> for HostDeploymentSummary {
    fn from(v: HostDeploymentView) -> Self {
        HostDeploymentSummary {
            hosts: v.targets.len(),
            id: v.id,
            application: v.application,
            deployment_group: v.deployment_group,
            status: v.status,
            reason: v.reason,
            source: v.source,
            created_at_ms: v.created_at_ms,
            finished_at_ms: v.finished_at_ms,
        }
    }
}

/// `GET /v1/host-deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostDeploymentList {
    /// Newest first.
    pub host_deployments: Vec<HostDeploymentSummary>,
}
