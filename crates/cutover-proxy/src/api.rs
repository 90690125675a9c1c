//! The JSON documents of the admin API, shared by the server ([`crate::run`]) and
//! [`crate::client::AdminClient`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::ProxyConfig;
use crate::health::TargetState;

/// `GET /v1/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigResponse {
    /// Version of the configuration in force.
    pub version: u64,
    /// The configuration in force.
    pub config: ProxyConfig,
}

/// The answer to every change: the version now in force (and persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResponse {
    /// Version of the configuration in force.
    pub version: u64,
}

/// `PUT /v1/listeners/{name}/weights`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsRequest {
    /// Index of the rule whose forward changes; the default action when absent or null.
    #[serde(default)]
    pub rule: Option<usize>,
    /// New weights by target group; groups not named keep theirs, groups not yet in the forward
    /// are appended.
    pub weights: BTreeMap<String, u32>,
}

/// `PUT /v1/target-groups/{name}/targets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsRequest {
    /// The complete list of targets; removed ones drain.
    pub targets: Vec<String>,
}

/// An error answer (status 400, 401, 404 or 500).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The located message, `<request>:3:14: listeners[0].address: ...`.
    pub error: String,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// Version of the configuration in force.
    pub version: u64,
    /// Every target group, in configuration order.
    pub target_groups: Vec<GroupHealth>,
}

/// Health of one target group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupHealth {
    /// Group name.
    pub name: String,
    /// Targets that receive traffic.
    pub healthy_host_count: usize,
    /// Targets failing their health check.
    pub unhealthy_host_count: usize,
    /// Registered targets, then draining ones.
    pub targets: Vec<TargetHealth>,
}

/// Health of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealth {
    /// `host:port` as configured.
    pub address: String,
    /// `initial`, `healthy`, `unhealthy`, `draining` or `unused`.
    pub state: TargetState,
    /// Why (the last probe's result, or the drain).
    pub reason: String,
    /// Requests and tunnels in flight.
    pub in_flight: usize,
}

impl HealthReport {
    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&GroupHealth> {
        self.target_groups.iter().find(|g| g.name == name)
    }
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Version of the configuration in force.
    pub version: u64,
    /// Seconds since the proxy started.
    pub uptime_seconds: u64,
    /// Listeners in force.
    pub listeners: Vec<ListenerStatus>,
}

/// One listener in a [`StatusReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// Name.
    pub name: String,
    /// Bound address.
    pub address: String,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// Open downstream connections.
    pub active_connections: i64,
}

/// Persisted state: `<state-dir>/config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Persisted {
    pub(crate) version: u64,
    pub(crate) config: serde_json::Value,
}
