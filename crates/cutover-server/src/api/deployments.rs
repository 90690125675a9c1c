//! Deployments: create (the counterpart of `aws ecs deploy
//! --codedeploy-appspec`), list, get, stop, continue, rollback, and the
//! CodeDeploy hook callback.

use super::{ApiError, ApiResult, AppState};
use crate::deploy::DeployRequest;
use crate::files::{self, diagnostics_json};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use cutover_deploy::Input;
use cutover_deploy::bluegreen::HookOutcome;
use cutover_store::{DeploymentRow, ops};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A file as the user has it.
#[derive(Debug, Deserialize)]
pub(crate) struct FileBody {
    file: String,
    content: String,
}

/// Where the new revision comes from.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum TaskDefSource {
    /// `family[:revision]` already registered.
    Name(String),
    /// A task definition file to register.
    File(FileBody),
}

/// Body of `POST /v1/deployments`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateRequest {
    service: String,
    task_definition: Option<TaskDefSource>,
    appspec: Option<FileBody>,
    deployment_config: Option<String>,
    /// container name -> image
    #[serde(default)]
    images: BTreeMap<String, String>,
    /// container name -> (variable -> value)
    #[serde(default)]
    env: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default = "default_started_by")]
    started_by: String,
}

fn default_started_by() -> String {
    "api".into()
}

pub(crate) async fn create(
    State(st): State<AppState>,
    Json(req): Json<CreateRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let svc = st
        .store
        .with(|c| ops::service(c, &req.service))?
        .ok_or_else(|| ApiError::not_found(format!("service {:?}", req.service)))?;
    let mut warnings = Vec::new();
    let (family, mut body) = match &req.task_definition {
        Some(TaskDefSource::File(f)) => {
            let td = files::task_definition(&f.file, &f.content)?;
            warnings.extend(td.warnings);
            (td.family, td.body)
        }
        Some(TaskDefSource::Name(name)) => {
            let (family, rev) = super::task_definitions::parse_name(name)?;
            let row = st
                .store
                .with(|c| ops::task_definition(c, family, rev))?
                .ok_or_else(|| ApiError::not_found(format!("task definition {name}")))?;
            (row.family, row.body)
        }
        None => {
            let (family, rev) = super::task_definitions::parse_name(&svc.task_definition)?;
            let row = st
                .store
                .with(|c| ops::task_definition(c, family, rev))?
                .ok_or_else(|| {
                    ApiError::not_found(format!("task definition {}", svc.task_definition))
                })?;
            (row.family, row.body)
        }
    };
    override_containers(&mut body, &req.images, &req.env)?;
    let mut appspec_hooks = BTreeMap::new();
    if let Some(a) = &req.appspec {
        let parsed = cutover_spec::appspec::parse_appspec(&a.file, &a.content)
            .map_err(|e| files::rejected(&a.file, e))?;
        warnings.extend(parsed.warnings);
        let ts = parsed.value.target_service();
        let lb = svc.spec.load_balancer.as_ref();
        let info = &ts.properties.load_balancer_info;
        if let Some(lb) = lb
            && lb.container_name != info.container_name
        {
            return Err(ApiError::bad_request(format!(
                "{}: Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerName is {:?} but service {:?} routes to container {:?}",
                a.file, info.container_name, svc.name, lb.container_name
            )));
        }
        for h in &parsed.value.hooks {
            appspec_hooks.insert(h.event.as_str().to_string(), h.function.clone());
        }
    }
    let row = st
        .store
        .with(|c| ops::register_task_definition(c, &family, &body, st.clock.now_ms(), false))?
        .0;
    let created = st.deployer.create(DeployRequest {
        service: svc.name.clone(),
        task_definition: row.name(),
        config: req.deployment_config.clone(),
        appspec_hooks,
        started_by: req.started_by.clone(),
        rollback_of: None,
    })?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"deployment": view(&st, &created, false)?, "warnings": diagnostics_json(&warnings)}),
        ),
    ))
}

