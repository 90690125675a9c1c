//! The OpenAPI 3.1 document of the API, generated: schemas come from the
//! types of this crate (utoipa's `ToSchema`), operations from [`ENDPOINTS`],
//! which names each route's request and response type. The server checks
//! that its router and [`ENDPOINTS`] list the same routes.

use crate::query::{
    BuildListQuery, BuildLogQuery, DeploymentListQuery, EventsQuery, LogsQuery,
    TaskDefinitionListQuery, TaskListQuery,
};
use crate::stream::{self, StreamQuery};
use crate::{
    access_keys, agents, alarms, apply, builds, deployments, error, host_deployments, pipelines,
    registry, services,
};
use crate::{task_definitions as taskdefs, tasks};
use std::borrow::Cow;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{OpenApi as Document, PathsBuilder, Ref, Required};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// The name of a type's schema.
type SchemaName = fn() -> Cow<'static, str>;

/// The query parameters of a type.
type QueryParams = fn() -> Vec<Parameter>;

fn query<T: IntoParams>() -> Vec<Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

/// What a route answers on success.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// JSON of the named type, with this status.
    Json(u16, SchemaName),
    /// Plain text (logs, possibly streamed).
    Text,
    /// The OpenAPI document itself.
    Document,
    /// Server-sent events, each `data:` the JSON of the named type.
    EventStream(SchemaName),
}

/// One route of the API.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// `get`, `post`, `put` or `delete`.
    pub method: &'static str,
    /// The path, with `{param}` placeholders.
    pub path: &'static str,
    /// One line for people.
    pub summary: &'static str,
    /// The JSON body it takes.
    pub request: Option<SchemaName>,
    /// Whether the body may be left out.
    pub request_optional: bool,
    /// Its query parameters.
    pub query: Option<QueryParams>,
    /// What it answers.
    pub answer: Answer,
}

const fn ep(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Option<SchemaName>,
    answer: Answer,
) -> Endpoint {
    Endpoint {
        method,
        path,
        summary,
        request,
        request_optional: false,
        query: None,
        answer,
    }
}

macro_rules! name {
    ($t:ty) => {
        <$t as ToSchema>::name as SchemaName
    };
}
macro_rules! ok {
    ($t:ty) => {
        Answer::Json(200, name!($t))
    };
    ($status:literal, $t:ty) => {
        Answer::Json($status, name!($t))
    };
}

