//! The stack's `applications:` section (CodeDeploy applications for hosts,
//! `computePlatform: Server`) and the host half of `deploymentConfigs:`
//! (`minimumHealthyHosts`, `zonalConfig`).
//!
//! ```yaml
//! applications:
//!   shop:
//!     computePlatform: Server
//!     deploymentGroups:
//!       prod:
//!         onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
//!         deploymentConfig: CodeDeployDefault.OneAtATime
//!         loadBalancer: {listener: 127.0.0.1:18090}
//!         autoRollback: [DEPLOYMENT_FAILURE]
//! deploymentConfigs:
//!   TwoAtATime:
//!     computePlatform: Server
//!     minimumHealthyHosts: {type: HOST_COUNT, value: 2}
//! ```
//!
//! Hosts are chosen by on-premises tags as CodeDeploy chooses them
//! ([`DeploymentGroup::selects`]): `onPremisesTagFilters` is an OR of
//! filters; `onPremisesTagSet` is a list of up to three groups, and a host
//! must match a filter of every group (an AND of ORs). The two cannot be
//! given together. Checks that need the rest of the stack (alarm and
//! deployment config names, listener addresses) are here too, located.

mod check;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

pub(super) use self::check::{validate, validate_server_config};
use super::{DeploymentConfig, RollbackEvent, Stack, TargetHealthCheck};
use crate::appspec_host::FileExistsBehavior;

/// The predefined configurations for hosts.
pub const PREDEFINED_HOST_CONFIGS: [&str; 3] = [
    "CodeDeployDefault.OneAtATime",
    "CodeDeployDefault.HalfAtATime",
    "CodeDeployDefault.AllAtOnce",
];

/// The configuration a deployment group uses when it names none (as CodeDeploy).
pub const DEFAULT_HOST_CONFIG: &str = "CodeDeployDefault.OneAtATime";

/// One application: its deployment groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Always `Server` here (ECS applications are `services:`).
    pub compute_platform: ComputePlatform,
    /// Deployment groups by name.
    #[serde(default)]
    pub deployment_groups: BTreeMap<String, DeploymentGroup>,
}

/// What a CodeDeploy application or configuration deploys to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComputePlatform {
    /// EC2/on-premises hosts running the agent.
    Server,
    /// ECS services (blue/green).
    #[serde(rename = "ECS")]
    Ecs,
}

/// A set of hosts chosen by tags, and how a revision reaches them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentGroup {
    /// A host matching any filter is in the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_premises_tag_filters: Vec<TagFilter>,
    /// A host matching a filter of every group is in the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_premises_tag_set: Vec<Vec<TagFilter>>,
    /// A predefined `CodeDeployDefault.*` host configuration or one of `deploymentConfigs`.
    #[serde(default = "default_host_config")]
    pub deployment_config: String,
    /// One load balancer (or `loadBalancers`, not both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<HostLoadBalancer>,
    /// Several load balancers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<HostLoadBalancer>,
    /// Names of stack alarms that stop a deployment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// When a deployment rolls back on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_rollback: Vec<RollbackEvent>,
    /// An `ApplicationStop` failure does not fail the host.
    #[serde(default)]
    pub ignore_application_stop_failures: bool,
    /// Default for files already at a destination (the appspec's wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_exists_behavior: Option<FileExistsBehavior>,
    /// What happens to a host that joins the group after a deployment.
    #[serde(default)]
    pub outdated_instances_strategy: OutdatedInstancesStrategy,
    /// Blue/green onto replacement hosts (in place when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<HostBlueGreen>,
}

fn default_host_config() -> String {
    DEFAULT_HOST_CONFIG.to_owned()
}

/// A tag filter as CodeDeploy writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagFilter {
    /// The tag key (KEY_ONLY, KEY_AND_VALUE).
    #[serde(rename = "Key", default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The tag value (VALUE_ONLY, KEY_AND_VALUE).
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// How the host's tags are compared.
    #[serde(rename = "Type")]
    pub kind: TagFilterType,
}

/// `Type` of a tag filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagFilterType {
    /// A tag with this key, whatever its value.
    KeyOnly,
    /// A tag with this value, whatever its key.
    ValueOnly,
    /// A tag with this key and this value.
    KeyAndValue,
}

impl TagFilter {
    /// Whether a host with `tags` matches.
    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        let key = self.key.as_deref();
        let value = self.value.as_deref();
        match self.kind {
            TagFilterType::KeyOnly => key.is_some_and(|k| tags.contains_key(k)),
            TagFilterType::ValueOnly => value.is_some_and(|v| tags.values().any(|t| t == v)),
            TagFilterType::KeyAndValue => {
                matches!((key, value), (Some(k), Some(v)) if tags.get(k).is_some_and(|t| t == v))
            }
        }
    }
}

/// `outdatedInstancesStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutdatedInstancesStrategy {
    /// A host that joins later gets the group's current revision.
    #[default]
    Update,
    /// It gets nothing until the next deployment.
    Ignore,
}

/// A target group of the data plane that the group's hosts serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostLoadBalancer {
    /// Address of the production listener.
    #[serde(deserialize_with = "super::socket_addr")]
    pub listener: SocketAddr,
    /// Target health check (the services' type and defaults).
    #[serde(default)]
    pub health_check: TargetHealthCheck,
    /// Seconds a leaving host keeps serving in-flight requests, 0..=3600 (default 300).
    #[serde(default = "super::default_deregistration_delay")]
    pub deregistration_delay_seconds: u64,
}

