//! Realistic files parse cleanly, keep what they say, and round-trip.

use std::time::Duration;

use cutover_spec::appspec::TaskDefinitionTarget;
use cutover_spec::ecr::TagMutability;
use cutover_spec::stack::{
    Alarm, DeploymentType, HookProtocol, HookTarget, ReadyAction, Runtime, Statistic,
    TaskDefinitionRef, TrafficShift, check_task_definition,
};
use cutover_spec::taskdef::{DependencyCondition, HealthProbe};
use cutover_spec::{
    LifecycleEvent, Stack, TaskDefinition, parse_appspec, parse_image_definitions,
    parse_image_detail, parse_stack, parse_task_definition,
};

const TASKDEF: &str = include_str!("fixtures/taskdef.json");
const DESCRIBE: &str = include_str!("fixtures/describe-task-definition.json");
const APPSPEC: &str = include_str!("fixtures/appspec.yaml");
const STACK: &str = include_str!("fixtures/stack.yaml");
const IMAGE_DEFINITIONS: &str = include_str!("fixtures/imagedefinitions.json");
const IMAGE_DETAIL: &str = include_str!("fixtures/imageDetail.json");

#[test]
fn task_definition_fixture() {
    let parsed = parse_task_definition("taskdef.json", TASKDEF).unwrap();
    assert_eq!(parsed.warnings, []);
    let td = parsed.value;
    assert_eq!(td.family, "web");
    assert_eq!(td.cpu.as_deref(), Some("256"));
    let web = td.container("web").unwrap();
    assert_eq!(web.image_placeholder(), Some("IMAGE1_NAME"));
    assert_eq!(web.port_mappings[0].container_port, Some(8080));
    let hc = web.health_check.as_ref().unwrap();
    assert_eq!(
        hc.probe(),
        Some(HealthProbe::Shell(
            "curl -f http://localhost:8080/health || exit 1".to_owned()
        ))
    );
    assert_eq!(
        (
            hc.interval_or_default(),
            hc.timeout_or_default(),
            hc.retries_or_default()
        ),
        (5, 2, 3)
    );
    assert_eq!(web.depends_on[0].condition, DependencyCondition::Start);
    assert_eq!(web.stop_timeout_or_default(), 20);
    let router = td.container("log-router").unwrap();
    assert!(!router.is_essential());
    assert_eq!(router.stop_timeout_or_default(), 30);
    assert!(router.firelens_configuration.is_some());
}

#[test]
fn task_definition_round_trips_through_canonical_json() {
    let td = parse_task_definition("taskdef.json", TASKDEF)
        .unwrap()
        .value;
    let json = td.to_json();
    assert_eq!(json["containerDefinitions"][0]["image"], "<IMAGE1_NAME>");
    assert!(
        json["containerDefinitions"][1].get("entryPoint").is_none(),
        "absent fields stay absent"
    );
    let again = parse_task_definition("canonical.json", &json.to_string()).unwrap();
    assert_eq!(again.warnings, []);
    assert_eq!(again.value, td);
    let from_serde: TaskDefinition = serde_json::from_value(json).unwrap();
    assert_eq!(from_serde, td);
}

#[test]
fn image_placeholder_is_replaced() {
    let mut td = parse_task_definition("taskdef.json", TASKDEF)
        .unwrap()
        .value;
    let detail = parse_image_detail("imageDetail.json", IMAGE_DETAIL)
        .unwrap()
        .value;
    assert_eq!(
        td.replace_image_placeholder("IMAGE1_NAME", &detail.image_uri),
        1
    );
    assert_eq!(td.container("web").unwrap().image, detail.image_uri);
}

