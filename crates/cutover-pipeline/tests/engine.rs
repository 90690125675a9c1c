//! The execution rules of the pure engine, one test per rule, driven by a
//! small harness that answers actions like a driver would.

use std::collections::BTreeMap;

use cutover_pipeline::engine::{
    ActionRequest, ActionStatus, ArtifactRef, Effect, EngineError, ExecutionKind, ExecutionStatus,
    Input, PipelineState, Position, RetryMode, StageStatus,
};
use cutover_pipeline::parse::parse_pipeline;

const MIN: u64 = 60_000;
/// 2024-06-03 10:00 UTC, a Monday.
const T0: u64 = 1_717_408_800_000;

/// Source -> Build (Build and Test at runOrder 1, Package at 2) -> Deploy.
fn pipeline_json(mode: &str, deploy_extra: &str) -> String {
    format!(
        r##"{{"name": "app", "executionMode": "{mode}",
 "variables": [{{"name": "Env", "defaultValue": "staging"}}],
 "stages": [
  {{"name": "Source", "actions": [{{"name": "Source", "namespace": "SourceVariables",
    "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
    "configuration": {{"RepositoryName": "app", "BranchName": "main"}}, "outputArtifacts": [{{"name": "SourceArtifact"}}]}}]}},
  {{"name": "Build", "actions": [
    {{"name": "Build", "namespace": "BuildVariables",
     "actionTypeId": {{"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}},
     "configuration": {{"ProjectName": "app-build", "EnvironmentVariables": "[{{\"name\":\"COMMIT\",\"value\":\"#{{SourceVariables.CommitId}}\"}}]"}},
     "inputArtifacts": [{{"name": "SourceArtifact"}}], "outputArtifacts": [{{"name": "BuildArtifact"}}]}},
    {{"name": "Test", "actionTypeId": {{"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"}},
     "configuration": {{"ProjectName": "app-test"}}, "inputArtifacts": [{{"name": "SourceArtifact"}}]}},
    {{"name": "Package", "runOrder": 2,
     "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
     "configuration": {{"FunctionName": "package", "UserParameters": "#{{BuildVariables.Tag}}/#{{variables.Env}}/#{{codepipeline.PipelineExecutionId}}"}},
     "inputArtifacts": [{{"name": "BuildArtifact"}}]}}]}},
  {{"name": "Deploy", {deploy_extra} "actions": [{{"name": "Deploy",
    "actionTypeId": {{"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"}},
    "configuration": {{"ClusterName": "default", "ServiceName": "web"}},
    "inputArtifacts": [{{"name": "BuildArtifact"}}]}}]}}]}}"##
    )
}

struct Harness {
    state: PipelineState,
    now: u64,
    /// Serialize and deserialize the state around every call.
    roundtrip: bool,
}

impl Harness {
    fn new(mode: &str, deploy_extra: &str) -> Harness {
        Self::from_json(&pipeline_json(mode, deploy_extra))
    }

    fn from_json(json: &str) -> Harness {
        let parsed = parse_pipeline("pipeline.json", json).unwrap();
        assert_eq!(parsed.warnings, vec![]);
        Harness {
            state: PipelineState::new(parsed.value),
            now: T0,
            roundtrip: false,
        }
    }

    fn send(&mut self, input: Input) -> Vec<Effect> {
        self.try_send(input).unwrap()
    }

    fn try_send(&mut self, input: Input) -> Result<Vec<Effect>, EngineError> {
        if self.roundtrip {
            let text = serde_json::to_string(&self.state).unwrap();
            self.state = serde_json::from_str(&text).unwrap();
        }
        self.state.handle(self.now, input)
    }

    fn start(&mut self, id: &str) -> Vec<Effect> {
        self.start_with(id, BTreeMap::new())
    }

    fn start_with(&mut self, id: &str, variables: BTreeMap<String, String>) -> Vec<Effect> {
        self.send(Input::StartExecution {
            id: id.into(),
            trigger: "test".into(),
            variables,
            source_revisions: BTreeMap::new(),
        })
    }

    fn request(&self, exec: &str, stage: &str, action: &str) -> ActionRequest {
        self.state.executions[exec].stages[stage].actions[action]
            .request
            .clone()
            .unwrap()
    }

