//! End to end: pipelines through the real binary.
//!
//! - A commit to a git repository is polled, built by a buildspec on the
//!   host, and deployed blue/green under live traffic with no failed
//!   request, by an `ECS` action and by a `CodeDeployToECS` action.
//! - A webhook with a bad or missing signature is refused; a signed one
//!   starts an execution at once.
//! - A pipeline with a mistake is rejected with its location before
//!   anything runs.
//! - A manual approval waits across a `kill -9` of the control plane; a
//!   failed stage is retried; a disabled transition holds an execution;
//!   stop and abandon ends one; `start --wait` fails on a rejection.
//! - A build interrupted by a restart is failed and killed, and its stage
//!   retries.
//! - As in CodePipeline, a pipeline runs once when it is created (not on an
//!   update, not on a dry run); a pipeline dropped from its stack file is
//!   stopped (its build killed) and deleted; a new tag matching a trigger's
//!   `tags` filter is seen by polling and starts an execution.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

/// A repository on `main` with `files`, committed.
const BUILDSPEC: &str = r#"version: 0.2
env:
  exported-variables: [IMAGE_DIR]
phases:
  build:
    commands:
      - IMAGE_DIR="$IMAGES/$CODEBUILD_RESOLVED_SOURCE_VERSION"
      - mkdir -p "$IMAGE_DIR"
      - cp VERSION "$IMAGE_DIR/VERSION"
      - printf '[{"name":"web","imageUri":"file://%s"}]' "$IMAGE_DIR" > imagedefinitions.json
artifacts:
  files:
    - imagedefinitions.json
"#;

const PIPELINE: &str = r#"{"pipeline": {"name": "app", "pipelineType": "V2", "stages": [
 {"name": "Source", "actions": [{"name": "Source", "namespace": "SourceVariables",
   "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "SourceArtifact"}]}]},
 {"name": "Build", "actions": [{"name": "Build", "namespace": "BuildVariables",
   "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
   "configuration": {"ProjectName": "app-build"}, "inputArtifacts": [{"name": "SourceArtifact"}], "outputArtifacts": [{"name": "BuildArtifact"}]}]},
 {"name": "Deploy", "actions": [{"name": "Deploy",
   "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
   "configuration": {"ClusterName": "default", "ServiceName": "web", "FileName": "imagedefinitions.json"},
   "inputArtifacts": [{"name": "BuildArtifact"}]}]}]}}"#;

fn latest_execution(server: &Server, pipeline: &str) -> Option<serde_json::Value> {
    let v = server.json(&["pipelines", "executions", pipeline]);
    v["executions"].as_array()?.first().cloned()
}

/// What [`commit_and_deploy`] leaves for checks.
struct Deployed {
    server: Server,
    _tmp: tempfile::TempDir,
    images: std::path::PathBuf,
    commit: String,
    execution: serde_json::Value,
}

/// Runs a service at v1 behind its listener and a pipeline from `pipeline`
/// with `buildspec` (and `extra` files) in the repository, commits v2 under
/// live traffic, and checks the pipeline deploys it with no failed request.
fn commit_and_deploy(pipeline: &str, buildspec: &str, extra: &[(&str, &str)]) -> Deployed {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (repo, images, app_v1) = (root.join("repo"), root.join("images"), root.join("app-v1"));
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&app_v1).unwrap();
    std::fs::write(app_v1.join("VERSION"), "v1\n").unwrap();
    let mut files = vec![("VERSION", "v1\n"), ("buildspec.yml", buildspec)];
    files.extend_from_slice(extra);
    init_repo(&repo, &files);
    let prod = free_port();
    std::fs::write(root.join("pipeline.json"), pipeline).unwrap();
    std::fs::write(
        root.join("taskdef.json"),
        format!(
            r#"{{"family": "web", "containerDefinitions": [{{"name": "web", "image": "file://{}",
  "command": ["cutover", "sample-app"], "portMappings": [{{"containerPort": 8080}}],
  "healthCheck": {{"command": ["CMD-SHELL", "curl -fs http://127.0.0.1:$PORT/health"], "interval": 1, "timeout": 1, "retries": 2}}}}]}}