#[test]
fn describe_task_definition_output_warns_only_about_its_output_fields() {
    let parsed = parse_task_definition("web-8.json", DESCRIBE).unwrap();
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 7, "{warnings:#?}");
    for w in &warnings {
        assert!(
            w.ends_with("is an output-only field of describe-task-definition, ignored"),
            "{w}"
        );
    }
    let td = parsed.value;
    assert_eq!(td.family, "web");
    assert_eq!(
        td.tags,
        Some(serde_json::json!([{"key": "app", "value": "web"}]))
    );
    let json = td.to_json();
    for read_only in [
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
    ] {
        assert!(json.get(read_only).is_none(), "{read_only} is dropped");
    }

    // The `--query taskDefinition` form: the inner object alone.
    let whole: serde_json::Value = serde_json::from_str(DESCRIBE).unwrap();
    let inner = whole["taskDefinition"].to_string();
    let parsed = parse_task_definition("web-8.json", &inner).unwrap();
    assert_eq!(parsed.warnings.len(), 7, "{:#?}", parsed.warnings);
    assert_eq!(parsed.value.container_definitions, td.container_definitions);
}

#[test]
fn appspec_with_placeholders() {
    let parsed = parse_appspec("appspec.yaml", APPSPEC).unwrap();
    assert_eq!(parsed.warnings, []);
    let spec = parsed.value;
    assert_eq!(spec.version, "0.0");
    let svc = spec.target_service();
    assert_eq!(svc.kind, "AWS::ECS::Service");
    assert_eq!(
        svc.properties.task_definition_target(),
        Ok(TaskDefinitionTarget::Placeholder(
            "TASK_DEFINITION".to_owned()
        ))
    );
    assert_eq!(svc.properties.load_balancer_info.container_name, "web");
    assert_eq!(svc.properties.load_balancer_info.container_port, 8080);
    assert!(svc.properties.network_configuration.is_some());
    let events: Vec<_> = spec.hooks.iter().map(|h| h.event).collect();
    assert_eq!(
        events,
        [
            LifecycleEvent::BeforeInstall,
            LifecycleEvent::AfterAllowTestTraffic,
            LifecycleEvent::BeforeAllowTraffic
        ]
    );
    assert_eq!(
        spec.hook(LifecycleEvent::AfterAllowTestTraffic),
        Some("CheckGreenThroughTestListener")
    );

    // The same as JSON, with the version as a string and a number, round-tripped.
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        json["Resources"][0]["TargetService"]["Type"],
        "AWS::ECS::Service"
    );
    assert_eq!(
        json["Hooks"][0]["BeforeInstall"],
        "arn:aws:lambda:us-east-1:111122223333:function:BeforeInstallHook"
    );
    let again = parse_appspec("appspec.json", &json.to_string())
        .unwrap()
        .value;
    assert_eq!(again, spec);
    let mut numeric = json.clone();
    numeric["version"] = serde_json::json!(0.0);
    assert_eq!(
        parse_appspec("appspec.json", &numeric.to_string())
            .unwrap()
            .value,
        spec
    );
}

#[test]
fn task_definition_targets() {
    let family = |f: &str, r: Option<u32>| TaskDefinitionTarget::Family {
        family: f.to_owned(),
        revision: r,
    };
    assert_eq!(
        TaskDefinitionTarget::parse("arn:aws:ecs:us-east-1:111122223333:task-definition/web:8"),
        Ok(family("web", Some(8)))
    );
    assert_eq!(
        TaskDefinitionTarget::parse("web:12"),
        Ok(family("web", Some(12)))
    );
    assert_eq!(TaskDefinitionTarget::parse("web"), Ok(family("web", None)));
    assert!(TaskDefinitionTarget::parse("web:latest").is_err());
}

