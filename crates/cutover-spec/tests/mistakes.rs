//! Data-driven tests: one mistake per document, and the exact located
//! diagnostics (`file:line:column: path: message`) that must come out.
//!
//! Documents are written indented in this file; `check` removes the common
//! indentation and the first newline, so line 1 is the first line shown.

use cutover_spec::{
    SpecError, TaskDefinitionFrom, parse_appspec, parse_appspec_for, parse_image_definitions,
    parse_image_detail, parse_stack, parse_task_definition,
};

/// Removes the first newline and the indentation common to all lines.
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

/// Parses `text` as the kind of file `file` names.
fn parse(file: &str, text: &str) -> Result<Vec<String>, SpecError> {
    fn warnings<T>(
        r: Result<cutover_spec::Parsed<T>, SpecError>,
    ) -> Result<Vec<String>, SpecError> {
        r.map(|p| p.warnings.iter().map(ToString::to_string).collect())
    }
    if file.starts_with("taskdef") {
        warnings(parse_task_definition(file, text))
    } else if file.starts_with("stack") {
        warnings(parse_stack(file, text))
    } else if let Some(name) = file.strip_prefix("template/") {
        // An appspec whose task definition comes from elsewhere.
        warnings(parse_appspec_for(name, text, TaskDefinitionFrom::Elsewhere))
    } else if file.starts_with("appspec") {
        warnings(parse_appspec(file, text))
    } else if file.starts_with("imagedefinitions") {
        warnings(parse_image_definitions(file, text))
    } else if file.starts_with("imageDetail") {
        warnings(parse_image_detail(file, text))
    } else {
        panic!("no parser for {file}")
    }
}

/// Asserts that `text` is refused with exactly `expected` (one diagnostic a line).
#[track_caller]
fn check(file: &str, text: &str, expected: &str) {
    let text = dedent(text);
    match parse(file, &text) {
        Ok(_) => panic!("{file} was accepted, expected:\n{expected}\n--- document:\n{text}"),
        Err(e) => assert_eq!(
            e.to_string(),
            dedent(expected).trim_end(),
            "\n--- document:\n{text}"
        ),
    }
}

/// Asserts that `text` is accepted with exactly `expected` warnings.
#[track_caller]
fn check_warnings(file: &str, text: &str, expected: &str) {
    let text = dedent(text);
    match parse(file, &text) {
        Ok(w) => assert_eq!(
            w.join("\n"),
            dedent(expected).trim_end(),
            "\n--- document:\n{text}"
        ),
        Err(e) => panic!("{file} was refused:\n{e}\n--- document:\n{text}"),
    }
}

// ---------------------------------------------------------------- taskdef.json

#[test]
fn taskdef_wrong_type_for_port() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [
            {
              "name": "web",
              "image": "nginx",
              "portMappings": [{"containerPort": "80a"}]
            }
          ]
        }
        "#,
        r#"taskdef.json:7:42: containerDefinitions[0].portMappings[0].containerPort: expected an integer, found "80a""#,
    );
}

#[test]
fn taskdef_missing_required_field() {
    check(
        "taskdef.json",
        r#"
        {
          "containerDefinitions": [{"name": "web", "image": "nginx"}]
        }
        "#,
        r#"taskdef.json:1:1: missing field "family""#,
    );
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [{"name": "web"}]
        }
        "#,
        r#"taskdef.json:3:28: containerDefinitions[0]: missing field "image""#,
    );
}

#[test]
fn taskdef_unknown_variant() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [
            {"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80, "protocol": "TCP"}]}
          ]
        }
        "#,
        r#"taskdef.json:4:90: containerDefinitions[0].portMappings[0].protocol: unknown variant "TCP", expected one of tcp, udp"#,
    );
}

#[test]
fn taskdef_duplicate_container_names() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [
            {"name": "web", "image": "nginx"},
            {"name": "web", "image": "envoy"}
          ]
        }
        "#,
        r#"taskdef.json:5:14: containerDefinitions[1].name: duplicate container name "web", first used by containerDefinitions[0]"#,
    );
}

#[test]
fn taskdef_duplicate_environment_names() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [{
            "name": "web",
            "image": "nginx",
            "environment": [
              {"name": "PORT", "value": "80"},
              {"name": "PORT", "value": "8080"}
            ],
            "secrets": [{"name": "PORT", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/port"}]
          }]
        }
        "#,
        r#"
        taskdef.json:8:16: containerDefinitions[0].environment[1].name: duplicate environment variable "PORT", first set by containerDefinitions[0].environment[0]
        taskdef.json:10:26: containerDefinitions[0].secrets[0].name: duplicate environment variable "PORT", first set by containerDefinitions[0].environment[0]
        "#,
    );
}

#[test]
fn taskdef_port_out_of_range() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [
            {"name": "web", "image": "nginx", "portMappings": [{"containerPort": 70000}, {"containerPort": 0, "hostPort": 65536}]}
          ]
        }
        "#,
        r#"
        taskdef.json:4:74: containerDefinitions[0].portMappings[0].containerPort: must be between 1 and 65535, found 70000
        taskdef.json:4:100: containerDefinitions[0].portMappings[1].containerPort: must be between 1 and 65535, found 0
        taskdef.json:4:115: containerDefinitions[0].portMappings[1].hostPort: must be between 0 and 65535, found 65536
        "#,
    );
    // Type errors come before range checks: a negative port is not an integer of the right kind.
    check(
        "taskdef.json",
        r#"
        {"family": "web", "containerDefinitions": [{"name": "web", "image": "nginx", "portMappings": [{"containerPort": -80}]}]}
        "#,
        r#"taskdef.json:1:113: containerDefinitions[0].portMappings[0].containerPort: expected a non-negative integer, found -80"#,
    );
}