"#,
            app_v1.display()
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        format!(
            r#"services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:{prod}
      healthCheck: {{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
      deregistrationDelaySeconds: 1
    deployment:
      type: BLUE_GREEN
      config: CodeDeployDefault.ECSAllAtOnce
      terminationWaitSeconds: 0
functions:
  CodeDeployHook_BeforeTraffic: {{command: [sh, -c, "echo $CUTOVER_LIFECYCLE_EVENT >> {hook_log}"]}}
repositories:
  app: {{url: {repo}, pollIntervalSeconds: 1}}
buildProjects:
  app-build:
    environment: host
    environmentVariables: {{IMAGES: {images}}}
pipelines:
  app: {{file: ./pipeline.json}}
"#,
            repo = repo.display(),
            images = images.display(),
            hook_log = root.join("hook.log").display(),
        ),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(root));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    wait_healthy(&server, "web", 2, Duration::from_secs(30));
    let addr = format!("127.0.0.1:{prod}");
    wait_until(Duration::from_secs(15), || {
        http_get(&addr, "/").is_ok_and(|(s, b)| s == 200 && b.trim() == "v1")
    })
    .expect("the listener never served v1");
    // Created, the pipeline ran once on the head (v1), as CodePipeline
    // does; that head is the polling baseline, so the next commit is new.
    let mut last = None;
    wait_until(Duration::from_secs(120), || {
        last = latest_execution(&server, "app");
        last.as_ref().is_some_and(|e| e["status"] == "Succeeded")
    })
    .unwrap_or_else(|| {
        panic!(
            "the first execution never succeeded: {last:?}\n{}",
            server.log()
        )
    });
    let first = last.take().unwrap();
    assert!(
        first["trigger"]
            .as_str()
            .unwrap()
            .starts_with("CreatePipeline"),
        "{first}"
    );
    wait_until(Duration::from_secs(15), || {
        http_get(&addr, "/").is_ok_and(|(s, b)| s == 200 && b.trim() == "v1")
    })
    .expect("the listener does not serve v1 after the first execution");

    let load = Load::start(addr.clone(), 4);
    let v2 = commit(&repo, &[("VERSION", "v2\n")], "version 2");
    let done = wait_until(Duration::from_secs(120), || {
        last = latest_execution(&server, "app");
        last.as_ref().is_some_and(|e| {
            e["id"] != first["id"] && e["status"] != "InProgress" && e["status"] != "Stopping"
        })
    });
    assert!(
        done.is_some(),
        "the pipeline never finished: {last:?}\n{}",
        server.log()
    );
    let execution = last.unwrap();
    assert_eq!(
        execution["status"],
        "Succeeded",
        "{execution:#}\n{}",
        server.log()
    );
    wait_until(Duration::from_secs(10), || {
        load.last_version().as_deref() == Some("v2")
    })
    .expect("the load never saw v2");
    std::thread::sleep(Duration::from_millis(500));
    let (ok, failed, _) = load.finish();
    assert!(ok > 100, "too little traffic to mean anything: {ok}");
    assert_eq!(failed, 0, "{failed} failed requests of {}", ok + failed);
    let (status, body) = http_get(&addr, "/").unwrap();
    assert_eq!((status, body.trim()), (200, "v2"));

    Deployed {
        server,
        _tmp: tmp,
        images,
        commit: v2,
        execution,
    }
}

#[test]
fn a_commit_is_built_and_deployed_blue_green_with_no_failed_request() {
    let Deployed {
        server,
        images,
        commit: v2,
        execution,
        ..
    } = commit_and_deploy(PIPELINE, BUILDSPEC, &[]);
    assert!(
        execution["trigger"].as_str().unwrap().starts_with("poll:"),
        "{execution}"
    );
    assert_eq!(execution["sourceRevisions"]["Source"], v2.as_str());
    assert_eq!(
        execution["outputVariables"]["SourceVariables"]["CommitMessage"],
        "version 2"
    );
    assert_eq!(
        execution["outputVariables"]["BuildVariables"]["IMAGE_DIR"],
        images.join(&v2).to_str().unwrap()
    );

    // The build is in the history with its log.
    let builds = server.json(&["builds", "ls"]);
    let build = &builds["builds"][0];
    assert_eq!(build["status"], "SUCCEEDED", "{builds}");
    assert_eq!(build["source"], v2.as_str());
    assert!(build["durationMs"].as_u64().is_some());
    let id = build["id"].as_str().unwrap();
    let logs = server.cli(&["builds", "logs", id]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("cp VERSION"), "{text}");
}

