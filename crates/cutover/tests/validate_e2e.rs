//! `cutover validate` as a user runs it: the real binary, no server, over
//! small files of every kind, each accepted, warned about or refused, and
//! the rule that detected its kind.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cutover");

/// Runs `cutover validate -o json ARGS` in `dir`: the exit code and the report.
fn validate(dir: &Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(["validate", "-o", "json"])
        .args(args)
        // No server anywhere: validate must not need one.
        .env("CUTOVER_SERVER", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), report)
}

/// `(kind, detectedBy, accepted, warnings, first error)` of each file.
fn verdicts(report: &Value) -> Vec<(String, String, bool, usize, String)> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let first = f["errors"].get(0).map_or(String::new(), |d| {
                format!(
                    "{}:{}: {}",
                    d["line"],
                    d["column"],
                    d["message"].as_str().unwrap()
                )
            });
            (
                f["kind"].as_str().unwrap().to_string(),
                f["detectedBy"].as_str().unwrap().to_string(),
                f["accepted"].as_bool().unwrap(),
                f["warnings"].as_array().unwrap().len(),
                first,
            )
        })
        .collect()
}

const TASKDEF: &str = r#"{"family": "web", "containerDefinitions": [
  {"name": "web", "image": "nginx", "essential": true, "memory": 128,
   "portMappings": [{"containerPort": 80}]}]}"#;

/// (file name, text, expected kind, detected by, accepted, warnings, first error contains)
const CASES: &[(&str, &str, &str, &str, bool, usize, &str)] = &[
    ("taskdef.json", TASKDEF, "taskdef", "file name", true, 0, ""),
    (
        "taskdef-warned.json",
        r#"{"family": "web", "colour": "x", "containerDefinitions": [{"name": "web", "image": "nginx", "essential": true, "memory": 128}]}"#,
        "taskdef",
        "file name",
        true,
        1,
        "",
    ),
    (
        "web-td.json",
        r#"{"family": "web"}"#,
        "taskdef",
        "content: family",
        false,
        0,
        "containerDefinitions",
    ),
    (
        "appspec.yaml",
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: <TASK_DEFINITION>\n        LoadBalancerInfo: {ContainerName: web, ContainerPort: 80}\n",
        "appspec",
        "file name",
        true,
        0,
        "",
    ),
    (
        "deploy/spec.yaml",
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: \"taskdef.json\"\n        LoadBalancerInfo: {ContainerName: web, ContainerPort: 80}\n",
        "appspec",
        "content: Resources",
        true,
        1,
        "",
    ),
    (
        "ec2.yml",
        "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv\n",
        "appspec",
        "content: version with os, files or hooks",
        true,
        0,
        "",
    ),
    (
        "ec2-windows.yml",
        "version: 0.0\nos: windows\nfiles:\n  - source: \\\\app\n    destination: C:\\\\app\n",
        "appspec",
        "content: version with os, files or hooks",
        false,
        0,
        "2:5: Windows hosts are not supported",
    ),
    (
        "buildspec.yml",
        "version: 0.2\nphases:\n  build:\n    commands: [make]\n",
        "buildspec",
        "file name",
        true,
        0,
        "",
    ),
    (
        "ci.yml",
        "version: 0.2\nphases:\n  biuld:\n    commands: [make]\n",
        "buildspec",
        "content: phases",
        false,
        0,
        "biuld",
    ),
    (
        "imagedefinitions.json",
        r#"[{"name": "web", "imageUri": "nginx:1"}]"#,
        "imagedefinitions",
        "file name",
        true,
        0,
        "",
    ),
    (
        "images.json",
        r#"[{"name": "web", "imageUri": ""}]"#,
        "imagedefinitions",
        "content: [].imageUri",
        false,
        0,
        "",
    ),
    (
        "imageDetail.json",
        r#"{"ImageURI": "nginx:1"}"#,
        "imagedetail",
        "file name",
        true,
        0,
        "",
    ),
    (
        "lb.yaml",
        "listeners: []\ntargetGroups: []\n",
        "lb",
        "file name",
        true,
        0,
        "",
    ),
    (
        "proxy.yaml",
        "listeners:\n  - name: a\n    address: 127.0.0.1:8080\n    defaultAction: {fixedResponse: {statusCode: 200}}\n  - name: b\n    address: 127.0.0.1:8080\n    defaultAction: {fixedResponse: {statusCode: 200}}\n",
        "lb",
        "content: listeners",
        false,
        0,
        "is used twice",
    ),
];

