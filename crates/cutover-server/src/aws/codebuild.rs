//! AWS CodeBuild over JSON 1.1, onto `cutover-ci`: the stack's build
//! projects (read from the store) and their builds, the same `builds`
//! rows `cutover builds ls` shows. StartBuild is
//! [`cutover_ci::Pipelines::start_build`] and StopBuild
//! [`cutover_ci::Pipelines::stop_build`]; no build runs any other way.
//!
//! A project whose `source` names a repository shows it as a `CODECOMMIT`
//! source (a git URL), one without as `NO_SOURCE`. A running build's
//! `currentPhase` is `BUILD` (the runner records phases when the build
//! ends), a finished one's `COMPLETED`.
//!
//! `environment.privilegedMode` shows the stack's `privilegedMode`; StartBuild
//! refuses `privilegedModeOverride` (only the stack sets it), and
//! `cutover-ci` refuses the other overrides of a privileged project's build.

use std::collections::BTreeMap;

use cutover_api::builds::BuildStatus;
use cutover_aws::arn;
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codebuild::{self as cb, Operation, errors};
use cutover_ci::{EnvValue, PipelineError, StartBuild};
use cutover_store::{BuildProjectRow, BuildRow, pipeline_ops};
use serde::Deserialize;

use super::ecs::at;
use super::wire::{self, Call, Reply, input, output};

/// Most builds ListBuildsForProject reads (newest first).
const MAX_BUILDS: u32 = 10_000;
/// Names or ids in one page of a listing, as CodeBuild pages them.
const PAGE: usize = 100;

/// Runs `op`.
pub(super) async fn call(call: &Call<'_>, op: Operation, body: &[u8]) -> Result<Reply, AwsError> {
    match op {
        Operation::ListProjects => output(&list_projects(call, input(body)?).await?),
        Operation::BatchGetProjects => output(&get_projects(call, input(body)?).await?),
        Operation::StartBuild => output(&start(call, input(body)?).await?),
        Operation::BatchGetBuilds => output(&get_builds(call, input(body)?).await?),
        Operation::ListBuildsForProject => output(&list_builds(call, input(body)?).await?),
        Operation::StopBuild => output(&stop(call, input(body)?).await?),
    }
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::client(errors::INVALID_INPUT_EXCEPTION, message)
}

fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::client(errors::RESOURCE_NOT_FOUND_EXCEPTION, message)
}

/// A refusal of `cutover-ci`, in CodeBuild's vocabulary.
fn refused(e: PipelineError) -> AwsError {
    match e {
        PipelineError::BuildProjectNotFound(_) | PipelineError::BuildNotFound(_) => {
            not_found(e.to_string())
        }
        PipelineError::InvalidBuild(_) => invalid(e.to_string()),
        other => wire::internal(&other, "run a build"),
    }
}

fn page(
    items: Vec<String>,
    token: Option<&str>,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    wire::page(items, PAGE, token, || {
        invalid("The next token was specified in an invalid format.")
    })
}

fn descending(order: Option<cb::SortOrderType>) -> bool {
    order == Some(cb::SortOrderType::Descending)
}

/// The project a name or ARN names.
fn project_name(text: &str) -> Result<&str, AwsError> {
    arn::name_or_arn(text, "codebuild", "project").map_err(|e| invalid(e.to_string()))
}

/// The build an id or ARN names.
fn build_id(text: &str) -> Result<&str, AwsError> {
    arn::name_or_arn(text, "codebuild", "build").map_err(|e| invalid(e.to_string()))
}

async fn list_projects(
    call: &Call<'_>,
    req: cb::ListProjectsInput,
) -> Result<cb::ListProjectsOutput, AwsError> {
    let rows = call
        .st
        .store
        .call(pipeline_ops::list_build_projects)
        .await
        .map_err(wire::store)?;
    let mut rows = rows;
    match req.sort_by {
        Some(cb::ProjectSortByType::CreatedTime | cb::ProjectSortByType::LastModifiedTime) => {
            rows.sort_by_key(|r| r.updated_at)
        }
        _ => rows.sort_by(|a, b| a.name.cmp(&b.name)),
    }
    let mut names: Vec<String> = rows.into_iter().map(|r| r.name).collect();
    if descending(req.sort_order) {
        names.reverse();
    }
    let (names, next) = page(names, req.next_token.as_deref())?;
    Ok(cb::ListProjectsOutput {
        projects: Some(names),
        next_token: next,
    })
}