const CODEDEPLOY_BUILDSPEC: &str = r#"version: 0.2
phases:
  build:
    commands:
      - IMAGE_DIR="$IMAGES/$CODEBUILD_RESOLVED_SOURCE_VERSION"
      - mkdir -p "$IMAGE_DIR" && cp VERSION "$IMAGE_DIR/VERSION"
      - printf '{"ImageURI":"file://%s"}' "$IMAGE_DIR" > imageDetail.json
artifacts:
  files:
    - imageDetail.json
    - taskdef.json
    - appspec.yaml
"#;

const CODEDEPLOY_TASKDEF: &str = r#"{"family": "web", "containerDefinitions": [{"name": "web", "image": "<IMAGE1_NAME>",
  "command": ["cutover", "sample-app"], "portMappings": [{"containerPort": 8080}],
  "healthCheck": {"command": ["CMD-SHELL", "curl -fs http://127.0.0.1:$PORT/health"], "interval": 1, "timeout": 1, "retries": 2}}]}
"#;

const CODEDEPLOY_APPSPEC: &str = "version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: <TASK_DEFINITION>
        LoadBalancerInfo:
          ContainerName: web
          ContainerPort: 8080
Hooks:
  - BeforeAllowTraffic: \"arn:aws:lambda:us-east-1:111122223333:function:CodeDeployHook_BeforeTraffic\"
";

const CODEDEPLOY_PIPELINE: &str = r#"{"pipeline": {"name": "app", "pipelineType": "V2", "stages": [
 {"name": "Source", "actions": [{"name": "Source", "namespace": "SourceVariables",
   "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "SourceArtifact"}]}]},
 {"name": "Build", "actions": [{"name": "Build",
   "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
   "configuration": {"ProjectName": "app-build"}, "inputArtifacts": [{"name": "SourceArtifact"}], "outputArtifacts": [{"name": "BuildArtifact"}]}]},
 {"name": "Deploy", "actions": [{"name": "Deploy",
   "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeployToECS", "version": "1"},
   "configuration": {"ApplicationName": "app", "DeploymentGroupName": "web",
     "TaskDefinitionTemplateArtifact": "BuildArtifact", "AppSpecTemplateArtifact": "BuildArtifact",
     "Image1ArtifactName": "BuildArtifact", "Image1ContainerName": "IMAGE1_NAME"},
   "inputArtifacts": [{"name": "BuildArtifact"}]}]}]}}"#;

#[test]
fn a_code_deploy_to_ecs_action_fills_the_placeholders_and_deploys_with_no_failed_request() {
    let Deployed {
        server,
        _tmp: tmp,
        images,
        commit,
        execution,
    } = commit_and_deploy(
        CODEDEPLOY_PIPELINE,
        CODEDEPLOY_BUILDSPEC,
        &[
            ("taskdef.json", CODEDEPLOY_TASKDEF),
            ("appspec.yaml", CODEDEPLOY_APPSPEC),
        ],
    );
    let deploy = &execution["stages"][2]["actions"][0];
    assert!(
        deploy["message"].as_str().unwrap().contains("succeeded"),
        "{execution}"
    );
    // The registered revision runs the image the build named.
    let td = server.json(&["task-definitions", "describe", "web"]);
    let image = td.to_string();
    assert!(
        image.contains(&format!("file://{}", images.join(&commit).display())),
        "{td}"
    );
    // The appspec's hook names a Lambda function by ARN: the stack's
    // `functions` entry ran in its place, once per deployment.
    let ran = std::fs::read_to_string(tmp.path().join("hook.log")).unwrap_or_default();
    assert!(
        !ran.is_empty() && ran.lines().all(|l| l == "BeforeAllowTraffic"),
        "{ran:?}\n{}",
        server.log()
    );
}

