//! Deployments: creation, the per-service queue, and one driver task per
//! running deployment (see [`driver`]).
//!
//! Invariants:
//! - at most one unfinished, non-queued deployment per service; later ones
//!   wait in Queued and start, in creation order, when it finishes;
//! - the engine state is written to the store before any of its effects is
//!   executed, so a restart resumes exactly where the store says;
//! - after a restart every unfinished deployment is resumed before the API
//!   accepts new ones.

mod driver;
pub(crate) mod for_pipelines;
pub(crate) mod hooks;
mod rolling;
pub(crate) mod spec;
#[cfg(test)]
mod tests;

use crate::controller::Controller;
use crate::dataplane::SharedDataPlane;
use cutover_clock::SharedClock;
use cutover_deploy::bluegreen::HookOutcome;
use cutover_deploy::{BlueGreen, DeploymentEngine, DeploymentKind, DeploymentStatus, Input};
use cutover_store::{DeploymentRow, Store, ops};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Records a line in deployment `id`'s events (`deployment/ID`, at `at`)
/// and the log: the one writer of deployment events for container and
/// host deployments. A store failure is logged, never fatal to the driver.
pub(crate) async fn record_event(store: &Arc<Store>, at: u64, id: &str, message: &str) {
    let (subject, line) = (format!("deployment/{id}"), message.to_string());
    if let Err(e) = store
        .call(move |c| ops::add_event(c, at, &subject, &line))
        .await
    {
        tracing::warn!(deployment = %id, error = %e, "cannot record deployment event");
    }
    tracing::info!(deployment = %id, "{message}");
}

/// Why a deployment could not be created or reached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeployError {
    /// The service does not exist.
    #[error("service {0:?} not found")]
    ServiceNotFound(String),
    /// The service is being deleted.
    #[error("service {0:?} is being deleted")]
    ServiceDeleting(String),
    /// The deployment configuration is unknown or has no traffic routing.
    #[error(transparent)]
    Config(spec::DeploySpecError),
    /// The service's deployment settings give no valid blue/green spec.
    #[error("service {service:?}: {source}")]
    Settings {
        /// The service.
        service: String,
        /// What is wrong.
        source: spec::DeploySpecError,
    },
    /// The deployment has no running driver (finished, queued or unknown).
    #[error("deployment {0} is not running (finished, queued or unknown)")]
    NotRunning(String),
    /// The deployment's driver ended while the input was sent.
    #[error("deployment {0} just finished")]
    JustFinished(String),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] cutover_store::StoreError),
    /// The image of the revision could not be pinned to a digest.
    #[error(transparent)]
    Image(crate::pins::PinError),
    /// The engine state could not be encoded.
    #[error("cannot encode the deployment: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What a new deployment deploys.
#[derive(Clone)]
pub(crate) struct DeployRequest {
    pub(crate) service: String,
    /// `family:revision`, already registered.
    pub(crate) task_definition: String,
    pub(crate) config: Option<String>,
    /// Appspec hooks by event name, resolved by [`Deployer::appspec_hooks`].
    pub(crate) appspec_hooks: BTreeMap<String, cutover_spec::stack::HookSpec>,
    pub(crate) started_by: String,
    pub(crate) rollback_of: Option<String>,
}

