//! The actions of pipeline executions, each run as a task of its own that
//! reports its result to its driver's inbox: source actions (git export of
//! the commit), build actions (`cutover-build` through the `build`
//! module), deploy actions (the `deploy` and `host_deploy` modules) and
//! invoke actions. A manual approval is not run: the API answers it.

use std::collections::BTreeMap;
use std::sync::Arc;

use cutover_pipeline::catalog::{self, Provider};
use cutover_pipeline::engine::{ActionRequest, ArtifactRef, Input};
use cutover_store::pipeline_ops;
use tokio_util::sync::CancellationToken;

use crate::Pipelines;
use crate::build::{BuildJob, RESTARTED};
use crate::config::{BuildProjectSpec, RepositorySpec};
use crate::driver::{Inbox, Msg, action_key};

/// What an action produced.
#[derive(Default)]
struct Output {
    variables: BTreeMap<String, String>,
    artifacts: BTreeMap<String, ArtifactRef>,
    summary: Option<String>,
}

/// Starts the action `req` asks for as a task of its own (a manual
/// approval waits for the API instead); its result goes to the driver's
/// inbox. The task's cancel token is registered under the action's key.
pub(crate) fn start(me: &Arc<Pipelines>, name: &str, inbox: &Inbox, req: ActionRequest) {
    let kind = catalog::lookup(&req.category, &req.provider).map(|s| s.kind);
    if kind == Some(Provider::Manual) {
        // Answered through the API (or timed out by the engine).
        return;
    }
    let key = action_key(name, &req);
    let cancel = me.shutdown.child_token();
    me.running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.clone(), cancel.clone());
    let (me, name, inbox) = (me.clone(), name.to_string(), inbox.clone());
    tokio::spawn(async move {
        tracing::info!(pipeline = %name, action = %key, provider = %req.provider, "action started");
        let result = match kind {
            Some(k) => run_action(&me, &name, &key, k, &req, cancel.clone()).await,
            None => Err(format!("provider {} is not supported", req.provider)),
        };
        me.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        if me.shutdown.is_cancelled() {
            // The server is stopping: the result is not reported; the
            // engine re-issues the action after the restart.
            return;
        }
        let input = match result {
            Ok(out) => Input::ActionSucceeded {
                execution: req.execution.clone(),
                stage: req.stage.clone(),
                action: req.action.clone(),
                attempt: req.attempt,
                output_variables: out.variables,
                output_artifacts: out.artifacts,
                summary: out.summary,
            },
            Err(message) => {
                tracing::info!(pipeline = %name, action = %key, %message, "action failed");
                Input::ActionFailed {
                    execution: req.execution.clone(),
                    stage: req.stage.clone(),
                    action: req.action.clone(),
                    attempt: req.attempt,
                    message,
                }
            }
        };
        let _ = inbox.send(Msg::Input {
            input: Box::new(input),
            head: None,
            reply: None,
        });
    });
}

async fn run_action(
    me: &Arc<Pipelines>,
    pipeline: &str,
    key: &str,
    kind: Provider,
    req: &ActionRequest,
    cancel: CancellationToken,
) -> Result<Output, String> {
    match kind {
        Provider::CodeCommit | Provider::CodeStarSourceConnection | Provider::GitHub => {
            source_action(me, req, kind).await
        }
        Provider::CodeBuild => build_action(me, pipeline, key, req, cancel).await,
        Provider::Ecs | Provider::CodeDeployToEcs => {
            let ctx = me.deploy_context();
            let id = if kind == Provider::Ecs {
                crate::deploy::ecs(&ctx, key, req).await?
            } else {
                crate::deploy::code_deploy(&ctx, key, req).await?
            };
            Ok(Output {
                summary: Some(format!("deployment {id} succeeded")),
                ..Output::default()
            })
        }
        Provider::CodeDeploy => {
            let hosts = crate::image_scans::wait_for(me.host_deployments.subscribe()).await;
            crate::host_deploy::action(hosts, &me.artifacts, key, req, cancel, &me.shutdown)
                .await
                .map(|summary| Output {
                    summary: Some(summary),
                    ..Output::default()
                })
        }
        Provider::Lambda => {
            let name = pipeline.to_string();
            let functions = me
                .store
                .call(move |c| {
                    cutover_store::ops::stack_functions(
                        c,
                        cutover_store::ops::StackSection::Pipelines,
                        &name,
                    )
                })
                .await
                .map_err(|e| e.to_string())?;
            crate::invoke::invoke(req, &functions, cancel)
                .await
                .map(|summary| Output {
                    summary: Some(summary),
                    ..Output::default()
                })
        }
        Provider::ImageScan => {
            let scans = crate::image_scans::wait_for(me.image_scans.subscribe()).await;
            crate::image_scans::action(scans.as_deref(), req, cancel)
                .await
                .map(|summary| Output {
                    summary: Some(summary),
                    ..Output::default()
                })
        }
        Provider::Manual => Err("a manual approval is not run".into()),
    }
}

async fn repository(me: &Pipelines, name: &str) -> Result<RepositorySpec, String> {
    let owned = name.to_string();
    let row = me
        .store
        .call(move |c| pipeline_ops::repository(c, &owned))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("repository {name:?} is not declared"))?;
    Ok(row.spec)
}