#[test]
fn webhooks_are_verified_and_start_an_execution_at_once() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    let first = init_repo(&repo, &[("README.md", "hello\n")]);
    let marker = root.join("invoked");
    std::fs::write(
        root.join("pipeline.json"),
        format!(
            r##"{{"pipeline": {{"name": "hooked", "pipelineType": "V2", "stages": [
 {{"name": "Source", "actions": [{{"name": "Src", "namespace": "S",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"}},
   "configuration": {{"FullRepositoryId": "me/app", "BranchName": "main", "ConnectionArn": "arn:aws:codeconnections:x"}},
   "outputArtifacts": [{{"name": "Out"}}]}}]}},
 {{"name": "Notify", "actions": [{{"name": "Touch",
   "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
   "configuration": {{"FunctionName": "echo $USER_PARAMETERS > {marker}", "UserParameters": "#{{S.CommitId}}"}}}}]}}]}}}}"##,
            marker = marker.display()
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        format!(
            "services: {{}}\nrepositories:\n  me/app: {{url: {}, pollIntervalSeconds: 0, webhookSecret: s3cret}}\npipelines:\n  hooked: {{file: pipeline.json}}\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(root));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );

    let body = format!(
        r#"{{"ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000", "after": "{first}", "commits": []}}"#
    );
    let addr = server.addr.to_string();
    let (status, _) = post(&addr, "/v1/webhooks/me%2Fapp", &[], &body);
    assert_eq!(status, 401, "an unsigned webhook must be refused");
    let (status, _) = post(
        &addr,
        "/v1/webhooks/me%2Fapp",
        &[("X-Hub-Signature-256", "sha256=00aa")],
        &body,
    );
    assert_eq!(status, 401, "a badly signed webhook must be refused");
    let (status, _) = post(
        &addr,
        "/v1/webhooks/me%2Fapp",
        &[("X-Gitlab-Token", "wrong")],
        &body,
    );
    assert_eq!(status, 401);
    // Only the execution of the creation ran, on the head.
    let mut last = None;
    wait_until(Duration::from_secs(30), || {
        last = latest_execution(&server, "hooked");
        last.as_ref().is_some_and(|e| e["status"] == "Succeeded")
    })
    .unwrap_or_else(|| {
        panic!(
            "the first execution never succeeded: {last:?}\n{}",
            server.log()
        )
    });
    let executions = server.json(&["pipelines", "executions", "hooked"])["executions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), first);
    // A push of the head the creation built starts nothing.
    let (status, answer) = post(
        &addr,
        "/v1/webhooks/me%2Fapp",
        &[
            ("X-Gitlab-Token", "s3cret"),
            ("X-Gitlab-Event", "Push Hook"),
        ],
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("already acted on"), "{answer}");
    let second = commit(&repo, &[("README.md", "hello again\n")], "second");
    let body = format!(
        r#"{{"ref": "refs/heads/main", "before": "{first}", "after": "{second}", "commits": []}}"#
    );

    let (status, answer) = post(
        &addr,
        "/v1/webhooks/me%2Fapp",
        &[
            ("X-Gitlab-Token", "s3cret"),
            ("X-Gitlab-Event", "Merge Request Hook"),
        ],
        r#"{"object_kind": "merge_request"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("\"ignored\":\"Merge Request Hook\""),
        "{answer}"
    );
    let (status, answer) = post(
        &addr,
        "/v1/webhooks/me%2Fapp",
        &[
            ("X-Gitlab-Token", "s3cret"),
            ("X-Gitlab-Event", "Push Hook"),
        ],
        &body,
    );
    assert_eq!(status, 202, "{answer}\n{}", server.log());
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["executions"][0]["pipeline"], "hooked", "{answer}");
    wait_until(Duration::from_secs(30), || {
        last = latest_execution(&server, "hooked");
        last.as_ref()
            .is_some_and(|e| e["status"] == "Succeeded" && e["id"] != executions[0]["id"])
    })
    .unwrap_or_else(|| panic!("no successful execution: {last:?}\n{}", server.log()));
    let e = last.unwrap();
    assert!(
        e["trigger"].as_str().unwrap().starts_with("webhook:"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), second);
}

#[test]
fn a_pipeline_with_a_mistake_is_rejected_with_its_location() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("pipeline.json"), PIPELINE).unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        "services: {}\nrepositories:\n  app: {url: /nonexistent}\nbuildProjects:\n  other: {}\npipelines:\n  app: {file: ./pipeline.json}\n",
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(root));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pipeline.json:7:")
            && err.contains("build project \"app-build\" is not declared"),
        "{err}"
    );
    assert!(err.contains("service \"web\" is not declared"), "{err}");
    let listed = server.json(&["pipelines", "ls"]);
    assert!(
        listed["pipelines"].as_array().unwrap().is_empty(),
        "{listed}"
    );
}

