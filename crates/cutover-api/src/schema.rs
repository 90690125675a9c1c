//! OpenAPI schemas of the types this crate reuses from the pure crates
//! (which do not depend on utoipa): string enums listing their wire values,
//! and the located diagnostic.

use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

fn string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// Wire values of `cutover_core::task::TaskState`.
pub(crate) const TASK_STATES: &[&str] =
    &["PROVISIONING", "PENDING", "RUNNING", "STOPPING", "STOPPED"];
/// Wire values of `cutover_core::task::DesiredStatus`.
pub(crate) const DESIRED_STATUSES: &[&str] = &["RUNNING", "STOPPED"];
/// Wire values of `cutover_core::task::HealthStatus`.
pub(crate) const HEALTH_STATUSES: &[&str] = &["UNKNOWN", "HEALTHY", "UNHEALTHY"];
/// Wire values of `cutover_deploy::bluegreen::DeploymentStatus`.
pub(crate) const DEPLOYMENT_STATUSES: &[&str] = &[
    "Created",
    "Queued",
    "InProgress",
    "Baking",
    "Ready",
    "Succeeded",
    "Failed",
    "Stopped",
];
/// Wire values of `cutover_core::service::ServiceStatus`.
pub(crate) const SERVICE_STATUSES: &[&str] = &["ACTIVE", "DRAINING"];
/// Wire values of `cutover_deploy::DeploymentKind`.
pub(crate) const DEPLOYMENT_KINDS: &[&str] = &["BLUE_GREEN", "ROLLING", "ROLLBACK"];
/// Wire values of `cutover_deploy::bluegreen::EventStatus`.
pub(crate) const EVENT_STATUSES: &[&str] =
    &["Pending", "InProgress", "Succeeded", "Failed", "Skipped"];
/// Wire values of `cutover_deploy::bluegreen::HookStatus`.
pub(crate) const HOOK_STATUSES: &[&str] = &["Succeeded", "Failed"];
/// Wire values of `cutover_deploy::alarm::AlarmState`.
pub(crate) const ALARM_STATES: &[&str] = &["OK", "ALARM", "INSUFFICIENT_DATA"];
/// Wire values of `cutover_pipeline::engine::ExecutionStatus`.
pub(crate) const EXECUTION_STATUSES: &[&str] = &[
    "InProgress",
    "Stopping",
    "Stopped",
    "Succeeded",
    "Superseded",
    "Failed",
];
/// Wire values of `cutover_pipeline::engine::StageStatus`.
pub(crate) const STAGE_STATUSES: &[&str] =
    &["InProgress", "Succeeded", "Failed", "Stopped", "Skipped"];
/// Wire values of `cutover_pipeline::engine::ActionStatus`.
pub(crate) const ACTION_STATUSES: &[&str] = &["InProgress", "Succeeded", "Failed", "Abandoned"];
/// Wire values of `cutover_pipeline::engine::RetryMode`.
pub(crate) const RETRY_MODES: &[&str] = &["FAILED_ACTIONS", "ALL_ACTIONS"];
/// Wire values of `cutover_pipeline::model::ExecutionMode`.
pub(crate) const EXECUTION_MODES: &[&str] = &["QUEUED", "SUPERSEDED", "PARALLEL"];

pub(crate) fn task_state() -> Object {
    string_enum(TASK_STATES)
}
pub(crate) fn desired_status() -> Object {
    string_enum(DESIRED_STATUSES)
}
pub(crate) fn health_status() -> Object {
    string_enum(HEALTH_STATUSES)
}
pub(crate) fn deployment_status() -> Object {
    string_enum(DEPLOYMENT_STATUSES)
}
pub(crate) fn service_status() -> Object {
    string_enum(SERVICE_STATUSES)
}
pub(crate) fn deployment_kind() -> Object {
    string_enum(DEPLOYMENT_KINDS)
}
pub(crate) fn event_status() -> Object {
    string_enum(EVENT_STATUSES)
}
pub(crate) fn hook_status() -> Object {
    string_enum(HOOK_STATUSES)
}
pub(crate) fn alarm_state() -> Object {
    string_enum(ALARM_STATES)
}
pub(crate) fn execution_status() -> Object {
    string_enum(EXECUTION_STATUSES)
}
pub(crate) fn stage_status() -> Object {
    string_enum(STAGE_STATUSES)
}
pub(crate) fn action_status() -> Object {
    string_enum(ACTION_STATUSES)
}
pub(crate) fn retry_mode() -> Object {
    string_enum(RETRY_MODES)
}
pub(crate) fn execution_mode() -> Object {
    string_enum(EXECUTION_MODES)
}

/// The schema of `cutover_spec::diag::Diagnostic` (checked against its
/// serialisation by a test).
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = Diagnostic)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DiagnosticSchema {
    /// `error` or `warning`.
    #[schema(inline, value_type = String, pattern = "^(error|warning)$")]
    severity: String,
    /// The file name as given by the caller.
    file: String,
    /// 1-based line.
    line: Option<u32>,
    /// 1-based column, in characters.
    column: Option<u32>,
    /// The field path; empty for the whole document.
    path: String,
    /// What is wrong.
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    fn all_parse<T: DeserializeOwned + serde::Serialize>(values: &[&str]) {
        for v in values {
            let parsed: T =
                serde_json::from_value(serde_json::json!(v)).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(serde_json::to_value(parsed).unwrap(), serde_json::json!(v));
        }
    }

    #[test]
    fn documented_enum_values_are_the_wire_values() {
        use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
        all_parse::<TaskState>(TASK_STATES);
        assert_eq!(TASK_STATES.len(), TaskState::ALL.len());
        all_parse::<DesiredStatus>(DESIRED_STATUSES);
        all_parse::<HealthStatus>(HEALTH_STATUSES);
        all_parse::<cutover_deploy::bluegreen::DeploymentStatus>(DEPLOYMENT_STATUSES);
        assert_eq!(
            DEPLOYMENT_STATUSES.len(),
            cutover_deploy::DeploymentStatus::ALL.len()
        );
        all_parse::<cutover_core::service::ServiceStatus>(SERVICE_STATUSES);
        assert_eq!(
            SERVICE_STATUSES.len(),
            cutover_core::service::ServiceStatus::ALL.len()
        );
        all_parse::<cutover_deploy::DeploymentKind>(DEPLOYMENT_KINDS);
        assert_eq!(
            DEPLOYMENT_KINDS.len(),
            cutover_deploy::DeploymentKind::ALL.len()
        );
        all_parse::<cutover_deploy::bluegreen::EventStatus>(EVENT_STATUSES);
        all_parse::<cutover_deploy::bluegreen::HookStatus>(HOOK_STATUSES);
        all_parse::<cutover_deploy::alarm::AlarmState>(ALARM_STATES);
        assert_eq!(
            ALARM_STATES.len(),
            cutover_deploy::alarm::AlarmState::ALL.len()
        );
        all_parse::<cutover_pipeline::engine::ExecutionStatus>(EXECUTION_STATUSES);
        all_parse::<cutover_pipeline::engine::StageStatus>(STAGE_STATUSES);
        all_parse::<cutover_pipeline::engine::ActionStatus>(ACTION_STATUSES);
        all_parse::<cutover_pipeline::engine::RetryMode>(RETRY_MODES);
        all_parse::<cutover_pipeline::model::ExecutionMode>(EXECUTION_MODES);
    }
}
