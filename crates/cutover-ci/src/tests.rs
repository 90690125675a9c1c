//! The pipeline driver in-process, on tokio's paused clock: a pipeline with
//! a manual approval and a deployment window that holds its last stage for
//! about 45 minutes runs in milliseconds, once without a crash and once
//! with the whole pipelines service crashed and restarted at each step, and
//! both runs end the same (one build, the approval kept, the same statuses).
//! Then the bugs of dropped and redeclared pipelines: a stack is one stack
//! whichever path names it, another file's pipeline is never deleted, and
//! a pipeline never has two drivers.

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_api::apply::PlanAction;
use cutover_pipeline::engine::{ActionStatus, Execution, ExecutionStatus, Input, Position};
use cutover_store::pipeline_ops;

use crate::PipelineError;

use crate::source::tests::{commit, repo_with};
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
    let state = h.state("gated")?;
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
    h.apply(
        "stack.yaml",
        &stack,
        &[("p.json", &p), ("ci.yml", BUILDSPEC)],
    )
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
    let id = execution(&h).unwrap().id;
    h.pipelines
        .send(
            "gated",
            Input::ApprovalResult {
                execution: id,
                stage: "Gate".into(),
                action: "Approve".into(),
                approved: true,
                summary: "lgtm".into(),
                by: "ann".into(),
            },
        )
        .await
        .unwrap();
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
    #[allow(clippy::disallowed_methods)] // a test's read of the store
    let builds = h
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

