//! Deployments: create (the counterpart of `aws ecs deploy
//! --codedeploy-appspec`), list, get, stop, continue, rollback, and the
//! CodeDeploy hook callback.

use super::body::Body;
use super::{ApiError, ApiResult, AppState, views};
use crate::deploy::DeployRequest;
use crate::files;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use cutover_api::deployments::{
    CreateDeploymentRequest, Deployment, DeploymentEnvelope, DeploymentList, HookStatusRequest,
    HookStatusResponse, Requested, StopDeploymentRequest, TaskDefinitionSource,
};
use cutover_api::query::DeploymentListQuery;
use cutover_deploy::DeploymentKind;
use cutover_deploy::Input;
use cutover_deploy::bluegreen::{DeploymentStatus, HookOutcome, HookStatus};
use cutover_spec::taskdef::{KeyValuePair, TaskDefinition};
use cutover_store::{DeploymentRow, ops};
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) async fn create(
    State(st): State<AppState>,
    Json(req): Json<CreateDeploymentRequest>,
) -> ApiResult<(StatusCode, Json<DeploymentEnvelope>)> {
    let name = req.service.clone();
    let svc = st
        .store
        .call(move |c| ops::service(c, &name))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("service {:?}", req.service)))?;
    let mut warnings = Vec::new();
    let (family, mut body) = match &req.task_definition {
        Some(TaskDefinitionSource::File(f)) => {
            let td = files::task_definition(&f.file, &f.content)?;
            warnings.extend(td.warnings);
            (td.family, td.body)
        }
        Some(TaskDefinitionSource::Name(name)) => {
            let (family, rev) = super::task_definitions::parse_name(name)?;
            let family = family.to_string();
            let row = st
                .store
                .call(move |c| ops::task_definition(c, &family, rev))
                .await?
                .ok_or_else(|| ApiError::not_found(format!("task definition {name}")))?;
            (row.family, row.body)
        }
        None => {
            let (family, rev) = super::task_definitions::parse_name(&svc.task_definition)?;
            let family = family.to_string();
            let row = st
                .store
                .call(move |c| ops::task_definition(c, &family, rev))
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("task definition {}", svc.task_definition))
                })?;
            (row.family, row.body)
        }
    };
    override_containers(&mut body, &req.images, &req.env)?;
    let mut appspec_hooks = BTreeMap::new();
    if let Some(a) = &req.appspec {
        // The task definition deployed is the request's (or the service's):
        // the appspec's `TaskDefinition` is replaced whatever it holds, as
        // `aws ecs deploy --codedeploy-appspec` does. CodeDeploy's
        // `CreateDeployment` checked it strictly before resolving it here.
        let parsed = cutover_spec::appspec::parse_appspec_for(
            &a.file,
            &a.content,
            cutover_spec::TaskDefinitionFrom::Elsewhere,
        )
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
        let hooks = st
            .deployer
            .appspec_hooks(&svc.name, &a.file, &a.content, &parsed.value)
            .await?
            .map_err(|e| files::rejected(&a.file, e))?;
        warnings.extend(hooks.warnings);
        appspec_hooks = hooks.value;
    }
    let now = st.clock.now_ms();
    let row = st
        .store
        .call(move |c| ops::register_task_definition(c, &family, &body, now, false))
        .await?
        .0;
    let created = st
        .deployer
        .create(DeployRequest {
            service: svc.name.clone(),
            task_definition: row.name(),
            config: req.deployment_config.clone(),
            appspec_hooks,
            started_by: req.started_by.clone(),
            rollback_of: None,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(DeploymentEnvelope {
            deployment: views::deployment(&created)?,
            warnings: Some(warnings),
            requested: None,
        }),
    ))
}

/// Applies `--image CONTAINER=IMAGE` and `--env CONTAINER:KEY=VALUE` to a
/// stored task definition body.
fn override_containers(
    body: &mut Value,
    images: &BTreeMap<String, String>,
    env: &BTreeMap<String, BTreeMap<String, String>>,
) -> ApiResult<()> {
    if images.is_empty() && env.is_empty() {
        return Ok(());
    }
    let mut td: TaskDefinition = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::bad_request(format!("the task definition cannot be read: {e}")))?;
    let names: Vec<&str> = td
        .container_definitions
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for name in images.keys().chain(env.keys()) {
        if !names.contains(&name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "no container named {name:?} in the task definition (containers: {})",
                names.join(", ")
            )));
        }
    }
    for c in &mut td.container_definitions {
        if let Some(image) = images.get(&c.name) {
            c.image = image.clone();
        }
        if let Some(vars) = env.get(&c.name) {
            let mut merged: BTreeMap<String, String> = c
                .environment
                .drain(..)
                .map(|kv| (kv.name, kv.value))
                .collect();
            merged.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            c.environment = merged
                .into_iter()
                .map(|(name, value)| KeyValuePair { name, value })
                .collect();
        }
    }
    *body = td.to_json();
    Ok(())
}

/// A deployment with its history (events of its hooks left out).
async fn with_events(st: &AppState, d: &DeploymentRow) -> ApiResult<Deployment> {
    let mut view = views::deployment(d)?;
    let pins = views::pins(st, Some(&d.service)).await?;
    views::pin_deployment(&mut view, &pins);
    let subject = format!("deployment/{}", d.id);
    let events = st
        .store
        .call(move |c| ops::events(c, &subject, 500))
        .await?;
    view.events = Some(views::events(
        events
            .into_iter()
            .filter(|e| !e.subject.ends_with("/appspec-hooks"))
            .collect(),
    ));
    Ok(view)
}

