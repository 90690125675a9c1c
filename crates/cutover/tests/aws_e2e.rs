//! AWS's own clients drive a real server: the aws CLI and boto3 (from
//! PyPI, see scripts/setup-aws-clients.sh), signed with SigV4 by botocore,
//! run the sequences of the seeds' Jenkinsfile and GitHub action, stop a
//! canary with auto rollback, and are refused without changing anything
//! when a request is unsigned, expired, tampered with or wrongly signed.

mod common;

use common::aws::{AwsClients, error_code};
use common::*;
use std::time::Duration;

fn write_taskdef(dir: &std::path::Path, file: &str, version: &str) {
    std::fs::write(
        dir.join(file),
        format!(
            r#"{{"family": "web", "containerDefinitions": [{{"name": "web", "image": "sample-app:v1",
  "command": ["cutover", "sample-app"], "environment": [{{"name": "APP_VERSION", "value": "{version}"}}],
  "portMappings": [{{"containerPort": 8080}}],
  "healthCheck": {{"command": ["CMD-SHELL", "curl -fs http://127.0.0.1:$PORT/health"], "interval": 1, "timeout": 1, "retries": 2}}}}]}}
"#
        ),
    )
    .unwrap();
}

/// A stack of one service `web` behind a listener; `deployment` is its
/// `deployment:` block (indented by the caller).
fn apply(server: &Server, dir: &std::path::Path, prod: u16, test: u16, deployment: &str) {
    write_taskdef(dir, "td1.json", "v1");
    std::fs::write(
        dir.join("stack.yaml"),
        format!(
            r#"services:
  web:
    desiredCount: 2
    taskDefinition: ./td1.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:{prod}
      testListener: 127.0.0.1:{test}
      healthCheck: {{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
      deregistrationDelaySeconds: 0
{deployment}
deploymentConfigs:
  Canary50Percent1Minutes:
    trafficRouting: {{type: TimeBasedCanary, timeBasedCanary: {{canaryPercentage: 50, canaryIntervalSeconds: 60}}}}
  Canary20Percent3Seconds:
    trafficRouting: {{type: TimeBasedCanary, timeBasedCanary: {{canaryPercentage: 20, canaryIntervalSeconds: 3}}}}
"#
        ),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_healthy(server, "web", 2, Duration::from_secs(30));
    let prod = format!("127.0.0.1:{prod}");
    assert!(
        wait_until(Duration::from_secs(15), || http_get(&prod, "/")
            .is_ok_and(|(s, b)| s == 200 && b.trim() == "v1"))
        .is_some(),
        "v1 never served"
    );
}

fn served(prod: u16) -> String {
    http_get(&format!("127.0.0.1:{prod}"), "/")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn the_jenkinsfile_sequence_registers_updates_waits_and_serves_the_new_version() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (prod, test) = (free_port(), free_port());
    apply(&server, dir.path(), prod, test, "");
    let aws = AwsClients::new(&server);
    write_taskdef(dir.path(), "taskdef.json", "v2");
    // As seed 003's Jenkinsfile: jq without -r keeps the quotes.
    let registered = aws.json(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", dir.path().join("taskdef.json").display()),
    ]);
    let rev = format!(
        "\"{}\"",
        registered["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
    );
    assert!(rev.contains(":task-definition/web:2"), "{rev}");
    assert_eq!(registered["taskDefinition"]["status"], "ACTIVE");
    let updated = aws.json(&[
        "ecs",
        "update-service",
        "--cluster",
        "prod",
        "--service",
        "web",
        "--task-definition",
        &rev,
    ]);
    let deployments = updated["service"]["deployments"].as_array().unwrap();
    assert_eq!(deployments[0]["status"], "PRIMARY");
    assert_eq!(deployments[0]["rolloutState"], "IN_PROGRESS");
    assert!(deployments.len() >= 2, "{updated}");
    let out = aws.run(&[
        "ecs",
        "wait",
        "services-stable",
        "--cluster",
        "prod",
        "--services",
        "web",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(served(prod), "v2");
    let described = aws.json(&[
        "ecs",
        "describe-services",
        "--cluster",
        "default",
        "--services",
        "web",
    ]);
    let svc = &described["services"][0];
    assert_eq!(svc["deployments"].as_array().unwrap().len(), 1, "{svc}");
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(
        (svc["runningCount"].as_i64(), svc["desiredCount"].as_i64()),
        (Some(2), Some(2))
    );
    assert!(
        svc["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("task-definition/web:2")
    );
    // The same deployment is the one /v1 shows.
    let v1 = server.json(&["deployments", "ls", "--service", "web"]);
    assert!(v1.to_string().contains("ecs:UpdateService"), "{v1}");
    let missing = aws.json(&["ecs", "describe-services", "--services", "nope"]);
    assert_eq!(missing["failures"][0]["reason"], "MISSING");
}

const GITHUB_ACTION: &str = r#"
import json, sys, hashlib, boto3
taskdef_file, = sys.argv[1:]
ecs = boto3.client("ecs")
cd = boto3.client("codedeploy")
arn = ecs.register_task_definition(**json.load(open(taskdef_file)))["taskDefinition"]["taskDefinitionArn"]
appspec = json.dumps({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service",
    "Properties": {"TaskDefinition": arn, "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080}}}}]})
d = cd.create_deployment(applicationName="web", deploymentGroupName="web",
    revision={"revisionType": "AppSpecContent",
              "appSpecContent": {"content": appspec, "sha256": hashlib.sha256(appspec.encode()).hexdigest()}})
cd.get_waiter("deployment_successful").wait(deploymentId=d["deploymentId"], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
info = cd.get_deployment(deploymentId=d["deploymentId"])["deploymentInfo"]
print(json.dumps({"id": d["deploymentId"], "status": info["status"], "overview": info["deploymentOverview"]}))
"#;

#[test]
fn the_github_action_sequence_deploys_blue_green_through_codedeploy_with_no_failed_request() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (prod, test) = (free_port(), free_port());
    apply(
        &server,
        dir.path(),
        prod,
        test,
        &format!(
            "    deployment:\n      type: BLUE_GREEN\n      config: Canary20Percent3Seconds\n      terminationWaitSeconds: 1\n      hooks:\n        AfterAllowTestTraffic:\n          command: [sh, -c, \"aws sts get-caller-identity --output json > {0}/hook-identity.json && aws ecs describe-services --services web --query 'services[0].deployments[0].status' --output text > {0}/hook-ecs\"]",
            dir.path().display()
        ),
    );
    let aws = AwsClients::new(&server);
    let group = aws.json(&[
        "deploy",
        "get-deployment-group",
        "--application-name",
        "web",
        "--deployment-group-name",
        "web",
    ]);
    assert_eq!(
        group["deploymentGroupInfo"]["ecsServices"][0]["serviceName"],
        "web"
    );
    write_taskdef(dir.path(), "taskdef.json", "v2");
    let load = Load::start(format!("127.0.0.1:{prod}"), 4);
    let out = aws.python(
        GITHUB_ACTION,
        &[dir.path().join("taskdef.json").to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "Succeeded");
    assert_eq!(result["overview"]["Succeeded"], 1);
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed, versions) = load.finish();
    assert_eq!(failed, 0, "failed requests during the cutover ({ok} ok)");
    assert!(versions.iter().any(|v| v == "v1") && versions.last().unwrap() == "v2");
    let listed = aws.json(&[
        "deploy",
        "list-deployments",
        "--application-name",
        "web",
        "--deployment-group-name",
        "web",
    ]);
    assert_eq!(listed["deployments"][0], result["id"]);
    // The hook command called AWS's APIs with a key of its own, revoked since.
    let identity: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("hook-identity.json")).unwrap(),
    )
    .unwrap();
    assert!(
        identity["Arn"].as_str().unwrap().contains(":user/hook:"),
        "{identity}"
    );
    assert!(
        identity["UserId"].as_str().unwrap().starts_with("ASIA"),
        "{identity}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hook-ecs"))
            .unwrap()
            .trim(),
        "PRIMARY"
    );
    let keys = server.json(&["access-keys", "ls"]);
    assert_eq!(
        keys["AccessKeyMetadata"].as_array().unwrap().len(),
        1,
        "{keys}"
    );
}

#[test]
fn stop_deployment_with_auto_rollback_during_a_canary_rolls_production_back() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (prod, test) = (free_port(), free_port());
    apply(
        &server,
        dir.path(),
        prod,
        test,
        "    deployment:\n      type: BLUE_GREEN\n      config: Canary50Percent1Minutes\n      terminationWaitSeconds: 1",
    );
    let aws = AwsClients::new(&server);
    write_taskdef(dir.path(), "taskdef.json", "v2");
    let arn = aws.json(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", dir.path().join("taskdef.json").display()),
    ])["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let appspec = format!(
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: {arn}\n        LoadBalancerInfo:\n          ContainerName: web\n          ContainerPort: 8080\n"
    );
    let revision =
        serde_json::json!({"revisionType": "String", "string": {"content": appspec}}).to_string();
    let id = aws.json(&[
        "deploy",
        "create-deployment",
        "--application-name",
        "web",
        "--deployment-group-name",
        "web",
        "--revision",
        &revision,
    ])["deploymentId"]
        .as_str()
        .unwrap()
        .to_string();
    // The canary: half of production on v2.
    let prod_addr = format!("127.0.0.1:{prod}");
    assert!(
        wait_until(Duration::from_secs(40), || (0..6)
            .filter_map(|_| http_get(&prod_addr, "/").ok())
            .any(|(_, b)| b.trim() == "v2"))
        .is_some(),
        "the canary never served v2"
    );
    let stopped = aws.json(&[
        "deploy",
        "stop-deployment",
        "--deployment-id",
        &id,
        "--auto-rollback-enabled",
    ]);
    assert_eq!(stopped["status"], "Pending");
    assert!(
        wait_until(Duration::from_secs(20), || {
            aws.json(&["deploy", "get-deployment", "--deployment-id", &id])["deploymentInfo"]["status"]
                == "Stopped"
        })
        .is_some()
    );
    let info = aws.json(&["deploy", "get-deployment", "--deployment-id", &id]);
    assert_eq!(
        info["deploymentInfo"]["errorInformation"]["code"],
        "MANUAL_STOP"
    );
    for _ in 0..20 {
        assert_eq!(served(prod), "v1");
    }
    let again = aws.run(&["deploy", "stop-deployment", "--deployment-id", &id]);
    assert_eq!(error_code(&again), "DeploymentAlreadyCompletedException");
    let wait = aws.run(&[
        "deploy",
        "wait",
        "deployment-successful",
        "--deployment-id",
        &id,
    ]);
    assert!(
        !wait.status.success(),
        "the waiter must fail on a stopped deployment"
    );
}

/// Signs an UpdateService request with botocore, then breaks it as
/// `sys.argv[1]` says, sends it with urllib and prints the status and body.
const REFUSED: &str = r#"
import sys, json, datetime, urllib.request, urllib.error
from unittest import mock
import botocore.auth, botocore.awsrequest, botocore.credentials
how, endpoint, key, secret = sys.argv[1:]
body = json.dumps({"cluster": "default", "service": "web", "desiredCount": 7})
req = botocore.awsrequest.AWSRequest(method="POST", url=endpoint + "/", data=body, headers={
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.UpdateService"})
if how == "wrong-secret":
    secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
if how == "expired":
    then = botocore.auth.get_current_datetime() - datetime.timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=then):
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "ecs", "us-east-1").add_auth(req)
elif how != "unsigned":
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "ecs", "us-east-1").add_auth(req)
data = body.replace("7", "9") if how == "tampered" else body
prepared = urllib.request.Request(endpoint + "/", data=data.encode(), method="POST",
    headers={k: v for k, v in req.headers.items()})
try:
    with urllib.request.urlopen(prepared) as r:
        print(json.dumps({"status": r.status, "body": json.loads(r.read())}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": json.loads(e.read())}))
"#;

#[test]
fn refused_requests_change_nothing() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    write_stack(dir.path(), "v1", 1);
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let aws = AwsClients::new(&server);
    let (key, secret) = aws.key();
    let url = server.url();
    for (how, code) in [
        ("wrong-secret", "InvalidSignatureException"),
        ("expired", "InvalidSignatureException"),
        ("unsigned", "MissingAuthenticationTokenException"),
        ("tampered", "InvalidSignatureException"),
    ] {
        let out = aws.python(REFUSED, &[how, &url, &key, &secret]);
        assert!(
            out.status.success(),
            "{how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["body"]["__type"], code, "{how}: {answer}");
        assert!(answer["status"].as_u64().unwrap() >= 400, "{how}: {answer}");
        if how == "expired" {
            assert!(
                answer["body"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("Signature expired"),
                "{answer}"
            );
        }
    }
    // Nothing changed: no desired count moved, no event was recorded.
    let svc = server.json(&["services", "describe", "web"]);
    assert_eq!(svc["service"]["desiredCount"], 1, "{svc}");
    assert!(!svc.to_string().contains("desired count changed"), "{svc}");
    // The same request, signed properly, is answered.
    let out = aws.python(REFUSED, &["signed", &url, &key, &secret]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["body"]["service"]["desiredCount"], 7);
    // An unknown key, and an unknown operation, through the aws CLI.
    let mut unknown = std::process::Command::new("aws");
    let out = unknown
        .args(["ecs", "list-clusters"])
        .env("AWS_ENDPOINT_URL", &url)
        .env("AWS_ACCESS_KEY_ID", "AKIAAAAAAAAAAAAAAAAA")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(error_code(&out), "UnrecognizedClientException");
    let out = aws.run(&["ecs", "run-task", "--task-definition", "web"]);
    assert_eq!(error_code(&out), "UnknownOperationException");
    assert!(String::from_utf8_lossy(&out.stderr).contains("RunTask"));
    // An ECR operation outside the answered set is refused by name too.
    let out = aws.run(&["ecr", "describe-registry"]);
    assert_eq!(error_code(&out), "UnknownOperationException");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DescribeRegistry"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let who = aws.json(&["sts", "get-caller-identity"]);
    assert_eq!(
        who["Arn"]
            .as_str()
            .unwrap()
            .split(':')
            .nth(4)
            .unwrap()
            .len(),
        12
    );
    assert!(who["Arn"].as_str().unwrap().ends_with(":user/tests"));
}

#[test]
fn a_pipeline_started_with_variables_waits_for_an_approval_given_with_its_token() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    init_repo(&repo, &[("README.md", "hello\n")]);
    let marker = root.join("marker");
    std::fs::write(
        root.join("pipeline.json"),
        format!(
            r#"{{"pipeline": {{"name": "gated", "pipelineType": "V2", "executionMode": "PARALLEL",
 "variables": [{{"name": "Greeting", "defaultValue": "default"}}], "stages": [
 {{"name": "Source", "actions": [{{"name": "Source",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
   "configuration": {{"RepositoryName": "app", "BranchName": "main"}}, "outputArtifacts": [{{"name": "Out"}}]}}]}},
 {{"name": "Gate", "actions": [{{"name": "Approve",
   "actionTypeId": {{"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}}}]}},
 {{"name": "Run", "actions": [{{"name": "Run",
   "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
   "configuration": {{"FunctionName": "echo #{{variables.Greeting}} > {marker}"}}}}]}}]}}}}"#,
            marker = marker.display()
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        format!(
            "services: {{}}\nrepositories:\n  app: {{url: {}, pollIntervalSeconds: 0}}\npipelines:\n  gated: {{file: pipeline.json}}\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(root));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let aws = AwsClients::new(&server);
    let listed = aws.json(&["codepipeline", "list-pipelines"]);
    assert_eq!(listed["pipelines"][0]["name"], "gated");
    let declared = aws.json(&["codepipeline", "get-pipeline", "--name", "gated"]);
    assert_eq!(
        declared["pipeline"]["stages"][1]["actions"][0]["actionTypeId"]["category"],
        "Approval"
    );
    let id = aws.json(&[
        "codepipeline",
        "start-pipeline-execution",
        "--name",
        "gated",
        "--variables",
        "name=Greeting,value=hi",
    ])["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    // The approval waits; its token comes from GetPipelineState.
    let mut token = String::new();
    let waited = wait_until(Duration::from_secs(30), || {
        let state = aws.json(&["codepipeline", "get-pipeline-state", "--name", "gated"]);
        let gate = &state["stageStates"][1];
        let latest = &gate["actionStates"][0]["latestExecution"];
        if gate["latestExecution"]["pipelineExecutionId"] == id.as_str()
            && latest["status"] == "InProgress"
        {
            token = latest["token"].as_str().unwrap_or_default().to_string();
        }
        !token.is_empty()
    });
    assert!(
        waited.is_some(),
        "the approval never waited\n{}",
        server.log()
    );
    let put_approval = |result: &str, token: &str| {
        aws.run(&[
            "codepipeline",
            "put-approval-result",
            "--pipeline-name",
            "gated",
            "--stage-name",
            "Gate",
            "--action-name",
            "Approve",
            "--result",
            result,
            "--token",
            token,
            "--output",
            "json",
        ])
    };
    let wrong = put_approval(
        "summary=no,status=Rejected",
        "00000000-0000-0000-0000-000000000000",
    );
    assert_eq!(error_code(&wrong), "InvalidApprovalTokenException");
    let approved = put_approval("summary=lgtm,status=Approved", &token);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let approved: serde_json::Value = serde_json::from_slice(&approved.stdout).unwrap();
    assert!(approved["approvedAt"].is_number(), "{approved}");
    let done = wait_until(Duration::from_secs(30), || {
        aws.json(&[
            "codepipeline",
            "get-pipeline-execution",
            "--pipeline-name",
            "gated",
            "--pipeline-execution-id",
            &id,
        ])["pipelineExecution"]["status"]
            == "Succeeded"
    });
    assert!(
        done.is_some(),
        "the execution never succeeded\n{}",
        server.log()
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "hi");
    let again = put_approval("summary=lgtm,status=Approved", &token);
    assert_eq!(error_code(&again), "ApprovalAlreadyCompletedException");
}

/// The build `id` as BatchGetBuilds answers it, once it has finished.
fn finished_build(aws: &AwsClients, server: &Server, id: &str) -> serde_json::Value {
    let mut build = serde_json::Value::Null;
    let done = wait_until(Duration::from_secs(30), || {
        build = aws.json(&["codebuild", "batch-get-builds", "--ids", id])["builds"][0].clone();
        build["buildStatus"] != "IN_PROGRESS"
    });
    assert!(
        done.is_some(),
        "build {id} never finished: {build}\n{}",
        server.log()
    );
    build
}

#[test]
fn a_build_started_through_codebuild_calls_aws_from_inside_with_a_key_of_its_own() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    let leak = root.join("leak");
    init_repo(
        &repo,
        &[(
            "buildspec.yml",
            r#"version: 0.2
phases:
  build:
    commands:
      - export PATH="$AWS_BIN:$PATH"
      - aws sts get-caller-identity --query Account --output text
      - test "$(aws secretsmanager get-secret-value --secret-id app/token --query SecretString --output text)" = tok-123
      - test "$(aws ssm get-parameter --name /app/db --with-decryption --query Parameter.Value --output text)" = s3cr3t-db
      - test "$DB_FROM_OVERRIDE" = s3cr3t-db
      - aws ecs update-service --cluster default --service web --desired-count 2 --query service.desiredCount
      - echo "arn=$CODEBUILD_BUILD_ARN region=$AWS_REGION"
      - echo "key=$AWS_SECRET_ACCESS_KEY"
      - printf %s "$AWS_SECRET_ACCESS_KEY" > "$LEAK"
"#,
        )],
    );
    write_stack(root, "v1", 1);
    std::fs::write(
        root.join("sleep.yml"),
        "version: 0.2\nphases:\n  build:\n    commands: [\"sleep 60\"]\n",
    )
    .unwrap();
    let mut stack = std::fs::read_to_string(root.join("stack.yaml")).unwrap();
    stack.push_str(&format!(
        "repositories:\n  app: {{url: {}, pollIntervalSeconds: 0}}\nbuildProjects:\n  deploy: {{source: {{repository: app}}, timeoutInMinutes: 5}}\n  sleeper: {{buildspec: ./sleep.yml}}\n",
        repo.display()
    ));
    std::fs::write(root.join("stack.yaml"), stack).unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(root));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_healthy(&server, "web", 1, Duration::from_secs(30));

    let aws = AwsClients::new(&server);
    let (test_key, _) = aws.key();
    aws.json(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "app/token",
        "--secret-string",
        "tok-123",
    ]);
    aws.json(&[
        "ssm",
        "put-parameter",
        "--name",
        "/app/db",
        "--type",
        "SecureString",
        "--value",
        "s3cr3t-db",
    ]);
    let projects = aws.json(&["codebuild", "list-projects"]);
    assert_eq!(
        projects["projects"],
        serde_json::json!(["deploy", "sleeper"])
    );
    let got = aws.json(&[
        "codebuild",
        "batch-get-projects",
        "--names",
        "deploy",
        "nope",
    ]);
    assert_eq!(got["projectsNotFound"], serde_json::json!(["nope"]));
    assert!(
        got["projects"][0]["arn"]
            .as_str()
            .unwrap()
            .ends_with(":project/deploy"),
        "{got}"
    );

    let aws_bin = aws.bin_dir().display().to_string();
    let started = aws.json(&[
        "codebuild",
        "start-build",
        "--project-name",
        "deploy",
        "--source-version",
        "main",
        "--environment-variables-override",
        &format!("name=AWS_BIN,value={aws_bin},type=PLAINTEXT"),
        &format!("name=LEAK,value={},type=PLAINTEXT", leak.display()),
        "name=AWS_CONFIG_FILE,value=/nonexistent,type=PLAINTEXT",
        "name=DB_FROM_OVERRIDE,value=/app/db,type=PARAMETER_STORE",
    ]);
    let id = started["build"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("deploy:"), "{started}");
    let build = finished_build(&aws, &server, &id);
    let addr = server.url().trim_start_matches("http://").to_string();
    let (_, log) = http_get(&addr, &format!("/v1/builds/{id}/logs")).unwrap();
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let log = log["text"].as_str().unwrap().to_string();
    assert_eq!(build["buildStatus"], "SUCCEEDED", "{build}\n{log}");
    assert_eq!(build["currentPhase"], "COMPLETED");
    assert_eq!(
        build["sourceVersion"].as_str().unwrap().len(),
        40,
        "{build}"
    );
    assert!(
        build["initiator"]
            .as_str()
            .unwrap()
            .starts_with("codebuild:StartBuild"),
        "{build}"
    );
    // The build changed the service through ECS's API.
    let web = aws.json(&["ecs", "describe-services", "--services", "web"]);
    assert_eq!(web["services"][0]["desiredCount"], 2, "{web}");
    // Its ARN carries the account; its secret never reached the log.
    assert!(
        log.contains(&format!(":build/{id} region=us-east-1")) && log.contains("key=***"),
        "{log}"
    );
    let secret = std::fs::read_to_string(&leak).unwrap();
    assert!(secret.len() >= 20);
    assert!(!log.contains(&secret), "{log}");
    // Its key was revoked when it ended: only the test's own is left.
    let keys = server.json(&["access-keys", "ls"]);
    let ids: Vec<&str> = keys["AccessKeyMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["AccessKeyId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [test_key.as_str()], "{keys}");
    let listed = aws.json(&[
        "codebuild",
        "list-builds-for-project",
        "--project-name",
        "deploy",
    ]);
    assert_eq!(listed["ids"], serde_json::json!([id]));
    let builds = server.json(&["builds", "ls"]);
    assert!(builds.to_string().contains(&id), "{builds}");

    // A build with no source runs the project's buildspec; StopBuild stops it.
    let sleeping = aws.json(&["codebuild", "start-build", "--project-name", "sleeper"]);
    let sleeping = sleeping["build"]["id"].as_str().unwrap().to_string();
    let stopped = aws.json(&["codebuild", "stop-build", "--id", &sleeping]);
    assert_eq!(stopped["build"]["id"], sleeping.as_str());
    let build = finished_build(&aws, &server, &sleeping);
    assert_eq!(build["buildStatus"], "STOPPED", "{build}");
    let missing = aws.run(&["codebuild", "start-build", "--project-name", "nope"]);
    assert_eq!(error_code(&missing), "ResourceNotFoundException");
    let no_source = aws.run(&[
        "codebuild",
        "start-build",
        "--project-name",
        "sleeper",
        "--source-version",
        "main",
    ]);
    assert_eq!(error_code(&no_source), "InvalidInputException");
}

/// Hostile requests, from the network (no key) and from a key holder
/// (signed, so they reach the handlers): garbage credentials, oversized
/// headers and bodies, unknown targets, malformed, mistyped and deeply
/// nested JSON, NULs and traversal in names. Prints one line per case:
/// `case status __type`.
const HOSTILE: &str = r#"
import sys, json, http.client, urllib.parse
import botocore.auth, botocore.awsrequest, botocore.credentials
endpoint, key, secret = sys.argv[1:]
host = urllib.parse.urlparse(endpoint).netloc
def send(case, body, headers):
    c = http.client.HTTPConnection(host, timeout=30)
    try:
        c.request("POST", "/", body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        try:
            kind = json.loads(data).get("__type", "-")
        except Exception:
            kind = "not-json"
        print(case, r.status, kind)
    except Exception as e:
        print(case, 0, type(e).__name__)
    finally:
        c.close()
def signed(case, service, target, body):
    req = botocore.awsrequest.AWSRequest(method="POST", url=endpoint + "/", data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, "us-east-1").add_auth(req)
    send(case, body, dict(req.headers.items()))
ecs = "AmazonEC2ContainerServiceV20141113."
json11 = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": ecs + "ListClusters"}
for i, auth in enumerate(["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=", "Basic Zm9vOmJhcg==",
        "AWS4-HMAC-SHA256 Credential=" + "A" * 8000 + ", SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=%s/20260101/us-east-1/ecs/aws4_request, SignedHeaders=, Signature=zz" % key]):
    send("auth-%d" % i, b"{}", dict(json11, Authorization=auth))
send("huge-unsigned", b"{" + b" " * (2 << 20) + b"}", json11)
services = [("ecs", ecs + "DescribeServices"), ("codedeploy", "CodeDeploy_20141006.GetDeployment"),
    ("codepipeline", "CodePipeline_20150709.GetPipeline"), ("codebuild", "CodeBuild_20161006.BatchGetBuilds"),
    ("secretsmanager", "secretsmanager.GetSecretValue"), ("ssm", "AmazonSSM.GetParameter"),
    ("ecr", "AmazonEC2ContainerRegistry_V20150921.DescribeImages")]
bodies = [("not-json", "{not json"), ("array", "[1, 2]"), ("nested", "[" * 100000 + "]" * 100000),
    ("wrong-types", json.dumps({"services": 5, "deploymentId": [], "name": {}, "ids": "x", "SecretId": 1, "Name": True,
        "repositoryName": 7})),
    ("nul-and-traversal", json.dumps({"services": ["../../etc/passwd\u0000"], "deploymentId": "../\u0000",
        "name": "..\u0000", "ids": ["\u0000"], "SecretId": "../../x\u0000", "Name": "/../\u0000",
        "repositoryName": "../../x\u0000"})),
    ("long-names", json.dumps({"services": ["a" * 100000], "deploymentId": "d" * 100000, "name": "p" * 100000,
        "ids": ["b" * 100000], "SecretId": "s" * 100000, "Name": "/" + "n" * 100000, "repositoryName": "r" * 100000}))]
for service, target in services:
    for name, body in bodies:
        signed("%s-%s" % (service, name), service, target, body)
signed("empty-target", "ecs", ecs, "{}")
signed("unknown-service", "ecs", "Nope_20990101.Anything", "{}")
signed("long-target", "ecs", ecs + "X" * 5000, "{}")
signed("huge-signed", "ecs", ecs + "DescribeServices", json.dumps({"services": ["x" * (2 << 20)]}))
ecr = "AmazonEC2ContainerRegistry_V20150921."
signed("ecr-bad-name", "ecr", ecr + "CreateRepository", json.dumps({"repositoryName": "Web/../x"}))
signed("ecr-huge-policy", "ecr", ecr + "PutLifecyclePolicy",
    json.dumps({"repositoryName": "web", "lifecyclePolicyText": "{" + " " * 40000 + "}"}))
signed("ecr-policy-wrong-types", "ecr", ecr + "PutLifecyclePolicy",
    json.dumps({"repositoryName": "web", "lifecyclePolicyText": json.dumps({"rules": 5, "x": "y" * 100})}))
signed("ecr-preview-ids-wrong-types", "ecr", ecr + "GetLifecyclePolicyPreview",
    json.dumps({"repositoryName": "web", "imageIds": [{"imageDigest": 5}]}))
cd = "CodeDeploy_20141006."
signed("cd-unknown-group", "codedeploy", cd + "CreateDeployment", json.dumps({"applicationName": "nope",
    "deploymentGroupName": "../x", "revision": {"revisionType": "GitHub",
    "gitHubLocation": {"repository": "../../etc", "commitId": "--upload-pack=x"}}}))
signed("cd-forged-instance", "codedeploy", cd + "RegisterOnPremisesInstance",
    json.dumps({"instanceName": "../../etc\u0000", "iamUserArn": "arn:aws:iam::000000000000:user/x"}))
signed("cd-forged-iam-arn", "codedeploy", cd + "RegisterOnPremisesInstance",
    json.dumps({"instanceName": "h1", "iamUserArn": "arn:aws:iam::000000000000:user/../x"}))
signed("cd-forged-tags", "codedeploy", cd + "AddTagsToOnPremisesInstances",
    json.dumps({"instanceNames": ["../x"], "tags": [{"Key": "env", "Value": "prod"}]}))
signed("cd-forged-target", "codedeploy", cd + "BatchGetDeploymentTargets",
    json.dumps({"deploymentId": "../\u0000", "targetIds": ["../x"]}))
signed("cd-group-wrong-types", "codedeploy", cd + "CreateDeploymentGroup",
    json.dumps({"applicationName": "a", "deploymentGroupName": "g", "serviceRoleArn": "r",
    "onPremisesTagSet": {"onPremisesTagSetList": "x"}}))
"#;

#[test]
fn hostile_requests_are_refused_and_the_server_keeps_answering() {
    let server = Server::start();
    let aws = AwsClients::new(&server);
    let (key, secret) = aws.key();
    let out = aws.python(HOSTILE, &[&server.url(), &key, &secret]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 5 + 1 + 7 * 6 + 4 + 4 + 6, "{text}");
    for l in &lines {
        let status: u16 = l[1].parse().unwrap();
        // Refused as the client's mistake (or the body cut at its limit),
        // never a crash, a hang or an internal error; batch reads (ECS's
        // DescribeServices, CodeBuild's BatchGetBuilds) answer unknown
        // names as failures of a 200, as AWS does.
        let batch = l[0].starts_with("ecs-") || l[0].starts_with("codebuild-");
        assert!(
            (400..500).contains(&status) || (batch && status == 200),
            "{text}\n{}",
            server.log()
        );
        if status != 413 {
            assert_ne!(l[2], "not-json", "AWS's error body expected: {text}");
        }
    }
    let by_case = |case: &str| lines.iter().find(|l| l[0] == case).unwrap()[2].to_string();
    // A header that is no SigV4 signature is an incomplete one (AWS's code).
    assert_eq!(by_case("auth-2"), "IncompleteSignatureException", "{text}");
    assert_eq!(by_case("ecs-not-json"), "SerializationException", "{text}");
    assert_eq!(by_case("ecs-nested"), "SerializationException", "{text}");
    for case in ["ecr-bad-name", "ecr-huge-policy", "ecr-policy-wrong-types"] {
        assert_eq!(by_case(case), "InvalidParameterException", "{text}");
    }
    assert_eq!(
        by_case("ecr-wrong-types"),
        "SerializationException",
        "{text}"
    );
    assert_eq!(
        by_case("unknown-service"),
        "UnknownOperationException",
        "{text}"
    );
    for (case, code) in [
        ("cd-unknown-group", "ApplicationDoesNotExistException"),
        ("cd-forged-instance", "InvalidInstanceNameException"),
        ("cd-forged-iam-arn", "InvalidIamUserArnException"),
        ("cd-forged-tags", "InvalidInstanceNameException"),
        ("cd-forged-target", "DeploymentDoesNotExistException"),
        ("cd-group-wrong-types", "SerializationException"),
    ] {
        assert_eq!(by_case(case), code, "{text}");
    }
    assert!(!server.log().contains("panicked"), "{}", server.log());
    // Still answering, with nothing created by any of it.
    let who = aws.json(&["sts", "get-caller-identity"]);
    assert!(who["Arn"].as_str().unwrap().ends_with(":user/tests"));
    assert_eq!(
        aws.json(&["ecs", "list-services"])["serviceArns"],
        serde_json::json!([])
    );
    assert_eq!(
        aws.json(&["secretsmanager", "list-secrets"])["SecretList"],
        serde_json::json!([])
    );
    assert_eq!(
        aws.json(&["ecr", "describe-repositories"])["repositories"],
        serde_json::json!([])
    );
    assert_eq!(
        aws.json(&["deploy", "list-on-premises-instances"])["instanceNames"],
        serde_json::json!([])
    );
}