/// Owns the deployment drivers.
pub(crate) struct Deployer {
    /// Issues the keys hook commands call AWS's APIs with.
    pub(crate) aws: Arc<crate::aws::Aws>,
    store: Arc<Store>,
    /// The control plane's clock.
    pub(crate) clock: SharedClock,
    controller: Arc<Controller>,
    dataplane: SharedDataPlane,
    inboxes: Mutex<HashMap<String, mpsc::UnboundedSender<Input>>>,
    /// When each alarm last entered ALARM (this process's lifetime), so a
    /// rolling update sees an alarm that fired and cleared between two of
    /// its checks; `fired` wakes the rolling watchers at once.
    alarms_fired: Mutex<HashMap<String, cutover_core::Millis>>,
    fired: tokio::sync::Notify,
    /// Serialises `create`, so "is one running?" and the insert that
    /// follows are never interleaved with another create (held across the
    /// store calls, hence tokio's mutex).
    creating: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

impl From<crate::pins::PinError> for DeployError {
    fn from(e: crate::pins::PinError) -> Self {
        match e {
            crate::pins::PinError::Store(e) => DeployError::Store(e),
            other => DeployError::Image(other),
        }
    }
}

/// Records a fresh pin (resolved for deployment `id`) in the deployment's
/// transaction; a pin recorded meanwhile by a first task wins.
fn record_pin(
    c: &rusqlite::Connection,
    now: cutover_core::Millis,
    id: &str,
    pin: Option<&crate::pins::Pin>,
) -> Result<(), cutover_store::StoreError> {
    if let Some(pin) = pin
        && cutover_store::image_pins::record(c, &pin.row)? == pin.row
    {
        ops::add_event(c, now, &format!("deployment/{id}"), &pin.event())?;
    }
    Ok(())
}

/// An appspec's hooks resolved against the stack's `functions`, or why not.
pub(crate) type AppSpecHooks = Result<
    cutover_spec::Parsed<BTreeMap<String, cutover_spec::stack::HookSpec>>,
    cutover_spec::SpecError,
>;

impl Deployer {
    /// Resolves the hooks of `appspec` (read from `text`, named `file`)
    /// against the `functions` of the stack that declares `service`: the one
    /// place where appspec hooks become hooks, for the API's deployments
    /// (and CodeDeploy's CreateDeployment, which goes through it) and
    /// CodePipeline's CodeDeployToECS. The outer error is the store's.
    pub(crate) async fn appspec_hooks(
        &self,
        service: &str,
        file: &str,
        text: &str,
        appspec: &cutover_spec::AppSpec,
    ) -> Result<AppSpecHooks, cutover_store::StoreError> {
        let name = service.to_string();
        let functions = self
            .store
            .call(move |c| ops::stack_functions(c, ops::StackSection::Services, &name))
            .await?;
        Ok(
            cutover_spec::stack::functions::resolve_appspec_hooks(file, text, appspec, &functions)
                .map(|p| cutover_spec::Parsed {
                    value: p
                        .value
                        .into_iter()
                        .map(|(e, h)| (e.as_str().to_string(), h))
                        .collect(),
                    warnings: p.warnings,
                }),
        )
    }