/// Applies `--image CONTAINER=IMAGE` and `--env CONTAINER:KEY=VALUE`.
fn override_containers(
    body: &mut Value,
    images: &BTreeMap<String, String>,
    env: &BTreeMap<String, BTreeMap<String, String>>,
) -> ApiResult<()> {
    let containers = body["containerDefinitions"]
        .as_array_mut()
        .ok_or_else(|| ApiError::bad_request("task definition has no containerDefinitions"))?;
    let names: Vec<String> = containers
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    for name in images.keys().chain(env.keys()) {
        if !names.contains(name) {
            return Err(ApiError::bad_request(format!(
                "no container named {name:?} in the task definition (containers: {})",
                names.join(", ")
            )));
        }
    }
    for c in containers.iter_mut() {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        if let Some(image) = images.get(&name) {
            c["image"] = Value::String(image.clone());
        }
        if let Some(vars) = env.get(&name) {
            let list = c["environment"].as_array().cloned().unwrap_or_default();
            let mut merged: BTreeMap<String, Value> = list
                .into_iter()
                .filter_map(|kv| Some((kv["name"].as_str()?.to_string(), kv)))
                .collect();
            for (k, v) in vars {
                merged.insert(k.clone(), json!({"name": k, "value": v}));
            }
            c["environment"] = Value::Array(merged.into_values().collect());
        }
    }
    Ok(())
}

/// A deployment as the API shows it: the row, its lifecycle and traffic
/// from the engine state, and (optionally) its history.
pub(crate) fn view(st: &AppState, d: &DeploymentRow, with_events: bool) -> ApiResult<Value> {
    let mut v = serde_json::to_value(d).map_err(anyhow::Error::from)?;
    let engine = v
        .as_object_mut()
        .and_then(|o| o.remove("engine"))
        .unwrap_or(Value::Null);
    if let Ok(bg) = serde_json::from_value::<cutover_deploy::BlueGreen>(engine) {
        v["lifecycle"] = bg
            .lifecycle()
            .iter()
            .map(|r| {
                json!({
                    "event": r.event.to_string(),
                    "status": format!("{:?}", r.status),
                    "startedAt": r.started_at,
                    "endedAt": r.ended_at,
                    "message": r.message,
                })
            })
            .collect();
        let t = bg.traffic();
        v["traffic"] = json!({
            "prodGreenPercent": t.prod_green_percent,
            "testOnGreen": t.test_on_green,
            "pendingPercent": t.pending.as_ref().map(|p| p.prod_green_percent),
        });
        v["alarms"] = json!(bg.spec().alarms);
        v["routing"] = serde_json::to_value(bg.spec().routing).map_err(anyhow::Error::from)?;
        v["nextWakeup"] = json!(bg.next_wakeup());
    }
    if with_events {
        let events = st
            .store
            .with(|c| ops::events(c, &format!("deployment/{}", d.id), 500))?;
        v["events"] = serde_json::to_value(
            events
                .into_iter()
                .filter(|e| !e.subject.ends_with("/appspec-hooks"))
                .collect::<Vec<_>>(),
        )
        .map_err(anyhow::Error::from)?;
    }
    Ok(v)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    service: Option<String>,
    limit: Option<u32>,
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let rows = st.store.with(|c| {
        ops::list_deployments(c, q.service.as_deref(), q.limit.unwrap_or(50).min(1000))
    })?;
    let views = rows
        .iter()
        .map(|d| view(&st, d, false))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({"deployments": views})))
}

fn load(st: &AppState, id: &str) -> ApiResult<DeploymentRow> {
    st.store
        .with(|c| ops::deployment(c, id))?
        .ok_or_else(|| ApiError::not_found(format!("deployment {id:?}")))
}

