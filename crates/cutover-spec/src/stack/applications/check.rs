//! The checks of `applications:` and of Server deployment configurations
//! that types cannot express: exclusive fields, ranges, tag filters that
//! lack what their type compares, and references to the rest of the stack
//! (deployment configurations, alarms, listener addresses). Every error is
//! located by field path.

use std::net::SocketAddr;

use super::{
    ComputePlatform, DeploymentGroup, MinimumHealthyHosts, MinimumHealthyHostsType,
    PREDEFINED_HOST_CONFIGS, TagFilter, TagFilterType,
};
use crate::check::{Sink, suggest};
use crate::doc::{Path, quote};
use crate::stack::{DeploymentConfig, Stack};

/// At most this many groups in `onPremisesTagSet` (as CodeDeploy).
const MAX_TAG_SET_GROUPS: usize = 3;

/// Checks the host fields of a deployment configuration; `true` when it is
/// a Server one (the caller then skips the ECS checks).
pub(in crate::stack) fn validate_server_config(
    cfg: &DeploymentConfig,
    at: &Path,
    s: &Sink<'_>,
) -> bool {
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
pub(in crate::stack) fn validate(stack: &Stack, s: &Sink<'_>) -> Vec<(SocketAddr, Path)> {
    let mut listeners = Vec::new();
    let root = Path::root().key("applications");
    for (name, app) in &stack.applications {
        let at = root.key(name);
        if !crate::stack::is_service_name(name) {
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
        // Host deployment groups' targets speak HTTP/1.1.
        crate::stack::validate::validate_target_group(
            &lb.health_check,
            lb.deregistration_delay_seconds,
            false,
            &lp,
            s,
        );
        listeners.push((lb.listener, lp.key("listener")));
    }
    for (i, alarm) in g.alarms.iter().enumerate() {
        if !stack.alarms.contains_key(alarm) {
            s.error(
                &at.key("alarms").index(i),
                crate::stack::validate::unknown_alarm(stack, alarm, ""),
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
