//! Parsing pipelines: the reference files read cleanly, and each mistake is
//! reported with its file, line, column, field path and full message.

use cutover_pipeline::model::{ExecutionMode, RetryMode};
use cutover_pipeline::parse::parse_pipeline;

const CONTRACT: &str = include_str!("fixtures/contract.json");
const WEB: &str = include_str!("fixtures/web.json");

/// Parses `text` as `pipeline.json` and returns every error, one per line.
fn errors(text: &str) -> String {
    parse_pipeline("pipeline.json", text)
        .expect_err("the pipeline should be refused")
        .to_string()
}

/// The contract pipeline with `from` replaced by `to` (exactly once).
fn contract_with(from: &str, to: &str) -> String {
    assert_eq!(CONTRACT.matches(from).count(), 1, "{from} is not unique");
    CONTRACT.replace(from, to)
}

#[test]
fn contract_pipeline_parses_without_warnings() {
    let parsed = parse_pipeline("pipeline.json", CONTRACT).unwrap();
    assert_eq!(parsed.warnings, vec![]);
    let p = parsed.value;
    assert_eq!(p.name, "app");
    assert_eq!(p.execution_mode, ExecutionMode::Superseded);
    assert_eq!(p.stages.len(), 3);
    assert_eq!(
        p.stages[1].actions[0].input_artifacts[0].name,
        "SourceArtifact"
    );
    assert_eq!(p.stages[2].actions[0].configuration["ServiceName"], "web");
}

#[test]
fn reference_example_parses_without_warnings() {
    let parsed = parse_pipeline("web.json", WEB).unwrap();
    assert_eq!(parsed.warnings, vec![]);
    let p = parsed.value;
    assert_eq!(p.execution_mode, ExecutionMode::Queued);
    assert_eq!(p.variables[0].default_value.as_deref(), Some("staging"));
    assert_eq!(p.triggers[0].git_configuration.push.len(), 2);
    assert!(p.stages[3].rolls_back_on_failure());
}

#[test]
fn get_pipeline_output_is_accepted_with_metadata() {
    let text = r##"{"pipeline": {"name": "app", "roleArn": "arn:aws:iam::1:role/x",
      "artifactStore": {"type": "S3", "location": "bucket"}, "version": 3,
      "stages": [
        {"name": "Source", "actions": [{"name": "Source",
          "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
          "runOrder": 1, "configuration": {"FullRepositoryId": "acme/app", "BranchName": "main",
            "ConnectionArn": "arn:aws:codeconnections:x", "OutputArtifactFormat": "CODE_ZIP"},
          "outputArtifacts": [{"name": "Src"}], "inputArtifacts": [], "region": "eu-west-1"}]},
        {"name": "Invoke", "actions": [{"name": "Smoke",
          "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
          "configuration": {"FunctionName": "smoke", "UserParameters": "#{codepipeline.PipelineExecutionId}"}}]}]},
      "metadata": {"pipelineArn": "arn:aws:codepipeline:x", "created": 1.7e9, "updated": 1.7e9}}"##;
    let parsed = parse_pipeline("app.json", text).unwrap();
    assert_eq!(parsed.warnings, vec![]);
    assert_eq!(parsed.value.version, Some(3));
}

#[test]
fn yaml_pipeline_with_scalar_configuration() {
    let text = "name: app\nstages:\n  - name: Source\n    actions:\n      - name: Source\n        actionTypeId: {category: Source, owner: AWS, provider: CodeCommit, version: '1'}\n        configuration: {RepositoryName: app, BranchName: main, PollForSourceChanges: false}\n        outputArtifacts: [{name: Src}]\n  - name: Approve\n    actions:\n      - name: Ok\n        actionTypeId: {category: Approval, owner: AWS, provider: Manual, version: '1'}\n        timeoutInMinutes: 60\n";
    let parsed = parse_pipeline("pipeline.yaml", text).unwrap();
    assert_eq!(
        parsed.value.stages[0].actions[0].configuration["PollForSourceChanges"],
        "false"
    );
}

