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

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{DeploymentConfig, RollbackEvent, Stack, TargetHealthCheck};
use crate::appspec_host::FileExistsBehavior;
use crate::check::{Sink, suggest};
use crate::doc::{Path, quote};

/// The predefined configurations for hosts.
pub const PREDEFINED_HOST_CONFIGS: [&str; 3] = [
    "CodeDeployDefault.OneAtATime",
    "CodeDeployDefault.HalfAtATime",
    "CodeDeployDefault.AllAtOnce",
];

/// The configuration a deployment group uses when it names none (as CodeDeploy).
pub const DEFAULT_HOST_CONFIG: &str = "CodeDeployDefault.OneAtATime";

/// At most this many groups in `onPremisesTagSet` (as CodeDeploy).
const MAX_TAG_SET_GROUPS: usize = 3;

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
}

impl Stack {
    /// Resolves a host configuration name: predefined or one of
    /// `deploymentConfigs` for Server.
    pub fn host_config(&self, name: &str) -> Option<HostConfig> {
        if let Some(c) = self.deployment_configs.get(name) {
            return (c.platform() == ComputePlatform::Server).then_some(HostConfig {
                rule: HostsRule::Minimum(c.minimum_healthy_hosts?),
                zonal: c.zonal_config,
            });
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

/// Checks the host fields of a deployment configuration; `true` when it is
/// a Server one (the caller then skips the ECS checks).
pub(super) fn validate_server_config(cfg: &DeploymentConfig, at: &Path, s: &Sink<'_>) -> bool {
    if cfg.platform() != ComputePlatform::Server {
        for (given, key) in [
            (cfg.minimum_healthy_hosts.is_some(), "minimumHealthyHosts"),
            (cfg.zonal_config.is_some(), "zonalConfig"),
        ] {
            if given {
                s.error_key(&at.key(key), "applies only to computePlatform: Server");
            }
        }
        return false;
    }
    for (given, key) in [
        (cfg.traffic_routing.is_some(), "trafficRouting"),
        (cfg.traffic_routing_config.is_some(), "trafficRoutingConfig"),
    ] {
        if given {
            s.error_key(
                &at.key(key),
                "does not apply to computePlatform: Server (a blue/green deployment group names its traffic configuration in blueGreen.trafficConfig)",
            );
        }
    }
    match &cfg.minimum_healthy_hosts {
        Some(m) => minimum(m, &at.key("minimumHealthyHosts"), s),
        None => s.error(at, "missing field \"minimumHealthyHosts\""),
    }
    if let Some(z) = &cfg.zonal_config {
        let zp = at.key("zonalConfig");
        if let Some(m) = &z.minimum_healthy_hosts_per_zone {
            minimum(m, &zp.key("minimumHealthyHostsPerZone"), s);
        }
        let day = 24 * 3600;
        s.range(
            &zp.key("monitorDurationInSeconds"),
            z.monitor_duration_in_seconds,
            0,
            day,
            " seconds",
        );
        if let Some(f) = z.first_zone_monitor_duration_in_seconds {
            s.range(
                &zp.key("firstZoneMonitorDurationInSeconds"),
                f,
                0,
                day,
                " seconds",
            );
        }
    }
    true
}

fn minimum(m: &MinimumHealthyHosts, at: &Path, s: &Sink<'_>) {
    if m.kind == MinimumHealthyHostsType::FleetPercent {
        s.range(&at.key("value"), m.value, 0, 99, "");
    }
}

/// Checks `applications:` against the rest of the stack; returns the
/// listeners of its load balancers, for the stack-wide address check.
pub(super) fn validate(stack: &Stack, s: &Sink<'_>) -> Vec<(SocketAddr, Path)> {
    let mut listeners = Vec::new();
    let root = Path::root().key("applications");
    for (name, app) in &stack.applications {
        let at = root.key(name);
        if !super::is_service_name(name) {
            s.error_key(
                &at,
                format!(
                    "invalid application name {}: use 1 to 63 lowercase letters, digits and hyphens",
                    quote(name)
                ),
            );
        }
        if app.compute_platform != ComputePlatform::Server {
            s.error(
                &at.key("computePlatform"),
                "must be Server: ECS deployments are declared under services:",
            );
        }
        for (group_name, g) in &app.deployment_groups {
            let gp = at.key("deploymentGroups").key(group_name);
            validate_group(stack, g, &gp, s, &mut listeners);
        }
    }
    listeners
}

fn validate_group(
    stack: &Stack,
    g: &DeploymentGroup,
    at: &Path,
    s: &Sink<'_>,
    listeners: &mut Vec<(SocketAddr, Path)>,
) {
    match (g.on_premises_tag_filters.is_empty(), g.on_premises_tag_set.is_empty()) {
        (false, false) => s.error_key(
            &at.key("onPremisesTagSet"),
            "give onPremisesTagFilters or onPremisesTagSet, not both",
        ),
        (true, true) => s.error(
            at,
            "missing field \"onPremisesTagFilters\" (or \"onPremisesTagSet\"): a group without tag filters selects no host",
        ),
        _ => {}
    }
    filters(
        &g.on_premises_tag_filters,
        &at.key("onPremisesTagFilters"),
        s,
    );
    let set = at.key("onPremisesTagSet");
    if g.on_premises_tag_set.len() > MAX_TAG_SET_GROUPS {
        s.error(
            &set,
            format!(
                "at most {MAX_TAG_SET_GROUPS} groups, found {}",
                g.on_premises_tag_set.len()
            ),
        );
    }
    for (i, group) in g.on_premises_tag_set.iter().enumerate() {
        if group.is_empty() {
            s.error(&set.index(i), "a group needs at least one filter");
        }
        filters(group, &set.index(i), s);
    }
    if stack.host_config(&g.deployment_config).is_none() {
        let names = PREDEFINED_HOST_CONFIGS.iter().copied().chain(
            stack
                .deployment_configs
                .iter()
                .filter(|(_, c)| c.platform() == ComputePlatform::Server)
                .map(|(n, _)| n.as_str()),
        );
        let hint = match suggest(&g.deployment_config, names) {
            Some(c) => format!(", did you mean {}?", quote(c)),
            None => ": use CodeDeployDefault.OneAtATime, HalfAtATime or AllAtOnce, or a deploymentConfigs entry with computePlatform: Server".to_owned(),
        };
        s.error(
            &at.key("deploymentConfig"),
            format!(
                "unknown host deployment configuration {}{hint}",
                quote(&g.deployment_config)
            ),
        );
    }
    if g.load_balancer.is_some() && !g.load_balancers.is_empty() {
        s.error_key(
            &at.key("loadBalancers"),
            "give loadBalancer or loadBalancers, not both",
        );
    }
    let lbs = g
        .load_balancer
        .iter()
        .map(|lb| (lb, at.key("loadBalancer")))
        .chain(
            g.load_balancers
                .iter()
                .enumerate()
                .map(|(i, lb)| (lb, at.key("loadBalancers").index(i))),
        );
    for (lb, lp) in lbs {
        super::validate::validate_target_group(
            &lb.health_check,
            lb.deregistration_delay_seconds,
            &lp,
            s,
        );
        listeners.push((lb.listener, lp.key("listener")));
    }
    for (i, alarm) in g.alarms.iter().enumerate() {
        if !stack.alarms.contains_key(alarm) {
            s.error(
                &at.key("alarms").index(i),
                super::validate::unknown_alarm(stack, alarm, ""),
            );
        }
    }
    if let Some(bg) = &g.blue_green {
        let bp = at.key("blueGreen");
        if bg.replacement_tag_filters.is_empty() {
            s.error(
                &bp.key("replacementTagFilters"),
                "needs at least one filter choosing the replacement hosts",
            );
        }
        filters(
            &bg.replacement_tag_filters,
            &bp.key("replacementTagFilters"),
            s,
        );
        if stack.traffic_shift(&bg.traffic_config).is_none() {
            s.error(
                &bp.key("trafficConfig"),
                format!(
                    "unknown traffic configuration {}: use a predefined CodeDeployDefault.ECS* one or a deploymentConfigs entry with trafficRouting",
                    quote(&bg.traffic_config)
                ),
            );
        }
        s.range(
            &bp.key("terminationWaitMinutes"),
            bg.termination_wait_minutes,
            0,
            2880,
            " minutes",
        );
        if g.load_balancer.is_none() && g.load_balancers.is_empty() {
            s.error(&bp, "blue/green needs a loadBalancer to move traffic");
        }
    }
}

/// Each filter has what its type compares.
fn filters(list: &[TagFilter], at: &Path, s: &Sink<'_>) {
    for (i, f) in list.iter().enumerate() {
        let fp = at.index(i);
        let (needs_key, needs_value) = match f.kind {
            TagFilterType::KeyOnly => (true, false),
            TagFilterType::ValueOnly => (false, true),
            TagFilterType::KeyAndValue => (true, true),
        };
        for (needed, given, key) in [(needs_key, &f.key, "Key"), (needs_value, &f.value, "Value")] {
            match given {
                None if needed => s.error(
                    &fp,
                    format!("missing field \"{key}\" (Type is {})", type_name(f.kind)),
                ),
                Some(v) if needed && v.is_empty() => s.error(&fp.key(key), "must not be empty"),
                Some(_) if !needed => s.error_key(
                    &fp.key(key),
                    format!("does not apply to Type {}", type_name(f.kind)),
                ),
                _ => {}
            }
        }
    }
}

fn type_name(kind: TagFilterType) -> &'static str {
    match kind {
        TagFilterType::KeyOnly => "KEY_ONLY",
        TagFilterType::ValueOnly => "VALUE_ONLY",
        TagFilterType::KeyAndValue => "KEY_AND_VALUE",
    }
}
