//! Deploy actions: `ECS` and `CodeDeployToECS`, through the service's own
//! deployment (rolling or blue/green, as the service declares).
//!
//! - `ECS`: `imagedefinitions.json` (`FileName`) from the input artifact
//!   names new images by container; they replace the images of the
//!   service's current task definition, which is registered as a new
//!   revision and deployed.
//! - `CodeDeployToECS`: `taskdef.json` and `appspec.yaml` from their
//!   artifacts; `imageDetail.json` from each `ImageNArtifactName` replaces
//!   the `<ImageNContainerName>` placeholder (default `IMAGE1_NAME`...), the
//!   task definition is registered and deployed with the appspec's hooks.
//!   Cutover deploys to the service named like `DeploymentGroupName`.
//!
//! The action waits for the deployment to finish: Succeeded succeeds the
//! action, anything else fails it. A deployment is tagged
//! `started_by = pipeline/<action key>`; when the engine re-issues the same
//! attempt after a restart, the action waits for that deployment instead of
//! starting another.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cutover_pipeline::engine::ActionRequest;
use serde_json::Value;

use crate::artifacts::ArtifactStore;
use crate::deployments::{AppSpecFile, DeploymentRequest, DeploymentState, Deployments};

/// How often the action looks at its deployment.
const POLL: Duration = Duration::from_millis(100);

/// What the deploy actions need.
#[derive(Clone)]
pub(crate) struct DeployContext {
    pub(crate) deployments: Arc<dyn Deployments>,
    pub(crate) artifacts: ArtifactStore,
}

fn artifact_dir(
    ctx: &DeployContext,
    req: &ActionRequest,
    name: Option<&str>,
) -> Result<std::path::PathBuf, String> {
    let found = match name {
        Some(n) => req.input_artifacts.iter().find(|(a, _)| a == n),
        None => req.input_artifacts.first(),
    };
    let (_, r) = found.ok_or_else(|| match name {
        Some(n) => format!("input artifact {n:?} is not an input of the action"),
        None => "the action has no input artifact".to_string(),
    })?;
    ctx.artifacts.path(r).map_err(|e| e.to_string())
}

fn read(dir: &Path, file: &str, artifact: &str) -> Result<String, String> {
    if file.split('/').any(|p| p == "..") {
        return Err(format!("{file:?} must stay inside the artifact"));
    }
    // Never through a symlink: a build decides what its artifact holds.
    cutover_build::safe_fs::open_beneath(dir, Path::new(file))
        .and_then(|mut f| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut f, &mut text).map(|_| text)
        })
        .map_err(|e| format!("cannot read {file} in artifact {artifact}: {e}"))
}

