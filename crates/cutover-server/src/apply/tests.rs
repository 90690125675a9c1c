//! The steps of an apply on their own: validation without the store, the
//! plan as a pure function, and the commit against a real (in-memory)
//! store.

// The tests inspect the store synchronously, outside any control plane.
#![allow(clippy::disallowed_methods)]

use super::commit::commit;
use super::plan::{Current, plan};
use super::validate::{self, Known, Validated};
use super::{ApplyError, FileError};
use crate::testing::WEB_TASKDEF;
use cutover_api::apply::{ApplyRequest, PlanAction};
use cutover_store::{Store, ops};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const STACK: &str = "services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./web.json
  api:
    runtime: process
    desiredCount: 1
    taskDefinition: ./web.json
  worker:
    runtime: process
    desiredCount: 1
    taskDefinition: ./web-v2.json
";

/// Two services of one file, and a third of its own family.
const SHARED: &str = "services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./web.json
  api:
    runtime: process
    desiredCount: 1
    taskDefinition: ./web.json
  worker:
    runtime: process
    desiredCount: 1
    taskDefinition: ./worker.json
";

const BLUE_GREEN: &str = "services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./web.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18080
    deployment:
      type: BLUE_GREEN
";

fn request(stack: &str) -> ApplyRequest {
    ApplyRequest {
        file: "stack.yaml".into(),
        stack: None,
        content: stack.into(),
        files: BTreeMap::from([
            ("./web.json".to_string(), WEB_TASKDEF.to_string()),
            (
                "./web-v2.json".to_string(),
                WEB_TASKDEF.replace("\"v1\"", "\"v2\""),
            ),
            (
                "./worker.json".to_string(),
                WEB_TASKDEF.replace("\"family\": \"web\"", "\"family\": \"worker\""),
            ),
        ]),
        dry_run: false,
    }
}

fn validated(req: &ApplyRequest, known: &Known) -> Result<Validated, ApplyError> {
    let parsed = validate::parse(&req.file, &req.content)?;
    let runtimes = BTreeSet::from(["process".to_string()]);
    validate::validate(req, parsed, &runtimes, "process", known)
}

#[test]
fn services_sharing_a_file_share_one_new_revision_and_another_body_gets_the_next() {
    let v = validated(&request(STACK), &Known::default()).unwrap();
    let mut current = Current::default();
    current
        .latest
        .insert("web".into(), (4, "an older body".into()));
    let p = plan(&v, &current, 7);
    let revisions: Vec<_> = p
        .registrations
        .iter()
        .map(|r| format!("{}:{}", r.family, r.revision))
        .collect();
    // Services in name order: api, web (same file), worker (another body).
    assert_eq!(revisions, ["web:5", "web:6"]);
    let rows: Vec<_> = p
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.action, s.row.task_definition.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("api", PlanAction::Create, "web:5"),
            ("web", PlanAction::Create, "web:5"),
            ("worker", PlanAction::Create, "web:6"),
        ]
    );
    assert!(p.services.iter().all(|s| s.deploy.is_none()));
}

#[test]
fn a_blue_green_service_gets_its_new_revision_by_a_deployment_unless_one_is_under_way() {
    let v = validated(&request(BLUE_GREEN), &Known::default()).unwrap();
    let first = plan(&v, &Current::default(), 1);
    let mut current = Current::default();
    let mut stored = first.services[0].row.clone();
    stored.task_definition = "web:1".into();
    current.services.insert("web".into(), stored);
    current
        .latest
        .insert("web".into(), (1, "another body".into()));
    let p = plan(&v, &current, 2);
    let web = &p.services[0];
    assert_eq!(web.action, PlanAction::Update);
    assert_eq!(
        web.row.task_definition, "web:1",
        "the deployment moves it, not the apply"
    );
    assert_eq!(web.deploy.as_deref(), Some("web:2"));
    assert_eq!(
        web.changes,
        ["taskDefinition web:1 -> web:2 by a blue/green deployment"]
    );
    assert_eq!(web.row.generation, 2);

    current
        .deploying
        .insert(("web".to_string(), "web:2".to_string()));
    let p = plan(&v, &current, 3);
    assert_eq!(p.services[0].deploy, None);
    assert_eq!(
        p.services[0].changes,
        ["taskDefinition web:1 -> web:2: a deployment to it is already under way"]
    );
}

