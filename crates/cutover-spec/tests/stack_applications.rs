//! The stack's `applications:` section and Server deployment
//! configurations: the issue's contract reads, tag filters select hosts as
//! CodeDeploy does, and each mistake is a located error.

use std::collections::BTreeMap;

use cutover_spec::parse_stack;
use cutover_spec::stack::applications::{
    HostsRule, MinimumHealthyHosts, MinimumHealthyHostsType, OutdatedInstancesStrategy, TagFilter,
    TagFilterType,
};

fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text).trim_end();
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[track_caller]
fn check(text: &str, expected: &str) {
    let text = dedent(text);
    match parse_stack("stack.yaml", &text) {
        Ok(_) => panic!("accepted, expected:\n{expected}\n--- document:\n{text}"),
        Err(e) => assert_eq!(e.to_string(), dedent(expected).trim_end(), "\n{text}"),
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const CONTRACT: &str = r#"
applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      prod:
        onPremisesTagFilters: [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
        deploymentConfig: CodeDeployDefault.OneAtATime
        loadBalancer:
          listener: 127.0.0.1:18090
          healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
          deregistrationDelaySeconds: 1
        autoRollback: [DEPLOYMENT_FAILURE]
"#;

#[test]
fn the_issue_contract_reads() {
    let stack = parse_stack("stack.yaml", CONTRACT).unwrap().value;
    let g = &stack.applications["shop"].deployment_groups["prod"];
    assert!(g.selects(&tags(&[("env", "prod"), ("zone", "a")])));
    assert!(!g.selects(&tags(&[("env", "dev")])));
    assert_eq!(
        g.outdated_instances_strategy,
        OutdatedInstancesStrategy::Update
    );
    assert_eq!(g.all_load_balancers().count(), 1);
    let cfg = stack.host_config(&g.deployment_config).unwrap();
    assert_eq!(cfg.rule, HostsRule::OneAtATime);
    // The stack round-trips through its canonical JSON.
    let again = parse_stack("stack.json", &stack.to_json().to_string())
        .unwrap()
        .value;
    assert_eq!(again, stack);
}

#[test]
fn a_server_config_with_zones_and_blue_green_reads() {
    let text = dedent(
        r#"
        applications:
          shop:
            computePlatform: Server
            deploymentGroups:
              zonal:
                onPremisesTagSet:
                  - [{Key: env, Value: prod, Type: KEY_AND_VALUE}]
                  - [{Key: role, Type: KEY_ONLY}, {Value: web, Type: VALUE_ONLY}]
                deploymentConfig: Zonal
                ignoreApplicationStopFailures: true
                fileExistsBehavior: OVERWRITE
                outdatedInstancesStrategy: IGNORE
                loadBalancers:
                  - {listener: 127.0.0.1:18091}
                  - {listener: 127.0.0.1:18092}
                blueGreen:
                  replacementTagFilters: [{Key: color, Value: green, Type: KEY_AND_VALUE}]
                  trafficConfig: CodeDeployDefault.ECSCanary10Percent5Minutes
                  terminationWaitMinutes: 5
        deploymentConfigs:
          Zonal:
            minimumHealthyHosts: {type: FLEET_PERCENT, value: 50}
            zonalConfig:
              firstZoneMonitorDurationInSeconds: 60
              monitorDurationInSeconds: 30
              minimumHealthyHostsPerZone: {type: HOST_COUNT, value: 1}
        "#,
    );
    let stack = parse_stack("stack.yaml", &text).unwrap().value;
    let g = &stack.applications["shop"].deployment_groups["zonal"];
    // AND of ORs.
    assert!(g.selects(&tags(&[("env", "prod"), ("role", "x")])));
    assert!(g.selects(&tags(&[("env", "prod"), ("any", "web")])));
    assert!(!g.selects(&tags(&[("env", "prod")])));
    assert!(!g.selects(&tags(&[("role", "x")])));
    let cfg = stack.host_config("Zonal").unwrap();
    assert_eq!(
        cfg.rule,
        HostsRule::Minimum(MinimumHealthyHosts {
            kind: MinimumHealthyHostsType::FleetPercent,
            value: 50
        })
    );
    assert_eq!(
        cfg.zonal.unwrap().first_zone_monitor_duration_in_seconds,
        Some(60)
    );
    let bg = g.blue_green.as_ref().unwrap();
    assert!(bg.is_replacement(&tags(&[("color", "green")])));
    assert!(!bg.is_replacement(&tags(&[("color", "blue")])));
}

#[test]
fn tag_filters_match_as_codedeploy_defines_them() {
    let f = |key: Option<&str>, value: Option<&str>, kind| TagFilter {
        key: key.map(str::to_owned),
        value: value.map(str::to_owned),
        kind,
    };
    let host = tags(&[("env", "prod"), ("tier", "web")]);
    assert!(f(Some("env"), None, TagFilterType::KeyOnly).matches(&host));
    assert!(!f(Some("prod"), None, TagFilterType::KeyOnly).matches(&host));
    assert!(f(None, Some("web"), TagFilterType::ValueOnly).matches(&host));
    assert!(!f(None, Some("env"), TagFilterType::ValueOnly).matches(&host));
    assert!(f(Some("env"), Some("prod"), TagFilterType::KeyAndValue).matches(&host));
    assert!(!f(Some("env"), Some("web"), TagFilterType::KeyAndValue).matches(&host));
    assert!(!f(Some("tier"), Some("prod"), TagFilterType::KeyAndValue).matches(&host));
    assert!(!f(Some("env"), Some("prod"), TagFilterType::KeyAndValue).matches(&BTreeMap::new()));
}

#[test]
fn application_mistakes() {
    check(
        r#"
        applications:
          shop:
            computePlatform: ECS
            deploymentGroups:
              prod:
                onPremisesTagFilters: [{Key: env, Type: KEY_AND_VALUE}, {Key: a, Value: b, Type: VALUE_ONLY}]
                onPremisesTagSet: [[{Key: env, Type: KEY_ONLY}]]
                deploymentConfig: CodeDeployDefault.OneAtATim
                alarms: [nope]
                loadBalancer: {listener: 127.0.0.1:18090, deregistrationDelaySeconds: 4000}
                loadBalancers: [{listener: 127.0.0.1:18090}]
        "#,
        r#"
        stack.yaml:3:22: applications.shop.computePlatform: must be Server: ECS deployments are declared under services:
        stack.yaml:6:32: applications.shop.deploymentGroups.prod.onPremisesTagFilters[0]: missing field "Value" (Type is KEY_AND_VALUE)
        stack.yaml:6:66: applications.shop.deploymentGroups.prod.onPremisesTagFilters[1].Key: does not apply to Type VALUE_ONLY
        stack.yaml:7:9: applications.shop.deploymentGroups.prod.onPremisesTagSet: give onPremisesTagFilters or onPremisesTagSet, not both
        stack.yaml:8:27: applications.shop.deploymentGroups.prod.deploymentConfig: unknown host deployment configuration "CodeDeployDefault.OneAtATim", did you mean "CodeDeployDefault.OneAtATime"?
        stack.yaml:9:18: applications.shop.deploymentGroups.prod.alarms[0]: unknown alarm "nope": define it under alarms
        stack.yaml:10:79: applications.shop.deploymentGroups.prod.loadBalancer.deregistrationDelaySeconds: must be between 0 and 3600 seconds, found 4000
        stack.yaml:11:9: applications.shop.deploymentGroups.prod.loadBalancers: give loadBalancer or loadBalancers, not both
        stack.yaml:11:36: applications.shop.deploymentGroups.prod.loadBalancers[0].listener: address 127.0.0.1:18090 is already used by applications.shop.deploymentGroups.prod.loadBalancer.listener
        "#,
    );
}

#[test]
fn strict_keys_and_missing_filters() {
    check(
        r#"
        applications:
          shop:
            computePlatform: Server
            deploymentGroups:
              prod:
                deploymentConfg: CodeDeployDefault.AllAtOnce
        "#,
        r#"
        stack.yaml:6:9: applications.shop.deploymentGroups.prod.deploymentConfg: unknown key "deploymentConfg", did you mean "deploymentConfig"?
        stack.yaml:6:9: applications.shop.deploymentGroups.prod: missing field "onPremisesTagFilters" (or "onPremisesTagSet"): a group without tag filters selects no host
        "#,
    );
    check(
        r#"
        applications:
          shop:
            computePlatform: Server
            deploymentGroups:
              prod:
                onPremisesTagSet: [[], [{Value: x, Type: VALUE_ONLY}], [{Value: x, Type: VALUE_ONLY}], [{Value: x, Type: VALUE_ONLY}]]
                blueGreen:
                  replacementTagFilters: []
                  trafficConfig: Nope
        "#,
        r#"
        stack.yaml:6:27: applications.shop.deploymentGroups.prod.onPremisesTagSet: at most 3 groups, found 4
        stack.yaml:6:28: applications.shop.deploymentGroups.prod.onPremisesTagSet[0]: a group needs at least one filter
        stack.yaml:8:11: applications.shop.deploymentGroups.prod.blueGreen: blue/green needs a loadBalancer to move traffic
        stack.yaml:8:34: applications.shop.deploymentGroups.prod.blueGreen.replacementTagFilters: needs at least one filter choosing the replacement hosts
        stack.yaml:9:26: applications.shop.deploymentGroups.prod.blueGreen.trafficConfig: unknown traffic configuration "Nope": use a predefined CodeDeployDefault.ECS* one or a deploymentConfigs entry with trafficRouting
        "#,
    );
}

#[test]
fn server_config_mistakes() {
    check(
        r#"
        deploymentConfigs:
          A:
            computePlatform: Server
            trafficRouting: {type: AllAtOnce}
          B:
            minimumHealthyHosts: {type: FLEET_PERCENT, value: 100}
            zonalConfig: {monitorDurationInSeconds: 100000, minimumHealthyHostsPerZone: {type: FLEET_PERCENT, value: 120}}
          C:
            computePlatform: ECS
            trafficRouting: {type: AllAtOnce}
            minimumHealthyHosts: {type: HOST_COUNT, value: 1}
        "#,
        r#"
        stack.yaml:3:5: deploymentConfigs.A: missing field "minimumHealthyHosts"
        stack.yaml:4:5: deploymentConfigs.A.trafficRouting: does not apply to computePlatform: Server (a blue/green deployment group names its traffic configuration in blueGreen.trafficConfig)
        stack.yaml:6:55: deploymentConfigs.B.minimumHealthyHosts.value: must be between 0 and 99, found 100
        stack.yaml:7:45: deploymentConfigs.B.zonalConfig.monitorDurationInSeconds: must be between 0 and 86400 seconds, found 100000
        stack.yaml:7:110: deploymentConfigs.B.zonalConfig.minimumHealthyHostsPerZone.value: must be between 0 and 99, found 120
        stack.yaml:11:5: deploymentConfigs.C.minimumHealthyHosts: applies only to computePlatform: Server
        "#,
    );
    check(
        r#"
        deploymentConfigs:
          D:
            minimumHealthyHosts: {type: MOST_CONCURRENCY, value: 1}
        "#,
        r#"stack.yaml:3:33: deploymentConfigs.D.minimumHealthyHosts.type: unknown variant "MOST_CONCURRENCY", expected one of HOST_COUNT, FLEET_PERCENT"#,
    );
}