#[test]
fn hand_off_files() {
    let defs = parse_image_definitions("imagedefinitions.json", IMAGE_DEFINITIONS).unwrap();
    assert_eq!(defs.warnings, []);
    assert_eq!(defs.value.len(), 2);
    assert_eq!(defs.value[0].name, "web");
    assert_eq!(
        defs.value[0].image_uri,
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/web:3f2a9c1"
    );

    let detail = parse_image_detail("imageDetail.json", IMAGE_DETAIL)
        .unwrap()
        .value;
    assert!(
        detail
            .image_uri
            .ends_with("@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(detail.other["RepositoryName"], "web");
    let json = serde_json::to_string(&detail).unwrap();
    assert_eq!(
        parse_image_detail("imageDetail.json", &json).unwrap().value,
        detail
    );
}

#[test]
fn stack_fixture() {
    let parsed = parse_stack("stack.yaml", STACK).unwrap();
    assert_eq!(parsed.warnings, []);
    let stack = parsed.value;
    assert_eq!(
        stack.services.keys().collect::<Vec<_>>(),
        ["api", "web", "worker"]
    );

    let web = &stack.services["web"];
    assert_eq!(web.runtime, Some(Runtime::Process));
    assert_eq!(web.desired_count, 2);
    assert_eq!(
        web.task_definition,
        TaskDefinitionRef::Path("./taskdef.json".to_owned())
    );
    let lb = web.load_balancer.as_ref().unwrap();
    assert_eq!(lb.listener.to_string(), "127.0.0.1:18080");
    assert_eq!(lb.test_listener.unwrap().to_string(), "127.0.0.1:19080");
    assert_eq!(lb.health_check.interval(), Duration::from_secs(1));
    assert_eq!(lb.health_check.timeout(), Duration::from_secs(1));
    assert!(lb.health_check.matcher.matches(204) && !lb.health_check.matcher.matches(302));
    let d = &web.deployment;
    assert_eq!(d.kind, DeploymentType::BlueGreen);
    assert_eq!(
        stack.traffic_shift(d.config_name()),
        Some(TrafficShift::Canary {
            percent: 20,
            interval: Duration::from_secs(5)
        })
    );
    assert_eq!(d.termination_wait(), Duration::from_secs(30));
    assert_eq!(d.ready().action, ReadyAction::ContinueDeployment);
    let hooks = &d.hooks;
    assert_eq!(
        hooks[&LifecycleEvent::AfterAllowTestTraffic].target(),
        HookTarget::Command(&[
            "sh".to_owned(),
            "-c".to_owned(),
            "curl -fs $CUTOVER_TEST_URL/health".to_owned()
        ])
    );
    assert_eq!(
        hooks[&LifecycleEvent::AfterAllowTestTraffic].timeout(),
        Duration::from_secs(30)
    );
    assert_eq!(
        hooks[&LifecycleEvent::BeforeAllowTraffic].target(),
        HookTarget::Url {
            url: "http://127.0.0.1:9000/hook",
            protocol: HookProtocol::CodeDeploy
        }
    );
    assert_eq!(
        hooks[&LifecycleEvent::BeforeAllowTraffic].timeout(),
        Duration::from_secs(3600)
    );

    let worker = &stack.services["worker"];
    assert_eq!(worker.runtime, Some(Runtime::Docker));
    assert_eq!(
        worker.task_definition,
        TaskDefinitionRef::Family {
            family: "worker".to_owned(),
            revision: Some(4)
        }
    );
    assert_eq!(worker.deployment.kind, DeploymentType::Rolling);
    assert_eq!(worker.deployment.minimum_healthy_percent_or_default(), 50);
    assert!(worker.deployment.circuit_breaker.unwrap().rollback);

    // Minutes (AWS's unit) are folded into seconds; AWS's key names into Cutover's.
    let api = &stack.services["api"];
    assert_eq!(api.desired_count, 1);
    assert_eq!(api.deployment.termination_wait_seconds, Some(60));
    assert_eq!(api.deployment.termination_wait_minutes, None);
    let ready = api.deployment.ready();
    assert_eq!(
        (ready.action, ready.wait_seconds, ready.wait_minutes),
        (ReadyAction::StopDeployment, Some(1800), None)
    );
    assert_eq!(
        api.load_balancer
            .as_ref()
            .unwrap()
            .health_check
            .matcher
            .as_str(),
        "200"
    );
    let linear = &stack.deployment_configs["Linear25PercentEvery2Minutes"];
    assert!(linear.traffic_routing.is_some() && linear.traffic_routing_config.is_none());
    assert_eq!(
        stack.traffic_shift("Linear25PercentEvery2Minutes"),
        Some(TrafficShift::Linear {
            percent: 25,
            interval: Duration::from_secs(120)
        })
    );
    assert_eq!(
        stack.traffic_shift("EverythingNow"),
        Some(TrafficShift::AllAtOnce)
    );
    assert_eq!(
        stack.traffic_shift("CodeDeployDefault.ECSCanary10Percent15Minutes"),
        Some(TrafficShift::Canary {
            percent: 10,
            interval: Duration::from_secs(900)
        })
    );

    let Alarm::Metric(latency) = &stack.alarms["web-latency"] else {
        panic!("metric alarm")
    };
    assert_eq!(latency.statistic, Statistic::Percentile(99.0));
    let Alarm::Metric(errors) = &stack.alarms["web-5xx"] else {
        panic!("metric alarm")
    };
    assert!(errors.comparison_operator.breaches(1.0, errors.threshold));
    let Alarm::Composite(bad) = &stack.alarms["web-bad"] else {
        panic!("composite alarm")
    };
    assert_eq!(
        bad.rule().unwrap().alarm_names(),
        ["web-5xx", "web-latency"]
    );
    assert_eq!(stack.repositories, Some(serde_json::json!({})));

    let web = &stack.image_repositories["web"];
    assert_eq!(web.image_tag_mutability, TagMutability::Immutable);
    assert!(web.image_scanning_configuration.scan_on_push && !web.anonymous_pull);
    let policy = web.lifecycle_policy.as_ref().unwrap();
    assert_eq!(policy.rules[1].selection.count_number, 14);
    // The stack's mapping is ECR's policy text.
    let text = policy.to_json_text();
    assert_eq!(
        &cutover_spec::ecr::parse_lifecycle_policy("policy.json", &text)
            .unwrap()
            .value,
        policy
    );
    let base = &stack.image_repositories["team/base-images"];
    assert_eq!(base.image_tag_mutability, TagMutability::Mutable);
    assert!(base.anonymous_pull && base.lifecycle_policy.is_none());
}

#[test]
fn stack_round_trips() {
    let stack = parse_stack("stack.yaml", STACK).unwrap().value;
    let json = stack.to_json();
    let from_serde: Stack = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(from_serde, stack);
    let reparsed =
        parse_stack("stack.json", &serde_json::to_string_pretty(&json).unwrap()).unwrap();
    assert_eq!(reparsed.warnings, []);
    assert_eq!(reparsed.value, stack);
    assert_eq!(reparsed.value.to_json(), json);
}

#[test]
fn empty_stack_is_valid() {
    let parsed = parse_stack("stack.yaml", "# nothing yet\n").unwrap();
    assert_eq!(parsed.value, Stack::default());
}

#[test]
fn stack_against_task_definition() {
    let td = parse_task_definition("taskdef.json", TASKDEF)
        .unwrap()
        .value;
    check_task_definition("stack.yaml", STACK, "web", &td).unwrap();

    let wrong = STACK
        .replace("containerPort: 8080", "containerPort: 8081")
        .replace("containerName: web", "containerName: webb");
    let err = check_task_definition("stack.yaml", &wrong, "web", &td).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"stack.yaml:8:22: services.web.loadBalancer.containerName: task definition "web" has no container named "webb", did you mean "web"?"#
    );
    let wrong = STACK.replace("containerPort: 8080", "containerPort: 8081");
    let err = check_task_definition("stack.yaml", &wrong, "web", &td).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"stack.yaml:9:22: services.web.loadBalancer.containerPort: container "web" has no port mapping for containerPort 8081 (it maps 8080)"#
    );
}