#[test]
fn validation_reports_every_error_of_the_stack_located() {
    let stack = "services:
  web:
    runtime: docker
    desiredCount: 1
    taskDefinition: ./missing.json
  api:
    runtime: process
    desiredCount: 1
    taskDefinition: api:3
";
    let Err(ApplyError::Rejected(FileError::Rejected { file, error })) =
        validated(&request(stack), &Known::default())
    else {
        panic!("the stack is refused");
    };
    assert_eq!(file, "stack.yaml");
    let messages: Vec<String> = error.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        messages,
        [
            "stack.yaml:9:21: services.api.taskDefinition: task definition api:3 is not registered",
            "stack.yaml:3:14: services.web.runtime: runtime \"docker\" is not available on this server (available: process)",
            "stack.yaml:5:21: services.web.taskDefinition: cannot read the task definition file \"./missing.json\" (relative to the stack file)",
        ]
    );
    // What the store knows resolves the family reference.
    let known = Known {
        registered: BTreeMap::from([(("api".to_string(), Some(3)), "api:3".to_string())]),
        ..Known::default()
    };
    let Err(ApplyError::Rejected(FileError::Rejected { error, .. })) =
        validated(&request(stack), &known)
    else {
        panic!("the stack is still refused");
    };
    assert_eq!(error.diagnostics.len(), 2);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_a_second_commit_changes_nothing() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let req = request(SHARED);
    let dry = commit(&store, validated(&req, &Known::default()).unwrap(), 5, true)
        .await
        .unwrap();
    assert_eq!(dry.items.len(), 3);
    assert!(dry.items.iter().all(|i| i.action == PlanAction::Create));
    assert!(store.with(ops::list_services).unwrap().is_empty());
    assert!(
        store
            .with(|c| ops::task_definition(c, "web", None))
            .unwrap()
            .is_none()
    );

    let done = commit(
        &store,
        validated(&req, &Known::default()).unwrap(),
        6,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        done.items, dry.items,
        "the dry run said what the commit did"
    );
    assert_eq!(done.plan.registrations, dry.plan.registrations);
    let services = store.with(ops::list_services).unwrap();
    let names: Vec<_> = services
        .iter()
        .map(|s| (s.name.as_str(), s.task_definition.as_str()))
        .collect();
    assert_eq!(
        names,
        [("api", "web:1"), ("web", "web:1"), ("worker", "worker:1")]
    );

    let again = commit(
        &store,
        validated(&req, &Known::default()).unwrap(),
        7,
        false,
    )
    .await
    .unwrap();
    assert!(again.plan.registrations.is_empty());
    assert!(
        again
            .items
            .iter()
            .all(|i| i.action == PlanAction::Unchanged)
    );
    assert_eq!(
        store
            .with(|c| ops::task_definition(c, "web", None))
            .unwrap()
            .unwrap()
            .revision,
        1
    );
}

/// The diagnostics of a refused apply, as the CLI prints them.
fn diagnostics(body: &serde_json::Value) -> Vec<String> {
    let d: Vec<cutover_spec::Diagnostic> =
        serde_json::from_value(body["error"]["diagnostics"].clone()).unwrap();
    d.iter().map(ToString::to_string).collect()
}

/// A stack of one blue/green service `name` on `listener`.
fn lb_stack(name: &str, listener: &str) -> String {
    format!(
        "services:
  {name}:
    runtime: process
    desiredCount: 1
    taskDefinition: ./web.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: {listener}
"
    )
}