    /// Resumes every unfinished deployment.
    pub(crate) async fn start(
        store: Arc<Store>,
        controller: Arc<Controller>,
        dataplane: SharedDataPlane,
        aws: Arc<crate::aws::Aws>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Deployer>> {
        let me = Arc::new(Deployer {
            aws,
            store: store.clone(),
            clock: controller.clock.clone(),
            controller,
            dataplane,
            inboxes: Mutex::new(HashMap::new()),
            alarms_fired: Mutex::new(HashMap::new()),
            fired: tokio::sync::Notify::new(),
            creating: tokio::sync::Mutex::new(()),
            shutdown,
        });
        for d in store.call(ops::unfinished_deployments).await? {
            match (d.kind(), d.status) {
                (DeploymentKind::Rolling, _) => {
                    let (dep, id) = (me.clone(), d.id.clone());
                    tokio::spawn(async move { rolling::watch_rolling(dep, id).await });
                }
                // Queued ones start when the one ahead of them finishes.
                (_, DeploymentStatus::Queued) => {}
                // Recorded, but the server stopped before it started.
                (_, DeploymentStatus::Created) => me.spawn(d.id.clone(), false),
                _ => me.spawn(d.id.clone(), true),
            }
        }
        // A queue whose head finished while the server was down moves on.
        let unfinished = store.call(ops::unfinished_deployments).await?;
        let waiting: std::collections::BTreeSet<&str> = unfinished
            .iter()
            .filter(|d| d.status == DeploymentStatus::Queued)
            .map(|d| d.service.as_str())
            .filter(|svc| {
                !unfinished
                    .iter()
                    .any(|o| o.service == *svc && o.status != DeploymentStatus::Queued)
            })
            .collect();
        for svc in waiting {
            me.start_next(svc).await;
        }
        Ok(me)
    }

    /// Creates a deployment; it starts at once, or queues behind the
    /// service's running one.
    pub(crate) async fn create(
        self: &Arc<Self>,
        req: DeployRequest,
    ) -> Result<DeploymentRow, DeployError> {
        // On its own task: a caller dropped half-way (an API client that
        // went away) must not leave a committed deployment without the
        // driver or watcher started after the commit.
        let me = self.clone();
        crate::detach::to_completion(async move { me.create_and_start(req).await }).await
    }

    async fn create_and_start(
        self: &Arc<Self>,
        req: DeployRequest,
    ) -> Result<DeploymentRow, DeployError> {
        let id = format!("d-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        // The image is resolved before the creation lock is taken (a slow
        // registry holds up no other deployment), and recorded with the row.
        let name = req.service.clone();
        let runtime = self
            .store
            .call(move |c| ops::service(c, &name))
            .await?
            .ok_or_else(|| DeployError::ServiceNotFound(req.service.clone()))?
            .runtime;
        let pin = crate::pins::resolve(
            &self.controller,
            &req.service,
            &runtime,
            &req.task_definition,
            Some(&id),
        )
        .await?
        .filter(|p| !p.recorded);
        let _one_at_a_time = self.creating.lock().await;
        let name = req.service.clone();
        let svc = self
            .store
            .call(move |c| ops::service(c, &name))
            .await?
            .ok_or_else(|| DeployError::ServiceNotFound(req.service.clone()))?;
        if svc.status != cutover_core::service::ServiceStatus::Active {
            return Err(DeployError::ServiceDeleting(svc.name.clone()));
        }
        let now = self.clock.now_ms();
        if !svc.spec.is_blue_green() {
            // A rolling update: the service's reconcile loop replaces tasks,
            // keeping the old ones until the new revision is fully up.
            let (svc, req, id, pin) = (svc.clone(), req.clone(), id.clone(), pin.clone());
            let row = self
                .store
                .transact(move |c| {
                    record_pin(c, now, &id, pin.as_ref())?;
                    let mut s =
                        ops::service(c, &svc.name)?.ok_or(cutover_store::StoreError::NotFound {
                            kind: "service",
                            name: svc.name.clone(),
                        })?;
                    let mut row = DeploymentRow::new(
                        &id,
                        &s.name,
                        DeploymentEngine::Rolling,
                        DeploymentStatus::InProgress,
                        &s.task_definition,
                        &req.task_definition,
                        "rolling",
                        &req.started_by,
                        now,
                    );
                    row.rollback_of = req.rollback_of.clone();
                    // A newer rolling update supersedes the one still running.
                    for mut older in ops::unfinished_deployments(c)?
                        .into_iter()
                        .filter(|d| d.service == s.name && d.kind() == DeploymentKind::Rolling)
                    {
                        older.status = DeploymentStatus::Stopped;
                        older.outcome = Some(format!("superseded by {id}"));
                        older.finished_at = Some(now);
                        older.updated_at = now;
                        ops::put_deployment(c, &older)?;
                        ops::add_event(
                            c,
                            now,
                            &format!("deployment/{}", older.id),
                            &format!("superseded by {id}"),
                        )?;
                    }
                    s.task_definition = req.task_definition.clone();
                    s.generation += 1;
                    s.updated_at = now;
                    ops::put_service(c, &s)?;
                    ops::put_deployment(c, &row)?;
                    ops::add_event(
                        c,
                        now,
                        &format!("deployment/{id}"),
                        &format!(
                            "rolling update of {} to {} started by {}",
                            s.name, req.task_definition, req.started_by
                        ),
                    )?;
                    Ok(row)
                })
                .await?;
            self.controller.wake(&row.service);
            let me = self.clone();
            let rid = row.id.clone();
            tokio::spawn(async move { rolling::watch_rolling(me, rid).await });
            return Ok(row);
        }
        let config = req
            .config
            .clone()
            .or_else(|| svc.spec.deployment.config.clone())
            .unwrap_or_else(|| "CodeDeployDefault.ECSAllAtOnce".into());
        // The applied stack's configurations, then those created through
        // CodeDeploy's API (the stack's win a name both use).
        let configs = self.store.call(deployment_configs).await?;
        let routing = spec::routing(&config, &configs).map_err(DeployError::Config)?;
        let (bg, _) =
            spec::blue_green(&id, &svc.spec, routing, &req.appspec_hooks).map_err(|source| {
                DeployError::Settings {
                    service: svc.name.clone(),
                    source,
                }
            })?;
        let mut engine = BlueGreen::new(bg, now);
        let busy = self
            .store
            .call(ops::unfinished_deployments)
            .await?
            .into_iter()
            .any(|d| d.service == svc.name);
        if busy {
            engine.handle(now, Input::Enqueue);
        }
        let mut row = DeploymentRow::new(
            &id,
            &svc.name,
            engine.into(),
            if busy {
                DeploymentStatus::Queued
            } else {
                DeploymentStatus::Created
            },
            &svc.task_definition,
            &req.task_definition,
            &config,
            &req.started_by,
            now,
        );
        row.rollback_of = req.rollback_of.clone();
        let hooks = serde_json::to_value(&req.appspec_hooks)?;
        let (written, has_hooks, id_) = (row.clone(), !req.appspec_hooks.is_empty(), id.clone());
        self.store
            .transact(move |c| {
                let (row, id) = (written, id_);
                record_pin(c, now, &id, pin.as_ref())?;
                ops::put_deployment(c, &row)?;
                ops::add_event(
                    c,
                    now,
                    &format!("deployment/{id}"),
                    &format!(
                        "blue/green deployment of {} from {} to {} ({}) created by {}{}",
                        row.service,
                        row.from_task_definition,
                        row.to_task_definition,
                        row.config,
                        row.started_by,
                        if busy {
                            "; queued behind the running deployment"
                        } else {
                            ""
                        }
                    ),
                )?;
                if has_hooks {
                    ops::add_event(
                        c,
                        now,
                        &format!("deployment/{id}/appspec-hooks"),
                        &hooks.to_string(),
                    )?;
                }
                ops::add_event(
                    c,
                    now,
                    &format!("service/{}", row.service),
                    &format!("deployment {id} to {} created", row.to_task_definition),
                )
            })
            .await?;
        if !busy {
            self.spawn(id, false);
        }
        Ok(row)
    }

    /// Stops a deployment that is still queued: it never ran, so it just
    /// ends. Returns `false` when it is not (or no longer) queued.
    pub(crate) async fn cancel_queued(&self, id: &str) -> Result<bool, DeployError> {
        let _one_at_a_time = self.creating.lock().await;
        let now = self.clock.now_ms();
        let id = id.to_string();
        Ok(self
            .store
            .transact(move |c| {
                let Some(mut d) = ops::deployment(c, &id)? else {
                    return Ok(false);
                };
                if d.status != DeploymentStatus::Queued || d.finished_at.is_some() {
                    return Ok(false);
                }
                d.status = DeploymentStatus::Stopped;
                d.outcome = Some("stopped by request while queued".into());
                d.finished_at = Some(now);
                d.updated_at = now;
                ops::put_deployment(c, &d)?;
                ops::add_event(
                    c,
                    now,
                    &format!("deployment/{id}"),
                    "stopped by request while queued",
                )?;
                Ok(true)
            })
            .await?)
    }

    /// Sends an operator or callback input to a running deployment.
    pub(crate) fn send(&self, id: &str, input: Input) -> Result<(), DeployError> {
        let inboxes = self.inboxes.lock().unwrap_or_else(|p| p.into_inner());
        let tx = inboxes
            .get(id)
            .ok_or_else(|| DeployError::NotRunning(id.to_string()))?;
        tx.send(input)
            .map_err(|_| DeployError::JustFinished(id.to_string()))
    }

    /// A CodeDeploy-protocol hook reported back.
    pub(crate) fn hook_status(
        &self,
        id: &str,
        execution_id: &str,
        outcome: HookOutcome,
    ) -> Result<(), DeployError> {
        self.send(
            id,
            Input::HookResult {
                execution_id: execution_id.to_string(),
                outcome,
            },
        )
    }

    /// An alarm entered ALARM: every running deployment hears it (the engine
    /// ignores alarms its spec does not name).
    pub(crate) fn alarm_fired(&self, alarm: &str) {
        self.alarms_fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(alarm.to_string(), self.clock.now_ms());
        self.fired.notify_waiters();
        let inboxes = self.inboxes.lock().unwrap_or_else(|p| p.into_inner());
        for tx in inboxes.values() {
            let _ = tx.send(Input::AlarmFired {
                alarm: alarm.to_string(),
            });
        }
    }

    /// The first of `alarms` that entered ALARM at or after `since`, as
    /// heard by [`Deployer::alarm_fired`].
    pub(crate) fn fired_since(
        &self,
        alarms: &[&str],
        since: cutover_core::Millis,
    ) -> Option<String> {
        let fired = self.alarms_fired.lock().unwrap_or_else(|p| p.into_inner());
        alarms
            .iter()
            .find(|a| fired.get(**a).is_some_and(|at| *at >= since))
            .map(|a| a.to_string())
    }

    fn spawn(self: &Arc<Self>, id: String, resume: bool) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), tx);
        let me = self.clone();
        tokio::spawn(async move {
            let service = driver::run(me.clone(), id.clone(), rx, resume).await;
            me.inboxes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            if let Some(service) = service {
                me.start_next(&service).await;
            }
        });
    }

