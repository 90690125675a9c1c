//! CodeDeploy deployment configurations for ECS (and, through
//! `host_configs`, for Server hosts): the predefined
//! `CodeDeployDefault.ECS*` ones, the applied stack's `deploymentConfigs`,
//! and those created here (stored in `cutover_store::deployment_configs`,
//! typed as the stack's own; the deployer resolves names against all
//! three).

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codedeploy::{self as cd, errors};
use cutover_spec::stack::applications::ComputePlatform;
use cutover_spec::stack::{
    DeploymentConfig, PREDEFINED_DEPLOYMENT_CONFIGS, TimeBasedCanary, TimeBasedLinear,
    TrafficRouting, TrafficRoutingType, TrafficShift,
};
use cutover_store::deployment_configs::{self as stored, DeploymentConfigRow};
use cutover_store::ops;

use crate::aws::ecs::at;
use crate::aws::wire::{self, Call};

/// Where a configuration comes from.
enum Source {
    Predefined(TrafficShift),
    Stack(DeploymentConfig),
    Created(DeploymentConfigRow),
}

/// Every configuration by name: predefined, then the stack's, then created.
async fn all(call: &Call<'_>) -> Result<BTreeMap<String, Source>, AwsError> {
    let (stack, created) = call
        .st
        .store
        .call(|c| Ok((ops::latest_deployment_configs(c)?, stored::all(c)?)))
        .await
        .map_err(wire::store)?;
    let mut out: BTreeMap<String, Source> = PREDEFINED_DEPLOYMENT_CONFIGS
        .iter()
        .map(|(n, s)| (n.to_string(), Source::Predefined(*s)))
        .collect();
    for (n, c) in stack {
        out.entry(n).or_insert(Source::Stack(c));
    }
    for (n, r) in created {
        out.entry(n).or_insert(Source::Created(r));
    }
    Ok(out)
}

fn minutes(d: Duration) -> i32 {
    d.as_secs().div_ceil(60) as i32
}

fn routing(shift: TrafficShift) -> cd::TrafficRoutingConfig {
    match shift {
        TrafficShift::AllAtOnce => cd::TrafficRoutingConfig {
            type_: Some(cd::TrafficRoutingType::AllAtOnce),
            ..Default::default()
        },
        TrafficShift::Canary { percent, interval } => cd::TrafficRoutingConfig {
            type_: Some(cd::TrafficRoutingType::TimeBasedCanary),
            time_based_canary: Some(cd::TimeBasedCanary {
                canary_percentage: Some(percent as i32),
                canary_interval: Some(minutes(interval)),
            }),
            ..Default::default()
        },
        TrafficShift::Linear { percent, interval } => cd::TrafficRoutingConfig {
            type_: Some(cd::TrafficRoutingType::TimeBasedLinear),
            time_based_linear: Some(cd::TimeBasedLinear {
                linear_percentage: Some(percent as i32),
                linear_interval: Some(minutes(interval)),
            }),
            ..Default::default()
        },
    }
}

fn invalid_routing(message: impl Into<String>) -> AwsError {
    AwsError::client(
        errors::INVALID_TRAFFIC_ROUTING_CONFIGURATION_EXCEPTION,
        message,
    )
}