#[test]
fn taskdef_health_check_out_of_range() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [{
            "name": "web",
            "image": "nginx",
            "healthCheck": {"command": ["CMD"], "interval": 0, "timeout": 40}
          }]
        }
        "#,
        r#"
        taskdef.json:6:32: containerDefinitions[0].healthCheck.command: "CMD" must be followed by a command
        taskdef.json:6:53: containerDefinitions[0].healthCheck.interval: must be between 1 and 300 seconds, found 0
        taskdef.json:6:67: containerDefinitions[0].healthCheck.timeout: must not exceed the interval (0 seconds), found 40
        "#,
    );
}

/// ECS registers a check whose first word is a command; Docker never runs it.
#[test]
fn taskdef_health_check_command_without_cmd_is_a_warning() {
    check_warnings(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [{
            "name": "web",
            "image": "nginx",
            "healthCheck": {"command": ["curl", "-f", "http://localhost/"]}
          }]
        }
        "#,
        r#"taskdef.json:6:33: containerDefinitions[0].healthCheck.command[0]: "curl" is not "CMD" or "CMD-SHELL": ECS registers it, but Docker runs no such check, so the container's health stays UNKNOWN (here too); write ["CMD-SHELL", "curl -f http://localhost/"]"#,
    );
}

/// AWS's readers coerce `"80"` to 80 in every integer field; so does Cutover, with a warning.
#[test]
fn taskdef_integers_written_as_strings_are_warnings() {
    check_warnings(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [{
            "name": "web",
            "image": "nginx",
            "memory": "512",
            "portMappings": [{"containerPort": "80", "hostPort": "0"}],
            "healthCheck": {"command": ["CMD-SHELL", "true"], "retries": "2"}
          }]
        }
        "#,
        r#"
        taskdef.json:6:15: containerDefinitions[0].memory: memory is the string "512"; AWS reads it as the number 512
        taskdef.json:7:40: containerDefinitions[0].portMappings[0].containerPort: containerPort is the string "80"; AWS reads it as the number 80
        taskdef.json:7:58: containerDefinitions[0].portMappings[0].hostPort: hostPort is the string "0"; AWS reads it as the number 0
        taskdef.json:8:66: containerDefinitions[0].healthCheck.retries: retries is the string "2"; AWS reads it as the number 2
        "#,
    );
    // The number is then checked like any other.
    check(
        "taskdef.json",
        r#"
        {"family": "web", "containerDefinitions": [{"name": "web", "image": "nginx", "portMappings": [{"containerPort": "70000"}]}]}
        "#,
        r#"taskdef.json:1:113: containerDefinitions[0].portMappings[0].containerPort: must be between 1 and 65535, found 70000"#,
    );
}

/// Cutover's own files keep refusing a quoted number.
#[test]
fn stack_integer_written_as_a_string_is_refused() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            desiredCount: "2"
            taskDefinition: ./taskdef.json
        "#,
        r#"stack.yaml:3:19: services.web.desiredCount: expected an integer, found "2""#,
    );
}

#[test]
fn taskdef_describe_output_fields_are_warnings() {
    check_warnings(
        "taskdef.json",
        r#"
        {
          "taskDefinitionArn": "arn:aws:ecs:us-east-1:111122223333:task-definition/web:3",
          "family": "web",
          "revision": 3,
          "containerDefinitions": [{"name": "web", "image": "nginx"}],
          "registeredAt": "2024-03-05T10:12:44.312000+00:00"
        }
        "#,
        r#"
        taskdef.json:2:3: taskDefinitionArn: "taskDefinitionArn" is an output-only field of describe-task-definition, ignored
        taskdef.json:4:3: revision: "revision" is an output-only field of describe-task-definition, ignored
        taskdef.json:6:3: registeredAt: "registeredAt" is an output-only field of describe-task-definition, ignored
        "#,
    );
}

// RegisterTaskDefinition's rules (crates/cutover-spec/src/taskdef/register.rs).

#[test]
fn taskdef_awsvpc_host_port_differs_from_container_port() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "networkMode": "awsvpc",
          "containerDefinitions": [
            {"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 443, "hostPort": 443}]}
          ]
        }
        "#,
        r#"taskdef.json:5:90: containerDefinitions[0].portMappings[0].hostPort: in awsvpc network mode hostPort must be left out or equal containerPort (80), found 8080"#,
    );
}

#[test]
fn taskdef_fargate_host_volume() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "requiresCompatibilities": ["EC2", "FARGATE"],
          "networkMode": "awsvpc",
          "cpu": "256",
          "memory": "512",
          "volumes": [{"name": "scratch", "host": {}}, {"name": "data", "host": {"sourcePath": "/srv/data"}}],
          "containerDefinitions": [{"name": "web", "image": "nginx"}]
        }
        "#,
        r#"taskdef.json:7:88: volumes[1].host.sourcePath: Fargate tasks cannot mount a host path (requiresCompatibilities includes FARGATE): leave out sourcePath for a task-local volume, or use efsVolumeConfiguration"#,
    );
}