    /// Succeeds an action with outputs derived from its names.
    fn ok(&mut self, exec: &str, stage: &str, action: &str) -> Vec<Effect> {
        let req = self.request(exec, stage, action);
        let output_artifacts = req
            .output_artifact_names
            .iter()
            .map(|n| (n.clone(), ArtifactRef(format!("sha256:{exec}-{n}"))))
            .collect();
        let output_variables = match req.provider.as_str() {
            "CodeCommit" => BTreeMap::from([("CommitId".to_owned(), format!("c-{exec}"))]),
            "CodeBuild" => BTreeMap::from([("Tag".to_owned(), format!("t-{exec}"))]),
            _ => BTreeMap::new(),
        };
        self.send(Input::ActionSucceeded {
            execution: exec.into(),
            stage: stage.into(),
            action: action.into(),
            attempt: req.attempt,
            output_variables,
            output_artifacts,
            summary: None,
        })
    }

    fn fail(&mut self, exec: &str, stage: &str, action: &str) -> Vec<Effect> {
        let attempt = self.request(exec, stage, action).attempt;
        self.send(Input::ActionFailed {
            execution: exec.into(),
            stage: stage.into(),
            action: action.into(),
            attempt,
            message: "exit status 1".into(),
        })
    }

    /// Runs an execution through the Source stage and the whole Build stage.
    fn through_build(&mut self, exec: &str) {
        self.ok(exec, "Source", "Source");
        self.ok(exec, "Build", "Build");
        self.ok(exec, "Build", "Test");
        self.ok(exec, "Build", "Package");
    }

    fn status(&self, exec: &str) -> ExecutionStatus {
        self.state.executions[exec].status
    }

    fn position(&self, exec: &str) -> Position {
        self.state.executions[exec].position.clone()
    }
}

/// `(execution, stage, action, attempt)` of every RunAction.
fn runs(fx: &[Effect]) -> Vec<(String, String, String, u32)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::RunAction(r) => Some((
                r.execution.clone(),
                r.stage.clone(),
                r.action.clone(),
                r.attempt,
            )),
            _ => None,
        })
        .collect()
}

fn run(exec: &str, stage: &str, action: &str, attempt: u32) -> (String, String, String, u32) {
    (exec.into(), stage.into(), action.into(), attempt)
}

fn finished(fx: &[Effect]) -> Vec<(String, ExecutionStatus)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::ExecutionFinished {
                execution, status, ..
            } => Some((execution.clone(), *status)),
            _ => None,
        })
        .collect()
}

fn waiting(stage: usize) -> Position {
    Position::Waiting {
        stage,
        wakeup: None,
    }
}

#[test]
fn run_order_groups_run_in_parallel_lower_first() {
    let mut h = Harness::new("SUPERSEDED", "");
    assert_eq!(runs(&h.start("e1")), vec![run("e1", "Source", "Source", 1)]);
    let fx = h.ok("e1", "Source", "Source");
    assert_eq!(
        runs(&fx),
        vec![
            run("e1", "Build", "Build", 1),
            run("e1", "Build", "Test", 1)
        ]
    );
    // Package (runOrder 2) waits for both.
    assert_eq!(runs(&h.ok("e1", "Build", "Build")), vec![]);
    assert_eq!(
        runs(&h.ok("e1", "Build", "Test")),
        vec![run("e1", "Build", "Package", 1)]
    );
    assert_eq!(
        runs(&h.ok("e1", "Build", "Package")),
        vec![run("e1", "Deploy", "Deploy", 1)]
    );
    let fx = h.ok("e1", "Deploy", "Deploy");
    assert_eq!(
        finished(&fx),
        vec![("e1".into(), ExecutionStatus::Succeeded)]
    );
    assert_eq!(h.position("e1"), Position::Done);
}

