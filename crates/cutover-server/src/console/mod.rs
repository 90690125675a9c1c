//! The web console: server-rendered pages at `/`, `/services/{name}`,
//! `/deployments/{id}`, `/pipelines/{name}`, `/alarms`, `/hosts`,
//! `/host-deployments/{id}` and `/registry`, with forms that
//! post the same actions as the `/v1` API, and one small embedded script
//! that keeps a page live from the API's event stream
//! (`GET /v1/events/stream`, [`stream`]).
//!
//! Pages read through the `/v1` handlers themselves (`api::services::list`
//! and the others) and render their `cutover_api` types: there is no second
//! copy of a query. Everything the browser loads is embedded in the binary.

mod actions;
mod alarms;
mod assets;
pub(crate) mod auth;
mod deployment;
mod hosts;
mod layout;
mod metrics;
mod pages;
mod pipeline;
mod registry;
pub(crate) mod stream;
#[cfg(test)]
mod tests;

use crate::api::AppState;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// The console's routes, behind its own sign-in and CSRF checks
/// ([`auth`]); `token` is the API's token, if any.
pub(crate) fn router(state: AppState, token: Option<String>) -> Router {
    let guard = auth::Guard::new(token.map(Arc::new));
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/services/{name}", get(pages::service))
        .route("/deployments/{id}", get(deployment::show))
        .route("/pipelines/{name}", get(pipeline::show))
        .route("/alarms", get(alarms::show))
        .route("/hosts", get(hosts::list))
        .route("/host-deployments", get(hosts::open))
        .route("/host-deployments/{id}", get(hosts::show))
        .route("/registry", get(registry::show))
        .route("/deployments/{id}/stop", post(actions::stop))
        .route("/deployments/{id}/continue", post(actions::continue_))
        .route(
            "/host-deployments/{id}/stop",
            post(actions::stop_host_deployment),
        )
        .route("/services/{name}/rollback", post(actions::rollback))
        .route("/pipelines/{name}/approvals", post(actions::approve))
        .route("/pipelines/{name}/executions", post(actions::start))
        .route(
            "/pipelines/{name}/executions/{id}/retry",
            post(actions::retry),
        )
        .route(
            "/pipelines/{name}/executions/{id}/stop",
            post(actions::stop_execution),
        )
        .route("/sign-out", post(auth::sign_out))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            auth::require_session,
        ));
    let open = Router::new()
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .with_state(guard.clone())
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            auth::require_loopback_if_open,
        ));
    pages.merge(open)
}