/// Every route of the API with its request and response types.
pub const ENDPOINTS: &[Endpoint] = &[
    ep(
        "get",
        "/v1/openapi.json",
        "This document",
        None,
        Answer::Document,
    ),
    ep(
        "get",
        "/v1/status",
        "Server status",
        None,
        ok!(services::ServerStatus),
    ),
    Endpoint {
        query: Some(query::<TaskDefinitionListQuery>),
        ..ep(
            "get",
            "/v1/task-definitions",
            "List task definition revisions (?family=)",
            None,
            ok!(taskdefs::TaskDefinitionList),
        )
    },
    ep(
        "post",
        "/v1/task-definitions",
        "Register a task definition file",
        Some(name!(taskdefs::RegisterTaskDefinitionRequest)),
        ok!(taskdefs::RegisterTaskDefinitionResponse),
    ),
    ep(
        "get",
        "/v1/task-definitions/{name}",
        "Describe family[:revision]",
        None,
        ok!(taskdefs::TaskDefinitionEnvelope),
    ),
    ep(
        "post",
        "/v1/apply",
        "Apply a stack file (or plan it with dryRun)",
        Some(name!(apply::ApplyRequest)),
        ok!(apply::ApplyResponse),
    ),
    ep(
        "get",
        "/v1/services",
        "List services",
        None,
        ok!(services::ServiceList),
    ),
    ep(
        "get",
        "/v1/services/{name}",
        "Describe a service with its events and tasks",
        None,
        ok!(services::ServiceEnvelope),
    ),
    ep(
        "delete",
        "/v1/services/{name}",
        "Delete a service (drains its tasks)",
        None,
        ok!(202, services::ServiceEnvelope),
    ),
    ep(
        "put",
        "/v1/services/{name}/desired-count",
        "Scale a service",
        Some(name!(services::ScaleRequest)),
        ok!(services::ServiceEnvelope),
    ),
    Endpoint {
        query: Some(query::<EventsQuery>),
        ..ep(
            "get",
            "/v1/services/{name}/events",
            "A service's events (?limit=)",
            None,
            ok!(services::EventList),
        )
    },
    Endpoint {
        query: Some(query::<LogsQuery>),
        ..ep(
            "get",
            "/v1/services/{name}/logs",
            "A service's tasks' logs, merged (?follow=true)",
            None,
            Answer::Text,
        )
    },
    Endpoint {
        query: Some(query::<TaskListQuery>),
        ..ep(
            "get",
            "/v1/tasks",
            "List tasks (?service=&all=&limit=)",
            None,
            ok!(tasks::TaskList),
        )
    },
    ep(
        "get",
        "/v1/tasks/{id}",
        "Describe a task",
        None,
        ok!(tasks::TaskEnvelope),
    ),
    Endpoint {
        query: Some(query::<LogsQuery>),
        ..ep(
            "get",
            "/v1/tasks/{id}/logs",
            "A task's log (?follow=true)",
            None,
            Answer::Text,
        )
    },
    Endpoint {
        query: Some(query::<DeploymentListQuery>),
        ..ep(
            "get",
            "/v1/deployments",
            "List deployments (?service=&limit=)",
            None,
            ok!(deployments::DeploymentList),
        )
    },
    ep(
        "post",
        "/v1/deployments",
        "Create a deployment",
        Some(name!(deployments::CreateDeploymentRequest)),
        ok!(201, deployments::DeploymentEnvelope),
    ),
    ep(
        "get",
        "/v1/deployments/{id}",
        "Get a deployment with its events",
        None,
        ok!(deployments::DeploymentEnvelope),
    ),
    Endpoint {
        request_optional: true,
        ..ep(
            "post",
            "/v1/deployments/{id}/stop",
            "Stop a deployment",
            Some(name!(deployments::StopDeploymentRequest)),
            ok!(deployments::DeploymentEnvelope),
        )
    },
    ep(
        "post",
        "/v1/deployments/{id}/continue",
        "Continue a deployment waiting for reroute",
        None,
        ok!(deployments::DeploymentEnvelope),
    ),
    ep(
        "put",
        "/v1/deployments/{id}/lifecycle-hooks/{execution_id}",
        "Report a lifecycle hook's result",
        Some(name!(deployments::HookStatusRequest)),
        ok!(deployments::HookStatusResponse),
    ),
    ep(
        "post",
        "/v1/services/{name}/rollback",
        "Roll a service back (202 instant, 201 by redeploy)",
        None,
        ok!(202, deployments::DeploymentEnvelope),
    ),
    ep(
        "get",
        "/v1/alarms",
        "List alarms",
        None,
        ok!(alarms::AlarmList),
    ),
    ep(
        "get",
        "/v1/alarms/{name}",
        "Describe an alarm with its history",
        None,
        ok!(alarms::AlarmDescription),
    ),
    ep(
        "get",
        "/v1/alarms/{name}/history",
        "An alarm's history",
        None,
        ok!(alarms::AlarmHistory),
    ),
    ep(
        "put",
        "/v1/alarms/{name}/state",
        "Set an alarm's state (drills)",
        Some(name!(alarms::SetAlarmStateRequest)),
        ok!(alarms::SetAlarmStateResponse),
    ),
    Endpoint {
        query: Some(query::<StreamQuery>),
        ..ep(
            "get",
            "/v1/events/stream",
            "Live snapshots of a topic as server-sent events (?topic=)",
            None,
            Answer::EventStream(name!(stream::StreamEvent)),
        )
    },
    ep(
        "get",
        "/v1/dataplane",
        "The proxy's status and health",
        None,
        ok!(alarms::DataPlaneStatus),
    ),
    ep(
        "get",
        "/v1/pipelines",
        "List pipelines",
        None,
        ok!(pipelines::PipelineList),
    ),
    ep(
        "get",
        "/v1/pipelines/{name}",
        "Describe a pipeline",
        None,
        ok!(pipelines::PipelineDescription),
    ),
    ep(
        "get",
        "/v1/pipelines/{name}/executions",
        "List a pipeline's executions",
        None,
        ok!(pipelines::ExecutionList),
    ),
    ep(
        "post",
        "/v1/pipelines/{name}/executions",
        "Start an execution",
        Some(name!(pipelines::StartExecutionRequest)),
        ok!(201, pipelines::StartExecutionResponse),
    ),
    ep(
        "get",
        "/v1/pipelines/{name}/executions/{id}",
        "Get an execution",
        None,
        ok!(pipelines::ExecutionEnvelope),
    ),
    ep(
        "post",
        "/v1/pipelines/{name}/executions/{id}/stop",
        "Stop an execution",
        Some(name!(pipelines::StopExecutionRequest)),
        ok!(pipelines::StopExecutionResponse),
    ),
    ep(
        "post",
        "/v1/pipelines/{name}/executions/{id}/retry",
        "Retry a failed stage",
        Some(name!(pipelines::RetryStageRequest)),
        ok!(pipelines::RetryStageResponse),
    ),
    ep(
        "post",
        "/v1/pipelines/{name}/approvals",
        "Approve or reject a manual approval",
        Some(name!(pipelines::ApprovalRequest)),
        ok!(pipelines::ApprovalResponse),
    ),
    ep(
        "put",
        "/v1/pipelines/{name}/transitions/{stage}",
        "Enable or disable a stage's inbound transition",
        Some(name!(pipelines::TransitionRequest)),
        ok!(pipelines::TransitionResponse),
    ),
    ep(
        "post",
        "/v1/webhooks/{repository}",
        "A forge's push (verified by its signature, not the token)",
        None,
        ok!(pipelines::WebhookResponse),
    ),
    ep(
        "get",
        "/v1/access-keys",
        "List AWS access keys (no secrets)",
        None,
        ok!(access_keys::AccessKeyList),
    ),
    ep(
        "post",
        "/v1/access-keys",
        "Create an AWS access key (the secret is shown once)",
        Some(name!(access_keys::CreateAccessKeyRequest)),
        ok!(access_keys::CreateAccessKeyResponse),
    ),
    ep(
        "delete",
        "/v1/access-keys/{id}",
        "Delete an AWS access key",
        None,
        ok!(access_keys::DeleteAccessKeyResponse),
    ),
    ep(
        "post",
        "/v1/registry/gc",
        "Collect the registry's garbage now (unreferenced blobs, stale uploads)",
        None,
        ok!(registry::GcResponse),
    ),
    ep(
        "get",
        "/v1/agents",
        "List registered hosts (agents)",
        None,
        ok!(agents::AgentList),
    ),
    ep(
        "get",
        "/v1/agents/{name}",
        "Describe a registered host",
        None,
        ok!(agents::AgentView),
    ),
    ep(
        "delete",
        "/v1/agents/{name}",
        "Deregister a host (its key and open commands go)",
        None,
        ok!(agents::DeregisterAgentResponse),
    ),
    ep(
        "post",
        "/v1/agents/{name}/key",
        "Issue a host's agent key (shown once; replaces an earlier one)",
        None,
        ok!(agents::AgentKey),
    ),
    ep(
        "post",
        "/v1/agents/register",
        "An agent registers its host (agent key, not the API token)",
        Some(name!(agents::AgentRegistration)),
        ok!(agents::AgentView),
    ),
    Endpoint {
        query: Some(query::<agents::PollQuery>),
        ..ep(
            "get",
            "/v1/agents/{name}/poll",
            "An agent's long poll for commands (agent key)",
            None,
            ok!(agents::AgentPoll),
        )
    },
    ep(
        "post",
        "/v1/agents/{name}/results",
        "An agent reports a command's result, recorded once (agent key)",
        Some(name!(agents::CommandResult)),
        ok!(agents::ResultAck),
    ),
    ep(
        "get",
        "/v1/agents/bundles/{digest}",
        "A revision's bundle, by digest (agent key; bytes)",
        None,
        Answer::Text,
    ),
    Endpoint {
        query: Some(query::<registry::ScanQuery>),
        ..ep(
            "get",
            "/v1/registry/scans",
            "An image's latest scan and findings (?repository=&reference=&wait=SECONDS)",
            None,
            ok!(registry::ScanView),
        )
    },
    ep(
        "post",
        "/v1/registry/scans",
        "Scan an image of the registry now",
        Some(name!(registry::StartScanRequest)),
        ok!(registry::ScanView),
    ),
    ep(
        "get",
        "/v1/vulnerabilities",
        "The advisory database: version, size, update time",
        None,
        ok!(registry::AdvisoryStatus),
    ),
    ep(
        "post",
        "/v1/vulnerabilities/import",
        "Merge OSV advisories (body: a zip archive of OSV JSON records, as OSV's all.zip)",
        None,
        ok!(registry::ImportResponse),
    ),
    ep(
        "post",
        "/v1/registry/lifecycle",
        "Run every repository's lifecycle policy now (deletes what a preview lists)",
        None,
        ok!(registry::LifecycleRunResponse),
    ),
    Endpoint {
        query: Some(query::<host_deployments::CreateHostDeploymentQuery>),
        ..ep(
            "post",
            "/v1/host-deployments",
            "Deploy a revision to a deployment group's hosts (body: the bundle's bytes)",
            None,
            ok!(201, host_deployments::HostDeploymentView),
        )
    },
    Endpoint {
        query: Some(query::<host_deployments::ListHostDeploymentsQuery>),
        ..ep(
            "get",
            "/v1/host-deployments",
            "Host deployments, newest first",
            None,
            ok!(host_deployments::HostDeploymentList),
        )
    },
    ep(
        "get",
        "/v1/host-deployments/{id}",
        "A host deployment, host by host",
        None,
        ok!(host_deployments::HostDeploymentView),
    ),
    Endpoint {
        query: Some(query::<host_deployments::StopHostDeploymentQuery>),
        ..ep(
            "post",
            "/v1/host-deployments/{id}/stop",
            "Stop a host deployment (?rollback=true to roll back)",
            None,
            ok!(host_deployments::HostDeploymentView),
        )
    },
    Endpoint {
        query: Some(query::<BuildListQuery>),
        ..ep(
            "get",
            "/v1/builds",
            "List builds (?project=&limit=)",
            None,
            ok!(builds::BuildList),
        )
    },
    ep(
        "get",
        "/v1/builds/{id}",
        "Get a build",
        None,
        ok!(builds::BuildEnvelope),
    ),
    Endpoint {
        query: Some(query::<BuildLogQuery>),
        ..ep(
            "get",
            "/v1/builds/{id}/logs",
            "A build's log from ?offset=",
            None,
            ok!(builds::BuildLog),
        )
    },
];