#[test]
fn unknown_fields_are_located_warnings() {
    let text = contract_with(
        r#""pipelineType": "V2","#,
        r#""pipelineType": "V2", "colour": "blue","#,
    );
    let parsed = parse_pipeline("pipeline.json", &text).unwrap();
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        vec!["pipeline.json:1:52: pipeline.colour: unknown field \"colour\", ignored"]
    );
    let text = contract_with(
        r#""ProjectName": "app-build""#,
        r#""ProjectName": "app-build", "Fast": "yes""#,
    );
    let parsed = parse_pipeline("pipeline.json", &text).unwrap();
    assert_eq!(
        parsed.warnings[0].to_string(),
        "pipeline.json:7:58: pipeline.stages[1].actions[0].configuration.Fast: unknown configuration key \"Fast\" for CodeBuild, ignored"
    );
}

#[test]
fn syntax_error() {
    assert_eq!(
        errors("{\"pipeline\": {\"name\": \"app\",\n  \"stages\": [}}"),
        "pipeline.json:2:14: expected a JSON value, found `}`"
    );
}

#[test]
fn type_error() {
    assert_eq!(
        errors(&contract_with(
            r#""ProjectName": "app-build""#,
            r#""ProjectName": ["app-build"]"#
        )),
        "pipeline.json:7:37: pipeline.stages[1].actions[0].configuration.ProjectName: expected a string, found an array"
    );
}

#[test]
fn input_artifact_not_produced_earlier() {
    assert_eq!(
        errors(&contract_with(
            r#""inputArtifacts": [{"name": "SourceArtifact"}]"#,
            r#""inputArtifacts": [{"name": "SourceArtifact2"}]"#
        )),
        "pipeline.json:7:79: pipeline.stages[1].actions[0].inputArtifacts[0].name: artifact \"SourceArtifact2\" is not produced by an earlier action"
    );
}

#[test]
fn input_artifact_from_same_run_order() {
    let text = contract_with(
        r#"{"name": "Deploy",
   "actionTypeId""#,
        r#"{"name": "Test", "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
   "configuration": {"ProjectName": "t"}, "inputArtifacts": [{"name": "SourceArtifact"}], "outputArtifacts": [{"name": "Report"}]},
  {"name": "Deploy", "inputArtifacts": [{"name": "Report"}],
   "actionTypeId""#,
    );
    let text = text.replace(
        r#""inputArtifacts": [{"name": "BuildArtifact"}]}]}]}}"#,
        r#""runOrder": 1}]}]}}"#,
    );
    assert_eq!(
        errors(&text),
        "pipeline.json:10:50: pipeline.stages[2].actions[1].inputArtifacts[0].name: artifact \"Report\" is produced by action \"Test\" of the same stage, which does not run earlier (give it a lower runOrder)"
    );
}

#[test]
fn unknown_provider_names_the_supported_ones() {
    assert_eq!(
        errors(&contract_with(
            r#""provider": "ECS""#,
            r#""provider": "Beanstalk""#
        )),
        "pipeline.json:9:71: pipeline.stages[2].actions[0].actionTypeId.provider: provider \"Beanstalk\" is not supported for category Deploy, supported: \"ECS\", \"CodeDeployToECS\", \"CodeDeploy\""
    );
}