#[test]
fn artifacts_pass_by_name() {
    let mut h = Harness::new("SUPERSEDED", "");
    h.start("e1");
    h.ok("e1", "Source", "Source");
    let build = h.request("e1", "Build", "Build");
    assert_eq!(
        build.input_artifacts,
        vec![(
            "SourceArtifact".into(),
            ArtifactRef("sha256:e1-SourceArtifact".into())
        )]
    );
    assert_eq!(
        build.output_artifact_names,
        vec!["BuildArtifact".to_owned()]
    );
    h.ok("e1", "Build", "Build");
    h.ok("e1", "Build", "Test");
    h.ok("e1", "Build", "Package");
    assert_eq!(
        h.request("e1", "Deploy", "Deploy").input_artifacts,
        vec![(
            "BuildArtifact".into(),
            ArtifactRef("sha256:e1-BuildArtifact".into())
        )]
    );
}

#[test]
fn missing_output_artifact_fails_the_action() {
    let mut h = Harness::new("SUPERSEDED", "");
    h.start("e1");
    let fx = h.send(Input::ActionSucceeded {
        execution: "e1".into(),
        stage: "Source".into(),
        action: "Source".into(),
        attempt: 1,
        output_variables: BTreeMap::new(),
        output_artifacts: BTreeMap::new(),
        summary: None,
    });
    assert_eq!(finished(&fx), vec![("e1".into(), ExecutionStatus::Failed)]);
    assert_eq!(
        h.state.executions["e1"].message.as_deref(),
        Some(
            "stage \"Source\" failed: action \"Source\" failed: the action did not produce its output artifact \"SourceArtifact\""
        )
    );
}