#[test]
fn diagnostics_serialize_for_the_api() {
    let err = parse_stack("stack.yaml", "services:\n  web:\n    desiredCount: 2\n").unwrap_err();
    assert_eq!(
        serde_json::to_value(&err.diagnostics).unwrap(),
        serde_json::json!([{
            "severity": "error",
            "file": "stack.yaml",
            "line": 3,
            "column": 5,
            "path": "services.web",
            "message": "missing field \"taskDefinition\""
        }])
    );
    assert_eq!(
        err.diagnostics[0].with_severity().to_string(),
        "stack.yaml:3:5: error: services.web: missing field \"taskDefinition\""
    );
}

#[test]
fn warnings_are_kept_when_the_file_is_refused() {
    let err = parse_task_definition(
        "taskdef.json",
        r#"{"famly": "web", "containerDefinitions": []}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"taskdef.json:1:1: missing field "family""#
    );
    assert_eq!(
        err.warnings
            .iter()
            .map(|w| w.with_severity().to_string())
            .collect::<Vec<_>>(),
        [
            r#"taskdef.json:1:2: warning: famly: unknown field "famly", ignored (did you mean "family"?)"#
        ]
    );
}

#[test]
fn yaml_conveniences() {
    let text = "\
x-health: &health {path: /health, intervalSeconds: 2, matcher: 200}
services:
  web:
    taskDefinition: web
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18080
      healthCheck: *health
    deployment: {circuitBreaker: {enable: yes, rollback: off}}
";
    // `x-health` is not a key of the stack: strict, even for anchors.
    let err = parse_stack("stack.yaml", text).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"stack.yaml:1:1: x-health: unknown key "x-health", expected one of services, deploymentConfigs, alarms, functions, imageRepositories, repositories, buildProjects, pipelines, applications"#
    );

    let text = text
        .replacen(
            "x-health: &health {path: /health, intervalSeconds: 2, matcher: 200}\n",
            "",
            1,
        )
        .replace(
            "healthCheck: *health",
            "healthCheck: &health {path: /health, intervalSeconds: 2, matcher: 200}",
        )
        + "  api:\n    taskDefinition: api\n    loadBalancer: {containerName: api, containerPort: 80, listener: 127.0.0.1:18081, healthCheck: *health}\n";
    let stack = parse_stack("stack.yaml", &text).unwrap().value;
    let web = &stack.services["web"];
    let api = &stack.services["api"];
    assert_eq!(
        web.load_balancer.as_ref().unwrap().health_check,
        api.load_balancer.as_ref().unwrap().health_check
    );
    assert_eq!(
        web.load_balancer
            .as_ref()
            .unwrap()
            .health_check
            .matcher
            .as_str(),
        "200"
    );
    let breaker = web.deployment.circuit_breaker.unwrap();
    assert!(breaker.enable && !breaker.rollback);
    assert_eq!(
        web.task_definition,
        TaskDefinitionRef::Family {
            family: "web".to_owned(),
            revision: None
        }
    );
}