#[test]
fn codedeploy_to_hosts_reads_one_artifact_and_produces_none() {
    let ecs = r#""provider": "ECS", "version": "1"},
   "configuration": {"ClusterName": "default", "ServiceName": "web", "FileName": "imagedefinitions.json"},
   "inputArtifacts": [{"name": "BuildArtifact"}]"#;
    let host = r#""provider": "CodeDeploy", "version": "1"},
   "configuration": {"ApplicationName": "shop", "DeploymentGroupName": "prod"},
   "inputArtifacts": [{"name": "BuildArtifact"}]"#;
    let parsed = parse_pipeline("pipeline.json", &contract_with(ecs, host)).unwrap();
    assert_eq!(parsed.warnings, vec![]);
    let two = host.replace(
        r#"[{"name": "BuildArtifact"}]"#,
        r#"[{"name": "BuildArtifact"}, {"name": "SourceArtifact"}], "outputArtifacts": [{"name": "Out"}]"#,
    );
    assert_eq!(
        errors(&contract_with(ecs, &two)),
        "pipeline.json:11:22: pipeline.stages[2].actions[0].inputArtifacts: a CodeDeploy deploy reads exactly one input artifact (the revision, appspec.yml at its root), found 2\n\
         pipeline.json:11:98: pipeline.stages[2].actions[0].outputArtifacts: a CodeDeploy deploy produces no output artifacts"
    );
    let missing = host.replace(r#", "DeploymentGroupName": "prod""#, "");
    assert!(
        errors(&contract_with(ecs, &missing))
            .contains("missing configuration key \"DeploymentGroupName\" required by CodeDeploy")
    );
}

#[test]
fn missing_required_configuration() {
    assert_eq!(
        errors(&contract_with(r#""ClusterName": "default", "#, "")),
        "pipeline.json:10:21: pipeline.stages[2].actions[0].configuration: missing configuration key \"ClusterName\" required by ECS"
    );
}

#[test]
fn too_few_stages() {
    let text = r#"{"name": "one", "stages": [{"name": "Source", "actions": [{"name": "S",
  "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
  "configuration": {"RepositoryName": "r", "BranchName": "main"}, "outputArtifacts": [{"name": "A"}]}]}]}"#;
    assert_eq!(
        errors(text),
        "pipeline.json:1:27: stages: a pipeline needs at least 2 stages, found 1"
    );
}

#[test]
fn source_placement() {
    let text = contract_with(r#""category": "Build""#, r#""category": "Source""#)
        .replace(r#""provider": "CodeBuild""#, r#""provider": "CodeCommit""#);
    let text = text.replacen(r#""category": "Source""#, r#""category": "Approval""#, 1);
    assert_eq!(
        errors(&text),
        [
            "pipeline.json:3:33: pipeline.stages[0].actions[0].actionTypeId.category: the first stage may hold only Source actions, found a Approval action",
            "pipeline.json:3:73: pipeline.stages[0].actions[0].actionTypeId.provider: provider \"CodeCommit\" is not supported for category Approval, supported: \"Manual\"",
            "pipeline.json:6:33: pipeline.stages[1].actions[0].actionTypeId.category: Source actions are allowed only in the first stage",
            "pipeline.json:7:21: pipeline.stages[1].actions[0].configuration: missing configuration key \"RepositoryName\" required by CodeCommit",
            "pipeline.json:7:21: pipeline.stages[1].actions[0].configuration: missing configuration key \"BranchName\" required by CodeCommit",
            "pipeline.json:7:69: pipeline.stages[1].actions[0].inputArtifacts: a Source action takes no input artifacts",
        ]
        .join("\n")
    );
}

#[test]
fn duplicate_stage_names_and_run_order() {
    let text = contract_with(
        r#"{"name": "Deploy", "actions""#,
        r#"{"name": "Build", "actions""#,
    )
    .replace(
        r#"{"name": "Deploy","#,
        r#"{"name": "Deploy", "runOrder": 1000,"#,
    );
    assert_eq!(
        errors(&text),
        [
            "pipeline.json:8:11: pipeline.stages[2].name: duplicate stage name \"Build\"",
            "pipeline.json:8:63: pipeline.stages[2].actions[0].runOrder: runOrder must be between 1 and 999, found 1000",
        ]
        .join("\n")
    );
}

#[test]
fn unknown_variable_namespace_and_key() {
    let text = contract_with(
        r#""ServiceName": "web""#,
        r#""ServiceName": "web-#{BuildVars.Tag}-#{SourceVariables.Sha}-#{variables.Env}""#,
    );
    assert_eq!(
        errors(&text),
        [
            "pipeline.json:10:63: pipeline.stages[2].actions[0].configuration.ServiceName: #{BuildVars.Tag}: no earlier action has the namespace \"BuildVars\"",
            "pipeline.json:10:63: pipeline.stages[2].actions[0].configuration.ServiceName: #{SourceVariables.Sha}: action \"Source\" does not output \"Sha\", it outputs CommitId, CommitMessage, CommitterDate, AuthorDate, AuthorName, BranchName, RepositoryName",
            "pipeline.json:10:63: pipeline.stages[2].actions[0].configuration.ServiceName: #{variables.Env}: the pipeline declares no variable \"Env\"",
        ]
        .join("\n")
    );
}

#[test]
fn invalid_artifact_name_and_duplicate_output() {
    let text = contract_with(
        r#""outputArtifacts": [{"name": "BuildArtifact"}]"#,
        r#""outputArtifacts": [{"name": "Build Artifact"}, {"name": "SourceArtifact"}]"#,
    );
    assert_eq!(
        errors(&text),
        [
            "pipeline.json:7:128: pipeline.stages[1].actions[0].outputArtifacts[0].name: invalid artifact name \"Build Artifact\": use 1 to 100 letters, digits, _ and -",
            "pipeline.json:7:156: pipeline.stages[1].actions[0].outputArtifacts[1].name: artifact \"SourceArtifact\" is already produced by action \"Source\"",
            "pipeline.json:11:32: pipeline.stages[2].actions[0].inputArtifacts[0].name: artifact \"BuildArtifact\" is not produced by an earlier action",
        ]
        .join("\n")
    );
}

#[test]
fn deployment_window_and_rollback_rules() {
    let text = contract_with(
        r#"{"name": "Deploy", "actions""#,
        r#"{"name": "Deploy", "onFailure": {"result": "SKIP"}, "beforeEntry": {"conditions": [{"rules": [
   {"name": "Window", "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "DeploymentWindow", "version": "1"},
    "configuration": {"Cron": "* * 25 ? * MON-FRI *", "TimeZone": "UTC"}}]}]}, "actions""#,
    );
    assert_eq!(
        errors(&text),
        [
            "pipeline.json:8:45: pipeline.stages[2].onFailure.result: a stage's failure result must be ROLLBACK, FAIL or RETRY, found SKIP",
            "pipeline.json:10:31: pipeline.stages[2].beforeEntry.conditions[0].rules[0].configuration.Cron: invalid cron expression \"* * 25 ? * MON-FRI *\": hours: number out of bounds in \"25\" (allowed 0-23)",
        ]
        .join("\n")
    );
}

