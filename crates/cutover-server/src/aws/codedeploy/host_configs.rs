//! CodeDeploy's Server deployment configurations (`minimumHealthyHosts`,
//! `zonalConfig`) to and from the stack's own [`DeploymentConfig`], so a
//! configuration created through `CreateDeploymentConfig` is the one a
//! host deployment resolves (`DeploymentConfig::host_config`).

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codedeploy::{self as cd, errors};
use cutover_spec::stack::DeploymentConfig;
use cutover_spec::stack::applications::{
    ComputePlatform, MinimumHealthyHosts, MinimumHealthyHostsType, ZonalConfig,
};

fn invalid_minimum(message: impl Into<String>) -> AwsError {
    AwsError::client(
        errors::INVALID_MINIMUM_HEALTHY_HOST_VALUE_EXCEPTION,
        message,
    )
}

fn minimum(
    kind: MinimumHealthyHostsType,
    value: Option<i32>,
) -> Result<MinimumHealthyHosts, AwsError> {
    let value = value.ok_or_else(|| invalid_minimum("minimumHealthyHosts needs a value"))?;
    let max = match kind {
        MinimumHealthyHostsType::FleetPercent => 99,
        MinimumHealthyHostsType::HostCount => i32::MAX,
    };
    if !(0..=max).contains(&value) {
        return Err(invalid_minimum(format!(
            "minimumHealthyHosts value {value} is out of range (0 to {max})"
        )));
    }
    Ok(MinimumHealthyHosts {
        kind,
        value: value as u32,
    })
}

fn kind(t: Option<cd::MinimumHealthyHostsType>) -> Result<MinimumHealthyHostsType, AwsError> {
    match t {
        Some(cd::MinimumHealthyHostsType::HostCount) => Ok(MinimumHealthyHostsType::HostCount),
        Some(cd::MinimumHealthyHostsType::FleetPercent) => {
            Ok(MinimumHealthyHostsType::FleetPercent)
        }
        None => Err(invalid_minimum("minimumHealthyHosts needs a type")),
    }
}

/// The configuration a Server `CreateDeploymentConfig` asks for.
pub(super) fn server_config_of(
    req: &cd::CreateDeploymentConfigInput,
) -> Result<DeploymentConfig, AwsError> {
    if req.traffic_routing_config.is_some() {
        return Err(AwsError::client(
            errors::INVALID_TRAFFIC_ROUTING_CONFIGURATION_EXCEPTION,
            "trafficRoutingConfig applies to ECS and Lambda, not Server",
        ));
    }
    let m = req.minimum_healthy_hosts.as_ref().ok_or_else(|| {
        invalid_minimum("a Server deployment configuration needs minimumHealthyHosts")
    })?;
    let minimum_healthy_hosts = minimum(kind(m.type_)?, m.value)?;
    let zonal_config = match &req.zonal_config {
        None => None,
        Some(z) => {
            let secs = |v: Option<i64>, what: &str| -> Result<Option<u64>, AwsError> {
                v.map(|s| {
                    u64::try_from(s).map_err(|_| {
                        AwsError::client(
                            errors::INVALID_ZONAL_DEPLOYMENT_CONFIGURATION_EXCEPTION,
                            format!("{what} must not be negative"),
                        )
                    })
                })
                .transpose()
            };
            let per_zone = match &z.minimum_healthy_hosts_per_zone {
                None => None,
                Some(p) => Some(minimum(
                    match p.type_ {
                        Some(cd::MinimumHealthyHostsPerZoneType::HostCount) => {
                            MinimumHealthyHostsType::HostCount
                        }
                        Some(cd::MinimumHealthyHostsPerZoneType::FleetPercent) => {
                            MinimumHealthyHostsType::FleetPercent
                        }
                        None => {
                            return Err(invalid_minimum("minimumHealthyHostsPerZone needs a type"));
                        }
                    },
                    p.value,
                )?),
            };
            Some(ZonalConfig {
                first_zone_monitor_duration_in_seconds: secs(
                    z.first_zone_monitor_duration_in_seconds,
                    "firstZoneMonitorDurationInSeconds",
                )?,
                monitor_duration_in_seconds: secs(
                    z.monitor_duration_in_seconds,
                    "monitorDurationInSeconds",
                )?
                .unwrap_or(0),
                minimum_healthy_hosts_per_zone: per_zone,
            })
        }
    };
    Ok(DeploymentConfig {
        compute_platform: Some(ComputePlatform::Server),
        minimum_healthy_hosts: Some(minimum_healthy_hosts),
        zonal_config,
        ..DeploymentConfig::default()
    })
}

/// `minimumHealthyHosts` as `GetDeploymentConfig` shows it.
pub(super) fn minimum_out(c: &DeploymentConfig) -> Option<cd::MinimumHealthyHosts> {
    c.minimum_healthy_hosts.map(|m| cd::MinimumHealthyHosts {
        type_: Some(match m.kind {
            MinimumHealthyHostsType::HostCount => cd::MinimumHealthyHostsType::HostCount,
            MinimumHealthyHostsType::FleetPercent => cd::MinimumHealthyHostsType::FleetPercent,
        }),
        value: Some(m.value as i32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_spec::stack::applications::HostsRule;

    fn req(kind: cd::MinimumHealthyHostsType, value: i32) -> cd::CreateDeploymentConfigInput {
        cd::CreateDeploymentConfigInput {
            deployment_config_name: "TwoAtATime".into(),
            compute_platform: Some(cd::ComputePlatform::Server),
            minimum_healthy_hosts: Some(cd::MinimumHealthyHosts {
                type_: Some(kind),
                value: Some(value),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_server_configuration_is_the_stacks_and_resolves_for_hosts() {
        let mut r = req(cd::MinimumHealthyHostsType::HostCount, 2);
        r.zonal_config = Some(cd::ZonalConfig {
            first_zone_monitor_duration_in_seconds: Some(300),
            monitor_duration_in_seconds: Some(120),
            minimum_healthy_hosts_per_zone: Some(cd::MinimumHealthyHostsPerZone {
                type_: Some(cd::MinimumHealthyHostsPerZoneType::HostCount),
                value: Some(1),
            }),
        });
        let c = server_config_of(&r).unwrap();
        let host = c.host_config().unwrap();
        assert_eq!(
            host.rule,
            HostsRule::Minimum(MinimumHealthyHosts {
                kind: MinimumHealthyHostsType::HostCount,
                value: 2
            })
        );
        let z = host.zonal.unwrap();
        assert_eq!(z.first_zone_monitor_duration_in_seconds, Some(300));
        assert_eq!(z.monitor_duration_in_seconds, 120);
        assert_eq!(minimum_out(&c), r.minimum_healthy_hosts);
    }

    #[test]
    fn out_of_range_or_missing_values_are_aws_errors() {
        for bad in [
            req(cd::MinimumHealthyHostsType::FleetPercent, 100),
            req(cd::MinimumHealthyHostsType::HostCount, -1),
            cd::CreateDeploymentConfigInput {
                compute_platform: Some(cd::ComputePlatform::Server),
                ..Default::default()
            },
        ] {
            assert_eq!(
                server_config_of(&bad).unwrap_err().code,
                errors::INVALID_MINIMUM_HEALTHY_HOST_VALUE_EXCEPTION
            );
        }
    }
}
