//! [`PipelineState`]: the executions of one pipeline and the rules that
//! move them: stage entry (transitions, stage locks per execution mode,
//! deployment windows), action groups by run order, results, stop, retry,
//! approvals and rollback.
//!
//! Every call ends with [`PipelineState::pump`], which repeats until
//! nothing changes: supersede overtaken waiters, admit waiters into free
//! stages, start the next run-order group of each running stage, and close
//! stages whose actions are all done.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::*;
use crate::catalog::DEFAULT_APPROVAL_TIMEOUT_MINUTES;
use crate::cron::DeploymentWindow;
use crate::model::{ConditionResult, ExecutionMode, Pipeline, Stage};
use crate::vars::{self, CODEPIPELINE, EXECUTION_ID_KEY, PIPELINE_VARIABLES};

/// The executions of one pipeline, with the pipeline they run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineState {
    /// The definition (validated by [`crate::parse`]).
    pub pipeline: Pipeline,
    /// Every execution kept, by id.
    pub executions: BTreeMap<String, Execution>,
    /// Inbound transitions changed from the default (enabled), by stage name.
    pub transitions: BTreeMap<String, Transition>,
    /// The last successful run of each stage, by stage name.
    pub last_success: BTreeMap<String, StageSnapshot>,
    /// The next execution's start order.
    pub next_seq: u64,
}

impl PipelineState {
    /// A pipeline with no executions.
    pub fn new(pipeline: Pipeline) -> PipelineState {
        PipelineState {
            pipeline,
            executions: BTreeMap::new(),
            transitions: BTreeMap::new(),
            last_success: BTreeMap::new(),
            next_seq: 1,
        }
    }

    /// Applies one input at time `now`; returns what the driver must do.
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<Vec<Effect>, EngineError> {
        let mut fx = Vec::new();
        match input {
            Input::StartExecution {
                id,
                trigger,
                variables,
                source_revisions,
            } => self.start(now, id, trigger, variables, source_revisions, &mut fx)?,
            Input::ActionSucceeded {
                execution,
                stage,
                action,
                attempt,
                output_variables,
                output_artifacts,
                summary,
            } => {
                if let Some(run) = self.running(&execution, &stage, &action, Some(attempt), &mut fx)
                {
                    let request = run.request.clone();
                    let missing = request.as_ref().and_then(|r| {
                        r.output_artifact_names
                            .iter()
                            .find(|n| !output_artifacts.contains_key(*n))
                            .cloned()
                    });
                    match missing {
                        Some(name) => self.finish_action(
                            now,
                            &execution,
                            &stage,
                            &action,
                            Err(format!(
                                "the action did not produce its output artifact \"{name}\""
                            )),
                            &mut fx,
                        ),
                        None => {
                            let exec = self.exec_mut(&execution);
                            for (name, r) in output_artifacts {
                                if request
                                    .as_ref()
                                    .is_some_and(|q| q.output_artifact_names.contains(&name))
                                {
                                    exec.artifacts.insert(name, r);
                                }
                            }
                            if let Some(commit) = output_variables.get("CommitId")
                                && request.as_ref().is_some_and(|q| q.category == "Source")
                            {
                                exec.source_revisions.insert(action.clone(), commit.clone());
                            }
                            if let Some(ns) = request.as_ref().and_then(|q| q.namespace.clone()) {
                                exec.namespaces.insert(ns, output_variables);
                            }
                            self.finish_action(
                                now,
                                &execution,
                                &stage,
                                &action,
                                Ok(summary),
                                &mut fx,
                            );
                        }
                    }
                }
            }
            Input::ActionFailed {
                execution,
                stage,
                action,
                attempt,
                message,
            } => {
                if self
                    .running(&execution, &stage, &action, Some(attempt), &mut fx)
                    .is_some()
                {
                    self.finish_action(now, &execution, &stage, &action, Err(message), &mut fx);
                }
            }
            Input::ApprovalResult {
                execution,
                stage,
                action,
                approved,
                summary,
                by,
            } => {
                let pending = self
                    .running(&execution, &stage, &action, None, &mut Vec::new())
                    .and_then(|r| r.request.as_ref())
                    .is_some_and(|r| r.provider == "Manual");
                if !pending {
                    return Err(EngineError::NoPendingApproval {
                        execution,
                        stage,
                        action,
                    });
                }
                let result = if approved {
                    Ok(Some(format!("approved by {by}: {summary}")))
                } else {
                    Err(format!("rejected by {by}: {summary}"))
                };
                self.finish_action(now, &execution, &stage, &action, result, &mut fx);
            }
            Input::Stop {
                execution,
                abandon,
                reason,
            } => self.stop(now, &execution, abandon, reason, &mut fx)?,
            Input::RetryStage {
                execution,
                stage,
                mode,
            } => self.retry(now, &execution, &stage, mode, &mut fx)?,
            Input::SetTransition {
                stage,
                enabled,
                reason,
            } => {
                if self.pipeline.stage(&stage).is_none() {
                    return Err(EngineError::UnknownStage(stage));
                }
                fx.push(event(
                    None,
                    format!(
                        "transition into stage \"{stage}\" {} ({reason})",
                        if enabled { "enabled" } else { "disabled" }
                    ),
                ));
                self.transitions
                    .insert(stage, Transition { enabled, reason });
            }
            Input::Tick => self.expire_approvals(now, &mut fx),
        }
        self.pump(now, &mut fx);
        Ok(fx)
    }