/// Every schema of the document (utoipa adds the types they refer to).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cutover control plane",
        description = "The `/v1/` API of `cutover server`."
    ),
    components(schemas(
        error::ApiErrorBody,
        services::ServerStatus,
        services::ServiceList,
        services::ServiceEnvelope,
        services::ScaleRequest,
        services::EventList,
        tasks::TaskList,
        tasks::TaskEnvelope,
        taskdefs::RegisterTaskDefinitionRequest,
        taskdefs::RegisterTaskDefinitionResponse,
        taskdefs::TaskDefinitionList,
        taskdefs::TaskDefinitionEnvelope,
        apply::ApplyRequest,
        apply::ApplyResponse,
        deployments::CreateDeploymentRequest,
        deployments::DeploymentList,
        deployments::DeploymentEnvelope,
        deployments::StopDeploymentRequest,
        deployments::HookStatusRequest,
        deployments::HookStatusResponse,
        alarms::AlarmList,
        alarms::AlarmDescription,
        alarms::AlarmHistory,
        alarms::SetAlarmStateRequest,
        alarms::SetAlarmStateResponse,
        alarms::DataPlaneStatus,
        stream::StreamEvent,
        pipelines::PipelineList,
        pipelines::PipelineDescription,
        pipelines::ExecutionList,
        pipelines::ExecutionEnvelope,
        pipelines::StartExecutionRequest,
        pipelines::StartExecutionResponse,
        pipelines::StopExecutionRequest,
        pipelines::StopExecutionResponse,
        pipelines::RetryStageRequest,
        pipelines::RetryStageResponse,
        pipelines::ApprovalRequest,
        pipelines::ApprovalResponse,
        pipelines::TransitionRequest,
        pipelines::TransitionResponse,
        pipelines::WebhookResponse,
        builds::BuildList,
        builds::BuildEnvelope,
        builds::BuildLog,
        access_keys::AccessKeyList,
        access_keys::CreateAccessKeyRequest,
        access_keys::CreateAccessKeyResponse,
        access_keys::DeleteAccessKeyResponse,
        registry::GcResponse,
        agents::AgentList,
        agents::AgentView,
        agents::AgentRegistration,
        agents::DeregisterAgentResponse,
        agents::AgentKey,
        agents::AgentPoll,
        agents::AgentCommand,
        agents::BundleRef,
        agents::BundleFormat,
        agents::CommandResult,
        agents::CommandStatus,
        agents::ResultAck,
        registry::ScanStatus,
        registry::StartScanRequest,
        registry::ScanView,
        registry::ImportResponse,
        registry::AdvisoryStatus,
        registry::LifecycleRunResponse,
        registry::LifecycleRun,
        registry::ExpiredImage,
        host_deployments::HostDeploymentView,
        host_deployments::HostDeploymentSummary,
        host_deployments::HostDeploymentList,
        host_deployments::HostTargetView,
        host_deployments::HostTargetStatus,
        host_deployments::HostEventView,
        host_deployments::HostEventStatus,
    ))
)]
struct Components;