#[test]
fn variables_resolve_with_overrides_and_execution_id() {
    let mut h = Harness::new("PARALLEL", "");
    h.start("e1");
    h.start_with(
        "e2",
        BTreeMap::from([("Env".to_owned(), "prod".to_owned())]),
    );
    for e in ["e1", "e2"] {
        h.ok(e, "Source", "Source");
        let build = h.request(e, "Build", "Build");
        assert_eq!(
            build.configuration["EnvironmentVariables"],
            format!("[{{\"name\":\"COMMIT\",\"value\":\"c-{e}\"}}]")
        );
        h.ok(e, "Build", "Build");
        h.ok(e, "Build", "Test");
    }
    assert_eq!(
        h.request("e1", "Build", "Package").configuration["UserParameters"],
        "t-e1/staging/e1"
    );
    assert_eq!(
        h.request("e2", "Build", "Package").configuration["UserParameters"],
        "t-e2/prod/e2"
    );
    // An override of an undeclared variable is refused.
    let err = h
        .try_send(Input::StartExecution {
            id: "e3".into(),
            trigger: "test".into(),
            variables: BTreeMap::from([("Nope".to_owned(), "x".to_owned())]),
            source_revisions: BTreeMap::new(),
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "variable \"Nope\" is not declared by the pipeline"
    );
}

#[test]
fn unresolvable_variable_fails_the_action_with_a_clear_message() {
    let mut h = Harness::new("SUPERSEDED", "");
    h.start("e1");
    h.ok("e1", "Source", "Source");
    // The build exports no Tag.
    let attempt = h.request("e1", "Build", "Build").attempt;
    h.send(Input::ActionSucceeded {
        execution: "e1".into(),
        stage: "Build".into(),
        action: "Build".into(),
        attempt,
        output_variables: BTreeMap::from([("Other".to_owned(), "x".to_owned())]),
        output_artifacts: BTreeMap::from([("BuildArtifact".to_owned(), ArtifactRef("d".into()))]),
        summary: None,
    });
    let fx = h.ok("e1", "Build", "Test");
    assert_eq!(runs(&fx), vec![]);
    assert_eq!(finished(&fx), vec![("e1".into(), ExecutionStatus::Failed)]);
    let package = &h.state.executions["e1"].stages["Build"].actions["Package"];
    assert_eq!(package.status, ActionStatus::Failed);
    assert_eq!(
        package.message.as_deref(),
        Some(
            "configuration UserParameters: variable #{BuildVariables.Tag} is not set (namespace \"BuildVariables\" has Other)"
        )
    );
}

#[test]
fn superseded_newer_execution_overtakes_a_waiting_one() {
    let mut h = Harness::new("SUPERSEDED", "");
    h.start("a");
    h.ok("a", "Source", "Source");
    // a holds Build; b waits before it.
    h.start("b");
    h.ok("b", "Source", "Source");
    assert_eq!(h.position("b"), waiting(1));
    // c arrives at the same place: b is superseded.
    h.start("c");
    let fx = h.ok("c", "Source", "Source");
    assert_eq!(
        finished(&fx),
        vec![("b".into(), ExecutionStatus::Superseded)]
    );
    assert_eq!(
        h.state.executions["b"].message.as_deref(),
        Some("superseded by execution \"c\"")
    );
    // a leaves Build: c enters it while a deploys.
    h.ok("a", "Build", "Build");
    h.ok("a", "Build", "Test");
    let fx = h.ok("a", "Build", "Package");
    assert_eq!(
        runs(&fx),
        vec![
            run("a", "Deploy", "Deploy", 1),
            run("c", "Build", "Build", 1),
            run("c", "Build", "Test", 1)
        ]
    );
}

#[test]
fn queued_executions_run_in_order() {
    let mut h = Harness::new("QUEUED", "");
    for e in ["a", "b", "c"] {
        h.start(e);
    }
    // One at a time in Source too.
    assert_eq!(h.position("b"), waiting(0));
    h.ok("a", "Source", "Source");
    h.ok("b", "Source", "Source");
    h.ok("c", "Source", "Source");
    assert_eq!(h.position("b"), waiting(1));
    assert_eq!(h.position("c"), waiting(1));
    h.ok("a", "Build", "Build");
    h.ok("a", "Build", "Test");
    let fx = h.ok("a", "Build", "Package");
    // b (not c) enters Build; nobody is superseded.
    assert_eq!(
        runs(&fx),
        vec![
            run("a", "Deploy", "Deploy", 1),
            run("b", "Build", "Build", 1),
            run("b", "Build", "Test", 1)
        ]
    );
    assert_eq!(h.status("c"), ExecutionStatus::InProgress);
    h.ok("b", "Build", "Build");
    h.ok("b", "Build", "Test");
    let fx = h.ok("b", "Build", "Package");
    // a still deploys: b waits; c enters Build.
    assert_eq!(
        runs(&fx),
        vec![run("c", "Build", "Build", 1), run("c", "Build", "Test", 1)]
    );
    assert_eq!(h.position("b"), waiting(2));
}

#[test]
fn parallel_executions_are_independent() {
    let mut h = Harness::new("PARALLEL", "");
    h.start("a");
    h.start("b");
    h.ok("a", "Source", "Source");
    let fx = h.ok("b", "Source", "Source");
    assert_eq!(
        runs(&fx),
        vec![run("b", "Build", "Build", 1), run("b", "Build", "Test", 1)]
    );
    assert_eq!(h.position("a"), Position::InStage { stage: 1 });
    assert_eq!(h.position("b"), Position::InStage { stage: 1 });
}

#[test]
fn stop_and_wait_lets_actions_finish() {
    let mut h = Harness::new("SUPERSEDED", "");
    h.start("e1");
    h.ok("e1", "Source", "Source");
    let fx = h.send(Input::Stop {
        execution: "e1".into(),
        abandon: false,
        reason: "bad commit".into(),
    });
    assert_eq!(finished(&fx), vec![]);
    assert_eq!(h.status("e1"), ExecutionStatus::Stopping);
    // Build finishes; Test still runs; nothing new starts.
    assert_eq!(runs(&h.ok("e1", "Build", "Build")), vec![]);
    let fx = h.ok("e1", "Build", "Test");
    assert_eq!(runs(&fx), vec![]);
    assert_eq!(finished(&fx), vec![("e1".into(), ExecutionStatus::Stopped)]);
    assert_eq!(
        h.state.executions["e1"].stages["Build"].status,
        StageStatus::Stopped
    );
}

#[test]
fn stop_and_abandon_cancels_actions_and_ignores_their_results() {
    let mut h = Harness::new("SUPERSEDED", "");
    h.start("e1");
    h.ok("e1", "Source", "Source");
    let fx = h.send(Input::Stop {
        execution: "e1".into(),
        abandon: true,
        reason: "now".into(),
    });
    let cancels: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::CancelAction { action, .. } => Some(action.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cancels, vec!["Build".to_owned(), "Test".to_owned()]);
    assert_eq!(finished(&fx), vec![("e1".into(), ExecutionStatus::Stopped)]);
    let build = &h.state.executions["e1"].stages["Build"].actions["Build"];
    assert_eq!(build.status, ActionStatus::Abandoned);
    // A late result changes nothing.
    let before = h.state.clone();
    let fx = h.send(Input::ActionSucceeded {
        execution: "e1".into(),
        stage: "Build".into(),
        action: "Build".into(),
        attempt: 1,
        output_variables: BTreeMap::new(),
        output_artifacts: BTreeMap::new(),
        summary: None,
    });
    assert!(matches!(fx.as_slice(), [Effect::Event { .. }]));
    assert_eq!(h.state, before);
    // Stopping a waiting execution ends it at once.
    h.start("e2");
    h.ok("e2", "Source", "Source");
    h.send(Input::SetTransition {
        stage: "Deploy".into(),
        enabled: false,
        reason: "x".into(),
    });
    h.ok("e2", "Build", "Build");
    h.ok("e2", "Build", "Test");
    h.ok("e2", "Build", "Package");
    let fx = h.send(Input::Stop {
        execution: "e2".into(),
        abandon: false,
        reason: "x".into(),
    });
    assert_eq!(finished(&fx), vec![("e2".into(), ExecutionStatus::Stopped)]);
}

#[test]
fn retry_failed_actions_reruns_only_those() {
    let mut h = Harness::new("SUPERSEDED", "");
    h.start("e1");
    h.ok("e1", "Source", "Source");
    h.ok("e1", "Build", "Build");
    let fx = h.fail("e1", "Build", "Test");
    assert_eq!(finished(&fx), vec![("e1".into(), ExecutionStatus::Failed)]);
    let fx = h.send(Input::RetryStage {
        execution: "e1".into(),
        stage: "Build".into(),
        mode: RetryMode::FailedActions,
    });
    assert_eq!(runs(&fx), vec![run("e1", "Build", "Test", 2)]);
    assert_eq!(
        runs(&h.ok("e1", "Build", "Test")),
        vec![run("e1", "Build", "Package", 1)]
    );
    // Retrying a running execution is refused.
    let err = h
        .try_send(Input::RetryStage {
            execution: "e1".into(),
            stage: "Build".into(),
            mode: RetryMode::AllActions,
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot retry stage \"Build\" of execution \"e1\": the execution is InProgress"
    );
}

#[test]
fn retry_all_actions_reruns_the_stage() {
    let mut h = Harness::new("SUPERSEDED", "");
    h.start("e1");
    h.ok("e1", "Source", "Source");
    h.ok("e1", "Build", "Build");
    h.fail("e1", "Build", "Test");
    let fx = h.send(Input::RetryStage {
        execution: "e1".into(),
        stage: "Build".into(),
        mode: RetryMode::AllActions,
    });
    assert_eq!(
        runs(&fx),
        vec![
            run("e1", "Build", "Build", 2),
            run("e1", "Build", "Test", 2)
        ]
    );
}

#[test]
fn disabled_transition_holds_executions_and_latest_wins() {
    let mut h = Harness::new("SUPERSEDED", "");
    h.send(Input::SetTransition {
        stage: "Build".into(),
        enabled: false,
        reason: "freeze".into(),
    });
    h.start("a");
    assert_eq!(runs(&h.ok("a", "Source", "Source")), vec![]);
    assert_eq!(h.position("a"), waiting(1));
    h.start("b");
    let fx = h.ok("b", "Source", "Source");
    assert_eq!(
        finished(&fx),
        vec![("a".into(), ExecutionStatus::Superseded)]
    );
    let fx = h.send(Input::SetTransition {
        stage: "Build".into(),
        enabled: true,
        reason: "thaw".into(),
    });
    assert_eq!(
        runs(&fx),
        vec![run("b", "Build", "Build", 1), run("b", "Build", "Test", 1)]
    );
    assert_eq!(
        h.try_send(Input::SetTransition {
            stage: "Nope".into(),
            enabled: true,
            reason: String::new()
        })
        .unwrap_err()
        .to_string(),
        "stage \"Nope\" not found"
    );
}

#[test]
fn failed_stage_with_rollback_redeploys_last_success() {
    let mut h = Harness::new("SUPERSEDED", r#""onFailure": {"result": "ROLLBACK"},"#);
    h.start("good");
    h.through_build("good");
    h.ok("good", "Deploy", "Deploy");
    h.start("bad");
    h.through_build("bad");
    assert_eq!(
        h.request("bad", "Deploy", "Deploy").input_artifacts[0].1,
        ArtifactRef("sha256:bad-BuildArtifact".into())
    );
    let fx = h.fail("bad", "Deploy", "Deploy");
    assert!(fx.contains(&Effect::ExecutionStarted {
        execution: "bad-rollback".into(),
        kind: ExecutionKind::Rollback {
            failed: "bad".into(),
            target: "good".into()
        },
    }));
    assert_eq!(runs(&fx), vec![run("bad-rollback", "Deploy", "Deploy", 1)]);
    let rollback = h.request("bad-rollback", "Deploy", "Deploy");
    assert_eq!(
        rollback.input_artifacts[0].1,
        ArtifactRef("sha256:good-BuildArtifact".into())
    );
    assert_eq!(
        h.state.executions["bad-rollback"].source_revisions["Source"],
        "c-good"
    );
    let fx = h.ok("bad-rollback", "Deploy", "Deploy");
    assert_eq!(
        finished(&fx),
        vec![("bad-rollback".into(), ExecutionStatus::Succeeded)]
    );
    // The rollback does not become the stage's last success.
    assert_eq!(h.state.last_success["Deploy"].execution, "good");
}

/// The test pipeline with `onFailure` on the Build stage.
fn build_on_failure(on_failure: &str) -> Harness {
    let json = pipeline_json("SUPERSEDED", "").replacen(
        r#"{"name": "Build", "actions""#,
        &format!(r#"{{"name": "Build", "onFailure": {on_failure}, "actions""#),
        1,
    );
    Harness::from_json(&json)
}

fn events(fx: &[Effect]) -> Vec<&str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Event { message, .. } => Some(message.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn stage_retry_on_failure_reruns_the_failed_actions_once_automatically() {
    let mut h = build_on_failure(
        r#"{"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}}"#,
    );
    h.roundtrip = true;
    h.start("e1");
    h.ok("e1", "Source", "Source");
    h.ok("e1", "Build", "Build");
    let fx = h.fail("e1", "Build", "Test");
    assert_eq!(finished(&fx), vec![]);
    assert_eq!(runs(&fx), vec![run("e1", "Build", "Test", 2)]);
    assert_eq!(
        events(&fx),
        [
            "action \"Test\" of stage \"Build\" failed: exit status 1",
            "stage \"Build\" failed, retried automatically (FailedActions), attempt 1 of 1"
        ]
    );
    assert_eq!(h.status("e1"), ExecutionStatus::InProgress);
    assert_eq!(
        h.state.executions["e1"].stages["Build"].status,
        StageStatus::InProgress
    );
    assert_eq!(
        runs(&h.ok("e1", "Build", "Test")),
        vec![run("e1", "Build", "Package", 1)]
    );
    h.ok("e1", "Build", "Package");
    h.ok("e1", "Deploy", "Deploy");
    assert_eq!(h.status("e1"), ExecutionStatus::Succeeded);
}

#[test]
fn stage_retry_on_failure_is_made_once_then_the_stage_fails() {
    let mut h = build_on_failure(
        r#"{"result": "RETRY", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}}"#,
    );
    h.start("e1");
    h.ok("e1", "Source", "Source");
    h.ok("e1", "Build", "Build");
    let fx = h.fail("e1", "Build", "Test");
    assert_eq!(
        runs(&fx),
        vec![
            run("e1", "Build", "Build", 2),
            run("e1", "Build", "Test", 2)
        ]
    );
    h.ok("e1", "Build", "Build");
    let fx = h.fail("e1", "Build", "Test");
    assert_eq!(finished(&fx), vec![("e1".into(), ExecutionStatus::Failed)]);
    assert_eq!(runs(&fx), vec![]);
    assert_eq!(
        h.state.executions["e1"].stages["Build"].status,
        StageStatus::Failed
    );
    // A manual retry is still possible, and brings no second automatic one.
    let fx = h.send(Input::RetryStage {
        execution: "e1".into(),
        stage: "Build".into(),
        mode: RetryMode::FailedActions,
    });
    assert_eq!(runs(&fx), vec![run("e1", "Build", "Test", 3)]);
    let fx = h.fail("e1", "Build", "Test");
    assert_eq!(finished(&fx), vec![("e1".into(), ExecutionStatus::Failed)]);
    // A later execution gets its own automatic retry.
    h.start("e2");
    h.ok("e2", "Source", "Source");
    h.ok("e2", "Build", "Build");
    let fx = h.fail("e2", "Build", "Test");
    assert_eq!(finished(&fx), vec![]);
    assert_eq!(
        runs(&fx),
        vec![
            run("e2", "Build", "Build", 2),
            run("e2", "Build", "Test", 2)
        ]
    );
}

#[test]
fn stage_retry_without_retry_configuration_retries_failed_actions() {
    let mut h = build_on_failure(r#"{"result": "RETRY"}"#);
    h.start("e1");
    h.ok("e1", "Source", "Source");
    h.ok("e1", "Build", "Build");
    let fx = h.fail("e1", "Build", "Test");
    assert_eq!(runs(&fx), vec![run("e1", "Build", "Test", 2)]);
}

fn window_json(result: &str) -> String {
    pipeline_json(
        "SUPERSEDED",
        &format!(
            r#""beforeEntry": {{"conditions": [{{{result} "rules": [{{"name": "BusinessHours",
          "ruleTypeId": {{"category": "Rule", "owner": "AWS", "provider": "DeploymentWindow", "version": "1"}},
          "configuration": {{"Cron": "* * 9-16 ? * MON-FRI *", "TimeZone": "UTC+02:00"}}}}]}}]}},"#
        ),
    )
}