fn diagnostics(e: cutover_spec::diag::SpecError) -> String {
    e.diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs an `ECS` deploy action; returns the deployment id.
pub(crate) async fn ecs(
    ctx: &DeployContext,
    key: &str,
    req: &ActionRequest,
) -> Result<String, String> {
    let service = req
        .configuration
        .get("ServiceName")
        .ok_or("configuration.ServiceName is missing")?
        .clone();
    let started_by = format!("pipeline/{key}");
    if let Some(id) = existing(ctx, &service, &started_by).await? {
        return wait(ctx, &id).await;
    }
    let file = req
        .configuration
        .get("FileName")
        .map_or("imagedefinitions.json", String::as_str);
    let dir = artifact_dir(ctx, req, None)?;
    let artifact = &req.input_artifacts[0].0;
    let text = read(&dir, file, artifact)?;
    let defs = cutover_spec::handoff::parse_image_definitions(file, &text).map_err(diagnostics)?;
    let (current, mut body) = ctx
        .deployments
        .current_task_definition(&service)
        .await
        .map_err(|e| e.to_string())?;
    let (family, _) = split_name(&current)?;
    let images: BTreeMap<&str, &str> = defs
        .value
        .iter()
        .map(|d| (d.name.as_str(), d.image_uri.as_str()))
        .collect();
    replace_images(&mut body, &images).map_err(|missing| {
        format!(
            "{file} names container {missing:?}, which task definition {current} of service {service:?} does not have"
        )
    })?;
    deploy(ctx, &service, family, &body, None, started_by).await
}

/// Runs a `CodeDeployToECS` deploy action; returns the deployment id.
pub(crate) async fn code_deploy(
    ctx: &DeployContext,
    key: &str,
    req: &ActionRequest,
) -> Result<String, String> {
    let conf = |k: &str| req.configuration.get(k).map(String::as_str);
    let service = conf("DeploymentGroupName")
        .ok_or("configuration.DeploymentGroupName is missing")?
        .to_string();
    let started_by = format!("pipeline/{key}");
    if let Some(id) = existing(ctx, &service, &started_by).await? {
        return wait(ctx, &id).await;
    }
    let td_artifact = conf("TaskDefinitionTemplateArtifact")
        .ok_or("configuration.TaskDefinitionTemplateArtifact is missing")?;
    let td_file = conf("TaskDefinitionTemplatePath").unwrap_or("taskdef.json");
    let td_text = read(
        &artifact_dir(ctx, req, Some(td_artifact))?,
        td_file,
        td_artifact,
    )?;
    let mut taskdef = cutover_spec::taskdef::parse_task_definition(td_file, &td_text)
        .map_err(diagnostics)?
        .value;
    for n in 1..=4 {
        let Some(artifact) = conf(&format!("Image{n}ArtifactName")) else {
            continue;
        };
        let placeholder = conf(&format!("Image{n}ContainerName"))
            .map_or_else(|| format!("IMAGE{n}_NAME"), str::to_string);
        let text = read(
            &artifact_dir(ctx, req, Some(artifact))?,
            "imageDetail.json",
            artifact,
        )?;
        let detail = cutover_spec::handoff::parse_image_detail("imageDetail.json", &text)
            .map_err(diagnostics)?;
        if taskdef.replace_image_placeholder(&placeholder, &detail.value.image_uri) == 0 {
            return Err(format!(
                "{td_file}: no container image is the placeholder <{placeholder}>"
            ));
        }
    }
    let as_artifact = conf("AppSpecTemplateArtifact")
        .ok_or("configuration.AppSpecTemplateArtifact is missing")?;
    let as_file = conf("AppSpecTemplatePath").unwrap_or("appspec.yaml");
    let as_text = read(
        &artifact_dir(ctx, req, Some(as_artifact))?,
        as_file,
        as_artifact,
    )?;
    // CodeDeployToECS substitutes the registered task definition for the
    // appspec's `TaskDefinition`, whatever it holds.
    let appspec = cutover_spec::appspec::parse_appspec_for(
        as_file,
        &as_text,
        cutover_spec::TaskDefinitionFrom::Elsewhere,
    )
    .map_err(diagnostics)?;
    if let Err(e) = ctx.deployments.current_task_definition(&service).await {
        return Err(match e {
            crate::DeploymentsError::ServiceNotFound(_) => {
                format!("service {service:?} (the deployment group) not found")
            }
            other => other.to_string(),
        });
    }
    let family = taskdef.family.clone();
    deploy(
        ctx,
        &service,
        &family,
        &taskdef.to_json(),
        Some(AppSpecFile {
            file: as_file.to_string(),
            text: as_text,
            appspec: appspec.value,
        }),
        started_by,
    )
    .await
}

fn split_name(name: &str) -> Result<(&str, u32), String> {
    name.rsplit_once(':')
        .and_then(|(f, r)| r.parse().ok().map(|r| (f, r)))
        .ok_or_else(|| format!("task definition name {name:?} is not family:revision"))
}

/// Replaces the image of each named container; `Err` names a container
/// the body does not have.
fn replace_images(body: &mut Value, images: &BTreeMap<&str, &str>) -> Result<(), String> {
    let containers = body["containerDefinitions"]
        .as_array_mut()
        .ok_or_else(|| "containerDefinitions".to_string())?;
    for (name, image) in images {
        let c = containers
            .iter_mut()
            .find(|c| c["name"].as_str() == Some(name))
            .ok_or_else(|| name.to_string())?;
        c["image"] = Value::String(image.to_string());
    }
    Ok(())
}

async fn existing(
    ctx: &DeployContext,
    service: &str,
    started_by: &str,
) -> Result<Option<String>, String> {
    ctx.deployments
        .started_by(service, started_by)
        .await
        .map_err(|e| e.to_string())
}

async fn deploy(
    ctx: &DeployContext,
    service: &str,
    family: &str,
    body: &Value,
    appspec: Option<AppSpecFile>,
    started_by: String,
) -> Result<String, String> {
    let (id, task_definition) = ctx
        .deployments
        .create(DeploymentRequest {
            service: service.to_string(),
            family: family.to_string(),
            task_definition: body.clone(),
            appspec,
            started_by,
        })
        .await
        .map_err(|e| format!("cannot deploy {family} to service {service:?}: {e}"))?;
    tracing::info!(deployment = %id, service, %task_definition, "pipeline deployment started");
    wait(ctx, &id).await
}

async fn wait(ctx: &DeployContext, id: &str) -> Result<String, String> {
    loop {
        match ctx.deployments.state(id).await.map_err(|e| e.to_string())? {
            DeploymentState::Succeeded => return Ok(id.to_string()),
            DeploymentState::Failed(message) => return Err(message),
            DeploymentState::Running => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_replace_by_container_name_and_unknown_names_are_refused() {
        let mut body = json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "file:///v1"}, {"name": "side", "image": "busybox"}]});
        replace_images(&mut body, &BTreeMap::from([("web", "file:///v2")])).unwrap();
        assert_eq!(body["containerDefinitions"][0]["image"], "file:///v2");
        assert_eq!(body["containerDefinitions"][1]["image"], "busybox");
        assert_eq!(
            replace_images(&mut body, &BTreeMap::from([("db", "x")])),
            Err("db".to_string())
        );
        assert_eq!(split_name("web:12"), Ok(("web", 12)));
        assert!(split_name("web").is_err());
    }
}