#[test]
fn other_deserializers_stop_at_the_first_error() {
    // The collections that keep going after an error inside this crate must
    // not do so with serde_json (whose state is gone after an error).
    let bad = r#"{"services": {"a": {"taskDefinition": 1}, "b": {"taskDefinition": "b"}}}"#;
    assert!(serde_json::from_str::<Stack>(bad).is_err());
}

#[test]
fn service_settings_round_trip_through_json_as_the_store_keeps_them() {
    let stack = parse_stack("stack.yaml", STACK).unwrap().value;
    assert!(!stack.services.is_empty());
    for (name, svc) in &stack.services {
        let settings = svc.settings();
        let text = serde_json::to_string(&settings).unwrap();
        let back: cutover_spec::stack::ServiceSettings = serde_json::from_str(&text).unwrap();
        assert_eq!(back, settings, "{name}: {text}");
        // What older servers stored: the whole service minus its revision
        // and count, also reads back.
        let mut old = serde_json::to_value(svc).unwrap();
        let obj = old.as_object_mut().unwrap();
        obj.remove("taskDefinition");
        obj.remove("desiredCount");
        obj.remove("runtime");
        let back: cutover_spec::stack::ServiceSettings = serde_json::from_value(old).unwrap();
        assert_eq!(back, settings, "{name}");
    }
}
