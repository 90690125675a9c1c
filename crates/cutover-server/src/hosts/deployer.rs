//! Host deployments' owner: creates them (hosts chosen by the deployment
//! group's tags from the [`Fleet`]), runs one driver per deployment
//! ([`super::driver`]), resumes the unfinished ones at server start, and
//! passes operators' stops to their drivers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover_api::agents::BundleRef;
use cutover_clock::SharedClock;
use cutover_deploy::TrafficRouting;
use cutover_deploy::hosts::bluegreen::HostBlueGreenSpec;
use cutover_deploy::hosts::{
    HostBlueGreen, HostDeployment, HostInput, HostPlan, HostRollback, HostTarget, HostsSpec,
};
use cutover_spec::stack::RollbackEvent;
use cutover_spec::stack::applications::{
    DeploymentGroup, HostBlueGreen as GroupBlueGreen, OriginalHostsAction,
};
use cutover_store::Store;
use cutover_store::host_deployments::{self as hd, HostDeploymentBody, HostDeploymentRow};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::fleet::{Fleet, FleetError, Instance};
use crate::dataplane::SharedDataPlane;

/// Tunables of host deployments.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostSettings {
    /// A host whose agent has not polled for this long is lost (its
    /// running step fails as `AgentLost`) and counts as unhealthy at start.
    pub(crate) agent_lost_after: Duration,
    /// How often a driver looks at results, agents and alarms when nothing
    /// woke it earlier.
    pub(crate) poll: Duration,
}

impl HostSettings {
    /// The defaults, with `CUTOVER_AGENT_LOST_AFTER_SECONDS` (at least 1)
    /// for [`HostSettings::agent_lost_after`] if set.
    pub(crate) fn from_env() -> HostSettings {
        let mut s = HostSettings::default();
        if let Some(secs) = std::env::var("CUTOVER_AGENT_LOST_AFTER_SECONDS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            s.agent_lost_after = Duration::from_secs(secs.max(1));
        }
        s
    }
}

impl Default for HostSettings {
    fn default() -> HostSettings {
        HostSettings {
            agent_lost_after: Duration::from_secs(60),
            poll: Duration::from_secs(1),
        }
    }
}

/// Why a host deployment could not be created or stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostDeployError {
    /// No such application.
    #[error("no application named {0:?} is applied")]
    UnknownApplication(String),
    /// No such deployment group.
    #[error("application {application:?} has no deployment group {group:?}")]
    UnknownGroup {
        /// The application.
        application: String,
        /// The group.
        group: String,
    },
    /// The configuration name resolves to nothing for hosts.
    #[error("no deployment configuration for hosts is named {0:?}")]
    UnknownConfig(String),
    /// The group already deploys.
    #[error("deployment group {group:?} already has deployment {id} in progress")]
    Busy {
        /// The group.
        group: String,
        /// The deployment in progress.
        id: String,
    },
    /// A blue/green group's replacement filters choose no registered host.
    #[error(
        "deployment group {0:?} is blue/green and no registered host matches its replacementTagFilters"
    )]
    NoReplacementHosts(String),
    /// A blue/green group's traffic configuration does not resolve.
    #[error("deployment group {group:?}: {source}")]
    TrafficConfig {
        /// The group.
        group: String,
        /// Why.
        source: crate::deploy::spec::DeploySpecError,
    },
    /// No such deployment, or it has ended.
    #[error("no host deployment {0} is in progress")]
    NotRunning(String),
    /// The fleet failed.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] cutover_store::StoreError),
}

/// What to deploy.
#[derive(Debug, Clone)]
pub(crate) struct NewHostDeployment {
    /// The application.
    pub(crate) application: String,
    /// The deployment group.
    pub(crate) group: String,
    /// The stored bundle.
    pub(crate) revision: BundleRef,
    /// Where it came from, for people.
    pub(crate) source: String,
    /// A configuration overriding the group's.
    pub(crate) config: Option<String>,
    /// What started it when a pipeline did (`pipeline/<action key>`).
    pub(crate) started_by: Option<String>,
}