#[test]
fn taskdef_fargate_cpu_and_memory() {
    // A memory the CPU value does not take.
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "requiresCompatibilities": ["FARGATE"],
          "cpu": "0.25 vCPU",
          "memory": "4 GB",
          "containerDefinitions": [{"name": "web", "image": "nginx"}]
        }
        "#,
        r#"taskdef.json:5:13: memory: Fargate tasks of 256 CPU units take 512, 1024 or 2048 MiB of memory, found "4 GB""#,
    );
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "requiresCompatibilities": ["FARGATE"],
          "cpu": "2048",
          "memory": "5000",
          "containerDefinitions": [{"name": "web", "image": "nginx"}]
        }
        "#,
        r#"taskdef.json:5:13: memory: Fargate tasks of 2048 CPU units take 4096 to 16384 MiB in steps of 1024 of memory, found "5000""#,
    );
    // A CPU value Fargate does not have.
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "requiresCompatibilities": ["FARGATE"],
          "cpu": 300,
          "memory": 1024,
          "containerDefinitions": [{"name": "web", "image": "nginx"}]
        }
        "#,
        r#"taskdef.json:4:10: cpu: Fargate tasks take 256, 512, 1024, 2048, 4096, 8192 or 16384 CPU units, found "300""#,
    );
    // Both are required.
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "requiresCompatibilities": ["FARGATE"],
          "containerDefinitions": [{"name": "web", "image": "nginx"}]
        }
        "#,
        r#"
        taskdef.json:1:1: cpu: missing field "cpu" (Fargate tasks need a task-level cpu and memory)
        taskdef.json:1:1: memory: missing field "memory" (Fargate tasks need a task-level cpu and memory)
        "#,
    );
}

#[test]
fn taskdef_more_than_ten_containers() {
    let containers: Vec<String> = (0..11)
        .map(|i| format!(r#"{{"name": "c{i}", "image": "nginx"}}"#))
        .collect();
    let text = format!(
        "{{\"family\": \"web\", \"containerDefinitions\": [{}]}}",
        containers.join(", ")
    );
    check(
        "taskdef.json",
        &text,
        "taskdef.json:1:43: containerDefinitions: ECS allows at most 10 containers in a task definition, found 11",
    );
}

#[test]
fn taskdef_no_essential_container() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [
            {"name": "web", "image": "nginx", "essential": false},
            {"name": "log", "image": "fluent-bit", "essential": false}
          ]
        }
        "#,
        r#"taskdef.json:3:27: containerDefinitions: at least one container must be essential"#,
    );
}

#[test]
fn taskdef_depends_on_unknown_container() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [
            {"name": "web", "image": "nginx", "dependsOn": [{"containerName": "envoy", "condition": "HEALTHY"}]},
            {"name": "db", "image": "postgres", "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}]}
          ]
        }
        "#,
        r#"
        taskdef.json:4:71: containerDefinitions[0].dependsOn[0].containerName: no container named "envoy" in this task definition
        taskdef.json:5:73: containerDefinitions[1].dependsOn[0].containerName: condition HEALTHY needs a healthCheck on container "web"
        "#,
    );
}

#[test]
fn taskdef_depends_on_cycle() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [
            {"name": "a", "image": "x", "dependsOn": [{"containerName": "b", "condition": "START"}]},
            {"name": "b", "image": "x", "dependsOn": [{"containerName": "a", "condition": "START"}]}
          ]
        }
        "#,
        r#"taskdef.json:4:46: containerDefinitions[0].dependsOn: dependency cycle: a -> b -> a"#,
    );
}

#[test]
fn taskdef_invalid_family() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web app",
          "containerDefinitions": [{"name": "web", "image": "nginx"}]
        }
        "#,
        r#"taskdef.json:2:13: family: invalid family name "web app": use 1 to 255 letters, digits, hyphens and underscores"#,
    );
}

#[test]
fn taskdef_json_syntax_error() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [
            {"name": "web", "image": "nginx"},
          ]
        }
        "#,
        "taskdef.json:4:38: trailing comma before `]` is not allowed in JSON",
    );
    check(
        "taskdef.json",
        r#"
        {
          "family": "web"
          "containerDefinitions": []
        }
        "#,
        "taskdef.json:3:3: expected `,` or `}`, found `\"` (missing comma?)",
    );
}

#[test]
fn taskdef_duplicate_json_key() {
    check(
        "taskdef.json",
        r#"
        {"family": "web", "family": "api", "containerDefinitions": [{"name": "web", "image": "nginx"}]}
        "#,
        r#"taskdef.json:1:19: family: duplicate key "family", first defined at line 1, column 2"#,
    );
}

#[test]
fn taskdef_reports_every_container_in_one_pass() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "containerDefinitions": [
            {"name": "web", "image": "nginx", "cpu": "half"},
            {"name": "sidecar", "image": "envoy", "essential": "yes"},
            {"name": "init"}
          ]
        }
        "#,
        r#"
        taskdef.json:4:46: containerDefinitions[0].cpu: expected an integer, found "half"
        taskdef.json:5:56: containerDefinitions[1].essential: expected true or false, found "yes"
        taskdef.json:6:5: containerDefinitions[2]: missing field "image"
        "#,
    );
}

#[test]
fn taskdef_task_cpu_and_memory() {
    check(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "cpu": "1 core",
          "memory": 512,
          "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 256, "memoryReservation": 300}]
        }
        "#,
        r#"
        taskdef.json:3:10: cpu: expected CPU units such as "256" or vCPUs such as "0.5 vCPU", found "1 core"
        taskdef.json:5:98: containerDefinitions[0].memoryReservation: must not exceed memory (256 MiB), found 300
        "#,
    );
}

#[test]
fn taskdef_unknown_fields_are_warnings_with_paths() {
    check_warnings(
        "taskdef.json",
        r#"
        {
          "family": "web",
          "Family": "web",
          "containerDefinitions": [
            {"name": "web", "image": "nginx", "portMapings": [], "gpuCount": 1}
          ]
        }
        "#,
        r#"
        taskdef.json:3:3: Family: unknown field "Family", ignored (did you mean "family"?)
        taskdef.json:5:39: containerDefinitions[0].portMapings: unknown field "portMapings", ignored (did you mean "portMappings"?)
        taskdef.json:5:58: containerDefinitions[0].gpuCount: unknown field "gpuCount", ignored
        "#,
    );
}

#[test]
fn taskdef_describe_output_errors_keep_the_real_path() {
    check(
        "taskdef.json",
        r#"
        {
          "taskDefinition": {
            "family": "web",
            "revision": 3,
            "containerDefinitions": [{"name": "web", "image": "nginx", "stopTimeout": 600}]
          },
          "tags": []
        }
        "#,
        r#"taskdef.json:5:79: taskDefinition.containerDefinitions[0].stopTimeout: must be between 0 and 120 seconds, found 600"#,
    );
}