    /// After a restart: re-issues every action in flight (same attempt), then
    /// does whatever time has made due.
    pub fn resume(&mut self, now: Millis) -> Vec<Effect> {
        let mut fx: Vec<Effect> = self
            .executions
            .values()
            .flat_map(|e| e.stages.values())
            .flat_map(|s| s.actions.values())
            .filter(|a| a.status == ActionStatus::InProgress)
            .filter_map(|a| a.request.clone().map(Effect::RunAction))
            .collect();
        self.expire_approvals(now, &mut fx);
        self.pump(now, &mut fx);
        fx
    }

    /// When the engine next needs a [`Input::Tick`]: the earliest approval
    /// deadline or deployment window opening.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let active = self.executions.values().filter(|e| !e.status.is_terminal());
        let deadlines = active
            .clone()
            .flat_map(|e| e.stages.values())
            .flat_map(|s| s.actions.values())
            .filter(|a| a.status == ActionStatus::InProgress)
            .filter_map(|a| a.request.as_ref().and_then(|r| r.deadline));
        let windows = active.filter_map(|e| match e.position {
            Position::Waiting { wakeup, .. } => wakeup,
            _ => None,
        });
        deadlines.chain(windows).min()
    }

    /// Drops the oldest finished executions beyond the `keep` most recent.
    pub fn prune(&mut self, keep: usize) {
        let mut done: Vec<(u64, String)> = self
            .executions
            .values()
            .filter(|e| e.status.is_terminal())
            .map(|e| (e.seq, e.id.clone()))
            .collect();
        done.sort();
        let excess = done.len().saturating_sub(keep);
        for (_, id) in done.into_iter().take(excess) {
            self.executions.remove(&id);
        }
    }

    fn start(
        &mut self,
        now: Millis,
        id: String,
        trigger: String,
        overrides: BTreeMap<String, String>,
        source_revisions: BTreeMap<String, String>,
        fx: &mut Vec<Effect>,
    ) -> Result<(), EngineError> {
        if self.executions.contains_key(&id) {
            return Err(EngineError::DuplicateExecution(id));
        }
        let mut variables: BTreeMap<String, String> = self
            .pipeline
            .variables
            .iter()
            .map(|v| (v.name.clone(), v.default_value.clone().unwrap_or_default()))
            .collect();
        for (name, value) in overrides {
            match variables.get_mut(&name) {
                Some(slot) => *slot = value,
                None => return Err(EngineError::UnknownVariable(name)),
            }
        }
        fx.push(event(Some(&id), format!("execution started: {trigger}")));
        let exec = Execution {
            id: id.clone(),
            seq: self.take_seq(),
            status: ExecutionStatus::InProgress,
            kind: ExecutionKind::Standard,
            trigger,
            started_at: now,
            updated_at: now,
            variables,
            source_revisions,
            artifacts: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            position: Position::Waiting {
                stage: 0,
                wakeup: None,
            },
            stages: BTreeMap::new(),
            message: None,
        };
        self.executions.insert(id, exec);
        Ok(())
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// The action run if `(execution, stage, action)` is in progress at
    /// `attempt`; else a history line saying the result was ignored.
    fn running(
        &self,
        execution: &str,
        stage: &str,
        action: &str,
        attempt: Option<u32>,
        fx: &mut Vec<Effect>,
    ) -> Option<&ActionRun> {
        let run = self
            .executions
            .get(execution)
            .filter(|e| !e.status.is_terminal())
            .and_then(|e| e.stages.get(stage))
            .and_then(|s| s.actions.get(action))
            .filter(|a| a.status == ActionStatus::InProgress)
            .filter(|a| attempt.is_none_or(|n| a.request.as_ref().is_some_and(|r| r.attempt == n)));
        if run.is_none() {
            fx.push(event(
                Some(execution),
                format!("ignored a result for action \"{action}\" of stage \"{stage}\": it is not running that attempt"),
            ));
        }
        run
    }

    fn exec_mut(&mut self, id: &str) -> &mut Execution {
        self.executions
            .get_mut(id)
            .expect("execution checked by the caller")
    }

    /// Records an action's end; the stage moves on in `pump`.
    fn finish_action(
        &mut self,
        now: Millis,
        execution: &str,
        stage: &str,
        action: &str,
        result: Result<Option<String>, String>,
        fx: &mut Vec<Effect>,
    ) {
        let exec = self.exec_mut(execution);
        exec.updated_at = now;
        let Some(run) = exec
            .stages
            .get_mut(stage)
            .and_then(|s| s.actions.get_mut(action))
        else {
            return;
        };
        let line = match result {
            Ok(summary) => {
                run.status = ActionStatus::Succeeded;
                run.message = summary;
                format!("action \"{action}\" of stage \"{stage}\" succeeded")
            }
            Err(message) => {
                let line = format!("action \"{action}\" of stage \"{stage}\" failed: {message}");
                run.status = ActionStatus::Failed;
                run.message = Some(message);
                line
            }
        };
        fx.push(event(Some(execution), line));
    }

    fn expire_approvals(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        let mut expired = Vec::new();
        for exec in self.executions.values().filter(|e| !e.status.is_terminal()) {
            for (stage, run) in &exec.stages {
                for (action, a) in &run.actions {
                    if a.status == ActionStatus::InProgress
                        && let Some(deadline) = a.request.as_ref().and_then(|r| r.deadline)
                        && now >= deadline
                    {
                        let minutes = (deadline - a.started_at) / 60_000;
                        expired.push((exec.id.clone(), stage.clone(), action.clone(), minutes));
                    }
                }
            }
        }
        for (exec, stage, action, minutes) in expired {
            let msg = format!("the approval timed out after {minutes} minutes");
            self.finish_action(now, &exec, &stage, &action, Err(msg), fx);
        }
    }

    fn stop(
        &mut self,
        now: Millis,
        id: &str,
        abandon: bool,
        reason: String,
        fx: &mut Vec<Effect>,
    ) -> Result<(), EngineError> {
        let exec = self
            .executions
            .get_mut(id)
            .ok_or_else(|| EngineError::UnknownExecution(id.to_owned()))?;
        if exec.status.is_terminal() {
            return Err(EngineError::Finished {
                execution: id.to_owned(),
                status: exec.status,
            });
        }
        exec.updated_at = now;
        exec.message = Some(format!("stopped: {reason}"));
        fx.push(event(
            Some(id),
            format!(
                "stop requested ({}): {reason}",
                if abandon { "abandon" } else { "wait" }
            ),
        ));
        let Position::InStage { stage } = exec.position else {
            // Waiting between stages: nothing runs.
            exec.status = ExecutionStatus::Stopped;
            finished(exec, fx);
            return Ok(());
        };
        exec.status = ExecutionStatus::Stopping;
        if abandon {
            let name = self.pipeline.stages[stage].name.clone();
            let exec = self.exec_mut(id);
            if let Some(run) = exec.stages.get_mut(&name) {
                for (action, a) in run.actions.iter_mut() {
                    if a.status == ActionStatus::InProgress {
                        a.status = ActionStatus::Abandoned;
                        fx.push(Effect::CancelAction {
                            execution: id.to_owned(),
                            stage: name.clone(),
                            action: action.clone(),
                            attempt: a.request.as_ref().map_or(0, |r| r.attempt),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn retry(
        &mut self,
        now: Millis,
        id: &str,
        stage_name: &str,
        mode: RetryMode,
        fx: &mut Vec<Effect>,
    ) -> Result<(), EngineError> {
        let not = |reason: String| EngineError::NotRetryable {
            execution: id.to_owned(),
            stage: stage_name.to_owned(),
            reason,
        };
        let (index, _) = self
            .pipeline
            .stage(stage_name)
            .ok_or_else(|| EngineError::UnknownStage(stage_name.to_owned()))?;
        let exec = self
            .executions
            .get(id)
            .ok_or_else(|| EngineError::UnknownExecution(id.to_owned()))?;
        if !matches!(
            exec.status,
            ExecutionStatus::Failed | ExecutionStatus::Stopped
        ) {
            return Err(not(format!("the execution is {:?}", exec.status)));
        }
        if exec.position != (Position::InStage { stage: index }) {
            return Err(not("the execution did not end in this stage".to_owned()));
        }
        if self.pipeline.execution_mode != ExecutionMode::Parallel
            && let Some(holder) = self.holder(index)
        {
            return Err(not(format!("execution \"{holder}\" is in the stage")));
        }
        let exec = self.exec_mut(id);
        exec.status = ExecutionStatus::InProgress;
        exec.message = None;
        exec.updated_at = now;
        if let Some(run) = exec.stages.get_mut(stage_name) {
            reset_for_retry(run, mode);
        }
        fx.push(event(
            Some(id),
            format!("stage \"{stage_name}\" retried ({mode:?})"),
        ));
        Ok(())
    }

    /// The execution holding stage `index` (running or stopping in it).
    fn holder(&self, index: usize) -> Option<&str> {
        self.executions
            .values()
            .find(|e| !e.status.is_terminal() && e.position == (Position::InStage { stage: index }))
            .map(|e| e.id.as_str())
    }

    /// Moves every execution as far as it can go.
    fn pump(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        loop {
            let mut changed = self.supersede(now, fx);
            let mut ids: Vec<(u64, String)> = self
                .executions
                .values()
                .filter(|e| !e.status.is_terminal())
                .map(|e| (e.seq, e.id.clone()))
                .collect();
            ids.sort();
            // Each execution goes as far as it can before the next one moves,
            // so the effects read upstream first.
            for (_, id) in ids {
                while self.step(now, &id, fx) {
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// SUPERSEDED: of the executions waiting before one stage, only the newest stays.
    fn supersede(&mut self, now: Millis, fx: &mut Vec<Effect>) -> bool {
        if self.pipeline.execution_mode != ExecutionMode::Superseded {
            return false;
        }
        let mut newest: BTreeMap<usize, (u64, String)> = BTreeMap::new();
        let mut losers = Vec::new();
        for e in self.executions.values() {
            if e.status != ExecutionStatus::InProgress {
                continue;
            }
            if let Position::Waiting { stage, .. } = e.position {
                match newest.get(&stage) {
                    Some((seq, _)) if *seq > e.seq => losers.push((e.id.clone(), stage)),
                    Some((_, old)) => {
                        losers.push((old.clone(), stage));
                        newest.insert(stage, (e.seq, e.id.clone()));
                    }
                    None => {
                        newest.insert(stage, (e.seq, e.id.clone()));
                    }
                }
            }
        }
        for (id, stage) in &losers {
            let by = newest[stage].1.clone();
            let exec = self.exec_mut(id);
            exec.status = ExecutionStatus::Superseded;
            exec.updated_at = now;
            exec.message = Some(format!("superseded by execution \"{by}\""));
            finished(exec, fx);
        }
        !losers.is_empty()
    }

    /// One move of one execution; whether anything changed.
    fn step(&mut self, now: Millis, id: &str, fx: &mut Vec<Effect>) -> bool {
        let exec = &self.executions[id];
        match exec.position.clone() {
            Position::Done => false,
            Position::Waiting { stage, wakeup } => {
                if exec.status != ExecutionStatus::InProgress {
                    return false;
                }
                self.try_enter(now, id, stage, wakeup, fx)
            }
            Position::InStage { stage } => self.progress(now, id, stage, fx),
        }
    }

    /// Admits a waiting execution into `index` if the transition, the
    /// stage lock, the queue order and the entry conditions allow.
    fn try_enter(
        &mut self,
        now: Millis,
        id: &str,
        index: usize,
        wakeup: Option<Millis>,
        fx: &mut Vec<Effect>,
    ) -> bool {
        let stage = &self.pipeline.stages[index];
        if self
            .transitions
            .get(&stage.name)
            .is_some_and(|t| !t.enabled)
        {
            return false;
        }
        let mode = self.pipeline.execution_mode;
        if mode != ExecutionMode::Parallel {
            if self.holder(index).is_some() {
                return false;
            }
            let seq = self.executions[id].seq;
            let earlier_waiter = self.executions.values().any(|e| {
                e.status == ExecutionStatus::InProgress
                    && e.seq < seq
                    && matches!(e.position, Position::Waiting { stage, .. } if stage == index)
            });
            if earlier_waiter {
                return false;
            }
        }
        match entry_verdict(stage, now) {
            Verdict::Enter => {}
            Verdict::WaitUntil(at) => {
                if wakeup != at {
                    let name = stage.name.clone();
                    let exec = self.exec_mut(id);
                    exec.position = Position::Waiting {
                        stage: index,
                        wakeup: at,
                    };
                    let when = at.map_or("not within five years".to_owned(), |t| format!("at {t}"));
                    fx.push(event(
                        Some(id),
                        format!(
                            "waiting for the deployment window of stage \"{name}\" (opens {when})"
                        ),
                    ));
                }
                return false;
            }
            Verdict::Fail(message) => {
                let name = stage.name.clone();
                let exec = self.exec_mut(id);
                exec.position = Position::InStage { stage: index };
                exec.stages.insert(
                    name,
                    StageRun {
                        status: StageStatus::Failed,
                        actions: BTreeMap::new(),
                        attempts: BTreeMap::new(),
                        auto_retries: 0,
                        message: Some(message.clone()),
                    },
                );
                exec.status = ExecutionStatus::Failed;
                exec.message = Some(message);
                exec.updated_at = now;
                finished(exec, fx);
                return true;
            }
            Verdict::Skip(message) => {
                let name = stage.name.clone();
                let last = index + 1 == self.pipeline.stages.len();
                let exec = self.exec_mut(id);
                fx.push(event(
                    Some(id),
                    format!("stage \"{name}\" skipped: {message}"),
                ));
                exec.stages.insert(
                    name,
                    StageRun {
                        status: StageStatus::Skipped,
                        actions: BTreeMap::new(),
                        attempts: BTreeMap::new(),
                        auto_retries: 0,
                        message: Some(message),
                    },
                );
                advance(exec, index, last, now, fx);
                return true;
            }
        }
        let name = stage.name.clone();
        let exec = self.exec_mut(id);
        exec.position = Position::InStage { stage: index };
        exec.updated_at = now;
        exec.stages.insert(
            name.clone(),
            StageRun {
                status: StageStatus::InProgress,
                actions: BTreeMap::new(),
                attempts: BTreeMap::new(),
                auto_retries: 0,
                message: None,
            },
        );
        fx.push(event(Some(id), format!("entered stage \"{name}\"")));
        true
    }

    /// Starts the next run-order group, or closes the stage.
    fn progress(&mut self, now: Millis, id: &str, index: usize, fx: &mut Vec<Effect>) -> bool {
        let stage = self.pipeline.stages[index].clone();
        let exec = &self.executions[id];
        let Some(run) = exec.stages.get(&stage.name) else {
            return false;
        };
        if run.status != StageStatus::InProgress {
            return false;
        }
        if run
            .actions
            .values()
            .any(|a| a.status == ActionStatus::InProgress)
        {
            return false;
        }
        if exec.status == ExecutionStatus::Stopping {
            let exec = self.exec_mut(id);
            if let Some(run) = exec.stages.get_mut(&stage.name) {
                run.status = StageStatus::Stopped;
            }
            exec.status = ExecutionStatus::Stopped;
            exec.updated_at = now;
            finished(exec, fx);
            return true;
        }
        let failure = run
            .actions
            .iter()
            .find(|(_, a)| matches!(a.status, ActionStatus::Failed | ActionStatus::Abandoned))
            .map(|(name, a)| {
                format!(
                    "action \"{name}\" failed: {}",
                    a.message.as_deref().unwrap_or("no message")
                )
            });
        if let Some(message) = failure {
            self.fail_stage(now, id, &stage, message, fx);
            return true;
        }
        let next_order = stage
            .actions
            .iter()
            .filter(|a| !run.actions.contains_key(&a.name))
            .map(|a| a.run_order())
            .min();
        let Some(order) = next_order else {
            self.succeed_stage(now, id, index, fx);
            return true;
        };
        let group: Vec<String> = stage
            .actions
            .iter()
            .filter(|a| a.run_order() == order && !run.actions.contains_key(&a.name))
            .map(|a| a.name.clone())
            .collect();
        for action in group {
            self.start_action(now, id, &stage, &action, fx);
        }
        true
    }

    fn start_action(
        &mut self,
        now: Millis,
        id: &str,
        stage: &Stage,
        name: &str,
        fx: &mut Vec<Effect>,
    ) {
        let Some(action) = stage.action(name) else {
            return;
        };
        let exec = self.exec_mut(id);
        let mut scope = exec.namespaces.clone();
        scope.insert(PIPELINE_VARIABLES.to_owned(), exec.variables.clone());
        scope.insert(
            CODEPIPELINE.to_owned(),
            BTreeMap::from([(EXECUTION_ID_KEY.to_owned(), exec.id.clone())]),
        );
        let mut configuration = BTreeMap::new();
        let mut error = None;
        for (key, value) in &action.configuration {
            match vars::resolve(value, &scope) {
                Ok(v) => {
                    configuration.insert(key.clone(), v);
                }
                Err(e) => {
                    error = Some(format!("configuration {key}: {e}"));
                    break;
                }
            }
        }
        let mut inputs = Vec::new();
        for input in &action.input_artifacts {
            match exec.artifacts.get(&input.name) {
                Some(r) => inputs.push((input.name.clone(), r.clone())),
                None if error.is_none() => {
                    error = Some(format!(
                        "input artifact \"{}\" is not available",
                        input.name
                    ));
                }
                None => {}
            }
        }
        let Some(run) = exec.stages.get_mut(&stage.name) else {
            return;
        };
        let attempt = run.attempts.get(name).copied().unwrap_or(0) + 1;
        run.attempts.insert(name.to_owned(), attempt);
        if let Some(message) = error {
            fx.push(event(
                Some(id),
                format!(
                    "action \"{name}\" of stage \"{}\" failed: {message}",
                    stage.name
                ),
            ));
            run.actions.insert(
                name.to_owned(),
                ActionRun {
                    status: ActionStatus::Failed,
                    request: None,
                    started_at: now,
                    message: Some(message),
                },
            );
            return;
        }
        let deadline = (action.action_type_id.provider == "Manual").then(|| {
            now + action
                .timeout_in_minutes
                .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_MINUTES)
                * 60_000
        });
        let request = ActionRequest {
            execution: id.to_owned(),
            stage: stage.name.clone(),
            action: name.to_owned(),
            attempt,
            category: action.action_type_id.category.clone(),
            provider: action.action_type_id.provider.clone(),
            configuration,
            input_artifacts: inputs,
            output_artifact_names: action
                .output_artifacts
                .iter()
                .map(|a| a.name.clone())
                .collect(),
            namespace: action.namespace.clone(),
            source_revision: exec.source_revisions.get(name).cloned(),
            deadline,
        };
        run.actions.insert(
            name.to_owned(),
            ActionRun {
                status: ActionStatus::InProgress,
                request: Some(request.clone()),
                started_at: now,
                message: None,
            },
        );
        fx.push(Effect::RunAction(request));
    }

    fn succeed_stage(&mut self, now: Millis, id: &str, index: usize, fx: &mut Vec<Effect>) {
        let name = self.pipeline.stages[index].name.clone();
        let count = self.pipeline.stages.len();
        let exec = self.exec_mut(id);
        if let Some(run) = exec.stages.get_mut(&name) {
            run.status = StageStatus::Succeeded;
        }
        fx.push(event(Some(id), format!("stage \"{name}\" succeeded")));
        // A rollback runs only its stage.
        let last = index + 1 == count || matches!(exec.kind, ExecutionKind::Rollback { .. });
        let snapshot = StageSnapshot {
            execution: exec.id.clone(),
            variables: exec.variables.clone(),
            source_revisions: exec.source_revisions.clone(),
            artifacts: exec.artifacts.clone(),
            namespaces: exec.namespaces.clone(),
        };
        advance(exec, index, last, now, fx);
        if matches!(self.executions[id].kind, ExecutionKind::Standard) {
            self.last_success.insert(name, snapshot);
        }
    }

    fn fail_stage(
        &mut self,
        now: Millis,
        id: &str,
        stage: &Stage,
        message: String,
        fx: &mut Vec<Effect>,
    ) {
        let exec = self.exec_mut(id);
        // `onFailure.result: RETRY`: one automatic retry, then the stage
        // fails as any other (a manual retry is still possible).
        if let Some(mode) = stage.retries_on_failure()
            && let Some(run) = exec.stages.get_mut(&stage.name)
            && run.auto_retries < AUTO_RETRIES
        {
            run.auto_retries += 1;
            let attempt = run.auto_retries;
            reset_for_retry(run, mode);
            exec.updated_at = now;
            fx.push(event(
                Some(id),
                format!(
                    "stage \"{}\" failed, retried automatically ({mode:?}), attempt {attempt} of {AUTO_RETRIES}",
                    stage.name
                ),
            ));
            return;
        }
        if let Some(run) = exec.stages.get_mut(&stage.name) {
            run.status = StageStatus::Failed;
            run.message = Some(message.clone());
        }
        exec.status = ExecutionStatus::Failed;
        exec.message = Some(format!("stage \"{}\" failed: {message}", stage.name));
        exec.updated_at = now;
        let standard = exec.kind == ExecutionKind::Standard;
        finished(exec, fx);
        if !(standard && stage.rolls_back_on_failure()) {
            return;
        }
        let Some(snapshot) = self.last_success.get(&stage.name).cloned() else {
            fx.push(event(
                Some(id),
                format!(
                    "no rollback: stage \"{}\" never succeeded before",
                    stage.name
                ),
            ));
            return;
        };
        let Some((index, _)) = self.pipeline.stage(&stage.name) else {
            return;
        };
        let rollback_id = format!("{id}-rollback");
        let kind = ExecutionKind::Rollback {
            failed: id.to_owned(),
            target: snapshot.execution.clone(),
        };
        fx.push(Effect::ExecutionStarted {
            execution: rollback_id.clone(),
            kind: kind.clone(),
        });
        fx.push(event(
            Some(&rollback_id),
            format!(
                "rollback of stage \"{}\" to execution \"{}\"",
                stage.name, snapshot.execution
            ),
        ));
        let seq = self.take_seq();
        self.executions.insert(
            rollback_id.clone(),
            Execution {
                id: rollback_id,
                seq,
                status: ExecutionStatus::InProgress,
                kind,
                trigger: format!("rollback after execution \"{id}\" failed"),
                started_at: now,
                updated_at: now,
                variables: snapshot.variables,
                source_revisions: snapshot.source_revisions,
                artifacts: snapshot.artifacts,
                namespaces: snapshot.namespaces,
                position: Position::Waiting {
                    stage: index,
                    wakeup: None,
                },
                stages: BTreeMap::new(),
                message: None,
            },
        );
    }
}

/// How many times a stage with `onFailure.result: RETRY` is retried
/// automatically ("one attempt is allowed", AWS's `RetryStageMetadata`).
const AUTO_RETRIES: u32 = 1;

/// Clears a failed stage run for a retry: every action runs again, or
/// (`FailedActions`) only those that did not succeed.
fn reset_for_retry(run: &mut StageRun, mode: RetryMode) {
    run.status = StageStatus::InProgress;
    run.message = None;
    run.actions
        .retain(|_, a| mode == RetryMode::FailedActions && a.status == ActionStatus::Succeeded);
}

/// Moves an execution past stage `index`.
fn advance(exec: &mut Execution, index: usize, last: bool, now: Millis, fx: &mut Vec<Effect>) {
    exec.updated_at = now;
    if last {
        exec.position = Position::Done;
        exec.status = ExecutionStatus::Succeeded;
        finished(exec, fx);
    } else {
        exec.position = Position::Waiting {
            stage: index + 1,
            wakeup: None,
        };
    }
}

fn finished(exec: &Execution, fx: &mut Vec<Effect>) {
    fx.push(Effect::ExecutionFinished {
        execution: exec.id.clone(),
        status: exec.status,
        message: exec.message.clone(),
    });
}

fn event(execution: Option<&str>, message: String) -> Effect {
    Effect::Event {
        execution: execution.map(str::to_owned),
        message,
    }
}

/// What a stage's entry conditions say at `now`.
enum Verdict {
    Enter,
    WaitUntil(Option<Millis>),
    Fail(String),
    Skip(String),
}

fn entry_verdict(stage: &Stage, now: Millis) -> Verdict {
    let Some(before) = &stage.before_entry else {
        return Verdict::Enter;
    };
    let mut wait: Option<Option<Millis>> = None;
    for condition in &before.conditions {
        for rule in &condition.rules {
            let cron = rule
                .configuration
                .get("Cron")
                .map(String::as_str)
                .unwrap_or("");
            let tz = rule.configuration.get("TimeZone").map(String::as_str);
            let window = match DeploymentWindow::new(cron, tz) {
                Ok(w) => w,
                Err(e) => return Verdict::Fail(format!("rule \"{}\": {e}", rule.name)),
            };
            if window.is_open(now) {
                continue;
            }
            let message = format!(
                "rule \"{}\": outside the deployment window \"{}\"",
                rule.name, window.cron
            );
            match condition.result {
                Some(ConditionResult::Fail) => return Verdict::Fail(message),
                Some(ConditionResult::Skip) => return Verdict::Skip(message),
                _ => {
                    let at = window.next_open(now);
                    // Every closed window must open: wait for the latest.
                    wait = Some(match wait {
                        None => at,
                        Some(None) => None,
                        Some(Some(prev)) => at.map(|a| a.max(prev)),
                    });
                }
            }
        }
    }
    match wait {
        Some(at) => Verdict::WaitUntil(at),
        None => Verdict::Enter,
    }
}
