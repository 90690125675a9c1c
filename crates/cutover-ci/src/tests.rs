//! The pipeline driver in-process, on tokio's paused clock: a pipeline with
//! a manual approval and a deployment window that holds its last stage for
//! about 45 minutes runs in milliseconds, once without a crash and once
//! with the whole control plane crashed and restarted at each step, and
//! both runs end the same (one build, the approval kept, the same statuses).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use cutover_pipeline::engine::{ActionStatus, Execution, ExecutionStatus, Position};
use cutover_store::pipeline_ops;
use serde_json::json;

use crate::pipelines::source::tests::repo_with;
use crate::testing::Harness;

/// Source, a manual approval, then a build held by a deployment window
/// that opens at 01:00 UTC (the harness starts at 00:00 UTC).
fn pipeline() -> String {
    r#"{"pipeline": {"name": "gated", "pipelineType": "V2", "stages": [
 {"name": "Source", "actions": [{"name": "Source",
   "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}]},
 {"name": "Gate", "actions": [{"name": "Approve",
   "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]},
 {"name": "Ship",
  "beforeEntry": {"conditions": [{"rules": [{"name": "Night",
    "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "DeploymentWindow", "version": "1"},
    "configuration": {"Cron": "* * 1-23 ? * * *", "TimeZone": "UTC"}}]}]},
  "actions": [{"name": "Build",
   "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
   "configuration": {"ProjectName": "b"}, "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Out"}]}]}]}}"#
        .to_string()
}

const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - cat README.md > out.txt\nartifacts:\n  files: [out.txt]\n";

fn execution(h: &Harness) -> Option<Execution> {
    let state = h.state.pipelines.state("gated").ok()??;
    state.executions.into_values().next()
}

fn action(e: &Execution, stage: &str, action: &str) -> Option<ActionStatus> {
    e.stages.get(stage)?.actions.get(action).map(|a| a.status)
}

/// Polls `done` until it holds or `limit` of real time passed, letting
/// `step` of the control plane's time pass between polls: for waits on real
/// work (git, a build's shell), which the paused clock does not measure.
async fn until_real(h: &Harness, limit: Duration, mut done: impl FnMut(&Harness) -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if done(h) {
            return true;
        }
        h.advance(Duration::from_millis(10)).await;
    }
    done(h)
}

/// What must be the same with and without crashes.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: ExecutionStatus,
    actions: BTreeMap<String, (ActionStatus, Option<String>)>,
    builds: usize,
    approval: Option<String>,
}

/// Runs the scenario; with `crash`, the control plane is killed and
/// restarted at each step.
async fn scenario(crash: bool) -> Outcome {
    let repo = repo_with(&[("README.md", "hello\n")]);
    let stack = format!(
        "services: {{}}\nrepositories:\n  app: {{url: {}, pollIntervalSeconds: 0}}\nbuildProjects:\n  b: {{buildspec: ci.yml}}\npipelines:\n  gated: {{file: p.json}}\n",
        repo.path().display()
    );
    let mut h = Harness::start().await;
    let p = pipeline();
    h.apply(&stack, &[("p.json", &p), ("ci.yml", BUILDSPEC)])
        .await;
    let restart = |h: Harness| async move { if crash { h.crash().await } else { h } };
    // Step 1: created, the first execution's source runs.
    h = restart(h).await;
    let step = Duration::from_secs(1);
    let waiting = |h: &Harness| {
        execution(h)
            .is_some_and(|e| action(&e, "Gate", "Approve") == Some(ActionStatus::InProgress))
    };
    assert!(
        until_real(&h, Duration::from_secs(30), waiting).await,
        "the approval never waited: {:?}",
        execution(&h)
    );
    // Step 2: the approval waits (15 minutes), across a crash.
    h.advance(Duration::from_secs(15 * 60)).await;
    h = restart(h).await;
    assert!(waiting(&h), "the approval was lost: {:?}", execution(&h));
    let (status, body) = h
        .call(
            Method::POST,
            "/v1/pipelines/gated/approvals",
            Some(json!({"stage": "Gate", "action": "Approve", "approved": true, "summary": "lgtm", "by": "ann"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Step 3: held by the closed window until 01:00 UTC, across a crash.
    let held = |h: &Harness| {
        execution(h).is_some_and(|e| {
            matches!(
                e.position,
                Position::Waiting {
                    wakeup: Some(_),
                    ..
                }
            )
        })
    };
    assert!(
        h.run_until(Duration::from_secs(60), step, held).await,
        "the window did not hold the execution: {:?}",
        execution(&h)
    );
    h.advance(Duration::from_secs(10 * 60)).await;
    h = restart(h).await;
    assert!(held(&h), "the hold was lost: {:?}", execution(&h));
    assert_eq!(action(&execution(&h).unwrap(), "Ship", "Build"), None);
    // Step 4: the window opens; the build runs once and the execution ends.
    let building =
        |h: &Harness| execution(h).is_some_and(|e| action(&e, "Ship", "Build").is_some());
    assert!(
        h.run_until(Duration::from_secs(3600), Duration::from_secs(30), building)
            .await,
        "the window never let the build start: {:?}",
        execution(&h)
    );
    assert!(h.elapsed_ms() >= 60 * 60 * 1000, "the window opened early");
    let done = |h: &Harness| execution(h).is_some_and(|e| e.status.is_terminal());
    assert!(
        until_real(&h, Duration::from_secs(30), done).await,
        "never finished: {:?}",
        execution(&h)
    );
    h = restart(h).await;
    let e = execution(&h).unwrap();
    let builds = h
        .state
        .store
        .with(|c| pipeline_ops::list_builds(c, Some("b"), 10))
        .unwrap();
    let actions = e
        .stages
        .iter()
        .flat_map(|(s, run)| {
            run.actions.iter().map(move |(a, r)| {
                let message = r.message.clone().filter(|_| s != "Source");
                (format!("{s}/{a}"), (r.status, message))
            })
        })
        .collect::<BTreeMap<_, _>>();
    Outcome {
        status: e.status,
        approval: actions.get("Gate/Approve").and_then(|(_, m)| m.clone()),
        actions: actions
            .into_iter()
            .filter(|(k, _)| k != "Ship/Build")
            .collect(),
        builds: builds.len(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_gated_and_windowed_execution_ends_the_same_with_a_crash_at_each_step() {
    let plain = scenario(false).await;
    assert_eq!(plain.status, ExecutionStatus::Succeeded, "{plain:?}");
    assert_eq!(plain.builds, 1, "{plain:?}");
    assert_eq!(plain.approval.as_deref(), Some("approved by ann: lgtm"));
    let crashed = scenario(true).await;
    assert_eq!(crashed, plain);
}