/// Blue/green onto replacement hosts the operator provisioned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostBlueGreen {
    /// Replacement hosts: those matching any of these filters.
    pub replacement_tag_filters: Vec<TagFilter>,
    /// How traffic moves: a predefined `CodeDeployDefault.ECS*` or a stack
    /// configuration with `trafficRouting` (default all at once).
    #[serde(default = "default_traffic_config")]
    pub traffic_config: String,
    /// Minutes before the original hosts' application is stopped, 0..=2880 (default 60).
    #[serde(default = "default_termination_wait")]
    pub termination_wait_minutes: u64,
    /// What happens to the original hosts after the wait.
    #[serde(default)]
    pub original_hosts: OriginalHostsAction,
}

fn default_traffic_config() -> String {
    super::DEFAULT_DEPLOYMENT_CONFIG.to_owned()
}

fn default_termination_wait() -> u64 {
    60
}

/// What happens to the original hosts of a blue/green deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OriginalHostsAction {
    /// Their application is stopped (`ApplicationStop`) after the wait
    /// (Cutover cannot terminate machines; CodeDeploy's `TERMINATE`).
    #[default]
    Stop,
    /// They stay as they are, out of the load balancer.
    KeepAlive,
}

/// `minimumHealthyHosts` of a Server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinimumHealthyHosts {
    /// What `value` counts.
    #[serde(rename = "type")]
    pub kind: MinimumHealthyHostsType,
    /// Hosts, or a percentage of them (0..=99 for FLEET_PERCENT).
    pub value: u32,
}

/// `minimumHealthyHosts.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MinimumHealthyHostsType {
    /// An absolute number of hosts.
    HostCount,
    /// A percentage of the hosts of the deployment, rounded up.
    FleetPercent,
}

/// `zonalConfig` of a Server configuration: zone by zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZonalConfig {
    /// Wait after the first zone (default: `monitorDurationInSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_zone_monitor_duration_in_seconds: Option<u64>,
    /// Wait after each later zone before the next (default 0).
    #[serde(default)]
    pub monitor_duration_in_seconds: u64,
    /// Minimum healthy hosts within each zone (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_hosts_per_zone: Option<MinimumHealthyHosts>,
}

/// How many hosts a configuration keeps healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostsRule {
    /// `CodeDeployDefault.OneAtATime`: one host at a time; a failure of the
    /// last host alone does not fail the deployment.
    OneAtATime,
    /// `CodeDeployDefault.HalfAtATime`: up to half the hosts at a time
    /// (at least one), half of them (rounded up) must succeed.
    HalfAtATime,
    /// `CodeDeployDefault.AllAtOnce`: every host at once, one must succeed.
    AllAtOnce,
    /// A custom minimum number or share of healthy hosts.
    Minimum(MinimumHealthyHosts),
}

/// A host deployment configuration resolved by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConfig {
    /// How many hosts stay healthy.
    pub rule: HostsRule,
    /// Zone by zone, if set.
    pub zonal: Option<ZonalConfig>,
}

impl HostConfig {
    /// A predefined configuration by name.
    pub fn predefined(name: &str) -> Option<HostConfig> {
        let rule = match name {
            "CodeDeployDefault.OneAtATime" => HostsRule::OneAtATime,
            "CodeDeployDefault.HalfAtATime" => HostsRule::HalfAtATime,
            "CodeDeployDefault.AllAtOnce" => HostsRule::AllAtOnce,
            _ => return None,
        };
        Some(HostConfig { rule, zonal: None })
    }
}

impl DeploymentConfig {
    /// The platform this configuration is for: as written, else Server when
    /// it has `minimumHealthyHosts`, else ECS.
    pub fn platform(&self) -> ComputePlatform {
        self.compute_platform
            .unwrap_or(if self.minimum_healthy_hosts.is_some() {
                ComputePlatform::Server
            } else {
                ComputePlatform::Ecs
            })
    }

    /// This configuration for hosts, if it is one (Server, with
    /// `minimumHealthyHosts`).
    pub fn host_config(&self) -> Option<HostConfig> {
        (self.platform() == ComputePlatform::Server).then_some(HostConfig {
            rule: HostsRule::Minimum(self.minimum_healthy_hosts?),
            zonal: self.zonal_config,
        })
    }
}

impl Stack {
    /// Resolves a host configuration name: predefined or one of
    /// `deploymentConfigs` for Server.
    pub fn host_config(&self, name: &str) -> Option<HostConfig> {
        if let Some(c) = self.deployment_configs.get(name) {
            return c.host_config();
        }
        HostConfig::predefined(name)
    }
}

impl DeploymentGroup {
    /// Whether a host with `tags` is in the group (CodeDeploy's rules: any
    /// filter of `onPremisesTagFilters`, or a filter of every group of
    /// `onPremisesTagSet`). A group with no filters selects no host.
    pub fn selects(&self, tags: &BTreeMap<String, String>) -> bool {
        if !self.on_premises_tag_filters.is_empty() {
            return self.on_premises_tag_filters.iter().any(|f| f.matches(tags));
        }
        !self.on_premises_tag_set.is_empty()
            && self
                .on_premises_tag_set
                .iter()
                .all(|group| group.iter().any(|f| f.matches(tags)))
    }

    /// Every load balancer (`loadBalancer` and `loadBalancers`).
    pub fn all_load_balancers(&self) -> impl Iterator<Item = &HostLoadBalancer> {
        self.load_balancer.iter().chain(&self.load_balancers)
    }
}

impl HostBlueGreen {
    /// Whether a host with `tags` is a replacement host.
    pub fn is_replacement(&self, tags: &BTreeMap<String, String>) -> bool {
        self.replacement_tag_filters.iter().any(|f| f.matches(tags))
    }
}