async fn source_action(
    me: &Arc<Pipelines>,
    req: &ActionRequest,
    kind: Provider,
) -> Result<Output, String> {
    let (_, repo_name) = catalog::source_repository(kind, &req.configuration)
        .ok_or("the configuration does not name a repository")?;
    let repo = &repo_name;
    let branch_name = catalog::source_branch(kind, &req.configuration)
        .ok_or("the configuration does not name a branch")?
        .to_owned();
    let branch = &branch_name;
    let spec = repository(me, repo).await?;
    me.git
        .fetch(repo, &spec.url)
        .await
        .map_err(|e| e.to_string())?;
    let revision = req
        .source_revision
        .clone()
        .unwrap_or_else(|| format!("refs/heads/{branch}"));
    let commit = me
        .git
        .resolve(repo, &revision)
        .await
        .map_err(|e| e.to_string())?;
    if req.source_revision.is_none() {
        // The branch head this execution builds is the baseline of polling
        // when none is recorded yet (a pipeline's first execution, at its
        // creation), so the poller does not start the same commit again.
        let _held = me.heads.lock().await;
        let (repo, branch, commit, now) = (
            repo.clone(),
            branch.clone(),
            commit.clone(),
            me.clock.now_ms(),
        );
        me.store
            .call(move |c| {
                pipeline_ops::set_repository_head_if_absent(c, &repo, &branch, &commit, now)
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    let info = me
        .git
        .commit_info(repo, &commit)
        .await
        .map_err(|e| e.to_string())?;
    let stored = me.export(repo, &commit).await.map_err(|e| e.to_string())?;
    let artifacts = req
        .output_artifact_names
        .iter()
        .map(|n| (n.clone(), stored.clone()))
        .collect();
    let first_line = info.message.lines().next().unwrap_or_default().to_string();
    Ok(Output {
        summary: Some(format!("{} {first_line}", &commit[..commit.len().min(12)])),
        variables: info.variables(branch),
        artifacts,
    })
}

async fn build_action(
    me: &Arc<Pipelines>,
    pipeline: &str,
    key: &str,
    req: &ActionRequest,
    cancel: CancellationToken,
) -> Result<Output, String> {
    let owned = key.to_string();
    if let Some(prior) = me
        .store
        .call(move |c| pipeline_ops::build_for_action(c, &owned))
        .await
        .map_err(|e| e.to_string())?
        && prior.message.as_deref() == Some(RESTARTED)
    {
        return Err(format!("build {}: {RESTARTED}", prior.id));
    }
    let project = req
        .configuration
        .get("ProjectName")
        .ok_or("configuration.ProjectName is missing")?;
    let owned = project.clone();
    let row = me
        .store
        .call(move |c| pipeline_ops::build_project(c, &owned))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("build project {project:?} is not declared"))?;
    let spec: BuildProjectSpec = row.spec;
    let primary = match req.configuration.get("PrimarySource") {
        Some(p) => req
            .input_artifacts
            .iter()
            .find(|(n, _)| n == p)
            .ok_or_else(|| format!("PrimarySource {p:?} is not an input artifact"))?,
        None => req
            .input_artifacts
            .first()
            .ok_or("a build action needs an input artifact")?,
    };
    let path = |r: &ArtifactRef| me.artifacts.path(r).map_err(|e| e.to_string());
    let source = path(&primary.1)?;
    let secondary = req
        .input_artifacts
        .iter()
        .filter(|(n, _)| *n != primary.0)
        .map(|(n, r)| Ok((n.clone(), path(r)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let env = match req.configuration.get("EnvironmentVariables") {
        Some(text) => environment_variables(text)?,
        None => Vec::new(),
    };
    let source_version = me.source_revision(pipeline, &req.execution).await;
    let job = BuildJob {
        project: project.clone(),
        spec: spec.clone(),
        action_key: Some(key.to_string()),
        initiator: format!("codepipeline/{pipeline}"),
        source,
        secondary,
        source_version,
        env,
        secret_env: Vec::new(),
        outputs: req.output_artifact_names.clone(),
        timeout: std::time::Duration::from_secs(60 * spec.timeout_in_minutes.unwrap_or(60)),
    };
    let result = me.builder.run(job, cancel).await?;
    Ok(Output {
        summary: Some(format!("build {}", result.build_id)),
        variables: result.variables,
        artifacts: result.artifacts,
    })
}

/// Reads CodeBuild's `EnvironmentVariables` action setting: a JSON list of
/// `{name, value, type}` (type PLAINTEXT; secret types are looked up by
/// the buildspec's own `env` sections instead).
fn environment_variables(text: &str) -> Result<Vec<(String, String)>, String> {
    #[derive(serde::Deserialize)]
    struct Var {
        name: String,
        value: String,
        #[serde(default, rename = "type")]
        kind: Option<String>,
    }
    let vars: Vec<Var> = serde_json::from_str(text)
        .map_err(|e| format!("configuration.EnvironmentVariables: {e}"))?;
    vars.into_iter()
        .map(|v| match v.kind.as_deref() {
            None | Some("PLAINTEXT") => Ok((v.name, v.value)),
            Some(other) => Err(format!(
                "configuration.EnvironmentVariables: variable {:?} has type {other}; cutover passes PLAINTEXT only (use env.parameter-store in the buildspec)",
                v.name
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_are_plaintext_pairs() {
        assert_eq!(
            environment_variables(
                r#"[{"name":"A","value":"1","type":"PLAINTEXT"},{"name":"B","value":"2"}]"#
            ),
            Ok(vec![("A".into(), "1".into()), ("B".into(), "2".into())])
        );
        assert!(
            environment_variables(r#"[{"name":"A","value":"x","type":"SECRETS_MANAGER"}]"#)
                .is_err()
        );
        assert!(environment_variables("nope").is_err());
    }
}
