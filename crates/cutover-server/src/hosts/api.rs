//! `/v1/agents`: the agents' own calls (registration, long polls, results,
//! bundle downloads), authenticated by agent keys instead of the API token,
//! and the operators' calls (list, describe, deregister, issue a key),
//! behind the API token like every other `/v1` route.
//!
//! Who may act as agent `NAME`: a caller presenting `NAME`'s key
//! (`Authorization: Bearer <key>`). Without a key, only on a token-less
//! server reached through a loopback name (the API's own rule for
//! token-less calls, `api::auth`) and only for a name that has no key.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cutover_api::agents::{
    AGENT_HEADER, AgentKey, AgentList, AgentPoll, AgentRegistration, AgentView, CommandResult,
    DeregisterAgentResponse, PollQuery, ResultAck,
};
use cutover_store::agents::Recorded;

use super::agents::{Presented, valid_name};
use super::fleet::FleetError;
use crate::api::{ApiError, ApiResult, AppState};

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        match e {
            FleetError::UnknownHost(name) => ApiError::not_found(format!("agent {name:?}")),
            FleetError::Store(e) => e.into(),
            FleetError::Bundle(e) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("bundle: {e}"))
            }
        }
    }
}

#[derive(Clone)]
struct AgentState {
    app: AppState,
    /// The server has no API token.
    tokenless: bool,
}

/// The routes agents call (their own authentication).
pub(crate) fn agent_router(app: AppState, tokenless: bool) -> axum::Router {
    axum::Router::new()
        .route("/v1/agents/register", post(register))
        .route("/v1/agents/{name}/poll", get(poll))
        .route("/v1/agents/{name}/results", post(results))
        .route("/v1/agents/bundles/{digest}", get(bundle))
        .with_state(AgentState { app, tokenless })
}

/// Refuses the call unless it may act as agent `name`.
async fn authorize(st: &AgentState, headers: &HeaderMap, name: &str) -> ApiResult<()> {
    if !valid_name(name) {
        return Err(ApiError::bad_request(format!(
            "agent name {name:?}: use 1 to 100 of A-Z a-z 0-9 . _ - (not \"register\" or \"bundles\")"
        )));
    }
    let open = st.tokenless && crate::api::loopback_verdict(headers).is_ok();
    let presented = match crate::api::bearer(headers) {
        None => Presented::Nothing,
        Some(key) => match key.split_once(':') {
            Some((id, secret)) => Presented::AwsKey(st.app.aws.keys.user_arn_of_pair(
                id,
                secret,
                st.app.clock.now_ms(),
            )),
            None => Presented::AgentKey(key),
        },
    };
    st.app
        .fleet
        .authenticate(name, presented, open)
        .await?
        .map_err(|e| {
            tracing::warn!(agent = %name, error = %e, "agent call refused");
            ApiError::new(StatusCode::UNAUTHORIZED, e.to_string())
        })
}

async fn register(
    State(st): State<AgentState>,
    headers: HeaderMap,
    Json(reg): Json<AgentRegistration>,
) -> ApiResult<Json<AgentView>> {
    authorize(&st, &headers, &reg.name).await?;
    Ok(Json(st.app.fleet.register(reg).await?))
}

async fn poll(
    State(st): State<AgentState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<PollQuery>,
) -> ApiResult<Json<AgentPoll>> {
    authorize(&st, &headers, &name).await?;
    let wait = Duration::from_secs(u64::from(q.wait.unwrap_or(20)));
    Ok(Json(
        st.app.fleet.poll(&name, q.running.as_deref(), wait).await?,
    ))
}

async fn results(
    State(st): State<AgentState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(result): Json<CommandResult>,
) -> ApiResult<Json<ResultAck>> {
    authorize(&st, &headers, &name).await?;
    match st.app.fleet.report(&name, result.clone()).await? {
        Recorded::Yes => Ok(Json(ResultAck { recorded: true })),
        Recorded::Already => Ok(Json(ResultAck { recorded: false })),
        Recorded::Unknown => Err(ApiError::not_found(format!(
            "command {:?} of agent {name:?}",
            result.id
        ))),
    }
}

async fn bundle(
    State(st): State<AgentState>,
    headers: HeaderMap,
    Path(digest): Path<String>,
) -> ApiResult<Response> {
    let name = headers
        .get(AGENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    authorize(&st, &headers, &name).await?;
    let Some((path, _)) = st.app.bundles.find(&digest) else {
        return Err(ApiError::not_found(format!("bundle {digest:?}")));
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::from(FleetError::Bundle(e)))?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    let mut resp = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(len) = len {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    }
    Ok(resp)
}

/// `GET /v1/agents`.
pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<AgentList>> {
    Ok(Json(AgentList {
        agents: st.fleet.views().await?,
    }))
}

/// `GET /v1/agents/{name}`.
pub(crate) async fn describe(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AgentView>> {
    Ok(Json(st.fleet.view(&name).await?))
}

/// `DELETE /v1/agents/{name}`.
pub(crate) async fn deregister(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<DeregisterAgentResponse>> {
    if !st.fleet.deregister(&name).await? {
        return Err(ApiError::not_found(format!("agent {name:?}")));
    }
    Ok(Json(DeregisterAgentResponse { name }))
}

/// `POST /v1/agents/{name}/key`: `cutover agents register NAME`.
pub(crate) async fn issue_key(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AgentKey>> {
    if !valid_name(&name) {
        return Err(ApiError::bad_request(format!(
            "agent name {name:?}: use 1 to 100 of A-Z a-z 0-9 . _ - (not \"register\" or \"bundles\")"
        )));
    }
    let key = st.fleet.issue_key(&name).await?;
    tracing::info!(agent = %name, "agent key issued");
    Ok(Json(AgentKey { name, key }))
}