/// The stack's typed configuration of AWS's `trafficRoutingConfig`,
/// checked as CodeDeploy checks it.
fn config_of(r: &cd::TrafficRoutingConfig) -> Result<DeploymentConfig, AwsError> {
    let percent = |p: Option<i32>, lo: i32, hi: i32, what: &str| {
        p.filter(|p| (lo..=hi).contains(p))
            .map(|p| p as u32)
            .ok_or_else(|| invalid_routing(format!("{what} must be between {lo} and {hi}")))
    };
    let interval = |m: Option<i32>, what: &str| {
        m.filter(|m| (1..=2880).contains(m))
            .map(|m| m as u64 * 60)
            .ok_or_else(|| invalid_routing(format!("{what} must be between 1 and 2880 minutes")))
    };
    let routing = match r.type_ {
        Some(cd::TrafficRoutingType::AllAtOnce) => TrafficRouting {
            kind: TrafficRoutingType::AllAtOnce,
            time_based_canary: None,
            time_based_linear: None,
        },
        Some(cd::TrafficRoutingType::TimeBasedCanary) => {
            let c = r.time_based_canary.clone().unwrap_or_default();
            TrafficRouting {
                kind: TrafficRoutingType::TimeBasedCanary,
                time_based_canary: Some(TimeBasedCanary {
                    canary_percentage: percent(c.canary_percentage, 1, 99, "canaryPercentage")?,
                    canary_interval_seconds: Some(interval(c.canary_interval, "canaryInterval")?),
                    canary_interval: None,
                }),
                time_based_linear: None,
            }
        }
        Some(cd::TrafficRoutingType::TimeBasedLinear) => {
            let l = r.time_based_linear.clone().unwrap_or_default();
            TrafficRouting {
                kind: TrafficRoutingType::TimeBasedLinear,
                time_based_canary: None,
                time_based_linear: Some(TimeBasedLinear {
                    linear_percentage: percent(l.linear_percentage, 1, 100, "linearPercentage")?,
                    linear_interval_seconds: Some(interval(l.linear_interval, "linearInterval")?),
                    linear_interval: None,
                }),
            }
        }
        None => return Err(invalid_routing("trafficRoutingConfig.type is required")),
    };
    Ok(DeploymentConfig {
        traffic_routing: Some(routing),
        ..DeploymentConfig::default()
    })
}

pub(super) async fn get(
    call: &Call<'_>,
    req: cd::GetDeploymentConfigInput,
) -> Result<cd::GetDeploymentConfigOutput, AwsError> {
    let name = req.deployment_config_name;
    let mut all = all(call).await?;
    let source = all.remove(&name).ok_or_else(|| {
        AwsError::client(
            errors::DEPLOYMENT_CONFIG_DOES_NOT_EXIST_EXCEPTION,
            format!("No deployment configuration found for name: {name}"),
        )
    })?;
    let (shift, id, created, hosts) = match source {
        Source::Predefined(s) => (Some(s), None, None, None),
        Source::Stack(c) => (c.shift(), None, None, Some(c)),
        Source::Created(r) => (
            r.config.shift(),
            Some(r.id),
            Some(at(r.created_at)),
            Some(r.config),
        ),
    };
    let hosts = hosts.filter(|c| c.platform() == ComputePlatform::Server);
    Ok(cd::GetDeploymentConfigOutput {
        deployment_config_info: Some(cd::DeploymentConfigInfo {
            deployment_config_id: Some(id.unwrap_or_else(|| super::id_of(call, "config", &name))),
            deployment_config_name: Some(name),
            create_time: created,
            compute_platform: Some(if hosts.is_some() {
                cd::ComputePlatform::Server
            } else {
                cd::ComputePlatform::Ecs
            }),
            minimum_healthy_hosts: hosts.as_ref().and_then(super::host_configs::minimum_out),
            traffic_routing_config: shift.map(routing),
            ..Default::default()
        }),
    })
}

pub(super) async fn list(
    call: &Call<'_>,
    req: cd::ListDeploymentConfigsInput,
) -> Result<cd::ListDeploymentConfigsOutput, AwsError> {
    let names = all(call).await?.into_keys().collect();
    let (names, next) = wire::next_token_page(names, req.next_token.as_deref(), None)?;
    Ok(cd::ListDeploymentConfigsOutput {
        deployment_configs_list: Some(names),
        next_token: next,
    })
}