// ---------------------------------------------------------------- stack.yaml

#[test]
fn stack_unknown_key_with_suggestion() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            desiredcount: 2
            taskDefinition: ./taskdef.json
            replicas: 3
        servces: {}
        "#,
        r#"
        stack.yaml:3:5: services.web.desiredcount: unknown key "desiredcount", did you mean "desiredCount"?
        stack.yaml:5:5: services.web.replicas: unknown key "replicas", expected one of runtime, desiredCount, taskDefinition, loadBalancer, deployment, placementConstraints, placementStrategy
        stack.yaml:6:1: servces: unknown key "servces", did you mean "services"?
        "#,
    );
}

#[test]
fn stack_unknown_variant() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: web:3
            deployment:
              type: BLUEGREEN
        "#,
        r#"stack.yaml:5:13: services.web.deployment.type: unknown variant "BLUEGREEN", expected one of ROLLING, BLUE_GREEN"#,
    );
}

#[test]
fn stack_wrong_type_and_missing_field() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            desiredCount: two
          worker:
            desiredCount: 1
        "#,
        r#"
        stack.yaml:3:19: services.web.desiredCount: expected an integer, found "two"
        stack.yaml:5:5: services.worker: missing field "taskDefinition"
        "#,
    );
}

#[test]
fn stack_bad_durations() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            loadBalancer:
              containerName: web
              containerPort: 8080
              listener: 127.0.0.1:18080
              healthCheck: {intervalSeconds: 0, timeoutSeconds: 3}
            deployment:
              type: BLUE_GREEN
              terminationWaitMinutes: 3000
              deploymentReady: {action: STOP_DEPLOYMENT}
        deploymentConfigs:
          Slow:
            trafficRouting: {type: TimeBasedLinear, timeBasedLinear: {linearPercentage: 10, linearIntervalSeconds: 0}}
        "#,
        r#"
        stack.yaml:8:38: services.web.loadBalancer.healthCheck.intervalSeconds: must be between 1 and 300 seconds, found 0
        stack.yaml:11:31: services.web.deployment.terminationWaitMinutes: must be between 0 and 2880 minutes, found 3000
        stack.yaml:12:24: services.web.deployment.deploymentReady.waitSeconds: STOP_DEPLOYMENT needs waitSeconds (or waitMinutes) above zero: how long to wait for a manual continue
        stack.yaml:15:108: deploymentConfigs.Slow.trafficRouting.timeBasedLinear.linearIntervalSeconds: must be between 1 and 172800 seconds, found 0
        "#,
    );
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            loadBalancer: {containerName: web, containerPort: 8080, listener: "127.0.0.1:18080", deregistrationDelaySeconds: -5}
        "#,
        r#"stack.yaml:4:118: services.web.loadBalancer.deregistrationDelaySeconds: expected a non-negative integer, found -5"#,
    );
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            loadBalancer:
              containerName: web
              containerPort: 8080
              listener: 127.0.0.1:18080
              authorizer: {type: JWT, issuer: "https://issuer.example", audience: [], jwksUri: "https://issuer.example/jwks", claimsToHeaders: {sub: "x user"}}
              throttle: {rate: 10, burst: 0, key: "claim:sub"}
        "#,
        r#"
        stack.yaml:8:75: services.web.loadBalancer.authorizer.audience: needs at least one non-empty audience
        stack.yaml:9:35: services.web.loadBalancer.throttle.burst: must be between 1 and 1e9
        "#,
    );
}

#[test]
fn stack_duplicate_yaml_key() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./web.json
          worker:
            taskDefinition: ./worker.json
          web:
            taskDefinition: ./other.json
        "#,
        r#"stack.yaml:6:3: services.web: duplicate key "web", first defined at line 2, column 3"#,
    );
}

#[test]
fn stack_unknown_deployment_config() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            loadBalancer: {containerName: web, containerPort: 8080, listener: "127.0.0.1:18080"}
            deployment:
              type: BLUE_GREEN
              config: Canary20Percent5Second
          api:
            taskDefinition: ./api.json
            loadBalancer: {containerName: api, containerPort: 8080, listener: "127.0.0.1:18081"}
            deployment: {type: BLUE_GREEN, config: CodeDeployDefault.ECSAllAtOnce5}
        deploymentConfigs:
          Canary20Percent5Seconds:
            trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 20, canaryIntervalSeconds: 5}}
        "#,
        r#"
        stack.yaml:7:15: services.web.deployment.config: unknown deployment config "Canary20Percent5Second", did you mean "Canary20Percent5Seconds"?
        stack.yaml:11:44: services.api.deployment.config: unknown deployment config "CodeDeployDefault.ECSAllAtOnce5", did you mean "CodeDeployDefault.ECSAllAtOnce"?
        "#,
    );
}

#[test]
fn stack_unknown_alarm_reference() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            deployment:
              alarms: [web-5xx, web-errors]
        alarms:
          web-5xx:
            metric: {name: HTTPCode_Target_5XX_Count, service: webb}
            statistic: Sum
            threshold: 1
            comparisonOperator: GreaterThanOrEqualToThreshold
        "#,
        r#"
        stack.yaml:5:25: services.web.deployment.alarms[1]: unknown alarm "web-errors": define it under alarms
        stack.yaml:8:56: alarms.web-5xx.metric.service: no service named "webb", did you mean "web"?
        "#,
    );
}