fn envelope(d: &DeploymentRow, requested: Requested) -> ApiResult<DeploymentEnvelope> {
    Ok(DeploymentEnvelope {
        deployment: views::deployment(d)?,
        warnings: None,
        requested: Some(requested),
    })
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<DeploymentListQuery>,
) -> ApiResult<Json<DeploymentList>> {
    let limit = q.limit.unwrap_or(50).min(1000);
    let pins = views::pins(&st, q.service.as_deref()).await?;
    let rows = st
        .store
        .call(move |c| ops::list_deployments(c, q.service.as_deref(), limit))
        .await?;
    let deployments = rows
        .iter()
        .map(|d| {
            let mut view = views::deployment(d)?;
            views::pin_deployment(&mut view, &pins);
            Ok(view)
        })
        .collect::<ApiResult<_>>()?;
    Ok(Json(DeploymentList { deployments }))
}

async fn load(st: &AppState, id: &str) -> ApiResult<DeploymentRow> {
    let i = id.to_string();
    st.store
        .call(move |c| ops::deployment(c, &i))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("deployment {id:?}")))
}

pub(crate) async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeploymentEnvelope>> {
    Ok(Json(DeploymentEnvelope {
        deployment: with_events(&st, &load(&st, &id).await?).await?,
        warnings: None,
        requested: None,
    }))
}

pub(crate) async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<StopDeploymentRequest>>,
) -> ApiResult<Json<DeploymentEnvelope>> {
    let d = load(&st, &id).await?;
    let rollback = body.map(|b| b.0.rollback).unwrap_or_default();
    if d.kind() != DeploymentKind::BlueGreen {
        return Err(ApiError::bad_request(format!(
            "deployment {id} is a {} deployment; only blue/green deployments can be stopped",
            d.kind()
        )));
    }
    if st.deployer.cancel_queued(&id).await? {
        let d = load(&st, &id).await?;
        return Ok(Json(envelope(&d, Requested::Stop)?));
    }
    st.deployer.send(&id, Input::Stop { rollback })?;
    Ok(Json(envelope(&d, Requested::Stop)?))
}

pub(crate) async fn continue_(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeploymentEnvelope>> {
    let d = load(&st, &id).await?;
    st.deployer.send(&id, Input::Continue)?;
    Ok(Json(envelope(&d, Requested::Continue)?))
}

/// Rolls a service back: instantly while its last deployment is still in
/// its termination wait (the original tasks still run), else by deploying
/// the revision that ran before it.
pub(crate) async fn rollback_service(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<DeploymentEnvelope>)> {
    let n = name.clone();
    let deployments = st
        .store
        .call(move |c| ops::list_deployments(c, Some(&n), 50))
        .await?;
    if let Some(d) = deployments.iter().find(|d| {
        d.finished_at.is_none()
            && d.kind() == DeploymentKind::BlueGreen
            && d.status != DeploymentStatus::Queued
    }) {
        st.deployer.send(&d.id, Input::Rollback)?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(envelope(d, Requested::Rollback)?),
        ));
    }
    let last = deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Succeeded && d.kind() != DeploymentKind::Rollback)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "service {name:?} has no succeeded deployment to roll back"
            ))
        })?;
    let created = st
        .deployer
        .create(DeployRequest {
            service: name.clone(),
            task_definition: last.from_task_definition.clone(),
            config: None,
            appspec_hooks: BTreeMap::new(),
            started_by: format!("rollback of {}", last.id),
            rollback_of: Some(last.id.clone()),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(envelope(&created, Requested::Redeploy)?),
    ))
}

pub(crate) async fn hook_status(
    State(st): State<AppState>,
    Path((id, execution_id)): Path<(String, String)>,
    Body(req): Body<HookStatusRequest>,
) -> ApiResult<Json<HookStatusResponse>> {
    let outcome = match req.status {
        HookStatus::Succeeded => HookOutcome::Succeeded,
        HookStatus::Failed => HookOutcome::Failed {
            reason: format!("hook execution {execution_id} reported Failed"),
        },
    };
    st.deployer.hook_status(&id, &execution_id, outcome)?;
    Ok(Json(HookStatusResponse {
        lifecycle_event_hook_execution_id: execution_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_and_env_overrides_touch_only_the_named_container() {
        let mut body = json!({"family": "f", "containerDefinitions": [
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
        let td: TaskDefinition = serde_json::from_value(body.clone()).unwrap();
        let (web, side) = (&td.container_definitions[0], &td.container_definitions[1]);
        assert_eq!(web.image, "c");
        let env: Vec<(&str, &str)> = web
            .environment
            .iter()
            .map(|kv| (kv.name.as_str(), kv.value.as_str()))
            .collect();
        assert_eq!(env, [("X", "1"), ("Y", "3"), ("Z", "4")]);
        assert_eq!(side.image, "b");
        let bad = BTreeMap::from([("nope".to_string(), "x".to_string())]);
        assert!(override_containers(&mut body, &bad, &BTreeMap::new()).is_err());
    }
}