pub(super) async fn create(
    call: &Call<'_>,
    req: cd::CreateDeploymentConfigInput,
) -> Result<cd::CreateDeploymentConfigOutput, AwsError> {
    let config = match req.compute_platform {
        Some(cd::ComputePlatform::Server) => super::host_configs::server_config_of(&req)?,
        Some(cd::ComputePlatform::Ecs) | None => {
            if req.minimum_healthy_hosts.is_some() || req.zonal_config.is_some() {
                return Err(AwsError::client(
                    errors::INVALID_MINIMUM_HEALTHY_HOST_VALUE_EXCEPTION,
                    "minimumHealthyHosts and zonalConfig apply to EC2/on-premises deployments (computePlatform Server), not ECS",
                ));
            }
            let routing = req.traffic_routing_config.as_ref().ok_or_else(|| {
                invalid_routing("an ECS deployment configuration needs trafficRoutingConfig")
            })?;
            config_of(routing)?
        }
        Some(_) => {
            return Err(AwsError::client(
                errors::INVALID_COMPUTE_PLATFORM_EXCEPTION,
                "Cutover's deployment configurations are for ECS services and Server hosts",
            ));
        }
    };
    let name = req.deployment_config_name;
    if name.is_empty() || name.len() > 100 {
        return Err(AwsError::client(
            errors::INVALID_DEPLOYMENT_CONFIG_NAME_EXCEPTION,
            "deploymentConfigName must be 1 to 100 characters",
        ));
    }
    if all(call).await?.contains_key(&name) {
        return Err(taken(&name));
    }
    let row = DeploymentConfigRow {
        name: name.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        config,
        created_at: call.st.clock.now_ms(),
    };
    let id = row.id.clone();
    let inserted = call
        .st
        .store
        .transact(move |c| stored::insert(c, &row))
        .await
        .map_err(wire::store)?;
    if !inserted {
        return Err(taken(&name));
    }
    Ok(cd::CreateDeploymentConfigOutput {
        deployment_config_id: Some(id),
    })
}

fn taken(name: &str) -> AwsError {
    AwsError::client(
        errors::DEPLOYMENT_CONFIG_ALREADY_EXISTS_EXCEPTION,
        format!("A deployment configuration named {name} already exists"),
    )
}

pub(super) async fn delete(
    call: &Call<'_>,
    req: cd::DeleteDeploymentConfigInput,
) -> Result<(), AwsError> {
    let name = req.deployment_config_name;
    match all(call).await?.get(&name) {
        Some(Source::Predefined(_)) => Err(AwsError::client(
            errors::INVALID_OPERATION_EXCEPTION,
            format!("{name} is predefined and cannot be deleted"),
        )),
        Some(Source::Stack(_)) => Err(AwsError::client(
            errors::INVALID_OPERATION_EXCEPTION,
            format!("{name} is declared by the applied stack: remove it from the stack file"),
        )),
        Some(Source::Created(_)) => {
            let n = name.clone();
            call.st
                .store
                .transact(move |c| stored::delete(c, &n))
                .await
                .map_err(wire::store)?;
            Ok(())
        }
        None => Err(AwsError::client(
            errors::DEPLOYMENT_CONFIG_DOES_NOT_EXIST_EXCEPTION,
            format!("No deployment configuration found for name: {name}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_routing_becomes_the_stack_config_and_reads_back_the_same() {
        let r = cd::TrafficRoutingConfig {
            type_: Some(cd::TrafficRoutingType::TimeBasedCanary),
            time_based_canary: Some(cd::TimeBasedCanary {
                canary_percentage: Some(20),
                canary_interval: Some(3),
            }),
            ..Default::default()
        };
        let c = config_of(&r).unwrap();
        assert_eq!(
            c.shift(),
            Some(TrafficShift::Canary {
                percent: 20,
                interval: Duration::from_secs(180)
            })
        );
        assert_eq!(routing(c.shift().unwrap()), r);
        let bad = cd::TrafficRoutingConfig {
            type_: Some(cd::TrafficRoutingType::TimeBasedLinear),
            time_based_linear: Some(cd::TimeBasedLinear {
                linear_percentage: Some(0),
                linear_interval: Some(1),
            }),
            ..Default::default()
        };
        assert_eq!(
            config_of(&bad).unwrap_err().code,
            "InvalidTrafficRoutingConfigurationException"
        );
    }
}
