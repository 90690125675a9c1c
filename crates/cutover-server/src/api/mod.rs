//! The HTTP JSON API under `/v1/`, described by `/v1/openapi.json`.
//!
//! Handlers are thin: they validate input, call the store or the apply
//! planner, and wake the controller. Long work never runs in a handler.

mod access_keys;
pub(crate) mod alarms;
mod apply;
pub(crate) mod auth;
mod body;
pub(crate) mod builds;
pub(crate) mod deployments;
mod error;
mod openapi;
pub(crate) mod pipelines;
mod registry;
pub(crate) mod scans;
pub(crate) mod services;
pub(crate) mod task_definitions;
mod tasks;
#[cfg(test)]
mod tests;
pub(crate) mod views;

use crate::controller::Controller;
use crate::hosts::api as hosts;
use crate::hosts::deploy_api as host_deployments;
use axum::Router;
use axum::routing::{delete, get, post, put};
use cutover_store::Store;
use std::sync::Arc;

pub(crate) use auth::{bearer, loopback_verdict};
pub(crate) use error::{ApiError, ApiResult};

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) clock: cutover_clock::SharedClock,
    pub(crate) controller: Arc<Controller>,
    pub(crate) dataplane: crate::dataplane::SharedDataPlane,
    pub(crate) deployer: Arc<crate::deploy::Deployer>,
    pub(crate) pipelines: Arc<cutover_ci::Pipelines>,
    pub(crate) alarms: tokio::sync::mpsc::UnboundedSender<crate::alarms::SetState>,
    pub(crate) started_at: u64,
    pub(crate) aws: Arc<crate::aws::Aws>,
    pub(crate) registry: Arc<cutover_registry::Registry>,
    /// The runtime of a service whose stack names none.
    pub(crate) default_runtime: String,
    /// The host agents (issue 12).
    pub(crate) fleet: Arc<crate::hosts::agents::AgentFleet>,
    /// Revisions' bundles for the agents.
    pub(crate) bundles: Arc<crate::hosts::bundles::DirBundles>,
    /// The scanning service as ECR's API and the gate see it.
    pub(crate) scans: Arc<dyn crate::registry::scans::Scans>,
    /// The same service: scan on push, advisory imports and status.
    pub(crate) scanner: Arc<crate::registry::scanning::ScanService>,
    /// Lifecycle previews and evaluation times (`registry::lifecycle`).
    pub(crate) lifecycle: Arc<crate::registry::lifecycle::Lifecycle>,
    /// Host deployments (issue 12).
    pub(crate) host_deployer: Arc<crate::hosts::deployer::HostDeployer>,
    /// The data directory (uploaded bundles are spooled under it).
    pub(crate) data_dir: std::path::PathBuf,
}

/// Every route, as (method, path): the OpenAPI test checks each is described.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/openapi.json"),
    ("get", "/v1/status"),
    ("get", "/v1/task-definitions"),
    ("post", "/v1/task-definitions"),
    ("get", "/v1/task-definitions/{name}"),
    ("post", "/v1/apply"),
    ("get", "/v1/services"),
    ("get", "/v1/services/{name}"),
    ("delete", "/v1/services/{name}"),
    ("put", "/v1/services/{name}/desired-count"),
    ("get", "/v1/services/{name}/events"),
    ("get", "/v1/services/{name}/logs"),
    ("get", "/v1/tasks"),
    ("get", "/v1/tasks/{id}"),
    ("get", "/v1/tasks/{id}/logs"),
    ("get", "/v1/deployments"),
    ("post", "/v1/deployments"),
    ("get", "/v1/deployments/{id}"),
    ("post", "/v1/deployments/{id}/stop"),
    ("post", "/v1/deployments/{id}/continue"),
    ("post", "/v1/host-deployments"),
    ("get", "/v1/host-deployments"),
    ("get", "/v1/host-deployments/{id}"),
    ("post", "/v1/host-deployments/{id}/stop"),
    ("put", "/v1/deployments/{id}/lifecycle-hooks/{execution_id}"),
    ("post", "/v1/services/{name}/rollback"),
    ("get", "/v1/alarms"),
    ("get", "/v1/alarms/{name}"),
    ("get", "/v1/alarms/{name}/history"),
    ("put", "/v1/alarms/{name}/state"),
    ("get", "/v1/events/stream"),
    ("get", "/v1/dataplane"),
    ("get", "/v1/pipelines"),
    ("get", "/v1/pipelines/{name}"),
    ("get", "/v1/pipelines/{name}/executions"),
    ("post", "/v1/pipelines/{name}/executions"),
    ("get", "/v1/pipelines/{name}/executions/{id}"),
    ("post", "/v1/pipelines/{name}/executions/{id}/stop"),
    ("post", "/v1/pipelines/{name}/executions/{id}/retry"),
    ("post", "/v1/pipelines/{name}/approvals"),
    ("put", "/v1/pipelines/{name}/transitions/{stage}"),
    ("post", "/v1/webhooks/{repository}"),
    ("get", "/v1/builds"),
    ("get", "/v1/builds/{id}"),
    ("get", "/v1/builds/{id}/logs"),
    ("get", "/v1/access-keys"),
    ("post", "/v1/access-keys"),
    ("delete", "/v1/access-keys/{id}"),
    ("post", "/v1/registry/gc"),
    ("get", "/v1/agents"),
    ("get", "/v1/agents/{name}"),
    ("delete", "/v1/agents/{name}"),
    ("post", "/v1/agents/{name}/key"),
    ("post", "/v1/agents/register"),
    ("get", "/v1/agents/{name}/poll"),
    ("post", "/v1/agents/{name}/results"),
    ("get", "/v1/agents/bundles/{digest}"),
    ("get", "/v1/registry/scans"),
    ("post", "/v1/registry/scans"),
    ("get", "/v1/vulnerabilities"),
    ("post", "/v1/vulnerabilities/import"),
    ("post", "/v1/registry/lifecycle"),
];

