//! One driver task per pipeline: it owns the pipeline's
//! [`PipelineState`], feeds it inputs (API calls, action results, ticks),
//! **saves the state to the store, then carries out the effects**, and
//! sleeps until the next input or the engine's next wakeup.
//!
//! Actions run as their own tasks and report back through the driver's
//! inbox. Each is identified by its key
//! `pipeline/execution/stage/action/attempt`; a cancel token per key lets
//! an abandoned build be killed.
//!
//! After a restart the driver loads the saved state, applies the current
//! definition and calls [`PipelineState::resume`], which re-issues every
//! action in flight with the same attempt: a source action fetches again,
//! a deploy action finds the deployment it started (tagged with its key) and
//! waits for it, a build action whose build was interrupted fails with
//! "control plane restarted during the build" (see [`super::build`]), and a
//! manual approval keeps waiting.

// TODO(issue 9): converted by the cutover-ci move
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use cutover_pipeline::catalog::{self, Provider};
use cutover_pipeline::engine::{
    ActionRequest, ArtifactRef, Effect, EngineError, Input, PipelineState,
};
use cutover_pipeline::model::Pipeline;
use cutover_store::{ops, pipeline_ops};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Pipelines;
use super::build::{BuildJob, RESTARTED};
use super::config::{BuildProjectSpec, RepositorySpec, source_key};

/// Finished executions kept per pipeline.
const KEEP_EXECUTIONS: usize = 100;

/// A message to a driver.
pub(crate) enum Msg {
    /// Apply an input; the answer says whether the engine accepted it.
    Input(Input, Option<oneshot::Sender<Result<(), EngineError>>>),
    /// The definition changed in the store.
    Reload,
}

/// The inbox of a running driver.
pub(crate) type Inbox = mpsc::UnboundedSender<Msg>;

/// Cancel tokens of running actions, by key.
pub(crate) type Running = Arc<Mutex<HashMap<String, CancellationToken>>>;

/// The key of an action attempt.
pub(crate) fn action_key(pipeline: &str, req: &ActionRequest) -> String {
    format!(
        "{pipeline}/{}/{}/{}/{}",
        req.execution, req.stage, req.action, req.attempt
    )
}

/// The pipeline's saved state with its current definition; `None` when
/// the pipeline was deleted.
fn load(me: &Pipelines, name: &str) -> anyhow::Result<Option<PipelineState>> {
    let Some(row) = me.store.with(|c| pipeline_ops::pipeline(c, name))? else {
        return Ok(None);
    };
    let definition: Pipeline = serde_json::from_value(row.definition)?;
    Ok(Some(match row.state {
        Some(state) => {
            let mut s: PipelineState = serde_json::from_value(state)?;
            s.pipeline = definition;
            s
        }
        None => PipelineState::new(definition),
    }))
}

/// Runs the driver of pipeline `name` until shutdown.
pub(crate) async fn drive(
    me: Arc<Pipelines>,
    name: String,
    inbox: Inbox,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut state = match load(&me, &name) {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::info!(pipeline = %name, "the pipeline was deleted; its driver is not running");
            return;
        }
        Err(e) => {
            tracing::error!(pipeline = %name, error = %e, "cannot load the pipeline; its driver is not running");
            return;
        }
    };
    let fx = state.resume(me.clock.now_ms());
    commit(&me, &name, &inbox, &mut state, fx);
    loop {
        let wakeup = state.next_wakeup();
        let sleep = async {
            match wakeup {
                Some(at) => {
                    let wait = at.saturating_sub(me.clock.now_ms());
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                None => std::future::pending().await,
            }
        };
        let msg = tokio::select! {
            _ = me.shutdown.cancelled() => return,
            _ = sleep => Msg::Input(Input::Tick, None),
            msg = rx.recv() => match msg {
                Some(m) => m,
                None => return,
            },
        };
        match msg {
            Msg::Input(input, reply) => {
                let result = state.handle(me.clock.now_ms(), input);
                match result {
                    Ok(fx) => {
                        commit(&me, &name, &inbox, &mut state, fx);
                        if let Some(r) = reply {
                            let _ = r.send(Ok(()));
                        }
                    }
                    Err(e) => {
                        if let Some(r) = reply {
                            let _ = r.send(Err(e));
                        } else {
                            tracing::warn!(pipeline = %name, error = %e, "pipeline input refused");
                        }
                    }
                }
            }
            Msg::Reload => match load(&me, &name) {
                Ok(None) => {
                    deleted(&me, &name, &inbox, &mut state);
                    return;
                }
                Ok(Some(fresh)) => {
                    state.pipeline = fresh.pipeline;
                    if let Ok(fx) = state.handle(me.clock.now_ms(), Input::Tick) {
                        commit(&me, &name, &inbox, &mut state, fx);
                    }
                }
                Err(e) => {
                    tracing::error!(pipeline = %name, error = %e, "cannot reload the pipeline")
                }
            },
        }
    }
}

