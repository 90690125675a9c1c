//! Host deployment groups in the data plane: each load balancer of a
//! group (`loadBalancer`, `loadBalancers`) is a listener
//! `host-<application>-<group>-<n>` forwarding to a target group of the
//! same name, with the group's health check and deregistration delay.
//!
//! Its targets are the `target` addresses of the hosts that run a revision
//! of the group (their last successful one) and of the hosts the group's
//! newest deployment returned (`AllowTraffic`), less the hosts that
//! deployment holds out (`BlockTraffic` done, `AllowTraffic` not yet, or
//! failed there). A pure function of the store's rows, like the services'
//! part in [`super::config`].
//!
//! While the newest deployment is blue/green, each listener forwards to a
//! second target group `<name>-green` too, holding the replacement hosts
//! (all of them during the install, so their health checks run before
//! traffic moves; then those the revision was installed on), weighted by
//! the share of traffic the planner last asked for; the first group keeps
//! the other hosts, less the original hosts that left.

use std::collections::BTreeSet;

use cutover_spec::stack::applications::DeploymentGroup;
use cutover_store::host_deployments::{HostDeploymentRow, HostRevision};
use serde_json::json;

use super::config::{Part, health_json};

/// One deployment group as its part needs it.
pub(crate) struct GroupView<'a> {
    /// The application.
    pub(crate) application: &'a str,
    /// The group's name.
    pub(crate) group: &'a str,
    /// Its declaration.
    pub(crate) spec: &'a DeploymentGroup,
    /// The hosts that run a revision of it.
    pub(crate) hosts: &'a [HostRevision],
    /// Its newest deployment, if any.
    pub(crate) newest: Option<&'a HostDeploymentRow>,
}

/// The listener and target group name of a group's `n`th load balancer.
pub(crate) fn host_group_name(application: &str, group: &str, n: usize) -> String {
    format!("host-{application}-{group}-{n}")
}

/// The replacement hosts' targets of the newest deployment when it is
/// blue/green, and their share of the traffic.
pub(crate) fn green(v: &GroupView<'_>) -> Option<(Vec<String>, u8)> {
    let d = v.newest?;
    let bg = d.body.plan.blue_green()?;
    let installed = bg.installed();
    let hosts: BTreeSet<String> = bg
        .spec()
        .replacements
        .iter()
        .filter(|h| installed.is_empty() || installed.contains(&h.name))
        .filter_map(|h| d.body.targets.get(&h.name).cloned())
        .collect();
    Some((hosts.into_iter().collect(), bg.replacement_percent()))
}

/// The targets a group's load balancers send traffic to, sorted (less the
/// replacement hosts of a blue/green deployment: see [`green`]).
pub(crate) fn targets(v: &GroupView<'_>) -> Vec<String> {
    let replacements: BTreeSet<&String> = v
        .newest
        .and_then(|d| {
            let bg = d.body.plan.blue_green()?;
            Some(
                bg.spec()
                    .replacements
                    .iter()
                    .filter_map(|h| d.body.targets.get(&h.name))
                    .collect(),
            )
        })
        .unwrap_or_default();
    let empty = BTreeSet::new();
    let (blocked, allowed) = v
        .newest
        .map_or((&empty, &empty), |d| (&d.body.blocked, &d.body.allowed));
    let mut out: BTreeSet<String> = v
        .hosts
        .iter()
        .filter(|h| !blocked.contains(&h.host))
        .filter_map(|h| h.target.clone())
        .collect();
    if let Some(d) = v.newest {
        out.extend(
            allowed
                .iter()
                .filter(|h| !blocked.contains(*h))
                .filter_map(|h| d.body.targets.get(h).cloned()),
        );
    }
    out.into_iter()
        .filter(|t| !replacements.contains(t))
        .collect()
}

