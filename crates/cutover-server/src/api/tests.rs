//! Real answers of the API against their declared `cutover_api` types:
//! each deserializes into its type, and serializing that value gives the
//! same JSON back (so the type holds every field the server sends, with
//! the same names and values: the wire format is the type).

use crate::testing::Harness;
use axum::http::{Method, StatusCode};
use cutover_api::alarms::{AlarmDescription, AlarmHistory, AlarmList, DataPlaneStatus};
use cutover_api::apply::{ApplyResponse, PlanAction};
use cutover_api::builds::BuildList;
use cutover_api::deployments::{
    DeploymentEnvelope, DeploymentList, HookStatusRequest, HookStatusResponse,
};
use cutover_api::pipelines::PipelineList;
use cutover_api::services::{EventList, ServerStatus, ServiceEnvelope, ServiceList};
use cutover_api::task_definitions::{
    RegisterTaskDefinitionResponse, TaskDefinitionEnvelope, TaskDefinitionList,
};
use cutover_api::tasks::{TaskEnvelope, TaskList};
use cutover_api::{ApiErrorBody, openapi};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;

use crate::testing::WEB_TASKDEF as TASKDEF;

const STACK: &str = r#"services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18080
      testListener: 127.0.0.1:18081
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
    deployment:
      type: BLUE_GREEN
      config: Canary10Percent15Minutes
      alarms: [errors]
deploymentConfigs:
  Canary10Percent15Minutes:
    trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 10, canaryInterval: 15}}
alarms:
  errors:
    metric: {name: HTTPCode_Target_5XX_Count, service: web}
    statistic: Sum
    periodSeconds: 10
    evaluationPeriods: 1
    threshold: 5
    comparisonOperator: GreaterThanOrEqualToThreshold
    treatMissingData: notBreaching
"#;