/// The pipeline was deleted (by an apply that no longer declares it): its
/// executions in progress stop and abandon their actions, every action
/// still running is cancelled (a build is killed), and the driver ends.
/// Nothing is saved: the row is gone; the stops are recorded as events.
fn deleted(me: &Arc<Pipelines>, name: &str, inbox: &Inbox, state: &mut PipelineState) {
    let active: Vec<String> = state
        .executions
        .values()
        .filter(|e| !e.status.is_terminal())
        .map(|e| e.id.clone())
        .collect();
    let mut fx = Vec::new();
    for execution in active {
        match state.handle(
            me.clock.now_ms(),
            Input::Stop {
                execution,
                abandon: true,
                reason: "the pipeline was deleted".into(),
            },
        ) {
            Ok(more) => fx.extend(more),
            Err(e) => tracing::warn!(pipeline = %name, error = %e, "cannot stop an execution"),
        }
    }
    // Only cancellations and history: nothing new starts for a deleted pipeline.
    fx.retain(|e| !matches!(e, Effect::RunAction(_)));
    carry_out(me, name, inbox, fx);
    let prefix = format!("{name}/");
    for (key, token) in me.running.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if key.starts_with(&prefix) {
            token.cancel();
        }
    }
    tracing::info!(pipeline = %name, "pipeline deleted; its driver stops");
}

/// Saves the state, then carries out the effects (only if the save worked:
/// what is not saved must not happen).
fn commit(
    me: &Arc<Pipelines>,
    name: &str,
    inbox: &Inbox,
    state: &mut PipelineState,
    fx: Vec<Effect>,
) {
    state.prune(KEEP_EXECUTIONS);
    let saved = serde_json::to_value(&*state)
        .map_err(anyhow::Error::from)
        .and_then(|v| {
            me.store
                .with(|c| pipeline_ops::save_pipeline_state(c, name, &v, me.clock.now_ms()))
                .map_err(anyhow::Error::from)
        });
    if let Err(e) = saved {
        tracing::error!(pipeline = %name, error = %e, "cannot save the pipeline state; its effects are not carried out");
        return;
    }
    carry_out(me, name, inbox, fx);
}