#[test]
fn stack_blue_green_without_load_balancer() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            deployment:
              type: BLUE_GREEN
              minimumHealthyPercent: 50
        "#,
        r#"
        stack.yaml:5:13: services.web.deployment.type: BLUE_GREEN needs a loadBalancer on the service: traffic shifts between task sets through it
        stack.yaml:6:7: services.web.deployment.minimumHealthyPercent: only applies to ROLLING deployments
        "#,
    );
}

#[test]
fn stack_blue_green_settings_on_a_rolling_service() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            deployment:
              config: CodeDeployDefault.ECSAllAtOnce
              hooks:
                AfterInstall: {command: [./check.sh]}
        "#,
        r#"
        stack.yaml:5:7: services.web.deployment.config: only applies to BLUE_GREEN deployments (this one is ROLLING, the default type)
        stack.yaml:6:7: services.web.deployment.hooks: only applies to BLUE_GREEN deployments (this one is ROLLING, the default type)
        "#,
    );
}

#[test]
fn stack_bad_hooks() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            loadBalancer: {containerName: web, containerPort: 8080, listener: "127.0.0.1:18080"}
            deployment:
              type: BLUE_GREEN
              hooks:
                BeforeInstal: {command: [./check.sh]}
                AfterInstall: {url: "ftp://example/hook"}
                BeforeAllowTraffic: {command: [./check.sh], protocol: codedeploy, timeoutSeconds: 7200}
                AfterAllowTraffic: {}
        "#,
        r#"stack.yaml:8:9: services.web.deployment.hooks.BeforeInstal: unknown variant "BeforeInstal", expected one of BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic"#,
    );
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            loadBalancer: {containerName: web, containerPort: 8080, listener: "127.0.0.1:18080"}
            deployment:
              type: BLUE_GREEN
              hooks:
                AfterInstall: {url: "ftp://example/hook"}
                BeforeAllowTraffic: {command: [./check.sh], protocol: codedeploy, timeoutSeconds: 7200}
                AfterAllowTraffic: {}
        "#,
        r#"
        stack.yaml:8:29: services.web.deployment.hooks.AfterInstall.url: expected an http:// or https:// URL, found "ftp://example/hook"
        stack.yaml:9:53: services.web.deployment.hooks.BeforeAllowTraffic.protocol: only applies to url hooks
        stack.yaml:9:91: services.web.deployment.hooks.BeforeAllowTraffic.timeoutSeconds: must be between 1 and 3600 seconds, found 7200
        stack.yaml:10:28: services.web.deployment.hooks.AfterAllowTraffic: needs a command or a url
        "#,
    );
}

#[test]
fn stack_listeners_must_be_unique() {
    check(
        "stack.yaml",
        r#"
        services:
          api:
            taskDefinition: ./api.json
            loadBalancer: {containerName: api, containerPort: 80, listener: "127.0.0.1:18080", testListener: "127.0.0.1:18080"}
          web:
            taskDefinition: ./web.json
            loadBalancer: {containerName: web, containerPort: 80, listener: "0.0.0.0:18080", testListener: "localhost:19080"}
        "#,
        r#"stack.yaml:7:100: services.web.loadBalancer.testListener: expected a socket address such as 127.0.0.1:8080 or [::1]:8080 (an IP address, not a host name), found "localhost:19080""#,
    );
    check(
        "stack.yaml",
        r#"
        services:
          api:
            taskDefinition: ./api.json
            loadBalancer: {containerName: api, containerPort: 80, listener: "127.0.0.1:18080", testListener: "127.0.0.1:18080"}
          web:
            taskDefinition: ./web.json
            loadBalancer: {containerName: web, containerPort: 80, listener: "0.0.0.0:18080"}
        "#,
        r#"
        stack.yaml:4:102: services.api.loadBalancer.testListener: address 127.0.0.1:18080 is already used by services.api.loadBalancer.listener
        stack.yaml:7:69: services.web.loadBalancer.listener: address 0.0.0.0:18080 overlaps 127.0.0.1:18080 used by services.api.loadBalancer.listener
        "#,
    );
}

#[test]
fn stack_bad_alarms() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
            loadBalancer: {containerName: web, containerPort: 8080, listener: "127.0.0.1:18080"}
        alarms:
          web-5xx:
            metric: {name: HTTPCode_Target_5XX_Count, service: web, listener: test}
            statistic: p99.9
            evaluationPeriods: 2
            datapointsToAlarm: 3
            threshold: 1
            comparisonOperator: GreaterThanThreshold
          web-bad:
            alarmRule: 'ALARM("web-5xx") OR (ALARM(web-latency)'
          web-worse:
            alarmRule: ALARM(web-5xx) AND ALARM(web-latency) OR ALARM(web-worse)
          a:
            alarmRule: ALARM(b)
          b:
            alarmRule: NOT ALARM(a)
        "#,
        r#"
        stack.yaml:7:71: alarms.web-5xx.metric.listener: service "web" has no testListener
        stack.yaml:10:24: alarms.web-5xx.datapointsToAlarm: must be between 1 and evaluationPeriods (2), found 3
        stack.yaml:14:16: alarms.web-bad.alarmRule: invalid alarm rule at character 40: unbalanced parentheses: missing `)`
        stack.yaml:16:16: alarms.web-worse.alarmRule: unknown alarm "web-latency" in the rule: define it under alarms
        stack.yaml:16:16: alarms.web-worse.alarmRule: an alarm rule cannot refer to its own alarm
        stack.yaml:18:16: alarms.a.alarmRule: alarm rules refer to each other in a cycle: a -> b -> a
        "#,
    );
    check(
        "stack.yaml",
        r#"
        alarms:
          no-threshold:
            metric: {name: RequestCount, service: web}
            statistic: Sum
          both:
            metric: {name: RequestCount, service: web}
            alarmRule: ALARM(no-threshold)
          typo:
            metric: {name: HTTPCode_Target_5xx_Count, service: web}
        "#,
        r#"
        stack.yaml:3:5: alarms.no-threshold: missing fields "threshold", "comparisonOperator"
        stack.yaml:6:5: alarms.both: a composite alarm (with alarmRule) cannot have metric
        stack.yaml:9:20: alarms.typo.metric.name: unknown variant "HTTPCode_Target_5xx_Count", expected one of RequestCount, HTTPCode_Target_2XX_Count, HTTPCode_Target_3XX_Count, HTTPCode_Target_4XX_Count, HTTPCode_Target_5XX_Count, HTTPCode_ELB_5XX_Count, TargetResponseTime, HealthyHostCount, UnHealthyHostCount, ActiveConnectionCount
        "#,
    );
}