/// Issue 17's repro: a listener address claimed by a second stack is
/// refused by the apply and its dry run, naming the service that holds it
/// and its stack file; and a clash already in the store (written by an
/// older release) leaves only the newer service out of the data plane.
#[tokio::test(start_paused = true)]
async fn a_listener_claimed_twice_is_refused_and_never_stops_the_other_services() {
    use crate::testing::Harness;
    use axum::http::{Method, StatusCode};
    use serde_json::json;
    let h = Harness::start().await;
    let apply = |file: &str, stack: String, dry_run: bool| {
        let body = json!({"file": file, "stack": file, "content": stack, "dryRun": dry_run,
            "files": {"./web.json": WEB_TASKDEF}});
        h.call(Method::POST, "/v1/apply", Some(body))
    };
    let (status, body) = apply("one/stack.yaml", lb_stack("x1", "127.0.0.1:18080"), false).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let expected = "two/stack.yaml:9:17: services.x2.loadBalancer.listener: address 127.0.0.1:18080 is already the listener of service \"x1\" (declared in one/stack.yaml): two services cannot share a listener";
    for dry_run in [true, false] {
        let (status, body) =
            apply("two/stack.yaml", lb_stack("x2", "127.0.0.1:18080"), dry_run).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
        assert_eq!(diagnostics(&body), [expected]);
    }
    // Two services of one stack on one address: the stack's own rule.
    let both = lb_stack("y1", "127.0.0.1:18090")
        + &lb_stack("y2", "127.0.0.1:18090").replace("services:\n", "");
    let (status, body) = apply("three/stack.yaml", both, true).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    assert_eq!(
        diagnostics(&body),
        [
            "three/stack.yaml:17:17: services.y2.loadBalancer.listener: address 127.0.0.1:18090 is already used by services.y1.loadBalancer.listener"
        ]
    );

    // A clash written behind apply's back: x2 is left out, with an event,
    // and a healthy service applied afterwards is served.
    let mut x2 = h
        .state
        .store
        .call(|c| ops::service(c, "x1"))
        .await
        .unwrap()
        .unwrap();
    x2.name = "x2".into();
    x2.created_at += 1;
    h.state
        .store
        .call(move |c| ops::put_service(c, &x2))
        .await
        .unwrap();
    let (status, body) = apply("four/stack.yaml", lb_stack("web", "127.0.0.1:18100"), false).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    crate::dataplane::DataPlane::sync(h.dataplane.as_ref())
        .await
        .unwrap();
    let last = h.dataplane.applied().pop().unwrap();
    let listeners: Vec<&str> = last.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(listeners, ["web-prod", "x1-prod"]);
    let (_, events) = h.call(Method::GET, "/v1/services/x2/events", None).await;
    assert!(
        events.to_string().contains("left out of the data plane configuration: listener address 127.0.0.1:18080 is already used by service \\\"x1\\\""),
        "{events:#}"
    );
}

#[test]
fn a_service_without_a_runtime_gets_the_server_default_and_placement_needs_swarm() {
    let stack = "services:\n  web:\n    taskDefinition: ./web.json\n    placementStrategy:\n      - type: spread\n        field: attribute:zone\n";
    let req = request(stack);
    let runtimes = BTreeSet::from(["process".to_string(), "swarm".to_string()]);
    let parsed = validate::parse(&req.file, &req.content).unwrap();
    let v = validate::validate(&req, parsed, &runtimes, "swarm", &Known::default()).unwrap();
    assert_eq!(v.services[0].runtime, "swarm");
    assert_eq!(v.services[0].spec.placement_strategy.len(), 1);

    let parsed = validate::parse(&req.file, &req.content).unwrap();
    let Err(ApplyError::Rejected(FileError::Rejected { error, .. })) =
        validate::validate(&req, parsed, &runtimes, "process", &Known::default())
    else {
        panic!("placement on the process runtime was accepted");
    };
    let messages: Vec<String> = error.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        messages,
        [
            "stack.yaml:5:7: services.web.placementStrategy: placement needs runtime: swarm (this server's default runtime is \"process\")"
        ]
    );
}