pub(crate) async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({"deployment": view(&st, &load(&st, &id)?, true)?}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct StopRequest {
    /// Roll production back to the original tasks; absent: the deployment's
    /// DEPLOYMENT_STOP_ON_REQUEST setting decides.
    rollback: Option<bool>,
}

pub(crate) async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<StopRequest>>,
) -> ApiResult<Json<Value>> {
    let d = load(&st, &id)?;
    let rollback = body.map(|b| b.0.rollback).unwrap_or_default();
    if d.kind != "BLUE_GREEN" {
        return Err(ApiError::bad_request(format!(
            "deployment {id} is a {} deployment; only blue/green deployments can be stopped",
            d.kind
        )));
    }
    if st.deployer.cancel_queued(&id)? {
        let d = load(&st, &id)?;
        return Ok(Json(
            json!({"deployment": view(&st, &d, false)?, "requested": "stop"}),
        ));
    }
    st.deployer.send(&id, Input::Stop { rollback })?;
    Ok(Json(
        json!({"deployment": view(&st, &d, false)?, "requested": "stop"}),
    ))
}

pub(crate) async fn continue_(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = load(&st, &id)?;
    st.deployer.send(&id, Input::Continue)?;
    Ok(Json(
        json!({"deployment": view(&st, &d, false)?, "requested": "continue"}),
    ))
}

/// Rolls a service back: instantly while its last deployment is still in
/// its termination wait (the original tasks still run), else by deploying
/// the revision that ran before it.
pub(crate) async fn rollback_service(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let deployments = st
        .store
        .with(|c| ops::list_deployments(c, Some(&name), 50))?;
    if let Some(d) = deployments
        .iter()
        .find(|d| d.finished_at.is_none() && d.kind == "BLUE_GREEN" && d.status != "Queued")
    {
        st.deployer.send(&d.id, Input::Rollback)?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"deployment": view(&st, d, false)?, "requested": "rollback"})),
        ));
    }
    let last = deployments
        .iter()
        .find(|d| d.status == "Succeeded" && d.kind != "ROLLBACK")
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "service {name:?} has no succeeded deployment to roll back"
            ))
        })?;
    let created = st.deployer.create(DeployRequest {
        service: name.clone(),
        task_definition: last.from_task_definition.clone(),
        config: None,
        appspec_hooks: BTreeMap::new(),
        started_by: format!("rollback of {}", last.id),
        rollback_of: Some(last.id.clone()),
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"deployment": view(&st, &created, false)?, "requested": "redeploy"})),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HookStatusRequest {
    /// Succeeded or Failed (CodeDeploy's PutLifecycleEventHookExecutionStatus).
    status: String,
}

pub(crate) async fn hook_status(
    State(st): State<AppState>,
    Path((id, execution_id)): Path<(String, String)>,
    Json(req): Json<HookStatusRequest>,
) -> ApiResult<Json<Value>> {
    let outcome = match req.status.as_str() {
        "Succeeded" => HookOutcome::Succeeded,
        "Failed" => HookOutcome::Failed {
            reason: format!("hook execution {execution_id} reported Failed"),
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "status must be Succeeded or Failed, found {other:?}"
            )));
        }
    };
    st.deployer.hook_status(&id, &execution_id, outcome)?;
    Ok(Json(json!({"lifecycleEventHookExecutionId": execution_id})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_and_env_overrides_touch_only_the_named_container() {
        let mut body = json!({"containerDefinitions": [
            {"name": "web", "image": "a", "environment": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "side", "image": "b"}]});
        let images = BTreeMap::from([("web".to_string(), "c".to_string())]);
        let env = BTreeMap::from([(
            "web".to_string(),
            BTreeMap::from([
                ("Y".to_string(), "3".to_string()),
                ("Z".to_string(), "4".to_string()),
            ]),
        )]);
        override_containers(&mut body, &images, &env).unwrap();
        assert_eq!(body["containerDefinitions"][0]["image"], "c");
        assert_eq!(
            body["containerDefinitions"][0]["environment"],
            json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}])
        );
        assert_eq!(body["containerDefinitions"][1]["image"], "b");
        let bad = BTreeMap::from([("nope".to_string(), "x".to_string())]);
        assert!(override_containers(&mut body, &bad, &BTreeMap::new()).is_err());
    }
}