#[test]
fn stack_rolling_update_that_cannot_progress() {
    check(
        "stack.yaml",
        r#"
        services:
          worker:
            desiredCount: 1
            taskDefinition: worker:2
            deployment: {minimumHealthyPercent: 50, maximumPercent: 150}
        "#,
        r#"stack.yaml:5:61: services.worker.deployment.maximumPercent: with desiredCount 1, minimumHealthyPercent 50 keeps 1 tasks running and maximumPercent 150 allows at most 1, so no task could ever be replaced"#,
    );
}

#[test]
fn stack_bad_deployment_configs() {
    check(
        "stack.yaml",
        r#"
        deploymentConfigs:
          CodeDeployDefault.Mine:
            trafficRouting: {type: AllAtOnce, timeBasedCanary: {canaryPercentage: 10, canaryInterval: 5}}
          Canary100:
            trafficRoutingConfig: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 100, canaryInterval: 5, canaryIntervalSeconds: 300}}
          NoRouting: {}
        "#,
        r#"
        stack.yaml:2:3: deploymentConfigs["CodeDeployDefault.Mine"]: names starting with CodeDeployDefault. are reserved for the predefined configurations
        stack.yaml:3:39: deploymentConfigs["CodeDeployDefault.Mine"].trafficRouting.timeBasedCanary: does not apply to type AllAtOnce
        stack.yaml:5:87: deploymentConfigs.Canary100.trafficRoutingConfig.timeBasedCanary.canaryPercentage: must be between 1 and 99, found 100
        stack.yaml:5:92: deploymentConfigs.Canary100.trafficRoutingConfig.timeBasedCanary.canaryInterval: give canaryIntervalSeconds or canaryInterval (minutes), not both
        stack.yaml:6:14: deploymentConfigs.NoRouting: missing field "trafficRouting"
        "#,
    );
}

#[test]
fn stack_invalid_names_and_task_definition_refs() {
    check(
        "stack.yaml",
        r#"
        services:
          Web_App:
            taskDefinition: web:3
        "#,
        r#"stack.yaml:2:3: services.Web_App: invalid service name "Web_App": use 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit"#,
    );
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: "web:0"
          api:
            taskDefinition: web app
        "#,
        r#"
        stack.yaml:3:21: services.web.taskDefinition: invalid revision "0" in "web:0": expected an integer of 1 or more
        stack.yaml:5:21: services.api.taskDefinition: invalid task definition family "web app": use 1 to 255 letters, digits, hyphens and underscores
        "#,
    );
}