const IMAGE_REPOSITORIES: &str = "imageRepositories:
  web:
    imageTagMutability: IMMUTABLE
    imageScanningConfiguration: {scanOnPush: true}
    lifecyclePolicy:
      rules:
        - rulePriority: 1
          selection: {tagStatus: untagged, countType: imageCountMoreThan, countNumber: 3}
          action: {type: expire}
  base:
    anonymousPull: true
  empty: {}
";

/// `imageRepositories:` is applied in the apply's transaction: created,
/// updated with the changes listed, and a repository dropped from the
/// stack deleted only when it holds no image.
#[tokio::test]
async fn image_repositories_are_created_updated_and_dropped_only_when_empty() {
    use cutover_store::registry::{self as rows, NewManifest, TagMutability};
    let store = Arc::new(Store::open_in_memory().unwrap());
    let apply = |stack: &str, now: u64, dry_run: bool| {
        let v = validated(&request(stack), &Known::default()).unwrap();
        commit(&store, v, now, dry_run)
    };
    let kinds = |items: &[cutover_api::apply::PlanItem]| -> Vec<(String, PlanAction, Vec<String>)> {
        items
            .iter()
            .filter_map(|i| {
                let name = i.subject.image_repository.clone()?;
                Some((name, i.action, i.changes.clone()))
            })
            .collect()
    };
    let dry = apply(IMAGE_REPOSITORIES, 5, true).await.unwrap();
    assert_eq!(kinds(&dry.items).len(), 3);
    assert!(
        store
            .with(|c| rows::get_repository(c, "web"))
            .unwrap()
            .is_none()
    );
    let first = apply(IMAGE_REPOSITORIES, 5, false).await.unwrap();
    assert!(
        kinds(&first.items)
            .iter()
            .all(|(_, a, _)| *a == PlanAction::Create)
    );
    let web = store
        .with(|c| rows::get_repository(c, "web"))
        .unwrap()
        .unwrap();
    assert_eq!(web.tag_mutability, TagMutability::Immutable);
    assert!(web.scan_on_push && !web.anonymous_pull);
    let policy = web.lifecycle_policy.unwrap();
    cutover_spec::ecr::parse_lifecycle_policy("p", &policy).unwrap();
    assert!(
        store
            .with(|c| rows::get_repository(c, "base"))
            .unwrap()
            .unwrap()
            .anonymous_pull
    );
    // Again: nothing changes.
    let again = apply(IMAGE_REPOSITORIES, 6, false).await.unwrap();
    assert!(
        kinds(&again.items)
            .iter()
            .all(|(_, a, _)| *a == PlanAction::Unchanged)
    );
    // `base` holds an image; then `base` and `empty` leave the stack and
    // web becomes mutable.
    store
        .with(|c| {
            rows::put_manifest(
                c,
                "base",
                &NewManifest {
                    digest: format!("sha256:{}", "a".repeat(64)),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    size: 2,
                    image_size: 0,
                    artifact_type: None,
                    subject: None,
                    annotations: BTreeMap::new(),
                    refs: Vec::new(),
                },
                Some("1"),
                7,
            )
        })
        .unwrap();
    let smaller =
        "imageRepositories:\n  web:\n    imageScanningConfiguration: {scanOnPush: true}\n";
    let last = apply(smaller, 8, false).await.unwrap();
    let mut got = kinds(&last.items);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got[0].0, "base");
    assert_eq!(got[0].1, PlanAction::Unchanged);
    assert!(got[0].2[0].contains("kept: it holds 1 images"), "{got:?}");
    assert_eq!((got[1].0.as_str(), got[1].1), ("empty", PlanAction::Delete));
    assert_eq!(got[2].0, "web");
    assert_eq!(
        got[2].2,
        [
            "imageTagMutability IMMUTABLE -> MUTABLE",
            "lifecyclePolicy removed"
        ]
    );
    assert!(
        store
            .with(|c| rows::get_repository(c, "base"))
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .with(|c| rows::get_repository(c, "empty"))
            .unwrap()
            .is_none()
    );
}