fn json_content(schema: &str) -> utoipa::openapi::content::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(schema)))
        .build()
}

fn method_of(m: &str) -> HttpMethod {
    match m {
        "post" => HttpMethod::Post,
        "put" => HttpMethod::Put,
        "delete" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The path's `{param}` names.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
}

/// The OpenAPI document of the API.
pub fn document() -> Document {
    let mut doc = Components::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let error = ResponseBuilder::new()
        .description("An error: message, and for a rejected file (422) its diagnostics")
        .content("application/json", json_content("ApiErrorBody"))
        .build();
    let mut paths = PathsBuilder::new();
    for e in ENDPOINTS {
        let mut op = OperationBuilder::new()
            .summary(Some(e.summary))
            .operation_id(Some(format!("{} {}", e.method, e.path)));
        for p in path_params(e.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(p)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        for p in e.query.map(|q| q()).unwrap_or_default() {
            op = op.parameter(p);
        }
        if let Some(req) = e.request {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", json_content(&req()))
                    .required(Some(if e.request_optional {
                        Required::False
                    } else {
                        Required::True
                    }))
                    .build(),
            ));
        }
        let (status, ok) = match e.answer {
            Answer::Json(status, name) => (
                status,
                ResponseBuilder::new()
                    .description("Success")
                    .content("application/json", json_content(&name()))
                    .build(),
            ),
            Answer::Text => (
                200,
                ResponseBuilder::new()
                    .description("Plain text, streamed while following")
                    .content(
                        "text/plain",
                        ContentBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .build(),
                    )
                    .build(),
            ),
            Answer::EventStream(name) => (
                200,
                ResponseBuilder::new()
                    .description("Server-sent events; each `data:` is this JSON")
                    .content("text/event-stream", json_content(&name()))
                    .build(),
            ),
            Answer::Document => (
                200,
                ResponseBuilder::new()
                    .description("This OpenAPI document")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                            .build(),
                    )
                    .build(),
            ),
        };
        op = op
            .response(status.to_string(), ok)
            .response("default", error.clone());
        paths = paths.path(e.path, PathItem::new(method_of(e.method), op.build()));
    }
    doc.paths = paths.build();
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_referenced_schema_is_in_the_document() {
        let doc = serde_json::to_value(document()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let text = doc.to_string();
        let mut rest = text.as_str();
        let mut refs = 0;
        while let Some(i) = rest.find("#/components/schemas/") {
            rest = &rest[i + "#/components/schemas/".len()..];
            let name: String = rest.chars().take_while(|c| *c != '"').collect();
            assert!(
                schemas.contains_key(&name),
                "{name} is referenced but absent"
            );
            refs += 1;
        }
        assert!(refs > 50, "{refs}");
    }

    #[test]
    fn query_parameters_are_documented() {
        let doc = serde_json::to_value(document()).unwrap();
        let names = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names("/v1/tasks"), ["service", "all", "limit"]);
        assert_eq!(names("/v1/builds/{id}/logs"), ["offset"]);
        assert!(names("/v1/services").is_empty());
    }

    #[test]
    fn the_diagnostic_schema_has_the_fields_of_the_diagnostic() {
        let doc = serde_json::to_value(document()).unwrap();
        let props = doc["components"]["schemas"]["Diagnostic"]["properties"]
            .as_object()
            .unwrap();
        let mut documented: Vec<&String> = props.keys().collect();
        documented.sort();
        let d = cutover_spec::diag::Diagnostic {
            severity: cutover_spec::diag::Severity::Error,
            file: "f".into(),
            line: Some(1),
            column: Some(2),
            path: "p".into(),
            message: "m".into(),
        };
        let v = serde_json::to_value(d).unwrap();
        let mut emitted: Vec<&String> = v.as_object().unwrap().keys().collect();
        emitted.sort();
        assert_eq!(documented, emitted);
    }
}