/// Runs host deployments.
pub(crate) struct HostDeployer {
    pub(crate) store: Arc<Store>,
    pub(crate) fleet: Arc<dyn Fleet>,
    pub(crate) dataplane: SharedDataPlane,
    pub(crate) clock: SharedClock,
    pub(crate) settings: HostSettings,
    pub(crate) shutdown: CancellationToken,
    inboxes: Mutex<HashMap<String, mpsc::UnboundedSender<HostInput>>>,
    creating: tokio::sync::Mutex<()>,
}

/// The group's id, stable across deployments (`DEPLOYMENT_GROUP_ID`).
pub(crate) fn group_id(application: &str, group: &str) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(format!("{application}\0{group}")));
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl HostDeployer {
    /// A deployer over `fleet`; call [`HostDeployer::resume_all`] once.
    pub(crate) fn new(
        store: Arc<Store>,
        fleet: Arc<dyn Fleet>,
        dataplane: SharedDataPlane,
        clock: SharedClock,
        settings: HostSettings,
        shutdown: CancellationToken,
    ) -> Arc<HostDeployer> {
        Arc::new(HostDeployer {
            store,
            fleet,
            dataplane,
            clock,
            settings,
            shutdown,
            inboxes: Mutex::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
        })
    }

    /// What the server calls once at start: resumes the unfinished
    /// deployments and watches for hosts that join a group later.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<(), HostDeployError> {
        self.resume_all().await?;
        tokio::spawn(super::outdated::watch(self.clone()));
        Ok(())
    }

    /// Resumes every unfinished host deployment (at server start).
    pub(crate) async fn resume_all(self: &Arc<Self>) -> Result<(), HostDeployError> {
        for row in self.store.call(hd::unfinished_host_deployments).await? {
            self.spawn(row.id, true);
        }
        Ok(())
    }

    /// Whether `id`'s driver runs in this process.
    pub(crate) fn is_running(&self, id: &str) -> bool {
        self.inboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    /// Stops `id` (CodeDeploy's StopDeployment), rolling back if asked.
    pub(crate) fn stop(&self, id: &str, rollback: bool) -> Result<(), HostDeployError> {
        let inboxes = self.inboxes.lock().unwrap_or_else(|p| p.into_inner());
        let tx = inboxes
            .get(id)
            .ok_or_else(|| HostDeployError::NotRunning(id.to_string()))?;
        tx.send(HostInput::Stop { rollback })
            .map_err(|_| HostDeployError::NotRunning(id.to_string()))
    }

    /// Creates a deployment of `new` to the group's hosts and starts it.
    pub(crate) async fn create(
        self: &Arc<Self>,
        new: NewHostDeployment,
    ) -> Result<String, HostDeployError> {
        self.create_for(new, None).await
    }

    /// [`HostDeployer::create`] to the group's hosts in `only`, if given.
    pub(crate) async fn create_for(
        self: &Arc<Self>,
        new: NewHostDeployment,
        only: Option<BTreeSet<String>>,
    ) -> Result<String, HostDeployError> {
        let _one = self.creating.lock().await;
        let app = new.application.clone();
        let (stored, running) = self
            .store
            .call(move |c| {
                Ok((
                    hd::application(c, &app)?,
                    hd::unfinished_host_deployments(c)?,
                ))
            })
            .await?;
        let stored =
            stored.ok_or_else(|| HostDeployError::UnknownApplication(new.application.clone()))?;
        if let Some(r) = running
            .iter()
            .find(|r| r.application == new.application && r.deployment_group == new.group)
        {
            return Err(HostDeployError::Busy {
                group: new.group,
                id: r.id.clone(),
            });
        }
        let dg = stored
            .application
            .deployment_groups
            .get(&new.group)
            .ok_or_else(|| HostDeployError::UnknownGroup {
                application: new.application.clone(),
                group: new.group.clone(),
            })?;
        let config_name = new
            .config
            .clone()
            .unwrap_or_else(|| dg.deployment_config.clone());
        let config = match stored.config(&config_name) {
            Some(c) => Some(c),
            None => {
                let n = config_name.clone();
                self.store
                    .call(move |c| cutover_store::deployment_configs::get(c, &n))
                    .await?
                    .and_then(|r| r.config.host_config())
            }
        }
        .ok_or_else(|| HostDeployError::UnknownConfig(config_name.clone()))?;
        let instances = self.fleet.instances().await?;
        // Blue/green: the replacements are the hosts its replacement filters
        // choose, the originals the group's other hosts and those that
        // serve it now (the replacements of its last deployment).
        let serving = match &dg.blue_green {
            Some(_) => {
                let (a, g) = (new.application.clone(), new.group.clone());
                self.store
                    .call(move |c| hd::host_revisions(c, &a, &g))
                    .await?
            }
            None => BTreeMap::new(),
        };
        let selected: Vec<Instance> = instances
            .into_iter()
            .filter(|i| {
                dg.selects(&i.registration.tags)
                    || serving.contains_key(&i.registration.name)
                    || dg
                        .blue_green
                        .as_ref()
                        .is_some_and(|bg| bg.is_replacement(&i.registration.tags))
            })
            .collect();
        let mut row = self
            .new_row(
                &new,
                dg,
                &selected,
                config,
                config_name,
                only.as_ref(),
                None,
            )
            .await?;
        if let Some(bg) = &dg.blue_green {
            let routing = self.routing(&new.group, &bg.traffic_config).await?;
            let tags: BTreeMap<&str, &BTreeMap<String, String>> = selected
                .iter()
                .map(|i| (i.registration.name.as_str(), &i.registration.tags))
                .collect();
            row.body.plan = blue_green_plan(&row.body.plan, bg, routing, |h| {
                tags.get(h).is_some_and(|t| bg.is_replacement(t))
            })
            .ok_or_else(|| HostDeployError::NoReplacementHosts(new.group.clone()))?;
        }
        let id = row.id.clone();
        let r = row.clone();
        self.store
            .transact(move |c| {
                hd::put_host_deployment(c, &r)?;
                cutover_store::ops::add_event(
                    c,
                    r.created_at,
                    &format!("deployment/{}", r.id),
                    &format!(
                        "host deployment of {} to {}/{} created ({} hosts, {})",
                        r.body.source,
                        r.application,
                        r.deployment_group,
                        r.body.plan.targets().len(),
                        r.body.config
                    ),
                )?;
                Ok(())
            })
            .await?;
        self.spawn(id.clone(), false);
        Ok(id)
    }

    /// A deployment row of `new` to `hosts` (not stored). `only` restricts
    /// the hosts (a rollback's), `rollback_of` names what it rolls back.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn new_row(
        &self,
        new: &NewHostDeployment,
        dg: &DeploymentGroup,
        hosts: &[Instance],
        config: cutover_spec::stack::applications::HostConfig,
        config_name: String,
        only: Option<&BTreeSet<String>>,
        rollback_of: Option<String>,
    ) -> Result<HostDeploymentRow, HostDeployError> {
        let (app, group) = (new.application.clone(), new.group.clone());
        let (previous, last_good) = self
            .store
            .call(move |c| {
                Ok((
                    hd::host_revisions(c, &app, &group)?,
                    hd::last_good_revision(c, &app, &group)?,
                ))
            })
            .await?;
        let now = self.clock.now_ms();
        let lost_after = self.settings.agent_lost_after.as_millis() as u64;
        let targets: Vec<HostTarget> = hosts
            .iter()
            .filter(|i| only.is_none_or(|o| o.contains(&i.registration.name)))
            .map(|i| HostTarget {
                name: i.registration.name.clone(),
                zone: i.registration.zone.clone(),
                healthy: now.saturating_sub(i.last_seen_ms) < lost_after,
                has_last_revision: previous.contains_key(&i.registration.name),
            })
            .collect();
        let spec = HostsSpec {
            hosts: targets,
            config,
            load_balanced: dg.all_load_balancers().next().is_some(),
            ignore_application_stop_failures: dg.ignore_application_stop_failures,
            rollback: HostRollback {
                on_failure: dg.auto_rollback.contains(&RollbackEvent::DeploymentFailure),
                on_alarm: dg
                    .auto_rollback
                    .contains(&RollbackEvent::DeploymentStopOnAlarm),
                // A rollback is never rolled back itself.
                last_good_revision: last_good.is_some() && rollback_of.is_none(),
            },
        };
        let previous: BTreeMap<String, BundleRef> = previous
            .into_iter()
            .filter(|(h, _)| spec.hosts.iter().any(|t| &t.name == h))
            .collect();
        let targets = hosts
            .iter()
            .filter(|i| spec.hosts.iter().any(|t| t.name == i.registration.name))
            .filter_map(|i| Some((i.registration.name.clone(), i.registration.target.clone()?)))
            .collect();
        Ok(HostDeploymentRow {
            id: format!("d-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            application: new.application.clone(),
            deployment_group: new.group.clone(),
            status: cutover_deploy::hosts::HostDeploymentStatus::Created,
            body: HostDeploymentBody {
                revision: new.revision.clone(),
                source: new.source.clone(),
                config: config_name,
                deployment_group_id: group_id(&new.application, &new.group),
                file_exists_behavior: dg.file_exists_behavior,
                plan: HostDeployment::new(spec).into(),
                previous,
                events: BTreeMap::new(),
                targets,
                blocked: BTreeSet::new(),
                allowed: BTreeSet::new(),
                rollback_of,
                rolled_back_by: None,
                started_by: new.started_by.clone(),
            },
            created_at: now,
            updated_at: now,
            finished_at: None,
        })
    }

    /// The traffic routing called `name`: predefined, the applied stack's,
    /// or one created through CodeDeploy's API (as for services).
    async fn routing(&self, group: &str, name: &str) -> Result<TrafficRouting, HostDeployError> {
        let configs = self.store.call(crate::deploy::deployment_configs).await?;
        crate::deploy::spec::routing(name, &configs).map_err(|source| {
            HostDeployError::TrafficConfig {
                group: group.to_string(),
                source,
            }
        })
    }

    /// Runs `id`'s driver until it ends or the server shuts down.
    pub(crate) fn spawn(self: &Arc<Self>, id: String, resume: bool) {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut inboxes = self.inboxes.lock().unwrap_or_else(|p| p.into_inner());
            if inboxes.contains_key(&id) {
                return;
            }
            inboxes.insert(id.clone(), tx);
        }
        let me = self.clone();
        tokio::spawn(async move {
            super::driver::run(me.clone(), &id, rx, resume).await;
            me.inboxes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
    }
}

/// The blue/green plan of a group whose in-place plan `plan` (built over
/// every host, originals and replacements) shows the hosts; `None` when no
/// host is a replacement.
fn blue_green_plan(
    plan: &HostPlan,
    bg: &GroupBlueGreen,
    routing: TrafficRouting,
    is_replacement: impl Fn(&str) -> bool,
) -> Option<HostPlan> {
    let spec = plan.in_place()?.spec();
    let (replacements, originals): (Vec<HostTarget>, Vec<HostTarget>) = spec
        .hosts
        .iter()
        .cloned()
        .partition(|h| is_replacement(&h.name));
    if replacements.is_empty() {
        return None;
    }
    Some(
        HostBlueGreen::new(HostBlueGreenSpec {
            replacements,
            originals,
            config: spec.config,
            routing,
            termination_wait_ms: bg.termination_wait_minutes.saturating_mul(60_000),
            stop_originals: bg.original_hosts == OriginalHostsAction::Stop,
            rollback: spec.rollback,
        })
        .into(),
    )
}