#[test]
fn deployment_window_holds_the_stage_until_it_opens() {
    let mut h = Harness::from_json(&window_json(""));
    // Monday 16:30 UTC is 18:30 at +02:00: closed until Tuesday 07:00 UTC.
    h.now = T0 + 6 * 60 * MIN + 30 * MIN;
    h.start("e1");
    h.through_build("e1");
    let opens = T0 - 3 * 60 * MIN + 24 * 60 * MIN;
    assert_eq!(
        h.position("e1"),
        Position::Waiting {
            stage: 2,
            wakeup: Some(opens)
        }
    );
    assert_eq!(h.state.next_wakeup(), Some(opens));
    h.now = opens - 1;
    assert_eq!(runs(&h.send(Input::Tick)), vec![]);
    h.now = opens;
    assert_eq!(
        runs(&h.send(Input::Tick)),
        vec![run("e1", "Deploy", "Deploy", 1)]
    );
}

#[test]
fn deployment_window_with_fail_or_skip_result() {
    let late = T0 + 8 * 60 * MIN;
    let mut h = Harness::from_json(&window_json(r#""result": "FAIL","#));
    h.now = late;
    h.start("e1");
    h.through_build("e1");
    assert_eq!(h.status("e1"), ExecutionStatus::Failed);
    assert_eq!(
        h.state.executions["e1"].message.as_deref(),
        Some("rule \"BusinessHours\": outside the deployment window \"* * 9-16 ? * MON-FRI *\"")
    );
    let mut h = Harness::from_json(&window_json(r#""result": "SKIP","#));
    h.now = late;
    h.start("e1");
    h.through_build("e1");
    assert_eq!(h.status("e1"), ExecutionStatus::Succeeded);
    assert_eq!(
        h.state.executions["e1"].stages["Deploy"].status,
        StageStatus::Skipped
    );
}

fn approval_harness() -> Harness {
    let json = pipeline_json("SUPERSEDED", "").replacen(
        r#"{"name": "Deploy","#,
        r#"{"name": "Approve", "actions": [{"name": "Prod", "timeoutInMinutes": 60,
          "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
          "configuration": {"CustomData": "Ship #{SourceVariables.CommitId}?"}}]},
         {"name": "Deploy","#,
        1,
    );
    Harness::from_json(&json)
}

#[test]
fn manual_approval_approve_reject_and_timeout() {
    let mut h = approval_harness();
    h.start("e1");
    h.through_build("e1");
    let req = h.request("e1", "Approve", "Prod");
    assert_eq!(req.configuration["CustomData"], "Ship c-e1?");
    assert_eq!(req.deadline, Some(T0 + 60 * MIN));
    let fx = h.send(Input::ApprovalResult {
        execution: "e1".into(),
        stage: "Approve".into(),
        action: "Prod".into(),
        approved: true,
        summary: "lgtm".into(),
        by: "alice".into(),
    });
    assert_eq!(runs(&fx), vec![run("e1", "Deploy", "Deploy", 1)]);

    let mut h = approval_harness();
    h.start("e2");
    h.through_build("e2");
    let fx = h.send(Input::ApprovalResult {
        execution: "e2".into(),
        stage: "Approve".into(),
        action: "Prod".into(),
        approved: false,
        summary: "not today".into(),
        by: "bob".into(),
    });
    assert_eq!(finished(&fx), vec![("e2".into(), ExecutionStatus::Failed)]);
    assert_eq!(
        h.state.executions["e2"].message.as_deref(),
        Some("stage \"Approve\" failed: action \"Prod\" failed: rejected by bob: not today")
    );

    let mut h = approval_harness();
    h.start("e3");
    h.through_build("e3");
    assert_eq!(h.state.next_wakeup(), Some(T0 + 60 * MIN));
    h.now = T0 + 60 * MIN;
    let fx = h.send(Input::Tick);
    assert_eq!(finished(&fx), vec![("e3".into(), ExecutionStatus::Failed)]);
    assert_eq!(
        h.state.executions["e3"].message.as_deref(),
        Some(
            "stage \"Approve\" failed: action \"Prod\" failed: the approval timed out after 60 minutes"
        )
    );
    let err = h
        .try_send(Input::ApprovalResult {
            execution: "e3".into(),
            stage: "Approve".into(),
            action: "Prod".into(),
            approved: true,
            summary: String::new(),
            by: "late".into(),
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no approval \"Prod\" is waiting in stage \"Approve\" of execution \"e3\""
    );
}

/// A scripted driver: answers every RunAction (the Test action of execution
/// "b" fails once, then is retried), approves, and records the history.
fn scripted(crash: bool) -> PipelineState {
    let mut h = approval_harness();
    h.roundtrip = crash;
    let mut pending: Vec<ActionRequest> = Vec::new();
    let absorb = |fx: Vec<Effect>, pending: &mut Vec<ActionRequest>| {
        for e in fx {
            if let Effect::RunAction(r) = e
                && !pending.contains(&r)
            {
                pending.push(r);
            }
        }
    };
    let fx = h.start("a");
    absorb(fx, &mut pending);
    let fx = h.start("b");
    absorb(fx, &mut pending);
    let mut failed_once = false;
    let mut steps = 0;
    while let Some(r) = (!pending.is_empty()).then(|| pending.remove(0)) {
        steps += 1;
        assert!(steps < 200, "the run does not converge");
        h.now += MIN;
        let fx = if r.provider == "Manual" {
            h.send(Input::ApprovalResult {
                execution: r.execution.clone(),
                stage: r.stage.clone(),
                action: r.action.clone(),
                approved: true,
                summary: "ok".into(),
                by: "ops".into(),
            })
        } else if r.execution == "b" && r.action == "Test" && !failed_once {
            failed_once = true;
            let mut fx = h.fail("b", "Build", "Test");
            fx.extend(h.send(Input::RetryStage {
                execution: "b".into(),
                stage: "Build".into(),
                mode: RetryMode::FailedActions,
            }));
            fx
        } else {
            h.ok(&r.execution, &r.stage, &r.action)
        };
        absorb(fx, &mut pending);
        if crash {
            // Restart: reload the state and re-issue what is in flight.
            let text = serde_json::to_string(&h.state).unwrap();
            h.state = serde_json::from_str(&text).unwrap();
            let fx = h.state.resume(h.now);
            absorb(fx, &mut pending);
        }
    }
    h.state
}

#[test]
fn crash_and_resume_at_every_step_finishes_the_same() {
    let calm = scripted(false);
    let crashed = scripted(true);
    assert_eq!(calm.executions["a"].status, ExecutionStatus::Succeeded);
    assert_eq!(calm.executions["b"].status, ExecutionStatus::Succeeded);
    assert_eq!(calm.executions["b"].stages["Build"].attempts["Test"], 2);
    assert_eq!(crashed, calm);
}