#[test]
fn trigger_rules() {
    let text = WEB
        .replace(
            r#""sourceActionName": "Source""#,
            r#""sourceActionName": "Src""#,
        )
        .replace(
            r#"{"tags": {"includes": ["v*"]}}"#,
            r#"{"tags": {"includes": ["v[0-9"]}, "branches": {"includes": ["main"]}}"#,
        );
    assert_eq!(
        errors(&text),
        [
            "web.json:3:101: pipeline.triggers[0].gitConfiguration.sourceActionName: no source action is named \"Src\"",
            "web.json:4:90: pipeline.triggers[0].gitConfiguration.push[1]: a push filter has either tags or branches, not both",
            "web.json:4:113: pipeline.triggers[0].gitConfiguration.push[1].tags.includes[0]: invalid glob \"v[0-9\": unclosed [",
        ]
        .join("\n")
        .replace("web.json", "pipeline.json")
    );
}

#[test]
fn codebuild_environment_variables_must_be_json() {
    let text = contract_with(
        r#""ProjectName": "app-build""#,
        r#""ProjectName": "app-build", "EnvironmentVariables": "[{\"name\": \"A\"}]""#,
    );
    assert_eq!(
        errors(&text),
        "pipeline.json:7:74: pipeline.stages[1].actions[0].configuration.EnvironmentVariables: EnvironmentVariables must be a JSON array of {\"name\", \"value\", \"type\"}: [0]: missing field \"value\""
    );
}

#[test]
fn deeply_nested_yaml_is_refused_with_a_located_error() {
    // Found by fuzzing: 8,000 nested flow mappings (40 KB) kept serde_yaml
    // busy for seconds; the located document layer refuses them at once.
    let text = "{a: ".repeat(8000);
    let e = parse_pipeline("pipeline.yaml", &text)
        .expect_err("the pipeline should be refused")
        .to_string();
    assert_eq!(e, "pipeline.yaml:1:1021: recursion limit exceeded");
}

