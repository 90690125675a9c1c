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
    validate::validate(req, parsed, &runtimes, known)
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
        services: BTreeSet::new(),
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