fn execution(server: &Server, pipeline: &str, id: &str) -> serde_json::Value {
    let v = server.json(&["pipelines", "executions", pipeline]);
    v["executions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("execution {id} not listed: {v}"))
}

fn action_status(e: &serde_json::Value, stage: &str, action: &str) -> String {
    e["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == stage)
        .flat_map(|s| s["actions"].as_array().unwrap().iter())
        .find(|a| a["name"] == action)
        .map(|a| a["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn an_approval_survives_a_restart_then_retry_transitions_and_stop_work_through_the_cli() {
    let mut server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    init_repo(&repo, &[("README.md", "hello\n")]);
    let (flag, marker) = (root.join("flag"), root.join("marker"));
    std::fs::write(
        root.join("pipeline.json"),
        format!(
            r#"{{"pipeline": {{"name": "gated", "pipelineType": "V2", "executionMode": "PARALLEL", "stages": [
 {{"name": "Source", "actions": [{{"name": "Source",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
   "configuration": {{"RepositoryName": "app", "BranchName": "main"}}, "outputArtifacts": [{{"name": "Out"}}]}}]}},
 {{"name": "Gate", "actions": [{{"name": "Approve",
   "actionTypeId": {{"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}}}]}},
 {{"name": "Run", "actions": [{{"name": "Run",
   "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
   "configuration": {{"FunctionName": "test -f {flag} && echo done > {marker}"}}}}]}}]}}}}"#,
            flag = flag.display(),
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

    // The execution of the creation is the one followed.
    let id = latest_execution(&server, "gated").expect("no execution at creation")["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until(Duration::from_secs(20), || {
        action_status(&execution(&server, "gated", &id), "Gate", "Approve") == "InProgress"
    })
    .unwrap_or_else(|| panic!("the approval never waited\n{}", server.log()));

    // The control plane dies while the approval waits; the new one resumes.
    server.kill9();
    server.spawn();
    let e = execution(&server, "gated", &id);
    assert_eq!(e["status"], "InProgress", "{e}");
    let out = server.cli(&[
        "pipelines",
        "approve",
        "gated",
        "--stage",
        "Gate",
        "--action",
        "Approve",
        "--summary",
        "lgtm",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The invoke fails (no flag yet): the execution fails in stage Run.
    let mut last = serde_json::Value::Null;
    wait_until(Duration::from_secs(20), || {
        last = execution(&server, "gated", &id);
        last["status"] == "Failed"
    })
    .unwrap_or_else(|| panic!("never failed: {last}\n{}", server.log()));
    assert_eq!(action_status(&last, "Run", "Run"), "Failed", "{last}");

    // Fixed, the failed stage is retried and the execution succeeds.
    std::fs::write(&flag, "").unwrap();
    let out = server.cli(&[
        "pipelines",
        "retry",
        "gated",
        "--execution",
        &id,
        "--stage",
        "Run",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(Duration::from_secs(20), || {
        last = execution(&server, "gated", &id);
        last["status"] == "Succeeded"
    })
    .unwrap_or_else(|| panic!("the retry never succeeded: {last}\n{}", server.log()));
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "done");

    // `start --wait` follows an execution and fails when it is rejected.
    let child = std::process::Command::new(BIN)
        .args(["pipelines", "start", "gated", "--wait"])
        .env("CUTOVER_SERVER", server.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = wait_until(Duration::from_secs(20), || {
        let v = server.json(&["pipelines", "executions", "gated"]);
        v["executions"][0]["id"] != id.as_str()
            && action_status(&v["executions"][0], "Gate", "Approve") == "InProgress"
    });
    assert!(waiting.is_some(), "{}", server.log());
    let out = server.cli(&[
        "pipelines",
        "reject",
        "gated",
        "--stage",
        "Gate",
        "--action",
        "Approve",
        "--summary",
        "not today",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("action Gate/Approve: Failed"), "{text}");
    assert!(text.contains("Failed"), "{text}");

    // A disabled transition holds an approved execution before its stage.
    let cli_ok = |args: &[&str]| {
        let out = server.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cli_ok(&["pipelines", "disable-transition", "gated", "--stage", "Run"]);
    let held = server.json(&["pipelines", "start", "gated"])["executionId"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until(Duration::from_secs(20), || {
        action_status(&execution(&server, "gated", &held), "Gate", "Approve") == "InProgress"
    })
    .expect("the approval never waited");
    cli_ok(&[
        "pipelines",
        "approve",
        "gated",
        "--execution",
        &held,
        "--stage",
        "Gate",
        "--action",
        "Approve",
    ]);
    wait_until(Duration::from_secs(10), || {
        execution(&server, "gated", &held)["stages"][1]["status"] == "Succeeded"
    })
    .expect("the approved stage never succeeded");
    std::thread::sleep(Duration::from_millis(500));
    let e = execution(&server, "gated", &held);
    assert_eq!(e["status"], "InProgress", "{e}");
    assert_eq!(
        action_status(&e, "Run", "Run"),
        "",
        "Run must not start: {e}"
    );
    cli_ok(&["pipelines", "enable-transition", "gated", "--stage", "Run"]);
    wait_until(Duration::from_secs(20), || {
        execution(&server, "gated", &held)["status"] == "Succeeded"
    })
    .expect("the held execution never went on");

    // Stop and abandon ends an execution waiting for an approval.
    let stopped = server.json(&["pipelines", "start", "gated"])["executionId"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until(Duration::from_secs(20), || {
        action_status(&execution(&server, "gated", &stopped), "Gate", "Approve") == "InProgress"
    })
    .expect("the approval never waited");
    cli_ok(&[
        "pipelines",
        "stop",
        "gated",
        "--execution",
        &stopped,
        "--abandon",
    ]);
    wait_until(Duration::from_secs(10), || {
        execution(&server, "gated", &stopped)["status"] == "Stopped"
    })
    .unwrap_or_else(|| panic!("never stopped: {}", execution(&server, "gated", &stopped)));
}

#[test]
fn a_build_interrupted_by_a_restart_fails_is_killed_and_can_be_retried() {
    let mut server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (pid_file, fast) = (root.join("build.pid"), root.join("fast"));
    let repo = root.join("repo");
    init_repo(
        &repo,
        &[(
            "buildspec.yml",
            &format!(
                "version: 0.2\nphases:\n  build:\n    commands:\n      - echo $$ > {pid}\n      - if [ ! -f {fast} ]; then sleep 120; fi\n",
                pid = pid_file.display(),
                fast = fast.display()
            ),
        )],
    );
    std::fs::write(
        root.join("pipeline.json"),
        r#"{"pipeline": {"name": "slow", "stages": [
 {"name": "Source", "actions": [{"name": "Source",
   "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}]},
 {"name": "Build", "actions": [{"name": "Build",
   "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
   "configuration": {"ProjectName": "slow-build"}, "inputArtifacts": [{"name": "Src"}]}]}]}}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        format!(
            "services: {{}}\nrepositories:\n  app: {{url: {}, pollIntervalSeconds: 0}}\nbuildProjects:\n  slow-build: {{}}\npipelines:\n  slow: {{file: pipeline.json}}\n",
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
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("+ pipeline slow: create"), "{plan}");
    assert!(plan.contains("+ buildProject slow-build: create"), "{plan}");
    let id = latest_execution(&server, "slow").expect("no execution at creation")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut pid = 0;
    wait_until(Duration::from_secs(20), || {
        pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    })
    .unwrap_or_else(|| panic!("the build never started\n{}", server.log()));
    assert!(alive(pid));
    // The log streams while the build runs.
    let running = server.json(&["builds", "ls"]);
    assert_eq!(running["builds"][0]["status"], "IN_PROGRESS", "{running}");
    let build_id = running["builds"][0]["id"].as_str().unwrap().to_string();
    let mut log = String::new();
    wait_until(Duration::from_secs(10), || {
        log = String::from_utf8_lossy(&server.cli(&["builds", "logs", &build_id]).stdout)
            .into_owned();
        log.contains("sleep 120")
    })
    .unwrap_or_else(|| panic!("the running build's log does not show its command: {log}"));

    server.kill9();
    assert!(alive(pid), "the build outlives the control plane");
    server.spawn();
    let mut last = serde_json::Value::Null;
    wait_until(Duration::from_secs(20), || {
        last = execution(&server, "slow", &id);
        last["status"] == "Failed"
    })
    .unwrap_or_else(|| panic!("never failed: {last}\n{}", server.log()));
    let message = last["stages"][1]["actions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("control plane restarted"), "{last}");
    wait_until(Duration::from_secs(5), || !alive(pid))
        .expect("the interrupted build's processes were not killed");
    let builds = server.json(&["builds", "ls"]);
    assert_eq!(builds["builds"][0]["status"], "FAILED", "{builds}");

    std::fs::write(&fast, "").unwrap();
    let out = server.cli(&[
        "pipelines",
        "retry",
        "slow",
        "--execution",
        &id,
        "--stage",
        "Build",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(Duration::from_secs(20), || {
        last = execution(&server, "slow", &id);
        last["status"] == "Succeeded"
    })
    .unwrap_or_else(|| panic!("the retry never succeeded: {last}\n{}", server.log()));
    let builds = server.json(&["builds", "ls", "--project", "slow-build"]);
    assert_eq!(builds["builds"][0]["status"], "SUCCEEDED", "{builds}");
    assert_eq!(builds["builds"][0]["number"], 2, "{builds}");
}

/// The executions of `pipeline`, newest first.
fn executions(server: &Server, pipeline: &str) -> Vec<serde_json::Value> {
    server.json(&["pipelines", "executions", pipeline])["executions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn apply(server: &Server, root: &Path, args: &[&str]) -> String {
    let mut all = vec!["apply", "-f", "stack.yaml"];
    all.extend_from_slice(args);
    let out = server.cli_in(&all, Some(root));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_pipeline_runs_once_when_created_and_is_stopped_and_deleted_when_dropped() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (pid_file, repo) = (root.join("build.pid"), root.join("repo"));
    init_repo(
        &repo,
        &[(
            "buildspec.yml",
            &format!(
                "version: 0.2\nphases:\n  build:\n    commands:\n      - echo $$ > {pid}\n      - sleep 120\n",
                pid = pid_file.display(),
            ),
        )],
    );
    let pipeline = |description: &str| {
        format!(
            r#"{{"pipeline": {{"name": "slow", "variables": [{{"name": "Why", "defaultValue": "x", "description": "{description}"}}], "stages": [
 {{"name": "Source", "actions": [{{"name": "Source",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
   "configuration": {{"RepositoryName": "app", "BranchName": "main"}}, "outputArtifacts": [{{"name": "Src"}}]}}]}},
 {{"name": "Build", "actions": [{{"name": "Build",
   "actionTypeId": {{"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}},
   "configuration": {{"ProjectName": "slow-build"}}, "inputArtifacts": [{{"name": "Src"}}]}}]}}]}}}}"#
        )
    };
    std::fs::write(root.join("pipeline.json"), pipeline("first")).unwrap();
    let base = format!(
        "services: {{}}\nrepositories:\n  app: {{url: {}, pollIntervalSeconds: 0}}\nbuildProjects:\n  slow-build: {{}}\n",
        repo.display()
    );
    std::fs::write(
        root.join("stack.yaml"),
        format!("{base}pipelines:\n  slow: {{file: pipeline.json}}\n"),
    )
    .unwrap();

    // A dry run creates and starts nothing.
    let plan = apply(&server, root, &["--dry-run"]);
    assert!(plan.contains("+ pipeline slow: create"), "{plan}");
    let listed = server.json(&["pipelines", "ls"]);
    assert!(
        listed["pipelines"].as_array().unwrap().is_empty(),
        "{listed}"
    );

    // Created: one execution at once, on the head of the source.
    let plan = apply(&server, root, &[]);
    assert!(plan.contains("+ pipeline slow: create"), "{plan}");
    let e = executions(&server, "slow");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0]["trigger"]
            .as_str()
            .unwrap()
            .starts_with("CreatePipeline"),
        "{e:?}"
    );
    let id = e[0]["id"].as_str().unwrap().to_string();
    let mut pid = 0;
    wait_until(Duration::from_secs(20), || {
        pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    })
    .unwrap_or_else(|| panic!("the build never started\n{}", server.log()));
    assert!(alive(pid));

    // Updated: no new execution.
    std::fs::write(root.join("pipeline.json"), pipeline("second")).unwrap();
    let plan = apply(&server, root, &[]);
    assert!(plan.contains("~ pipeline slow: update"), "{plan}");
    let e = executions(&server, "slow");
    assert_eq!(e.len(), 1, "an update must not start an execution: {e:?}");
    assert_eq!(e[0]["id"], id.as_str());

    // Dropped from the stack file: stopped, its build killed, deleted.
    std::fs::write(root.join("stack.yaml"), &base).unwrap();
    let plan = apply(&server, root, &["--dry-run"]);
    assert!(plan.contains("- pipeline slow: delete"), "{plan}");
    assert_eq!(
        server.json(&["pipelines", "ls"])["pipelines"][0]["name"],
        "slow"
    );
    let plan = apply(&server, root, &[]);
    assert!(plan.contains("- pipeline slow: delete"), "{plan}");
    let listed = server.json(&["pipelines", "ls"]);
    assert!(
        listed["pipelines"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    wait_until(Duration::from_secs(10), || !alive(pid)).unwrap_or_else(|| {
        panic!(
            "the build of a deleted pipeline still runs\n{}",
            server.log()
        )
    });
    let mut builds = serde_json::Value::Null;
    wait_until(Duration::from_secs(10), || {
        builds = server.json(&["builds", "ls"]);
        builds["builds"][0]["status"] == "STOPPED"
    })
    .unwrap_or_else(|| panic!("the build was not stopped: {builds}"));
    let out = server.cli(&["pipelines", "start", "slow"]);
    assert!(!out.status.success(), "a deleted pipeline cannot start");
}

#[test]
fn a_new_tag_matching_a_trigger_is_seen_by_polling() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    init_repo(&repo, &[("README.md", "hello\n")]);
    git(&repo, &["tag", "v0"]);
    let marker = root.join("tags");
    std::fs::write(
        root.join("pipeline.json"),
        format!(
            r##"{{"pipeline": {{"name": "tagged", "pipelineType": "V2",
 "triggers": [{{"providerType": "CodeStarSourceConnection", "gitConfiguration": {{"sourceActionName": "Src",
   "push": [{{"tags": {{"includes": ["v*"]}}}}]}}}}],
 "stages": [
 {{"name": "Source", "actions": [{{"name": "Src", "namespace": "S",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"}},
   "configuration": {{"FullRepositoryId": "me/app", "BranchName": "main", "ConnectionArn": "arn:aws:codeconnections:x"}},
   "outputArtifacts": [{{"name": "Out"}}]}}]}},
 {{"name": "Notify", "actions": [{{"name": "Touch",
   "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
   "configuration": {{"FunctionName": "echo $USER_PARAMETERS >> {marker}", "UserParameters": "#{{S.CommitId}}"}}}}]}}]}}}}"##,
            marker = marker.display()
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        format!(
            "services: {{}}\nrepositories:\n  me/app: {{url: {}, pollIntervalSeconds: 1}}\npipelines:\n  tagged: {{file: pipeline.json}}\n",
            repo.display()
        ),
    )
    .unwrap();
    apply(&server, root, &[]);
    // The tags there at the first poll (v0) are the baseline.
    wait_until(Duration::from_secs(20), || {
        server.log().contains("tag recorded (baseline)")
    })
    .unwrap_or_else(|| panic!("the tags were never polled\n{}", server.log()));
    let head = commit(&repo, &[("README.md", "two\n")], "two");
    git(&repo, &["tag", "x1"]);
    git(&repo, &["tag", "v1"]);
    let mut e = Vec::new();
    wait_until(Duration::from_secs(30), || {
        e = executions(&server, "tagged");
        e.len() == 2 && e.iter().all(|x| x["status"] == "Succeeded")
    })
    .unwrap_or_else(|| panic!("no execution for tag v1: {e:?}\n{}", server.log()));
    let trigger = e[0]["trigger"].as_str().unwrap();
    assert!(
        trigger.starts_with("poll:") && trigger.contains("tag v1"),
        "{trigger}"
    );
    assert!(
        e[1]["trigger"]
            .as_str()
            .unwrap()
            .starts_with("CreatePipeline"),
        "{e:?}"
    );
    // v0 (the baseline) started nothing, nor x1 (no match): two executions.
    let built = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(built.lines().last(), Some(head.as_str()), "{built}");
}