#[test]
fn stage_retry_on_failure_is_typed() {
    for (config, mode) in [
        (
            r#", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}"#,
            RetryMode::AllActions,
        ),
        (
            r#", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}"#,
            RetryMode::FailedActions,
        ),
        ("", RetryMode::FailedActions),
    ] {
        let text = contract_with(
            r#"{"name": "Deploy", "actions""#,
            &format!(
                r#"{{"name": "Deploy", "onFailure": {{"result": "RETRY"{config}}}, "actions""#
            ),
        );
        let parsed = parse_pipeline("pipeline.json", &text).unwrap();
        assert_eq!(parsed.warnings, vec![]);
        assert_eq!(parsed.value.stages[2].retries_on_failure(), Some(mode));
        assert_eq!(parsed.value.stages[1].retries_on_failure(), None);
    }
    let text = contract_with(
        r#"{"name": "Deploy", "actions""#,
        r#"{"name": "Deploy", "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "SOME_ACTIONS"}}, "actions""#,
    );
    assert_eq!(
        errors(&text),
        "pipeline.json:8:90: pipeline.stages[2].onFailure.retryConfiguration.retryMode: unknown variant \"SOME_ACTIONS\", expected one of FAILED_ACTIONS, ALL_ACTIONS"
    );
    let text = contract_with(
        r#"{"name": "Deploy", "actions""#,
        r#"{"name": "Deploy", "onFailure": {"result": "ROLLBACK", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}}, "actions""#,
    );
    let parsed = parse_pipeline("pipeline.json", &text).unwrap();
    assert_eq!(parsed.value.stages[2].retries_on_failure(), None);
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "pipeline.json:8:79: pipeline.stages[2].onFailure.retryConfiguration: retryConfiguration is used only with result RETRY, ignored"
        ]
    );
}

/// The contract pipeline with a GitHub version 1 source of owner `owner`.
fn github_v1(owner: &str, configuration: &str) -> String {
    contract_with(
        r#""owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}"#,
        &format!(
            r#""owner": "{owner}", "provider": "GitHub", "version": "1"}},
   "configuration": {configuration}"#
        ),
    )
}

#[test]
fn github_version_1_source_is_accepted_with_its_token_ignored() {
    let text = github_v1(
        "ThirdParty",
        r#"{"Owner": "me", "Repo": "app", "Branch": "main", "OAuthToken": "{{resolve:secretsmanager:gh}}", "PollForSourceChanges": "false"}"#,
    );
    let parsed = parse_pipeline("pipeline.json", &text).unwrap();
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "pipeline.json:4:84: pipeline.stages[0].actions[0].configuration.OAuthToken: OAuthToken is ignored: the source is read from the repository Owner/Repo declared under repositories:"
        ]
    );
    let action = &parsed.value.stages[0].actions[0];
    let kind = cutover_pipeline::catalog::lookup("Source", "GitHub")
        .unwrap()
        .kind;
    assert_eq!(
        cutover_pipeline::catalog::source_repository(kind, &action.configuration),
        Some(("Repo", "me/app".to_owned()))
    );
    assert_eq!(
        cutover_pipeline::catalog::source_branch(kind, &action.configuration),
        Some("main")
    );
    // Without a token: no warning. With owner AWS, or a missing key: refused.
    let text = github_v1(
        "ThirdParty",
        r#"{"Owner": "me", "Repo": "app", "Branch": "main"}"#,
    );
    assert_eq!(
        parse_pipeline("pipeline.json", &text).unwrap().warnings,
        vec![]
    );
    let text = github_v1("AWS", r#"{"Owner": "me", "Repo": "app"}"#);
    assert_eq!(
        errors(&text),
        [
            "pipeline.json:3:52: pipeline.stages[0].actions[0].actionTypeId.owner: owner \"AWS\" is not supported, expected \"ThirdParty\"",
            "pipeline.json:4:21: pipeline.stages[0].actions[0].configuration: missing configuration key \"Branch\" required by GitHub",
        ]
        .join("\n")
    );
}