#[test]
fn stack_yaml_syntax_error() {
    check(
        "stack.yaml",
        r#"
        services:
          web:
            taskDefinition: ./taskdef.json
           desiredCount: 2
        "#,
        "stack.yaml:4:4: while parsing a block mapping, did not find expected key",
    );
    check(
        "stack.yaml",
        r#"
        services:
          web: {taskDefinition: ./taskdef.json
        "#,
        "stack.yaml:3:1: while parsing a flow mapping, did not find expected ',' or '}'",
    );
}

// ---------------------------------------------------------------- other files

/// The appspec reads through the same layer: a quoted port is coerced, with a warning.
#[test]
fn appspec_container_port_written_as_a_string_is_a_warning() {
    check_warnings(
        "appspec.yaml",
        r#"
        version: 0.0
        Resources:
          - TargetService:
              Type: AWS::ECS::Service
              Properties:
                TaskDefinition: "arn:aws:ecs:us-east-1:111122223333:task-definition/web:8"
                LoadBalancerInfo: {ContainerName: web, ContainerPort: "8080"}
        "#,
        r#"appspec.yaml:7:63: Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort: ContainerPort is the string "8080"; AWS reads it as the number 8080"#,
    );
}

#[test]
fn appspec_mistakes() {
    check(
        "appspec.yaml",
        r#"
        version: 1.0
        Resources:
          - TargetService:
              Type: AWS::ECS::TaskSet
              Properties:
                TaskDefinition: "arn:aws:ecs:us-east-1:111122223333:service/web"
                LoadBalancerInfo: {ContainerName: web, ContainerPort: 0}
        Hooks:
          - BeforeInstall: "A"
          - BeforeInstall: "B"
        "#,
        r#"
        appspec.yaml:1:10: version: unsupported version "1.0", expected 0.0
        appspec.yaml:4:13: Resources[0].TargetService.Type: expected AWS::ECS::Service, found "AWS::ECS::TaskSet"
        appspec.yaml:6:25: Resources[0].TargetService.Properties.TaskDefinition: expected a task definition ARN like arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION, found "arn:aws:ecs:us-east-1:111122223333:service/web"
        appspec.yaml:7:63: Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort: must be between 1 and 65535, found 0
        appspec.yaml:10:5: Hooks[1].BeforeInstall: duplicate hook for BeforeInstall, first at Hooks[0]
        "#,
    );
    check(
        "appspec.yaml",
        r#"
        version: 0.0
        Resources:
          - TargetService:
              Type: AWS::ECS::Service
              Properties:
                TaskDefinition: <TASK_DEFINITION>
                LoadBalancerInfo: {ContainerName: web, ContainerPort: 80}
        Hooks:
          - BeforeInstal: "A"
          - AfterInstall: "B"
            AfterAllowTraffic: "C"
        "#,
        r#"
        appspec.yaml:9:5: Hooks[0].BeforeInstal: unknown variant "BeforeInstal", expected one of BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic
        "#,
    );
}

#[test]
fn appspec_task_definition_placeholders_are_replaced_where_the_task_definition_comes_from_elsewhere()
 {
    let appspec = |td: &str| {
        format!(
            r#"
            version: 0.0
            Resources:
              - TargetService:
                  Type: AWS::ECS::Service
                  Properties:
                    TaskDefinition: {td}
                    LoadBalancerInfo: {{ContainerName: web, ContainerPort: 80}}
            "#
        )
    };
    for (td, shown) in [
        (r#""application-stack:*""#, "application-stack:*"),
        (r#""taskdef.json""#, "taskdef.json"),
        (
            r#""[YOUR_TASK_DEFINITION_ARN]""#,
            "[YOUR_TASK_DEFINITION_ARN]",
        ),
        (r#""arn:....""#, "arn:...."),
    ] {
        check_warnings(
            "template/appspec.yaml",
            &appspec(td),
            &format!(
                r#"appspec.yaml:6:25: Resources[0].TargetService.Properties.TaskDefinition: "{shown}" names no task definition; it is replaced by the task definition this deployment registers"#
            ),
        );
    }
    // What names a task definition is replaced without a word.
    for td in ["<TASK_DEFINITION>", "ARN", "web:3"] {
        check_warnings("template/appspec.yaml", &appspec(td), "");
    }
    // Where the appspec names the task definition (CreateDeployment), the
    // value must name one.
    check(
        "appspec.yaml",
        &appspec(r#""application-stack:*""#),
        r#"appspec.yaml:6:25: Resources[0].TargetService.Properties.TaskDefinition: invalid revision "*" in "application-stack:*": expected an integer of 1 or more"#,
    );
}

#[test]
fn an_ec2_appspec_is_recognised_as_such() {
    let expected = "appspec.yml:2:1: os: this is an EC2/on-premises appspec (`os`, `files`, `hooks`), for a host deployment (an application with computePlatform: Server), not an ECS service; an ECS appspec has `Resources` with one AWS::ECS::Service";
    let ec2 = r#"
        version: 0.0
        os: linux
        files:
          - source: /
            destination: /var/www/html
        hooks:
          AfterInstall:
            - location: scripts/restart.sh
              timeout: 300
        "#;
    check("appspec.yml", ec2, expected);
    check("template/appspec.yml", ec2, expected);
    // JSON, with `hooks` alone.
    check(
        "appspec.json",
        r#"
        {"version": 0.0,
         "hooks": {"ApplicationStart": [{"location": "start.sh"}]}}
        "#,
        r#"appspec.json:2:2: hooks: this is an EC2/on-premises appspec (`os`, `files`, `hooks`), for a host deployment (an application with computePlatform: Server), not an ECS service; an ECS appspec has `Resources` with one AWS::ECS::Service"#,
    );
}

#[test]
fn handoff_mistakes() {
    check(
        "imagedefinitions.json",
        r#"
        [
          {"name": "web", "imageUri": "repo/web:1"},
          {"name": "web", "imageUri": ""},
          {"name": "worker"}
        ]
        "#,
        r#"imagedefinitions.json:4:3: [2]: missing field "imageUri""#,
    );
    check(
        "imagedefinitions.json",
        r#"
        [
          {"name": "web", "imageUri": "repo/web:1"},
          {"name": "web", "imageUri": ""}
        ]
        "#,
        r#"
        imagedefinitions.json:3:12: [1].name: duplicate container name "web", first used by [0]
        imagedefinitions.json:3:31: [1].imageUri: must not be empty
        "#,
    );
    check(
        "imageDetail.json",
        r#"
        {"ImageUri": "repo/web@sha256:abc"}
        "#,
        r#"imageDetail.json:1:1: missing field "ImageURI" (found "ImageUri"; the name is case-sensitive)"#,
    );
    let big = format!(
        "[{}]",
        vec![r#"{"name": "c", "imageUri": "i"}"#; 4000].join(",")
    );
    let err = parse_image_definitions("imagedefinitions.json", &big).unwrap_err();
    assert_eq!(
        err.to_string(),
        "imagedefinitions.json: the file is 124001 bytes; CodePipeline accepts at most 102400 (100 KB)"
    );
}

#[test]
fn stack_bad_functions() {
    check(
        "stack.yaml",
        r#"
        functions:
          "check green": {command: [./check.sh]}
          arn:aws:lambda:us-east-1:111122223333:layer:x: {command: [./check.sh]}
          CodeDeployHook_BeforeTraffic: {url: "ftp://example/hook"}
          AfterAllowTestTraffic: {}
          Notify: {comand: [./notify.sh]}
        "#,
        r#"
        stack.yaml:2:3: functions["check green"]: invalid function "check green": use a Lambda function name (1 to 64 letters, digits, hyphens and underscores) or a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)
        stack.yaml:3:3: functions["arn:aws:lambda:us-east-1:111122223333:layer:x"]: invalid function "arn:aws:lambda:us-east-1:111122223333:layer:x": use a Lambda function name (1 to 64 letters, digits, hyphens and underscores) or a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)
        stack.yaml:4:39: functions.CodeDeployHook_BeforeTraffic.url: expected an http:// or https:// URL, found "ftp://example/hook"
        stack.yaml:5:26: functions.AfterAllowTestTraffic: needs a command or a url
        stack.yaml:6:11: functions.Notify: needs a command or a url
        stack.yaml:6:12: functions.Notify.comand: unknown key "comand", did you mean "command"?
        "#,
    );
}

#[test]
fn stack_bad_image_repositories() {
    check(
        "stack.yaml",
        r#"
        imageRepositories:
          team/api:
            imageTagMutability: IMMUTABLE_WITH_EXCLUSION
          worker:
            imageScanningConfiguration: {scanOnPush: yes please}
            anonymousPul: true
        "#,
        r#"
        stack.yaml:3:25: imageRepositories["team/api"].imageTagMutability: unknown variant "IMMUTABLE_WITH_EXCLUSION", expected one of MUTABLE, IMMUTABLE
        stack.yaml:5:46: imageRepositories.worker.imageScanningConfiguration.scanOnPush: expected true or false, found "yes please"
        stack.yaml:6:5: imageRepositories.worker.anonymousPul: unknown key "anonymousPul", did you mean "anonymousPull"?
        "#,
    );
    // Checked once the types are right: names and lifecycle policies.
    check(
        "stack.yaml",
        r#"
        imageRepositories:
          Web: {}
          jobs:
            lifecyclePolicy:
              rules:
                - rulePriority: 1
                  selection: {tagStatus: any, countType: imageCountMoreThan, countNumber: 5}
                  action: {type: expire}
                - rulePriority: 2
                  selection: {tagStatus: tagged, tagPatternList: ["*a*b*c*d*e"], countType: sinceImagePushed, countNumber: 7}
                  action: {type: expire}
        "#,
        r#"
        stack.yaml:2:3: imageRepositories.Web: invalid repository name "Web": use 2 to 256 characters, lowercase letters and digits separated by ".", "_", "__", "-" or "/" (ECR's pattern)
        stack.yaml:7:34: imageRepositories.jobs.lifecyclePolicy.rules[0].selection.tagStatus: a rule with tagStatus "any" must have the highest rulePriority of the policy
        stack.yaml:10:22: imageRepositories.jobs.lifecyclePolicy.rules[1].selection.countUnit: countType "sinceImagePushed" needs countUnit: "days"
        stack.yaml:10:59: imageRepositories.jobs.lifecyclePolicy.rules[1].selection.tagPatternList[0]: pattern "*a*b*c*d*e" has 5 wildcards; at most 4 are allowed
        "#,
    );
}

/// Resolves the hooks of appspec `text` against the `functions` of stack
/// `stack` (both dedented).
fn resolve(stack: &str, text: &str) -> Result<Vec<String>, SpecError> {
    let stack = parse_stack("stack.yaml", &dedent(stack)).expect("stack accepted");
    let text = dedent(text);
    let appspec = parse_appspec_for("appspec.yaml", &text, TaskDefinitionFrom::Elsewhere)
        .expect("appspec accepted");
    cutover_spec::stack::functions::resolve_appspec_hooks(
        "appspec.yaml",
        &text,
        &appspec.value,
        &stack.value.functions,
    )
    .map(|p| p.warnings.iter().map(ToString::to_string).collect())
}

const STACK_WITH_FUNCTIONS: &str = r#"
    functions:
      CodeDeployHook_BeforeTraffic: {command: [./smoke.sh]}
      CheckGreen: {url: "http://127.0.0.1:9000/hook", protocol: codedeploy}
    "#;

#[test]
fn appspec_hooks_name_unmapped_functions() {
    let err = resolve(
        STACK_WITH_FUNCTIONS,
        r#"
        version: 0.0
        Resources:
          - TargetService:
              Type: AWS::ECS::Service
              Properties:
                TaskDefinition: <TASK_DEFINITION>
                LoadBalancerInfo: {ContainerName: web, ContainerPort: 8080}
        Hooks:
          - BeforeInstall: "CodeDeployHook_BeforeInstall"
          - AfterAllowTestTraffic: "CheckGren"
          - BeforeAllowTraffic: "arn:aws:lambda:us-east-1:111122223333:function:CodeDeployHook_BeforeTraffic"
          - AfterAllowTraffic: "arn:...."
        "#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        dedent(
            r#"
            appspec.yaml:9:20: Hooks[0].BeforeInstall: Lambda function "CodeDeployHook_BeforeInstall" is not mapped: Cutover runs no Lambda functions; map it in the service's stack.yaml, e.g. functions: {CodeDeployHook_BeforeInstall: {command: [./check.sh]}} or {CodeDeployHook_BeforeInstall: {url: "http://HOST/hook", protocol: ecs}}
            appspec.yaml:10:28: Hooks[1].AfterAllowTestTraffic: Lambda function "CheckGren" is not mapped (did you mean "CheckGreen"?): Cutover runs no Lambda functions; map it in the service's stack.yaml, e.g. functions: {CheckGren: {command: [./check.sh]}} or {CheckGren: {url: "http://HOST/hook", protocol: ecs}}
            appspec.yaml:12:24: Hooks[3].AfterAllowTraffic: expected a Lambda function ARN like arn:aws:lambda:REGION:ACCOUNT:function:NAME, found "arn:...."
            "#
        )
        .trim_end()
    );
}

#[test]
fn appspec_shell_commands_still_run_with_a_warning() {
    let warnings = resolve(
        STACK_WITH_FUNCTIONS,
        r#"
        version: 0.0
        Resources:
          - TargetService:
              Type: AWS::ECS::Service
              Properties:
                TaskDefinition: <TASK_DEFINITION>
                LoadBalancerInfo: {ContainerName: web, ContainerPort: 8080}
        Hooks:
          - AfterInstall: "./check.sh --green"
          - BeforeAllowTraffic: "http://127.0.0.1:9000/ecs"
        "#,
    )
    .unwrap();
    assert_eq!(
        warnings,
        [
            r#"appspec.yaml:9:19: Hooks[0].AfterInstall: "./check.sh --green" is run as a shell command (sh -c); AWS calls a Lambda function here: name a function and map it in the stack's functions: section"#
        ]
    );
}