#[test]
fn every_kind_is_detected_and_accepted_warned_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("deploy")).unwrap();
    for (name, text, ..) in CASES {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let names: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    let (code, report) = validate(dir.path(), &names);
    assert_eq!(code, 1, "{report:#}");
    for ((name, _, kind, by, accepted, warnings, error), got) in CASES.iter().zip(verdicts(&report))
    {
        assert_eq!(
            (got.0.as_str(), got.1.as_str(), got.2, got.3),
            (*kind, *by, *accepted, *warnings),
            "{name}: {report:#}"
        );
        assert!(got.4.contains(error), "{name}: {}", got.4);
    }
    // Only accepted files: exit 0.
    let (code, _) = validate(dir.path(), &["taskdef.json", "buildspec.yml"]);
    assert_eq!(code, 0);
    // --kind wins over the name.
    let (_, report) = validate(dir.path(), &["--kind", "appspec", "taskdef.json"]);
    assert_eq!(report["files"][0]["detectedBy"], "--kind");
    assert_eq!(report["files"][0]["accepted"], false);
}

const PIPELINE: &str = r#"{"pipeline": {"name": "web", "pipelineType": "V2", "stages": [
  {"name": "Source", "actions": [{"name": "Src",
    "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
    "configuration": {"FullRepositoryId": "me/web", "BranchName": "main", "ConnectionArn": "arn:aws:codeconnections:us-east-1:111122223333:connection/x"},
    "outputArtifacts": [{"name": "src"}]}]},
  {"name": "Build", "actions": [{"name": "Build",
    "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
    "configuration": {"ProjectName": "web-build"},
    "inputArtifacts": [{"name": "src"}]}]}]}}"#;

#[test]
fn a_pipeline_alone_checks_its_own_rules_and_with_a_stack_its_references() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.json"), PIPELINE).unwrap();
    let (code, report) = validate(dir.path(), &["pipeline.json"]);
    assert_eq!(code, 0, "{report:#}");
    std::fs::write(dir.path().join("stack.yaml"), "services: {}\n").unwrap();
    let (code, report) = validate(dir.path(), &["--stack", "stack.yaml", "pipeline.json"]);
    assert_eq!(code, 1, "{report:#}");
    let messages: Vec<&str> = report["files"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("build project \"web-build\" is not declared")),
        "{report:#}"
    );
}

#[test]
fn with_a_stack_an_appspec_names_only_functions_the_stack_maps() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("appspec.yaml"),
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: \"<TASK_DEFINITION>\"\n        LoadBalancerInfo:\n          ContainerName: web\n          ContainerPort: 8080\nHooks:\n  - BeforeAllowTraffic: CodeDeployHook_BeforeTraffic\n",
    )
    .unwrap();
    let (code, report) = validate(dir.path(), &["appspec.yaml"]);
    assert_eq!(code, 0, "alone, the appspec is fine: {report:#}");
    std::fs::write(dir.path().join("stack.yaml"), "services: {}\n").unwrap();
    let (code, report) = validate(dir.path(), &["--stack", "stack.yaml", "appspec.yaml"]);
    assert_eq!(code, 1, "{report:#}");
    let error = &report["files"][0]["errors"][0];
    assert_eq!(error["line"], 11, "{report:#}");
    assert!(
        error["message"].as_str().unwrap().contains("functions"),
        "{report:#}"
    );
    std::fs::write(
        dir.path().join("stack.yaml"),
        "services: {}\nfunctions:\n  CodeDeployHook_BeforeTraffic: {command: [\"true\"]}\n",
    )
    .unwrap();
    let (code, report) = validate(dir.path(), &["--stack", "stack.yaml", "appspec.yaml"]);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn a_stack_is_checked_with_the_files_it_references() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.json"), TASKDEF).unwrap();
    std::fs::write(
        dir.path().join("stack.yaml"),
        "services:\n  web:\n    runtime: process\n    taskDefinition: ./web.json\n  api:\n    taskDefinition: api:3\n",
    )
    .unwrap();
    let (code, report) = validate(dir.path(), &["stack.yaml"]);
    assert_eq!(code, 0, "{report:#}");
    std::fs::write(
        dir.path().join("stack.yaml"),
        "services:\n  web:\n    taskDefinition: ./missing.json\n",
    )
    .unwrap();
    let (code, report) = validate(dir.path(), &["stack.yaml"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        verdicts(&report)[0].4,
        "3:21: cannot read the task definition file \"./missing.json\" (relative to the stack file)"
    );
}

#[test]
fn human_output_reads_like_the_servers_rejections() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("taskdef.json"), r#"{"family": "web"}"#).unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["validate", "taskdef.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("taskdef.json was rejected (1 error): taskdef (by file name)")
    );
    assert!(
        lines.next().unwrap().starts_with("  taskdef.json:1:1: "),
        "{text}"
    );
}
