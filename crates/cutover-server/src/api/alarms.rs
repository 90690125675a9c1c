//! Alarms: list, describe with history, and set-state for drills (as
//! CloudWatch's SetAlarmState).

use super::body::Body;
use super::{ApiError, ApiResult, AppState, views};
use crate::alarms::SetState;
use axum::Json;
use axum::extract::{Path, State};
use cutover_api::alarms::{
    AlarmDescription, AlarmHistory, AlarmList, DataPlaneStatus, SetAlarmStateRequest,
    SetAlarmStateResponse,
};
use cutover_store::ops;

pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<AlarmList>> {
    let alarms = st
        .store
        .call(ops::list_alarms)
        .await?
        .into_iter()
        .map(views::alarm)
        .collect::<ApiResult<_>>()?;
    Ok(Json(AlarmList { alarms }))
}

pub(crate) async fn describe(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AlarmDescription>> {
    let alarm = st
        .store
        .call(ops::list_alarms)
        .await?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::not_found(format!("alarm {name:?}")))?;
    let subject = format!("alarm/{name}");
    let history = st
        .store
        .call(move |c| ops::events(c, &subject, 100))
        .await?;
    Ok(Json(AlarmDescription {
        alarm: views::alarm(alarm)?,
        history: views::events(history),
    }))
}

pub(crate) async fn history(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AlarmHistory>> {
    let history = st
        .store
        .call(move |c| ops::events(c, &format!("alarm/{name}"), 1000))
        .await?;
    Ok(Json(AlarmHistory {
        history: views::events(history),
    }))
}

pub(crate) async fn set_state(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Body(req): Body<SetAlarmStateRequest>,
) -> ApiResult<Json<SetAlarmStateResponse>> {
    let state = req.state;
    if !st
        .store
        .call(ops::list_alarms)
        .await?
        .iter()
        .any(|a| a.name == name)
    {
        return Err(ApiError::not_found(format!("alarm {name:?}")));
    }
    st.alarms
        .send(SetState {
            name: name.clone(),
            state,
            reason: if req.reason.is_empty() {
                "set by operator".into()
            } else {
                req.reason
            },
        })
        .map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "alarm evaluator is not running",
            )
        })?;
    Ok(Json(SetAlarmStateResponse {
        alarm: name,
        requested: state,
    }))
}

pub(crate) async fn dataplane(State(st): State<AppState>) -> ApiResult<Json<DataPlaneStatus>> {
    let status = st
        .dataplane
        .status()
        .await
        .map_err(|e| anyhow::anyhow!("data plane: {e}"))?;
    let health = st
        .dataplane
        .health()
        .await
        .map_err(|e| anyhow::anyhow!("data plane: {e}"))?;
    Ok(Json(DataPlaneStatus {
        admin: st.dataplane.admin(),
        status: serde_json::to_value(status).map_err(anyhow::Error::from)?,
        health: serde_json::to_value(health).map_err(anyhow::Error::from)?,
    }))
}
