//! Alarms and the data plane's status.

use crate::services::Event;
use cutover_deploy::alarm::AlarmState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An alarm (CloudWatch-style).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// Name.
    pub name: String,
    /// The stack's declaration, as applied; `null` when the stored one
    /// cannot be read by this server (`reason` then says why).
    #[schema(value_type = Option<Object>)]
    pub spec: Option<cutover_spec::stack::Alarm>,
    /// Its state.
    #[schema(schema_with = crate::schema::alarm_state)]
    pub state: AlarmState,
    /// Why it is in that state.
    pub reason: String,
    /// Unix ms.
    pub updated_at: u64,
}

/// `GET /v1/alarms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlarmList {
    /// Every alarm.
    pub alarms: Vec<Alarm>,
}

/// `GET /v1/alarms/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlarmDescription {
    /// The alarm.
    pub alarm: Alarm,
    /// Its state changes, newest first.
    pub history: Vec<Event>,
}

/// `GET /v1/alarms/{name}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlarmHistory {
    /// State changes, newest first.
    pub history: Vec<Event>,
}

/// Body of `PUT /v1/alarms/{name}/state` (CloudWatch's SetAlarmState).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAlarmStateRequest {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA` (anything else is refused with
    /// 400).
    #[schema(schema_with = crate::schema::alarm_state)]
    pub state: AlarmState,
    /// Why (default "set by operator").
    #[serde(default)]
    pub reason: String,
}

/// Answer of `PUT /v1/alarms/{name}/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SetAlarmStateResponse {
    /// The alarm.
    pub alarm: String,
    /// The state asked for.
    #[schema(schema_with = crate::schema::alarm_state)]
    pub requested: AlarmState,
}

/// `GET /v1/dataplane`: the proxy's own reports, passed through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DataPlaneStatus {
    /// The proxy's admin address.
    pub admin: String,
    /// The proxy's status report (`cutover_proxy::api::StatusReport`).
    pub status: serde_json::Value,
    /// The proxy's health report (`cutover_proxy::api::HealthReport`).
    pub health: serde_json::Value,
}
