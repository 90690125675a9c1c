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
//! A driver is the only writer of its pipeline's state once the pipeline
//! exists. When a reload finds the stored state is not the one it last
//! saved, the pipeline was deleted and declared again (by two applies
//! between reloads): the driver stops its old executions, as for a
//! deletion, and carries on with the new pipeline's state.
//!
//! After a restart the driver loads the saved state, applies the current
//! definition and calls [`PipelineState::resume`], which re-issues every
//! action in flight with the same attempt: a source action fetches again,
//! a deploy action finds the deployment it started (tagged with its key) and
//! waits for it, a build action whose build was interrupted fails with
//! "control plane restarted during the build" (see the `build` module), and a
//! manual approval keeps waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use cutover_pipeline::engine::{ActionRequest, Effect, Input, PipelineState};
use cutover_pipeline::model::Pipeline;
use cutover_store::{ops, pipeline_ops};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{PipelineError, Pipelines};

/// Finished executions kept per pipeline.
const KEEP_EXECUTIONS: usize = 100;

/// A repository head to record as acted on, with the state that acts on it.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// The repository.
    pub(crate) repository: String,
    /// The branch name, or `tag:NAME`.
    pub(crate) key: String,
    /// The commit.
    pub(crate) commit: String,
}

/// A message to a driver.
pub(crate) enum Msg {
    /// Apply an input; the answer says whether the engine accepted it and
    /// the state was saved (with `head`, in the same transaction). Boxed:
    /// an input is large, the other messages are not.
    Input {
        input: Box<Input>,
        head: Option<Head>,
        reply: Option<oneshot::Sender<Result<(), PipelineError>>>,
    },
    /// The definition may have changed in the store.
    Reload,
    /// The pipeline was deleted: stop its executions and end, whatever
    /// the store holds by now.
    Deleted,
}

/// The inbox of a running driver.
pub(crate) type Inbox = mpsc::UnboundedSender<Msg>;

/// A running driver: its inbox, and a token cancelled when it has ended.
pub(crate) struct Handle {
    pub(crate) inbox: Inbox,
    pub(crate) done: CancellationToken,
}

/// Cancel tokens of running actions, by key.
pub(crate) type Running = Arc<Mutex<HashMap<String, CancellationToken>>>;

/// The key of an action attempt.
pub(crate) fn action_key(pipeline: &str, req: &ActionRequest) -> String {
    attempt_key(
        pipeline,
        &req.execution,
        &req.stage,
        &req.action,
        req.attempt,
    )
}

/// The key of attempt `attempt` of action `action` of `stage` in execution
/// `execution` of `pipeline`: a build's `action_key` when that attempt ran
/// it (the console finds a running action's build log by it).
pub fn attempt_key(
    pipeline: &str,
    execution: &str,
    stage: &str,
    action: &str,
    attempt: u32,
) -> String {
    format!("{pipeline}/{execution}/{stage}/{action}/{attempt}")
}

/// Starts the driver of pipeline `name`, once `previous` (the driver the
/// pipeline had before it was deleted) has ended.
pub(crate) fn spawn(
    me: Arc<Pipelines>,
    name: String,
    previous: Option<CancellationToken>,
) -> Handle {
    let (inbox, rx) = mpsc::unbounded_channel();
    let done = CancellationToken::new();
    tokio::spawn(drive(me, name, inbox.clone(), rx, previous, done.clone()));
    Handle { inbox, done }
}

/// A pipeline's row, read: the stored state as it is (to recognise a
/// state this driver did not write) and the state to run (with the
/// current definition). `None` when the pipeline was deleted.
struct Loaded {
    stored: Option<PipelineState>,
    state: PipelineState,
}

async fn load(me: &Pipelines, name: &str) -> Result<Option<Loaded>, PipelineError> {
    let owned = name.to_string();
    let Some(row) = me
        .store
        .call(move |c| pipeline_ops::pipeline(c, &owned))
        .await?
    else {
        return Ok(None);
    };
    let corrupt = |source| PipelineError::State {
        pipeline: name.to_string(),
        source,
    };
    let definition: Pipeline = serde_json::from_value(row.definition).map_err(corrupt)?;
    let stored: Option<PipelineState> = row
        .state
        .map(serde_json::from_value)
        .transpose()
        .map_err(corrupt)?;
    let state = match &stored {
        Some(s) => PipelineState {
            pipeline: definition,
            ..s.clone()
        },
        None => PipelineState::new(definition),
    };
    Ok(Some(Loaded { stored, state }))
}