/// Carries out effects whose state is saved (or, for a deleted pipeline,
/// gone).
fn carry_out(me: &Arc<Pipelines>, name: &str, inbox: &Inbox, fx: Vec<Effect>) {
    for effect in fx {
        match effect {
            Effect::RunAction(req) => start_action(me, name, inbox, req),
            Effect::CancelAction {
                execution,
                stage,
                action,
                attempt,
            } => {
                let key = format!("{name}/{execution}/{stage}/{action}/{attempt}");
                if let Some(token) = me
                    .running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                {
                    token.cancel();
                }
            }
            Effect::ExecutionStarted { execution, kind } => {
                event(
                    me,
                    name,
                    &format!("execution {execution} started ({kind:?})"),
                );
            }
            Effect::ExecutionFinished {
                execution,
                status,
                message,
            } => {
                tracing::info!(pipeline = %name, %execution, ?status, "pipeline execution finished");
                event(
                    me,
                    name,
                    &format!(
                        "execution {execution} {status:?}{}",
                        message.map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                );
            }
            Effect::Event { execution, message } => {
                let text = match execution {
                    Some(e) => format!("{e}: {message}"),
                    None => message,
                };
                event(me, name, &text);
            }
        }
    }
}

fn event(me: &Pipelines, name: &str, message: &str) {
    if let Err(e) = me
        .store
        .with(|c| ops::add_event(c, me.clock.now_ms(), &format!("pipeline/{name}"), message))
    {
        tracing::warn!(pipeline = %name, error = %e, "cannot record a pipeline event");
    }
}

/// What an action produced.
#[derive(Default)]
struct Output {
    variables: BTreeMap<String, String>,
    artifacts: BTreeMap<String, ArtifactRef>,
    summary: Option<String>,
}

fn start_action(me: &Arc<Pipelines>, name: &str, inbox: &Inbox, req: ActionRequest) {
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
        let _ = inbox.send(Msg::Input(input, None));
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
        Provider::CodeCommit | Provider::CodeStarSourceConnection => {
            source_action(me, req, source_key(kind)).await
        }
        Provider::CodeBuild => build_action(me, pipeline, key, req, cancel).await,
        Provider::Ecs | Provider::CodeDeployToEcs => {
            let ctx = me.deploy_context();
            let id = if kind == Provider::Ecs {
                super::deploy::ecs(&ctx, key, req).await?
            } else {
                super::deploy::code_deploy(&ctx, key, req).await?
            };
            Ok(Output {
                summary: Some(format!("deployment {id} succeeded")),
                ..Output::default()
            })
        }
        Provider::Lambda => super::invoke::invoke(req, cancel)
            .await
            .map(|summary| Output {
                summary: Some(summary),
                ..Output::default()
            }),
        Provider::Manual => Err("a manual approval is not run".into()),
    }
}

fn repository(me: &Pipelines, name: &str) -> Result<RepositorySpec, String> {
    let row = me
        .store
        .with(|c| pipeline_ops::repository(c, name))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("repository {name:?} is not declared"))?;
    Ok(row.spec)
}

async fn source_action(
    me: &Arc<Pipelines>,
    req: &ActionRequest,
    repo_key: &str,
) -> Result<Output, String> {
    let repo = req
        .configuration
        .get(repo_key)
        .ok_or_else(|| format!("configuration.{repo_key} is missing"))?;
    let branch = req
        .configuration
        .get("BranchName")
        .ok_or("configuration.BranchName is missing")?;
    let spec = repository(me, repo)?;
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
        me.store
            .with(|c| {
                pipeline_ops::set_repository_head_if_absent(
                    c,
                    repo,
                    branch,
                    &commit,
                    me.clock.now_ms(),
                )
            })
            .map_err(|e| e.to_string())?;
    }
    let info = me
        .git
        .commit_info(repo, &commit)
        .await
        .map_err(|e| e.to_string())?;
    let staged = me.artifacts.staging().map_err(|e| e.to_string())?;
    if let Err(e) = me.git.export(repo, &commit, &staged).await {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e.to_string());
    }
    let stored = me.artifacts.commit(&staged).map_err(|e| e.to_string())?;
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
    if let Some(prior) = me
        .store
        .with(|c| pipeline_ops::build_for_action(c, key))
        .map_err(|e| e.to_string())?
        && prior.message.as_deref() == Some(RESTARTED)
    {
        return Err(format!("build {}: {RESTARTED}", prior.id));
    }
    let project = req
        .configuration
        .get("ProjectName")
        .ok_or("configuration.ProjectName is missing")?;
    let row = me
        .store
        .with(|c| pipeline_ops::build_project(c, project))
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
    let source_version = me.source_revision(pipeline, &req.execution);
    let job = BuildJob {
        project: project.clone(),
        spec: spec.clone(),
        action_key: Some(key.to_string()),
        initiator: format!("codepipeline/{pipeline}"),
        source,
        secondary,
        source_version,
        env,
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