/// `answer` is a `T`, and `T` gives `answer` back.
#[track_caller]
fn round_trip<T: DeserializeOwned + Serialize>(what: &str, answer: &Value) -> T {
    let typed: T = serde_json::from_value(answer.clone())
        .unwrap_or_else(|e| panic!("{what}: {e}\n{answer:#}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(&back, answer, "{what}: the type changes the answer");
    typed
}

async fn get<T: DeserializeOwned + Serialize>(h: &Harness, path: &str) -> T {
    let (status, body) = h.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body:#}");
    round_trip(path, &body)
}

#[tokio::test(start_paused = true)]
async fn real_answers_are_their_declared_types() {
    let h = Harness::start().await;
    let applied: ApplyResponse = round_trip(
        "apply",
        &h.apply(STACK, &[("./taskdef.json", TASKDEF)]).await,
    );
    assert!(applied.applied);
    assert!(
        applied
            .plan
            .iter()
            .any(|p| p.subject.kind_and_name() == ("service", "web")
                && p.action == PlanAction::Create)
    );
    assert!(
        applied
            .plan
            .iter()
            .any(|p| p.subject.kind_and_name() == ("alarm", "errors"))
    );
    let up = h
        .run_until(Duration::from_secs(60), Duration::from_millis(100), |h| {
            h.runtime.running().len() == 2
        })
        .await;
    assert!(up, "the service never ran");

    let status: ServerStatus = get(&h, "/v1/status").await;
    assert_eq!(status.runtimes, ["process"]);
    let _: TaskDefinitionList = get(&h, "/v1/task-definitions").await;
    let td: TaskDefinitionEnvelope = get(&h, "/v1/task-definitions/web").await;
    assert!(td.task_definition.body.is_some());
    let list: ServiceList = get(&h, "/v1/services").await;
    assert_eq!(list.services[0].running_count, 2);
    let web: ServiceEnvelope = get(&h, "/v1/services/web").await;
    let tasks = web.service.tasks.unwrap();
    assert_eq!(tasks.len(), 2);
    let _: EventList = get(&h, "/v1/services/web/events").await;
    let _: TaskList = get(&h, "/v1/tasks?all=true").await;
    let _: TaskEnvelope = get(&h, &format!("/v1/tasks/{}", tasks[0].id)).await;

    // A registered revision, then a blue/green deployment of it that
    // reaches its canary.
    let (status, body) = h
        .call(
            Method::POST,
            "/v1/task-definitions",
            Some(json!({"file": "taskdef.json", "content": TASKDEF.replace("v1", "v2")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let registered: RegisterTaskDefinitionResponse = round_trip("register", &body);
    let (status, body) = h
        .call(
            Method::POST,
            "/v1/deployments",
            Some(json!({"service": "web", "taskDefinition": registered.task_definition.name})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body:#}");
    let created: DeploymentEnvelope = round_trip("create deployment", &body);
    let id = created.deployment.id;
    h.run_until(Duration::from_secs(120), Duration::from_millis(200), |h| {
        h.deployment(&id).prod_green_percent == 10
    })
    .await;
    let got: DeploymentEnvelope = get(&h, &format!("/v1/deployments/{id}")).await;
    let bg = got.deployment.blue_green.expect("a blue/green view");
    assert_eq!(bg.traffic.prod_green_percent, 10);
    assert_eq!(bg.alarms, ["errors"]);
    assert!(got.deployment.events.is_some_and(|e| !e.is_empty()));
    let _: DeploymentList = get(&h, "/v1/deployments").await;

    let alarms: AlarmList = get(&h, "/v1/alarms").await;
    assert_eq!(alarms.alarms[0].name, "errors");
    let _: AlarmDescription = get(&h, "/v1/alarms/errors").await;
    let _: AlarmHistory = get(&h, "/v1/alarms/errors/history").await;
    let _: DataPlaneStatus = get(&h, "/v1/dataplane").await;
    let _: PipelineList = get(&h, "/v1/pipelines").await;
    let _: BuildList = get(&h, "/v1/builds").await;

    // A status outside the enum is refused by serde, naming the field and
    // the values it takes.
    let (status, body) = h
        .call(
            Method::PUT,
            &format!("/v1/deployments/{id}/lifecycle-hooks/x"),
            Some(json!({"status": "Maybe"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err: ApiErrorBody = round_trip("hook status error", &body);
    assert!(
        err.error
            .message
            .contains("status: unknown variant `Maybe`, expected `Succeeded` or `Failed`"),
        "{}",
        err.error.message
    );
    let hook = HookStatusRequest {
        status: cutover_deploy::bluegreen::HookStatus::Succeeded,
    };
    let (status, body) = h
        .call(
            Method::PUT,
            &format!("/v1/deployments/{id}/lifecycle-hooks/x"),
            Some(serde_json::to_value(hook).unwrap()),
        )
        .await;
    // Typed and accepted: the running driver hears it (an execution it did
    // not start is ignored there).
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let answered: HookStatusResponse = round_trip("hook status", &body);
    assert_eq!(answered.lifecycle_event_hook_execution_id, "x");
    let (status, body) = h
        .call(Method::POST, &format!("/v1/deployments/{id}/stop"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let stopped: DeploymentEnvelope = round_trip("stop", &body);
    assert_eq!(
        stopped.requested,
        Some(cutover_api::deployments::Requested::Stop)
    );
    let (status, body) = h
        .call(
            Method::PUT,
            "/v1/alarms/errors/state",
            Some(json!({"state": "Alarm"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err: ApiErrorBody = round_trip("alarm state error", &body);
    assert!(
        err.error.message.contains(
            "state: unknown variant `Alarm`, expected one of `OK`, `ALARM`, `INSUFFICIENT_DATA`"
        ),
        "{}",
        err.error.message
    );
}

#[tokio::test(start_paused = true)]
async fn errors_are_the_error_body_with_located_diagnostics() {
    let h = Harness::start().await;
    let (status, body) = h.call(Method::GET, "/v1/services/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let err: ApiErrorBody = round_trip("not found", &body);
    assert!(err.error.message.contains("nope"), "{}", err.error.message);

    let bad = TASKDEF.replace("8080}", "\"80a\"}");
    let (status, body) = h
        .call(
            Method::POST,
            "/v1/apply",
            Some(json!({"file": "stack.yaml", "content": STACK, "files": {"./taskdef.json": bad}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    let err: ApiErrorBody = round_trip("rejected apply", &body);
    let d = err
        .error
        .diagnostics
        .iter()
        .find(|d| d.file == "./taskdef.json")
        .expect("a diagnostic of the task definition");
    assert!(
        d.line.is_some() && d.path.contains("containerPort"),
        "{d:?}"
    );
}

#[test]
fn the_router_and_the_endpoint_table_agree() {
    let routed: std::collections::BTreeSet<(&str, &str)> =
        crate::api::ROUTES.iter().copied().collect();
    let described: std::collections::BTreeSet<(&str, &str)> = openapi::ENDPOINTS
        .iter()
        .map(|e| (e.method, e.path))
        .collect();
    assert_eq!(routed, described);
}