/// The parts of every group with a load balancer. Groups come after the
/// services: on an address clash the service keeps it.
pub(crate) fn host_parts(groups: &[GroupView<'_>]) -> Vec<Part> {
    groups
        .iter()
        .filter(|v| v.spec.all_load_balancers().next().is_some())
        .map(|v| {
            let targets = targets(v);
            let green = green(v);
            let mut listeners = Vec::new();
            let mut tgs = Vec::new();
            for (n, lb) in v.spec.all_load_balancers().enumerate() {
                let name = host_group_name(v.application, v.group, n);
                let tg = |name: &str, targets: &[String]| {
                    json!({
                        "name": name,
                        "targets": targets,
                        "healthCheck": health_json(&lb.health_check),
                        "deregistrationDelaySeconds": lb.deregistration_delay_seconds,
                    })
                };
                let mut forward = Vec::new();
                if let Some((green_targets, percent)) = &green {
                    let green_name = format!("{name}-green");
                    forward.push(json!({"targetGroup": name, "weight": 100 - u32::from(*percent)}));
                    forward.push(json!({"targetGroup": green_name, "weight": u32::from(*percent)}));
                    tgs.push(tg(&green_name, green_targets));
                } else {
                    forward.push(json!({"targetGroup": name, "weight": 100}));
                }
                listeners.push(json!({
                    "name": name,
                    "address": lb.listener.to_string(),
                    "defaultAction": {"forward": forward},
                }));
                tgs.push(tg(&name, &targets));
            }
            Part {
                service: format!("{}/{}", v.application, v.group),
                created_at: u64::MAX,
                listeners,
                groups: tgs,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_api::agents::{BundleFormat, BundleRef};
    use cutover_deploy::hosts::{HostDeployment, HostRollback, HostsSpec};
    use cutover_spec::stack::applications::HostConfig;
    use cutover_store::host_deployments::HostDeploymentBody;

    fn group() -> DeploymentGroup {
        serde_json::from_value(json!({
            "onPremisesTagFilters": [{"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}],
            "loadBalancers": [{"listener": "127.0.0.1:18090"}, {"listener": "127.0.0.1:18091"}],
        }))
        .unwrap()
    }

    fn rev(host: &str, target: &str) -> HostRevision {
        HostRevision {
            host: host.into(),
            revision: BundleRef {
                digest: "v1".into(),
                format: BundleFormat::Tar,
            },
            target: Some(target.into()),
        }
    }

    fn deployment(blocked: &[&str], allowed: &[&str]) -> HostDeploymentRow {
        HostDeploymentRow {
            id: "d-1".into(),
            application: "shop".into(),
            deployment_group: "prod".into(),
            status: cutover_deploy::hosts::HostDeploymentStatus::InProgress,
            body: HostDeploymentBody {
                revision: rev("h", "x").revision,
                source: "v2".into(),
                config: "CodeDeployDefault.OneAtATime".into(),
                deployment_group_id: "g".into(),
                file_exists_behavior: None,
                plan: HostDeployment::new(HostsSpec {
                    hosts: Vec::new(),
                    config: HostConfig::predefined("CodeDeployDefault.OneAtATime").unwrap(),
                    load_balanced: true,
                    ignore_application_stop_failures: false,
                    rollback: HostRollback::default(),
                })
                .into(),
                previous: Default::default(),
                events: Default::default(),
                targets: [("h3".to_string(), "127.0.0.1:9103".to_string())].into(),
                blocked: blocked.iter().map(|s| s.to_string()).collect(),
                allowed: allowed.iter().map(|s| s.to_string()).collect(),
                rollback_of: None,
                rolled_back_by: None,
                started_by: None,
            },
            created_at: 0,
            updated_at: 0,
            finished_at: None,
        }
    }

    #[test]
    fn blocked_hosts_leave_and_allowed_hosts_join_every_load_balancer() {
        let g = group();
        let hosts = [rev("h1", "127.0.0.1:9101"), rev("h2", "127.0.0.1:9102")];
        let d = deployment(&["h2"], &["h3"]);
        let view = GroupView {
            application: "shop",
            group: "prod",
            spec: &g,
            hosts: &hosts,
            newest: Some(&d),
        };
        assert_eq!(targets(&view), ["127.0.0.1:9101", "127.0.0.1:9103"]);
        let parts = host_parts(&[view]);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].listeners.len(), 2);
        assert_eq!(parts[0].listeners[1]["name"], "host-shop-prod-1");
        assert_eq!(parts[0].listeners[1]["address"], "127.0.0.1:18091");
        for tg in &parts[0].groups {
            assert_eq!(tg["targets"], json!(["127.0.0.1:9101", "127.0.0.1:9103"]));
        }
        // With no deployment, every host that runs a revision serves.
        let view = GroupView {
            application: "shop",
            group: "prod",
            spec: &g,
            hosts: &hosts,
            newest: None,
        };
        assert_eq!(targets(&view), ["127.0.0.1:9101", "127.0.0.1:9102"]);
        // The parts are ones the proxy takes.
        let verdicts = super::super::config::admit(Some("127.0.0.1:9"), &host_parts(&[view]));
        assert!(verdicts.iter().all(Result::is_ok), "{verdicts:?}");
    }
}