/// Builds the router; `token` enables bearer authentication.
pub(crate) fn router(state: AppState, token: Option<String>) -> Router {
    let console_token = token.clone();
    let api = Router::new()
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/status", get(services::status))
        .route(
            "/v1/task-definitions",
            get(task_definitions::list).post(task_definitions::register),
        )
        .route(
            "/v1/task-definitions/{name}",
            get(task_definitions::describe),
        )
        .route("/v1/apply", post(apply::apply))
        .route("/v1/services", get(services::list))
        .route(
            "/v1/services/{name}",
            get(services::describe).delete(services::delete),
        )
        .route("/v1/services/{name}/desired-count", put(services::scale))
        .route("/v1/services/{name}/events", get(services::events))
        .route("/v1/services/{name}/logs", get(tasks::service_logs))
        .route("/v1/tasks", get(tasks::list))
        .route("/v1/tasks/{id}", get(tasks::describe))
        .route("/v1/tasks/{id}/logs", get(tasks::logs))
        .route(
            "/v1/deployments",
            get(deployments::list).post(deployments::create),
        )
        .route("/v1/deployments/{id}", get(deployments::get))
        .route("/v1/deployments/{id}/stop", post(deployments::stop))
        .route(
            "/v1/deployments/{id}/continue",
            post(deployments::continue_),
        )
        .route(
            "/v1/deployments/{id}/lifecycle-hooks/{execution_id}",
            put(deployments::hook_status),
        )
        .route(
            "/v1/services/{name}/rollback",
            post(deployments::rollback_service),
        )
        .route("/v1/alarms", get(alarms::list))
        .route("/v1/alarms/{name}", get(alarms::describe))
        .route("/v1/alarms/{name}/history", get(alarms::history))
        .route("/v1/alarms/{name}/state", put(alarms::set_state))
        .route("/v1/events/stream", get(crate::console::stream::stream))
        .route("/v1/dataplane", get(alarms::dataplane))
        .route("/v1/pipelines", get(pipelines::list))
        .route("/v1/pipelines/{name}", get(pipelines::describe))
        .route(
            "/v1/pipelines/{name}/executions",
            get(pipelines::executions).post(pipelines::start),
        )
        .route(
            "/v1/pipelines/{name}/executions/{id}",
            get(pipelines::execution),
        )
        .route(
            "/v1/pipelines/{name}/executions/{id}/stop",
            post(pipelines::stop),
        )
        .route(
            "/v1/pipelines/{name}/executions/{id}/retry",
            post(pipelines::retry),
        )
        .route("/v1/pipelines/{name}/approvals", post(pipelines::approve))
        .route(
            "/v1/pipelines/{name}/transitions/{stage}",
            put(pipelines::transition),
        )
        .route("/v1/builds", get(builds::list))
        .route("/v1/builds/{id}", get(builds::get))
        .route("/v1/builds/{id}/logs", get(builds::logs))
        .route(
            "/v1/access-keys",
            get(access_keys::list).post(access_keys::create),
        )
        .route("/v1/access-keys/{id}", delete(access_keys::delete))
        .route("/v1/registry/gc", post(registry::gc))
        .route("/v1/agents", get(hosts::list))
        .route(
            "/v1/agents/{name}",
            get(hosts::describe).delete(hosts::deregister),
        )
        .route("/v1/agents/{name}/key", post(hosts::issue_key))
        .route("/v1/registry/scans", get(scans::report).post(scans::start))
        .route("/v1/vulnerabilities", get(scans::status))
        .route("/v1/vulnerabilities/import", post(scans::import))
        .route("/v1/registry/lifecycle", post(registry::lifecycle))
        .route(
            "/v1/host-deployments",
            // Bundles are streamed to disk, capped by the handler.
            post(host_deployments::create)
                .layer(axum::extract::DefaultBodyLimit::disable())
                .get(host_deployments::list),
        )
        .route("/v1/host-deployments/{id}", get(host_deployments::get))
        .route(
            "/v1/host-deployments/{id}/stop",
            post(host_deployments::stop),
        )
        .with_state(state.clone());
    let tokenless = token.is_none();
    let api = match token {
        Some(t) => api.layer(axum::middleware::from_fn_with_state(
            auth::Token(Arc::new(t)),
            auth::require_token,
        )),
        // No token: only loopback names and same-machine origins (DNS
        // rebinding and cross-site forms are refused).
        None => api.layer(axum::middleware::from_fn(auth::require_loopback)),
    };
    // Webhooks carry their own signature instead of the API token, and
    // AWS's protocols theirs (SigV4, verified before any handler runs).
    let console = crate::console::router(state.clone(), console_token);
    let hooks = Router::new()
        .route("/v1/webhooks/{repository}", post(pipelines::webhook))
        .with_state(state.clone());
    // Agents present their own keys (`crate::hosts::api`), the registry
    // its own credentials (Basic, ECR's tokens).
    let agents = hosts::agent_router(state.clone(), tokenless);
    api.merge(hooks)
        .merge(agents)
        .merge(crate::registry::router(state.clone()))
        .merge(crate::aws::router(state))
        .merge(console)
}