async fn get_projects(
    call: &Call<'_>,
    req: cb::BatchGetProjectsInput,
) -> Result<cb::BatchGetProjectsOutput, AwsError> {
    if req.names.is_empty() || req.names.len() > 100 {
        return Err(invalid("names must hold between 1 and 100 project names"));
    }
    let names = req
        .names
        .iter()
        .map(|n| project_name(n).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    let (projects, repositories) = call
        .st
        .store
        .call(|c| {
            Ok((
                pipeline_ops::list_build_projects(c)?,
                pipeline_ops::list_repositories(c)?,
            ))
        })
        .await
        .map_err(wire::store)?;
    let urls: BTreeMap<String, String> = repositories
        .into_iter()
        .map(|r| (r.name, r.spec.url))
        .collect();
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for (text, name) in req.names.iter().zip(names) {
        match projects.iter().find(|p| p.name == name) {
            Some(row) => found.push(project(call, row, &urls)),
            None => missing.push(text.clone()),
        }
    }
    Ok(cb::BatchGetProjectsOutput {
        projects: Some(found),
        projects_not_found: Some(missing),
    })
}

/// A stored project in CodeBuild's shape.
fn project(call: &Call<'_>, row: &BuildProjectRow, urls: &BTreeMap<String, String>) -> cb::Project {
    let spec = &row.spec;
    let source = cb::ProjectSource {
        type_: if spec.source.is_some() {
            cb::SourceType::Codecommit
        } else {
            cb::SourceType::NoSource
        },
        location: spec
            .source
            .as_ref()
            .and_then(|s| urls.get(&s.repository).cloned()),
        git_clone_depth: None,
        git_submodules_config: None,
        buildspec: spec
            .buildspec_text
            .clone()
            .or_else(|| spec.buildspec.clone()),
        auth: None,
        report_build_status: None,
        build_status_config: None,
        insecure_ssl: None,
        source_identifier: None,
    };
    let image = spec.environment.image_name().unwrap_or("host").to_string();
    cb::Project {
        name: Some(row.name.clone()),
        arn: Some(call.arn("codebuild", &format!("project/{}", row.name))),
        source: Some(source),
        environment: Some(cb::ProjectEnvironment {
            type_: Some(cb::EnvironmentType::LinuxContainer),
            image: Some(image),
            privileged_mode: Some(spec.environment.privileged_mode()),
            compute_type: Some(cb::ComputeType::BuildGeneral1Small),
            environment_variables: Some(
                spec.environment_variables
                    .iter()
                    .map(|(k, v)| cb::EnvironmentVariable {
                        name: k.clone(),
                        value: v.clone(),
                        type_: Some(cb::EnvironmentVariableType::Plaintext),
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        timeout_in_minutes: Some(
            i32::try_from(spec.timeout_in_minutes.unwrap_or(60)).unwrap_or(i32::MAX),
        ),
        last_modified: Some(at(row.updated_at)),
        ..Default::default()
    }
}

/// StartBuild's `environmentVariablesOverride` as `cutover-ci` takes it.
fn env_override(vars: Vec<cb::EnvironmentVariable>) -> Vec<(String, EnvValue)> {
    vars.into_iter()
        .map(|v| {
            let value = match v.type_ {
                None | Some(cb::EnvironmentVariableType::Plaintext) => EnvValue::Plain(v.value),
                Some(cb::EnvironmentVariableType::ParameterStore) => {
                    EnvValue::ParameterStore(v.value)
                }
                Some(cb::EnvironmentVariableType::SecretsManager) => {
                    EnvValue::SecretsManager(v.value)
                }
            };
            (v.name, value)
        })
        .collect()
}

/// The first StartBuild override Cutover does not apply, if any.
fn unsupported_override(req: &cb::StartBuildInput) -> Option<&'static str> {
    [
        (
            "secondarySourcesOverride",
            req.secondary_sources_override.is_some(),
        ),
        ("sourceTypeOverride", req.source_type_override.is_some()),
        (
            "sourceLocationOverride",
            req.source_location_override.is_some(),
        ),
        ("imageOverride", req.image_override.is_some()),
        (
            "environmentTypeOverride",
            req.environment_type_override.is_some(),
        ),
        (
            "timeoutInMinutesOverride",
            req.timeout_in_minutes_override.is_some(),
        ),
        ("artifactsOverride", req.artifacts_override.is_some()),
        (
            "privilegedModeOverride",
            req.privileged_mode_override.is_some(),
        ),
    ]
    .into_iter()
    .find_map(|(name, set)| set.then_some(name))
}

async fn start(
    call: &Call<'_>,
    req: cb::StartBuildInput,
) -> Result<cb::StartBuildOutput, AwsError> {
    if let Some(field) = unsupported_override(&req) {
        // Only a stack the operator applies makes a project privileged.
        let why = if field == "privilegedModeOverride" {
            ": privilegedMode is set only by the project's stack"
        } else {
            ""
        };
        return Err(invalid(format!("{field} is not supported by Cutover{why}")));
    }
    let project = project_name(&req.project_name)?.to_string();
    let row = call
        .st
        .pipelines
        .start_build(StartBuild {
            project,
            source_version: req.source_version.filter(|v| !v.is_empty()),
            env: env_override(req.environment_variables_override.unwrap_or_default()),
            buildspec_override: req.buildspec_override.filter(|b| !b.trim().is_empty()),
            initiator: format!("codebuild:StartBuild ({})", call.caller.access_key_id),
        })
        .await
        .map_err(refused)?;
    Ok(cb::StartBuildOutput {
        build: Some(build(call, row)),
    })
}

/// What the builder records of a finished build (`BuildRow::detail`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    #[serde(default)]
    phases: Vec<PhaseDetail>,
    #[serde(default)]
    exported_variables: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhaseDetail {
    phase: String,
    status: String,
    #[serde(default)]
    duration_ms: Option<u64>,
}

fn status(s: BuildStatus) -> cb::StatusType {
    match s {
        BuildStatus::InProgress => cb::StatusType::InProgress,
        BuildStatus::Succeeded => cb::StatusType::Succeeded,
        BuildStatus::Failed => cb::StatusType::Failed,
        BuildStatus::Stopped => cb::StatusType::Stopped,
        BuildStatus::TimedOut => cb::StatusType::TimedOut,
        BuildStatus::Fault => cb::StatusType::Fault,
    }
}

/// An enum of the protocol from its wire name, if it is one.
fn from_wire<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::from(text)).ok()
}

/// A build row in CodeBuild's shape.
fn build(call: &Call<'_>, row: BuildRow) -> cb::Build {
    let detail: Detail = serde_json::from_value(row.detail.clone()).unwrap_or_default();
    let phases = detail
        .phases
        .iter()
        .filter_map(|p| {
            Some(cb::BuildPhase {
                phase_type: Some(from_wire(&p.phase)?),
                phase_status: from_wire(&p.status),
                duration_in_seconds: p.duration_ms.map(|ms| (ms / 1000) as i64),
                ..Default::default()
            })
        })
        .collect();
    let finished = row.finished_at.is_some();
    cb::Build {
        arn: Some(call.arn("codebuild", &format!("build/{}", row.id))),
        id: Some(row.id.clone()),
        build_number: Some(row.number as i64),
        start_time: Some(at(row.started_at)),
        end_time: row.finished_at.map(at),
        current_phase: Some(if finished { "COMPLETED" } else { "BUILD" }.into()),
        build_status: Some(status(row.status)),
        source_version: row.source.clone(),
        resolved_source_version: row.source.clone(),
        project_name: Some(row.project.clone()),
        phases: Some(phases),
        logs: Some(cb::LogsLocation {
            deep_link: Some(format!(
                "{}/v1/builds/{}/logs",
                call.st.aws.endpoint, row.id
            )),
            ..Default::default()
        }),
        build_complete: Some(finished),
        initiator: Some(row.initiator.clone()),
        exported_environment_variables: Some(
            detail
                .exported_variables
                .into_iter()
                .map(|(k, v)| cb::ExportedEnvironmentVariable {
                    name: Some(k),
                    value: Some(v),
                })
                .collect(),
        ),
        ..Default::default()
    }
}

async fn get_builds(
    call: &Call<'_>,
    req: cb::BatchGetBuildsInput,
) -> Result<cb::BatchGetBuildsOutput, AwsError> {
    if req.ids.is_empty() || req.ids.len() > 100 {
        return Err(invalid("ids must hold between 1 and 100 build ids"));
    }
    let ids = req
        .ids
        .iter()
        .map(|i| build_id(i).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = call
        .st
        .store
        .call(move |c| {
            ids.iter()
                .map(|id| pipeline_ops::build(c, id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(wire::store)?;
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for (text, row) in req.ids.iter().zip(rows) {
        match row {
            Some(row) => found.push(build(call, row)),
            None => missing.push(text.clone()),
        }
    }
    Ok(cb::BatchGetBuildsOutput {
        builds: Some(found),
        builds_not_found: Some(missing),
    })
}

async fn list_builds(
    call: &Call<'_>,
    req: cb::ListBuildsForProjectInput,
) -> Result<cb::ListBuildsForProjectOutput, AwsError> {
    let project = project_name(&req.project_name)?.to_string();
    let rows = call
        .st
        .store
        .call(move |c| {
            if pipeline_ops::build_project(c, &project)?.is_none() {
                return Ok(None);
            }
            pipeline_ops::list_builds(c, Some(&project), MAX_BUILDS).map(Some)
        })
        .await
        .map_err(wire::store)?
        .ok_or_else(|| not_found(format!("build project {:?} not found", req.project_name)))?;
    // Newest first, as CodeBuild's default (DESCENDING) order.
    let mut ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
    if req.sort_order == Some(cb::SortOrderType::Ascending) {
        ids.reverse();
    }
    let (ids, next) = page(ids, req.next_token.as_deref())?;
    Ok(cb::ListBuildsForProjectOutput {
        ids: Some(ids),
        next_token: next,
    })
}

async fn stop(call: &Call<'_>, req: cb::StopBuildInput) -> Result<cb::StopBuildOutput, AwsError> {
    let id = build_id(&req.id)?;
    let row = call.st.pipelines.stop_build(id).await.map_err(refused)?;
    Ok(cb::StopBuildOutput {
        build: Some(build(call, row)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_keep_their_type() {
        let var = |name: &str, value: &str, type_| cb::EnvironmentVariable {
            name: name.into(),
            value: value.into(),
            type_,
        };
        assert_eq!(
            env_override(vec![
                var("A", "1", None),
                var("B", "2", Some(cb::EnvironmentVariableType::Plaintext)),
                var("C", "/p", Some(cb::EnvironmentVariableType::ParameterStore)),
                var(
                    "D",
                    "s:k",
                    Some(cb::EnvironmentVariableType::SecretsManager)
                ),
            ]),
            vec![
                ("A".into(), EnvValue::Plain("1".into())),
                ("B".into(), EnvValue::Plain("2".into())),
                ("C".into(), EnvValue::ParameterStore("/p".into())),
                ("D".into(), EnvValue::SecretsManager("s:k".into())),
            ]
        );
    }

    #[test]
    fn overrides_cutover_does_not_apply_are_named() {
        let mut req = cb::StartBuildInput {
            project_name: "p".into(),
            source_version: Some("main".into()),
            buildspec_override: Some("version: 0.2".into()),
            ..Default::default()
        };
        assert_eq!(unsupported_override(&req), None);
        req.privileged_mode_override = Some(false);
        assert_eq!(unsupported_override(&req), Some("privilegedModeOverride"));
        req.image_override = Some("node:20".into());
        assert_eq!(unsupported_override(&req), Some("imageOverride"));
    }

    #[test]
    fn projects_and_builds_are_read_from_names_and_arns() {
        assert_eq!(project_name("app").unwrap(), "app");
        assert_eq!(
            project_name("arn:aws:codebuild:us-east-1:123456789012:project/app").unwrap(),
            "app"
        );
        assert_eq!(
            build_id("arn:aws:codebuild:us-east-1:123456789012:build/app:0f1e").unwrap(),
            "app:0f1e"
        );
        assert_eq!(
            project_name("arn:aws:ecs:us-east-1:1:service/default/web")
                .unwrap_err()
                .code,
            errors::INVALID_INPUT_EXCEPTION
        );
    }

    #[test]
    fn recorded_phases_read_as_codebuild_phases() {
        let detail: Detail = serde_json::from_value(serde_json::json!({
            "phases": [{"phase": "BUILD", "status": "SUCCEEDED", "durationMs": 2500}],
            "exportedVariables": {"OUT": "x"},
        }))
        .unwrap();
        assert_eq!(detail.phases[0].phase, "BUILD");
        assert_eq!(detail.exported_variables["OUT"], "x");
        let phase: cb::BuildPhaseType =
            serde_json::from_value(serde_json::Value::from("PRE_BUILD")).unwrap();
        assert_eq!(phase, cb::BuildPhaseType::PreBuild);
        assert_eq!(status(BuildStatus::TimedOut), cb::StatusType::TimedOut);
    }
}
