//! CodeDeploy deployment groups of host applications: `CreateDeploymentGroup`
//! (in place, hosts chosen by on-premises tags) onto the stack's own
//! [`DeploymentGroup`], and `GetDeploymentGroup`'s answer for any host group.
//! What a group asks for that Cutover cannot honour (EC2 tags, Auto Scaling
//! groups, triggers, blue/green, load balancers, resource tags) is refused
//! with CodeDeploy's error for it, never dropped.

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codedeploy::{self as cd, errors};
use cutover_spec::stack::RollbackEvent;
use cutover_spec::stack::applications::{
    DeploymentGroup, HostConfig, OutdatedInstancesStrategy, TagFilter, TagFilterType,
};
use cutover_store::StoreError;
use cutover_store::host_deployments::{self as hd, StoredApplication};

use super::host_apps::{filters, invalid_input, valid_name};
use crate::aws::wire::{self, Call};

/// At most this many groups in `onPremisesTagSet` (as CodeDeploy).
const MAX_TAG_SET_GROUPS: usize = 3;

/// Refuses what a Server group of Cutover cannot honour.
fn refuse_unsupported(req: &cd::CreateDeploymentGroupInput) -> Result<(), AwsError> {
    let given = |b: bool, code: &str, m: &str| {
        if b {
            Err(AwsError::client(code, m))
        } else {
            Ok(())
        }
    };
    given(
        req.ec2_tag_filters.as_ref().is_some_and(|v| !v.is_empty()) || req.ec2_tag_set.is_some(),
        errors::INVALID_EC2_TAG_EXCEPTION,
        "Cutover has no EC2 instances: choose hosts with onPremisesInstanceTagFilters or onPremisesTagSet",
    )?;
    given(
        req.auto_scaling_groups
            .as_ref()
            .is_some_and(|v| !v.is_empty()),
        errors::INVALID_AUTO_SCALING_GROUP_EXCEPTION,
        "Cutover has no Auto Scaling groups: choose hosts by on-premises tags",
    )?;
    given(
        req.ecs_services.as_ref().is_some_and(|v| !v.is_empty()),
        errors::INVALID_ECS_SERVICE_EXCEPTION,
        "an ECS deployment group is a blue/green service of a stack file, not created here",
    )?;
    given(
        req.trigger_configurations
            .as_ref()
            .is_some_and(|v| !v.is_empty()),
        errors::INVALID_TRIGGER_CONFIG_EXCEPTION,
        "Cutover sends no SNS notifications (follow deployments with cutover deploy --wait or the console)",
    )?;
    given(
        req.blue_green_deployment_configuration.is_some()
            || req
                .deployment_style
                .as_ref()
                .is_some_and(|s| s.deployment_type == Some(cd::DeploymentType::BlueGreen)),
        errors::INVALID_DEPLOYMENT_STYLE_EXCEPTION,
        "blue/green host groups are declared in a stack file (blueGreen under the group); CreateDeploymentGroup creates in-place groups",
    )?;
    given(
        req.deployment_style
            .as_ref()
            .is_some_and(|s| s.deployment_option == Some(cd::DeploymentOption::WithTrafficControl)),
        errors::INVALID_DEPLOYMENT_STYLE_EXCEPTION,
        "WITH_TRAFFIC_CONTROL needs a load balancer, a listener of Cutover's data plane: declare loadBalancer under the group in a stack file",
    )?;
    given(
        req.load_balancer_info.as_ref().is_some_and(|l| {
            l.target_group_info_list
                .as_ref()
                .is_some_and(|v| !v.is_empty())
                || l.elb_info_list.as_ref().is_some_and(|v| !v.is_empty())
                || l.target_group_pair_info_list
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
        }),
        errors::INVALID_LOAD_BALANCER_INFO_EXCEPTION,
        "a host group's load balancer is a listener of Cutover's data plane (target group host-APPLICATION-GROUP-N): declare loadBalancer.listener under the group in a stack file",
    )?;
    given(
        req.termination_hook_enabled == Some(true),
        errors::INVALID_INPUT_EXCEPTION,
        "Cutover has no Auto Scaling termination hooks",
    )?;
    given(
        req.tags.as_ref().is_some_and(|v| !v.is_empty()),
        errors::INVALID_TAGS_TO_ADD_EXCEPTION,
        "Cutover keeps no tags on deployment groups",
    )
}