    /// Starts the oldest queued deployment of `service`, if any.
    pub(crate) async fn start_next(self: &Arc<Self>, service: &str) {
        // Serialised with `create` and `cancel_queued`, so a deployment
        // queued while the previous one finished is not left waiting, a
        // cancelled one is not started, and none gets two drivers.
        let _one_at_a_time = self.creating.lock().await;
        let next = self
            .store
            .call(ops::unfinished_deployments)
            .await
            .ok()
            .and_then(|all| {
                all.into_iter()
                    .find(|d| d.service == service && d.status == DeploymentStatus::Queued)
            });
        if let Some(d) = next {
            let driven = self
                .inboxes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&d.id);
            if !driven {
                self.spawn(d.id, false);
            }
        }
    }
}

/// The deployment configurations a deployment may name: the applied
/// stack's, then those created through CodeDeploy's API (the stack's win a
/// name both use). Service and host blue/green deployments resolve their
/// traffic routing among these.
pub(crate) fn deployment_configs(
    c: &rusqlite::Connection,
) -> Result<
    std::collections::BTreeMap<String, cutover_spec::stack::DeploymentConfig>,
    cutover_store::StoreError,
> {
    let mut all = ops::latest_deployment_configs(c)?;
    for (name, row) in cutover_store::deployment_configs::all(c)? {
        all.entry(name).or_insert(row.config);
    }
    Ok(all)
}
