//! A pipeline deploys to hosts: a real `cutover server`, one real `cutover
//! agent`, and a pipeline whose git source feeds a `CodeDeploy` deploy
//! action (CodePipeline's action for the Server platform). The
//! repository is the revision itself (`appspec.yml` at its root, hooks
//! running the sample app).
//!
//! - A pipeline naming an application no stack declares is refused at
//!   apply, located in the pipeline file.
//! - Created, the pipeline deploys the head (v1) to the host: the
//!   execution succeeds and the host serves v1.
//! - A commit whose ValidateService fails (v2): the execution fails with
//!   the deployment's reason.
//! - A commit whose ValidateService waits (v3), its execution stopped with
//!   abandon: the host deployment is stopped too, so the group takes a new
//!   deployment long before the script would time out.

mod common;
mod hosts_common;

use common::{Server, commit, git, wait_until};
use hosts_common::{Agent, ok, revision};
use std::time::Duration;

fn pipeline(application: &str) -> String {
    format!(
        r#"{{"pipeline": {{"name": "hosts", "pipelineType": "V2", "stages": [
 {{"name": "Source", "actions": [{{"name": "Source",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
   "configuration": {{"RepositoryName": "app", "BranchName": "main"}}, "outputArtifacts": [{{"name": "Src"}}]}}]}},
 {{"name": "Deploy", "actions": [{{"name": "Hosts",
   "actionTypeId": {{"category": "Deploy", "owner": "AWS", "provider": "CodeDeploy", "version": "1"}},
   "configuration": {{"ApplicationName": "{application}", "DeploymentGroupName": "prod"}},
   "inputArtifacts": [{{"name": "Src"}}]}}]}}]}}}}"#
    )
}

/// The newest execution of `hosts` once it has ended.
fn ended(server: &Server, other_than: Option<&str>) -> serde_json::Value {
    let mut last = None;
    wait_until(Duration::from_secs(30), || {
        let v = server.json(&["pipelines", "executions", "hosts"]);
        last = v["executions"].as_array().and_then(|e| e.first().cloned());
        last.as_ref().is_some_and(|e| {
            e["id"].as_str() != other_than
                && !matches!(e["status"].as_str(), Some("InProgress" | "Stopping"))
        })
    })
    .unwrap_or_else(|| panic!("no execution ended: {last:?}\n{}", server.log()));
    last.unwrap()
}

fn deploy_message(execution: &serde_json::Value) -> String {
    execution["stages"][1]["actions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_pipeline_deploys_its_source_to_a_host_and_fails_with_the_deployments_reason() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let agent = Agent::start(&server, "h1", "a");
    wait_until(Duration::from_secs(20), || {
        let v = server.json(&["agents", "ls"]);
        v["agents"].as_array().is_some_and(|a| a.len() == 1)
    })
    .expect("the agent registered");

    let repo = revision(root, "v1", None);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.email", "dev@example.com"]);
    git(&repo, &["config", "user.name", "Dev"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    let stack = format!(
        "applications:
  shop:
    computePlatform: Server
    deploymentGroups:
      prod:
        onPremisesTagFilters: [{{Key: env, Value: prod, Type: KEY_AND_VALUE}}]
        deploymentConfig: CodeDeployDefault.AllAtOnce
repositories:
  app: {{url: {}, pollIntervalSeconds: 1}}
pipelines:
  hosts: {{file: ./pipeline.json}}
",
        repo.display()
    );
    std::fs::write(root.join("stack.yaml"), &stack).unwrap();

    // An application no stack declares: refused, located.
    std::fs::write(root.join("pipeline.json"), pipeline("blog")).unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(root));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("pipeline.json:7:")
            && stderr.contains("application \"blog\" is not declared under applications:"),
        "{stderr}"
    );

    // Created, the pipeline deploys the head to the host.
    std::fs::write(root.join("pipeline.json"), pipeline("shop")).unwrap();
    ok(
        &server.cli_in(&["apply", "-f", "stack.yaml"], Some(root)),
        "apply",
    );
    let first = ended(&server, None);
    assert_eq!(first["status"], "Succeeded", "{first}\n{}", server.log());
    let message = deploy_message(&first);
    assert!(
        message.starts_with("host deployment d-") && message.ends_with(" succeeded"),
        "{message}"
    );
    assert_eq!(agent.installed(), "v1");
    let (status, body) = common::http_get(&format!("127.0.0.1:{}", agent.port), "/").unwrap();
    assert_eq!((status, body.trim()), (200, "v1"));
    let id = message.split(' ').nth(2).unwrap();
    let d = server.json(&["deployments", "get", id]);
    assert!(
        d["source"]
            .as_str()
            .unwrap()
            .starts_with("artifact Src of pipeline/hosts/"),
        "{d}"
    );

    // v2 fails its validation: so does the execution, saying why.
    commit(
        &repo,
        &[
            ("VERSION", "v2\n"),
            (
                "hooks/validate.sh",
                "#!/bin/sh\necho \"v2 is broken\"\nexit 1\n",
            ),
        ],
        "v2",
    );
    let second = ended(&server, first["id"].as_str());
    assert_eq!(second["status"], "Failed", "{second}");
    let message = deploy_message(&second);
    assert!(
        message.contains("failed: TooFewSucceeded; host h1: ValidateService failed"),
        "{message}"
    );

    // v3 waits in ValidateService (for a file the test writes last): stop
    // the execution and abandon its action.
    let run = agent.root.path().join("run");
    commit(
        &repo,
        &[
            ("VERSION", "v3\n"),
            (
                "hooks/validate.sh",
                // At most 20 s, so that a failed test leaves no script behind.
                "#!/bin/sh\ntouch \"$RUN_DIR/validating\"\ni=0\nwhile [ ! -e \"$RUN_DIR/release\" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n",
            ),
        ],
        "v3",
    );
    wait_until(Duration::from_secs(20), || run.join("validating").exists())
        .expect("v3's ValidateService runs");
    let v = server.json(&["pipelines", "executions", "hosts"]);
    let third = v["executions"][0]["id"].as_str().unwrap().to_string();
    assert_ne!(third, second["id"].as_str().unwrap());
    ok(
        &server.cli(&[
            "pipelines",
            "stop",
            "hosts",
            "--execution",
            &third,
            "--abandon",
        ]),
        "stop",
    );
    // The group is free once the host deployment stopped (ValidateService
    // would time out after 15 s): a new deployment is accepted.
    let v4 = revision(root, "v4", None);
    let mut last = None;
    wait_until(Duration::from_secs(10), || {
        let out = hosts_common::deploy_to(&server, "prod", &v4, false);
        let accepted = out.status.success();
        last = Some(out);
        accepted
    })
    .unwrap_or_else(|| {
        let out = last.unwrap();
        panic!(
            "the group never took a new deployment: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let stopped = ended(&server, second["id"].as_str());
    assert_eq!(stopped["id"], third.as_str());
    assert_eq!(stopped["status"], "Stopped", "{stopped}");
    std::fs::write(run.join("release"), "").unwrap();
    wait_until(Duration::from_secs(20), || agent.installed() == "v4")
        .expect("v4 is installed after the stopped deployment");
}