/// The group a `CreateDeploymentGroup` asks for, its alarm and
/// configuration names checked against `alarms` and `configs`.
fn group_of_request(
    req: &cd::CreateDeploymentGroupInput,
    alarms: &[String],
    config_exists: bool,
) -> Result<DeploymentGroup, AwsError> {
    refuse_unsupported(req)?;
    let tag_filters = filters(
        req.on_premises_instance_tag_filters
            .as_deref()
            .unwrap_or_default(),
        "onPremisesInstanceTagFilters",
    )?;
    let tag_set = req
        .on_premises_tag_set
        .as_ref()
        .and_then(|s| s.on_premises_tag_set_list.as_ref())
        .map(|groups| {
            groups
                .iter()
                .map(|g| filters(g, "onPremisesTagSet"))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    if !tag_filters.is_empty() && !tag_set.is_empty() {
        return Err(AwsError::client(
            errors::INVALID_ON_PREMISES_TAG_COMBINATION_EXCEPTION,
            "give onPremisesInstanceTagFilters or onPremisesTagSet, not both",
        ));
    }
    if tag_set.len() > MAX_TAG_SET_GROUPS {
        return Err(AwsError::client(
            errors::TAG_SET_LIST_LIMIT_EXCEEDED_EXCEPTION,
            format!("onPremisesTagSet has at most {MAX_TAG_SET_GROUPS} groups"),
        ));
    }
    if tag_set.iter().any(Vec::is_empty) {
        return Err(AwsError::client(
            errors::INVALID_TAG_EXCEPTION,
            "each group of onPremisesTagSet needs at least one filter",
        ));
    }
    let deployment_config = req
        .deployment_config_name
        .clone()
        .unwrap_or_else(|| cutover_spec::stack::applications::DEFAULT_HOST_CONFIG.into());
    if !config_exists {
        return Err(AwsError::client(
            errors::DEPLOYMENT_CONFIG_DOES_NOT_EXIST_EXCEPTION,
            format!("No deployment configuration for Server is named {deployment_config}"),
        ));
    }
    let alarm_names = match &req.alarm_configuration {
        Some(a) if a.enabled == Some(true) => {
            let names: Vec<String> = a
                .alarms
                .iter()
                .flatten()
                .map(|a| a.name.clone().unwrap_or_default())
                .collect();
            if let Some(missing) = names.iter().find(|n| !alarms.contains(n)) {
                return Err(AwsError::client(
                    errors::INVALID_ALARM_CONFIG_EXCEPTION,
                    format!("no alarm named {missing:?} is applied (alarms are a stack's alarms:)"),
                ));
            }
            names
        }
        _ => Vec::new(),
    };
    let auto_rollback = match &req.auto_rollback_configuration {
        Some(r) if r.enabled == Some(true) => r
            .events
            .iter()
            .flatten()
            .map(|e| match e {
                cd::AutoRollbackEvent::DeploymentFailure => Ok(RollbackEvent::DeploymentFailure),
                cd::AutoRollbackEvent::DeploymentStopOnAlarm => {
                    Ok(RollbackEvent::DeploymentStopOnAlarm)
                }
                cd::AutoRollbackEvent::DeploymentStopOnRequest => Err(AwsError::client(
                    errors::INVALID_AUTO_ROLLBACK_CONFIG_EXCEPTION,
                    "DEPLOYMENT_STOP_ON_REQUEST: a stopped host deployment rolls back when StopDeployment asks (autoRollbackEnabled)",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    Ok(DeploymentGroup {
        on_premises_tag_filters: tag_filters,
        on_premises_tag_set: tag_set,
        deployment_config,
        load_balancer: None,
        load_balancers: Vec::new(),
        alarms: alarm_names,
        auto_rollback,
        ignore_application_stop_failures: false,
        file_exists_behavior: None,
        outdated_instances_strategy: match req.outdated_instances_strategy {
            Some(cd::OutdatedInstancesStrategy::Ignore) => OutdatedInstancesStrategy::Ignore,
            _ => OutdatedInstancesStrategy::Update,
        },
        blue_green: None,
    })
}

pub(super) async fn create_deployment_group(
    call: &Call<'_>,
    req: cd::CreateDeploymentGroupInput,
) -> Result<cd::CreateDeploymentGroupOutput, AwsError> {
    let (app, group) = (
        req.application_name.clone(),
        req.deployment_group_name.clone(),
    );
    if !valid_name(&group) {
        return Err(AwsError::client(
            errors::INVALID_DEPLOYMENT_GROUP_NAME_EXCEPTION,
            format!("deploymentGroupName {group:?}: use 1 to 100 of A-Z a-z 0-9 . _ -"),
        ));
    }
    let config_name = req
        .deployment_config_name
        .clone()
        .unwrap_or_else(|| cutover_spec::stack::applications::DEFAULT_HOST_CONFIG.into());
    let cn = config_name.clone();
    let (alarms, api_config) = call
        .st
        .store
        .call(move |c| {
            let alarms: Vec<String> = cutover_store::ops::list_alarms(c)?
                .into_iter()
                .map(|a| a.name)
                .collect();
            let config = cutover_store::deployment_configs::get(c, &cn)?
                .and_then(|r| r.config.host_config());
            Ok((alarms, config))
        })
        .await
        .map_err(wire::store)?;
    let config_exists = api_config.is_some() || HostConfig::predefined(&config_name).is_some();
    let dg = group_of_request(&req, &alarms, config_exists)?;
    let now = call.st.clock.now_ms();
    let (a, g) = (app.clone(), group.clone());
    call.transact(move |c| {
        let Some(mut stored) = hd::application(c, &a)? else {
            return Ok(Err(super::no_application(&a)));
        };
        if stored.application.deployment_groups.contains_key(&g) {
            return Ok(Err(AwsError::client(
                errors::DEPLOYMENT_GROUP_ALREADY_EXISTS_EXCEPTION,
                format!("{g} already exists for application {a}"),
            )));
        }
        stored.application.deployment_groups.insert(g.clone(), dg);
        match hd::put_api_application(c, &a, &stored, now) {
            Err(StoreError::Conflict(m)) => return Ok(Err(invalid_input(m))),
            other => other?,
        }
        cutover_store::ops::add_event(
            c,
            now,
            &format!("application/{a}"),
            &format!("deployment group {g} created by codedeploy:CreateDeploymentGroup"),
        )?;
        Ok(Ok(()))
    })
    .await?;
    Ok(cd::CreateDeploymentGroupOutput {
        deployment_group_id: Some(crate::hosts::deployer::group_id(&app, &group)),
    })
}

/// The deployment group `group` of host application `app`.
pub(super) fn group<'a>(
    app: &'a StoredApplication,
    group: &str,
) -> Result<&'a DeploymentGroup, AwsError> {
    app.application
        .deployment_groups
        .get(group)
        .ok_or_else(|| super::no_group(group))
}

fn cd_filter(f: &TagFilter) -> cd::TagFilter {
    cd::TagFilter {
        key: f.key.clone(),
        value: f.value.clone(),
        type_: Some(match f.kind {
            TagFilterType::KeyOnly => cd::TagFilterType::KeyOnly,
            TagFilterType::ValueOnly => cd::TagFilterType::ValueOnly,
            TagFilterType::KeyAndValue => cd::TagFilterType::KeyAndValue,
        }),
    }
}

/// `GetDeploymentGroup`'s answer for a host group.
pub(super) fn group_info(app: &str, name: &str, dg: &DeploymentGroup) -> cd::DeploymentGroupInfo {
    let rollback: Vec<cd::AutoRollbackEvent> = dg
        .auto_rollback
        .iter()
        .map(|e| match e {
            RollbackEvent::DeploymentFailure => cd::AutoRollbackEvent::DeploymentFailure,
            RollbackEvent::DeploymentStopOnAlarm => cd::AutoRollbackEvent::DeploymentStopOnAlarm,
            RollbackEvent::DeploymentStopOnRequest => {
                cd::AutoRollbackEvent::DeploymentStopOnRequest
            }
        })
        .collect();
    let balanced = dg.all_load_balancers().next().is_some();
    cd::DeploymentGroupInfo {
        application_name: Some(app.to_string()),
        deployment_group_id: Some(crate::hosts::deployer::group_id(app, name)),
        deployment_group_name: Some(name.to_string()),
        deployment_config_name: Some(dg.deployment_config.clone()),
        compute_platform: Some(cd::ComputePlatform::Server),
        on_premises_instance_tag_filters: Some(
            dg.on_premises_tag_filters.iter().map(cd_filter).collect(),
        ),
        on_premises_tag_set: (!dg.on_premises_tag_set.is_empty()).then(|| cd::OnPremisesTagSet {
            on_premises_tag_set_list: Some(
                dg.on_premises_tag_set
                    .iter()
                    .map(|g| g.iter().map(cd_filter).collect())
                    .collect(),
            ),
        }),
        deployment_style: Some(cd::DeploymentStyle {
            deployment_type: Some(if dg.blue_green.is_some() {
                cd::DeploymentType::BlueGreen
            } else {
                cd::DeploymentType::InPlace
            }),
            deployment_option: Some(if balanced {
                cd::DeploymentOption::WithTrafficControl
            } else {
                cd::DeploymentOption::WithoutTrafficControl
            }),
        }),
        load_balancer_info: balanced.then(|| cd::LoadBalancerInfo {
            target_group_info_list: Some(
                (0..dg.all_load_balancers().count())
                    .map(|n| cd::TargetGroupInfo {
                        name: Some(crate::dataplane::hosts::host_group_name(app, name, n)),
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        auto_rollback_configuration: Some(cd::AutoRollbackConfiguration {
            enabled: Some(!rollback.is_empty()),
            events: Some(rollback),
        }),
        alarm_configuration: Some(cd::AlarmConfiguration {
            enabled: Some(!dg.alarms.is_empty()),
            ignore_poll_alarm_failure: Some(false),
            alarms: Some(
                dg.alarms
                    .iter()
                    .map(|a| cd::Alarm {
                        name: Some(a.clone()),
                    })
                    .collect(),
            ),
        }),
        outdated_instances_strategy: Some(match dg.outdated_instances_strategy {
            OutdatedInstancesStrategy::Update => cd::OutdatedInstancesStrategy::Update,
            OutdatedInstancesStrategy::Ignore => cd::OutdatedInstancesStrategy::Ignore,
        }),
        ..Default::default()
    }
}