/// A pipeline `name`: a source, then a manual approval that holds its
/// execution in progress.
fn approval_pipeline(name: &str) -> String {
    format!(
        r#"{{"pipeline": {{"name": "{name}", "pipelineType": "V2", "stages": [
 {{"name": "Source", "actions": [{{"name": "Source",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
   "configuration": {{"RepositoryName": "app", "BranchName": "main"}}, "outputArtifacts": [{{"name": "Src"}}]}}]}},
 {{"name": "Gate", "actions": [{{"name": "Approve",
   "actionTypeId": {{"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}}}]}}]}}}}"#
    )
}

/// A stack declaring repository `app` at `repo` and `pipelines`, each from
/// `<name>.json`.
fn stack_with(repo: &std::path::Path, pipelines: &[&str]) -> String {
    let mut stack = format!(
        "repositories:\n  app: {{url: {}, pollIntervalSeconds: 0}}\npipelines:\n",
        repo.display()
    );
    if pipelines.is_empty() {
        stack.push_str("  {}\n");
    }
    for p in pipelines {
        stack.push_str(&format!("  {p}: {{file: {p}.json}}\n"));
    }
    stack
}

/// The plan entries of pipelines, as `(name, action)`.
fn pipeline_plan(plan: &[cutover_api::apply::PlanItem]) -> Vec<(String, PlanAction)> {
    plan.iter()
        .filter_map(|i| Some((i.subject.pipeline.clone()?, i.action)))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_dropped_pipeline_is_deleted_whichever_path_names_the_stack_and_never_another_files() {
    let repo = repo_with(&[("README.md", "hello\n")]);
    let h = Harness::start().await;
    let files: Vec<(String, String)> = ["one", "two", "shared"]
        .iter()
        .map(|p| (format!("{p}.json"), approval_pipeline(p)))
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    h.apply(
        "./stack.yaml",
        &stack_with(repo.path(), &["one", "shared"]),
        &files,
    )
    .await;
    h.apply(
        "other.yaml",
        &stack_with(repo.path(), &["two", "shared"]),
        &files,
    )
    .await;
    // The same stack named another way drops `one` and `shared`: `one`
    // goes, `shared` stays (other.yaml declares it), `two` is not its own.
    let plan = h
        .apply("a/../stack.yaml", &stack_with(repo.path(), &[]), &files)
        .await;
    assert_eq!(
        pipeline_plan(&plan),
        [("one".to_string(), PlanAction::Delete)]
    );
    assert_eq!(h.pipeline_names(), ["shared", "two"]);
    // Reloaded by each apply, the kept pipeline's driver carries on: its
    // first execution still waits, nothing was stopped.
    let waiting = |h: &Harness| {
        h.state("shared").is_some_and(|s| {
            s.executions
                .values()
                .any(|e| action(e, "Gate", "Approve") == Some(ActionStatus::InProgress))
        })
    };
    assert!(until_real(&h, Duration::from_secs(30), waiting).await);
    h.apply("stack.yaml", &stack_with(repo.path(), &[]), &files)
        .await;
    h.advance(Duration::from_secs(1)).await;
    assert!(waiting(&h));
    let state = h.state("shared").unwrap();
    assert_eq!(state.executions.len(), 1, "{:?}", state.executions);
    #[allow(clippy::disallowed_methods)] // a test's read of the store
    let events = h
        .store
        .with(|c| cutover_store::ops::events(c, "pipeline/shared", 50))
        .unwrap();
    assert!(
        !events.iter().any(|e| e.message.contains("Stopped")),
        "{events:?}"
    );
    // Dropped by other.yaml too: now nothing declares it.
    let plan = h
        .apply("other.yaml", &stack_with(repo.path(), &["two"]), &files)
        .await;
    assert_eq!(
        pipeline_plan(&plan),
        [
            ("two".to_string(), PlanAction::Unchanged),
            ("shared".to_string(), PlanAction::Delete)
        ]
    );
    assert_eq!(h.pipeline_names(), ["two"]);
}

#[tokio::test(start_paused = true)]
async fn applies_recorded_before_stacks_had_an_identity_stay_the_stacks_own() {
    let repo = repo_with(&[("README.md", "hello\n")]);
    let h = Harness::start().await;
    let files: Vec<(String, String)> = ["one", "shared"]
        .iter()
        .map(|p| (format!("{p}.json"), approval_pipeline(p)))
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let me = Some("/srv/app/stack.yaml");
    // An older client: no identity, the path as typed.
    h.apply(
        "./stack.yaml",
        &stack_with(repo.path(), &["one", "shared"]),
        &files,
    )
    .await;
    let plan = h
        .apply_as(
            "stack.yaml",
            me,
            &stack_with(repo.path(), &["shared"]),
            &files,
        )
        .await;
    assert_eq!(
        pipeline_plan(&plan),
        [
            ("shared".to_string(), PlanAction::Unchanged),
            ("one".to_string(), PlanAction::Delete)
        ]
    );
    // The old record is this stack's now, not another file declaring
    // `shared`: dropping it deletes it; another stack never did.
    let plan = h
        .apply("other.yaml", &stack_with(repo.path(), &[]), &files)
        .await;
    assert_eq!(pipeline_plan(&plan), []);
    let plan = h
        .apply_as("stack.yaml", me, &stack_with(repo.path(), &[]), &files)
        .await;
    assert_eq!(
        pipeline_plan(&plan),
        [("shared".to_string(), PlanAction::Delete)]
    );
    assert!(h.pipeline_names().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_dropped_and_declared_again_has_one_driver() {
    let repo = repo_with(&[("README.md", "hello\n")]);
    let h = Harness::start().await;
    let p = approval_pipeline("app");
    let files = [("app.json", p.as_str())];
    let waiting = |h: &Harness| {
        h.state("app").is_some_and(|s| {
            s.executions
                .values()
                .any(|e| action(e, "Gate", "Approve") == Some(ActionStatus::InProgress))
        })
    };
    let declared = stack_with(repo.path(), &["app"]);
    h.apply("stack.yaml", &declared, &files).await;
    assert!(until_real(&h, Duration::from_secs(30), waiting).await);
    let first: Vec<String> = h.state("app").unwrap().executions.into_keys().collect();
    // Dropped and declared again at once, twice, with the old drivers
    // still stopping their executions; then concurrently.
    let dropped = stack_with(repo.path(), &[]);
    for _ in 0..2 {
        h.apply("stack.yaml", &dropped, &files).await;
        h.apply("stack.yaml", &declared, &files).await;
    }
    tokio::join!(
        h.apply("stack.yaml", &dropped, &files),
        h.apply("stack.yaml", &declared, &files)
    );
    h.apply("stack.yaml", &declared, &files).await;
    assert!(until_real(&h, Duration::from_secs(30), waiting).await);
    h.advance(Duration::from_secs(60)).await;
    // One driver writes the row: only the newest pipeline's first
    // execution is in it, none of the old ones, and it waits once.
    let state = h.state("app").unwrap();
    let ids: Vec<&String> = state.executions.keys().collect();
    assert_eq!(ids.len(), 1, "{:?}", state.executions);
    assert!(
        !first.contains(ids[0]),
        "an old execution came back: {ids:?}"
    );
    let id = ids[0].clone();
    h.pipelines
        .send(
            "app",
            Input::ApprovalResult {
                execution: id.clone(),
                stage: "Gate".into(),
                action: "Approve".into(),
                approved: true,
                summary: "ok".into(),
                by: "ann".into(),
            },
        )
        .await
        .unwrap();
    h.advance(Duration::from_secs(1)).await;
    let e = h.state("app").unwrap().executions.remove(&id).unwrap();
    assert_eq!(e.status, ExecutionStatus::Succeeded, "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn a_webhook_push_is_recorded_only_with_the_execution_it_started() {
    let repo = repo_with(&[("README.md", "hello\n")]);
    let mut h = Harness::start().await;
    let p = approval_pipeline("app");
    let files = [("app.json", p.as_str())];
    let stack = stack_with(repo.path(), &["app"]);
    h.apply("stack.yaml", &stack, &files).await;
    let created = |h: &Harness| h.head("app", "main").is_some();
    assert!(until_real(&h, Duration::from_secs(30), created).await);
    let built = h.head("app", "main");
    let spec = cutover_spec::stack::ci::RepositorySpec {
        url: repo.path().display().to_string(),
        poll_interval_seconds: 0,
        webhook_secret: None,
        webhook_secret_env: None,
    };
    let push = |after: &str| crate::webhook::Push {
        branch: Some("main".into()),
        tag: None,
        before: built.clone(),
        after: Some(after.to_string()),
        changed_files: vec!["README.md".into()],
    };
    let next = commit(repo.path(), &[("README.md", "bye\n")], "second");
    // The driver is gone: the execution cannot start, so the push is not
    // acted on and a redelivery (or the next poll) tries again.
    h.stop_tasks().await;
    let err = h
        .pipelines
        .webhook_push("app", &spec, push(&next))
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::NotStarted { .. }), "{err:?}");
    assert_eq!(h.head("app", "main"), built);
    h = h.crash().await;
    let outcome = h
        .pipelines
        .webhook_push("app", &spec, push(&next))
        .await
        .unwrap();
    assert_eq!(outcome.started.len(), 1, "{outcome:?}");
    assert_eq!(h.head("app", "main").as_deref(), Some(next.as_str()));
    let state = h.state("app").unwrap();
    assert!(state.executions.contains_key(&outcome.started[0].1));
}