/// One pipeline's driver.
struct Driver {
    me: Arc<Pipelines>,
    name: String,
    inbox: Inbox,
    state: PipelineState,
    /// The state as the store holds it (loaded, or last saved).
    stored: Option<PipelineState>,
}

/// Runs the driver of pipeline `name` until it is deleted or shutdown.
async fn drive(
    me: Arc<Pipelines>,
    name: String,
    inbox: Inbox,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    previous: Option<CancellationToken>,
    done: CancellationToken,
) {
    let _done = done.drop_guard();
    if let Some(previous) = previous {
        tokio::select! {
            _ = me.shutdown.cancelled() => return,
            _ = previous.cancelled() => {}
        }
    }
    // Deleted again while waiting: nothing to run.
    let mut pending = VecDeque::new();
    while let Ok(msg) = rx.try_recv() {
        if matches!(msg, Msg::Deleted) {
            return;
        }
        pending.push_back(msg);
    }
    let loaded = match load(&me, &name).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            tracing::info!(pipeline = %name, "the pipeline was deleted; its driver is not running");
            return;
        }
        Err(e) => {
            tracing::error!(pipeline = %name, error = %e, "cannot load the pipeline; its driver is not running");
            return;
        }
    };
    let mut d = Driver {
        me,
        name,
        inbox,
        state: loaded.state,
        stored: loaded.stored,
    };
    d.resume().await;
    loop {
        let msg = match pending.pop_front() {
            Some(m) => m,
            None => {
                let wakeup = d.state.next_wakeup();
                let sleep = async {
                    match wakeup {
                        Some(at) => {
                            let wait = at.saturating_sub(d.me.clock.now_ms());
                            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = d.me.shutdown.cancelled() => return,
                    _ = sleep => Msg::Input { input: Box::new(Input::Tick), head: None, reply: None },
                    msg = rx.recv() => match msg {
                        Some(m) => m,
                        None => return,
                    },
                }
            }
        };
        match msg {
            Msg::Input { input, head, reply } => {
                let result = d.input(*input, head).await;
                match reply {
                    Some(r) => {
                        let _ = r.send(result);
                    }
                    None => {
                        if let Err(e) = result {
                            tracing::warn!(pipeline = %d.name, error = %e, "pipeline input refused");
                        }
                    }
                }
            }
            Msg::Reload => {
                if !d.reload().await {
                    return;
                }
            }
            Msg::Deleted => {
                d.stop_all("the pipeline was deleted").await;
                tracing::info!(pipeline = %d.name, "pipeline deleted; its driver stops");
                return;
            }
        }
    }
}

impl Driver {
    /// Re-issues what was in flight (at start, or for a re-created pipeline).
    async fn resume(&mut self) {
        let fx = self.state.resume(self.me.clock.now_ms());
        if let Err(e) = self.commit(fx, None).await {
            tracing::error!(pipeline = %self.name, error = %e, "cannot save the resumed pipeline state");
        }
    }

    /// Applies `input`; saves the state (and `head`), then carries out the
    /// effects. Nothing is kept of an input whose state could not be saved.
    async fn input(&mut self, input: Input, head: Option<Head>) -> Result<(), PipelineError> {
        let fx = self.state.handle(self.me.clock.now_ms(), input)?;
        self.commit(fx, head).await
    }

    /// Reloads the definition; `false` when the driver must end (the
    /// pipeline is gone).
    async fn reload(&mut self) -> bool {
        match load(&self.me, &self.name).await {
            Ok(None) => {
                self.stop_all("the pipeline was deleted").await;
                tracing::info!(pipeline = %self.name, "pipeline deleted; its driver stops");
                false
            }
            Ok(Some(fresh)) if fresh.stored != self.stored => {
                // Deleted and declared again since this driver last looked.
                self.stop_all("the pipeline was deleted and declared again")
                    .await;
                tracing::info!(pipeline = %self.name, "pipeline declared again; its driver starts over");
                self.state = fresh.state;
                self.stored = fresh.stored;
                self.resume().await;
                true
            }
            Ok(Some(fresh)) => {
                self.state.pipeline = fresh.state.pipeline;
                if let Err(e) = self.input(Input::Tick, None).await {
                    tracing::warn!(pipeline = %self.name, error = %e, "cannot apply the new definition");
                }
                true
            }
            Err(e) => {
                tracing::error!(pipeline = %self.name, error = %e, "cannot reload the pipeline");
                true
            }
        }
    }

    /// Stops every execution in progress, abandoning its actions, and
    /// cancels every action still running (a build is killed). Nothing is
    /// saved: the row is gone or belongs to a new pipeline; the stops are
    /// recorded as events.
    async fn stop_all(&mut self, reason: &str) {
        let active: Vec<String> = self
            .state
            .executions
            .values()
            .filter(|e| !e.status.is_terminal())
            .map(|e| e.id.clone())
            .collect();
        let mut fx = Vec::new();
        for execution in &active {
            match self.state.handle(
                self.me.clock.now_ms(),
                Input::Stop {
                    execution: execution.clone(),
                    abandon: true,
                    reason: reason.into(),
                },
            ) {
                Ok(more) => fx.extend(more),
                Err(e) => {
                    tracing::warn!(pipeline = %self.name, error = %e, "cannot stop an execution")
                }
            }
        }
        // Only cancellations and history: nothing new starts.
        fx.retain(|e| !matches!(e, Effect::RunAction(_)));
        self.carry_out(fx).await;
        let prefixes: Vec<String> = self
            .state
            .executions
            .keys()
            .map(|e| format!("{}/{e}/", self.name))
            .collect();
        for (key, token) in self
            .me
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            if prefixes.iter().any(|p| key.starts_with(p)) {
                token.cancel();
            }
        }
    }

    /// Saves the state (with `head` in the same transaction), then carries
    /// out the effects. When the save fails, the effects are not carried
    /// out and the state goes back to the stored one: what is not saved
    /// must not happen.
    async fn commit(&mut self, fx: Vec<Effect>, head: Option<Head>) -> Result<(), PipelineError> {
        self.state.prune(KEEP_EXECUTIONS);
        let saved = self.state.clone();
        let value = serde_json::to_value(&saved).map_err(|source| PipelineError::State {
            pipeline: self.name.clone(),
            source,
        });
        let (name, now) = (self.name.clone(), self.me.clock.now_ms());
        let written = match value {
            Ok(v) => self
                .me
                .store
                .transact(move |c| {
                    pipeline_ops::save_pipeline_state(c, &name, &v, now)?;
                    if let Some(h) = head {
                        pipeline_ops::set_repository_head(
                            c,
                            &h.repository,
                            &h.key,
                            &h.commit,
                            now,
                        )?;
                    }
                    Ok(())
                })
                .await
                .map_err(PipelineError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::error!(pipeline = %self.name, error = %e, "cannot save the pipeline state; its effects are not carried out");
            self.state = match &self.stored {
                Some(s) => PipelineState {
                    pipeline: self.state.pipeline.clone(),
                    ..s.clone()
                },
                None => PipelineState::new(self.state.pipeline.clone()),
            };
            return Err(e);
        }
        self.stored = Some(saved);
        self.carry_out(fx).await;
        Ok(())
    }

    /// Carries out effects whose state is saved (or, for a deleted
    /// pipeline, gone); the events are written in one store call.
    async fn carry_out(&self, fx: Vec<Effect>) {
        let name = &self.name;
        let mut events = Vec::new();
        for effect in fx {
            match effect {
                Effect::RunAction(req) => crate::actions::start(&self.me, name, &self.inbox, req),
                Effect::CancelAction {
                    execution,
                    stage,
                    action,
                    attempt,
                } => {
                    let key = format!("{name}/{execution}/{stage}/{action}/{attempt}");
                    if let Some(token) = self
                        .me
                        .running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&key)
                    {
                        token.cancel();
                    }
                }
                Effect::ExecutionStarted { execution, kind } => {
                    events.push(format!("execution {execution} started ({kind:?})"));
                }
                Effect::ExecutionFinished {
                    execution,
                    status,
                    message,
                } => {
                    tracing::info!(pipeline = %name, %execution, ?status, "pipeline execution finished");
                    events.push(format!(
                        "execution {execution} {status:?}{}",
                        message.map(|m| format!(": {m}")).unwrap_or_default()
                    ));
                }
                Effect::Event { execution, message } => events.push(match execution {
                    Some(e) => format!("{e}: {message}"),
                    None => message,
                }),
            }
        }
        if events.is_empty() {
            return;
        }
        let (subject, now) = (format!("pipeline/{name}"), self.me.clock.now_ms());
        let written = self
            .me
            .store
            .call(move |c| {
                events
                    .iter()
                    .try_for_each(|m| ops::add_event(c, now, &subject, m).map(drop))
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(pipeline = %name, error = %e, "cannot record pipeline events");
        }
    }
}
