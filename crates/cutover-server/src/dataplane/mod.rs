//! The data plane as seen from the control plane. In production it is one
//! `cutover proxy` process per data directory ([`ManagedProxy`], in
//! `managed`): started detached so it outlives the server, adopted when the
//! server comes back, restarted if it dies, and fed the configuration
//! derived from the store. The proxy persists every configuration it
//! acknowledges, so a restarted proxy serves the last one it had even
//! before the control plane is back.
//!
//! The rest of the control plane sees the data plane only through the
//! [`DataPlane`] trait, so the deployment driver and the alarm loop can be
//! tested in-process against a fake. [`DataPlane::sync`] is the only
//! writer: it serialises pushes, skips a push when nothing changed, and
//! returns the version the proxy acknowledged, so a deployment knows its
//! weight change is in force before its next step. With a cluster
//! (`runtime: swarm`), [`FanOut`] adds one proxy per node and a push counts
//! only when all of them acknowledged it.

pub(crate) mod config;
#[cfg(test)]
pub(crate) mod fake;
mod fanout;
pub(crate) mod hosts;
mod managed;
#[cfg(test)]
mod stack_keys;

pub(crate) use fanout::FanOut;
pub(crate) use managed::ManagedProxy;

use cutover_clock::SharedClock;
use cutover_proxy::api::{HealthReport, StatusReport};
use cutover_proxy::metrics::MetricsFeed;
use cutover_store::{Store, ops};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why the data plane could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DataPlaneError {
    /// The configuration derived from the store could not be built.
    #[error("cannot derive the data plane configuration: {0}")]
    Derive(String),
    /// The data plane refused the call or could not be reached.
    #[error("the data plane did not answer as expected: {0}")]
    Admin(#[from] cutover_proxy::client::ClientError),
    /// A node's proxy did not acknowledge the configuration.
    #[error("the data plane of node {admin} did not acknowledge: {source}")]
    Node {
        /// The node proxy's admin address.
        admin: std::net::SocketAddr,
        /// What went wrong.
        source: cutover_proxy::client::ClientError,
    },
}

/// What the control plane needs of a data plane.
#[async_trait::async_trait]
pub(crate) trait DataPlane: Send + Sync + 'static {
    /// Pushes the configuration derived from the store, if it changed, and
    /// returns the version in force once the data plane acknowledged it.
    async fn sync(&self) -> Result<u64, DataPlaneError>;
    /// Health of every target as the data plane sees it.
    async fn health(&self) -> Result<HealthReport, DataPlaneError>;
    /// Version, uptime and listeners.
    async fn status(&self) -> Result<StatusReport, DataPlaneError>;
    /// The completed one-second metric buckets after `since_unix_sec`.
    async fn metrics_feed(&self, since_unix_sec: u64) -> Result<MetricsFeed, DataPlaneError>;
    /// Where it is administered (the admin API's address), for people.
    fn admin(&self) -> String;
}

/// The data plane the control plane uses.
pub(crate) type SharedDataPlane = Arc<dyn DataPlane>;

/// Services the last derivation left out of the data plane, and why: each
/// change is written once as an event of the service, not at every sync.
#[derive(Default)]
pub(crate) struct LeftOut(std::sync::Mutex<BTreeMap<String, String>>);

impl LeftOut {
    /// The events to write for `now_out` (service, message): services newly
    /// left out (or for a new reason), and services back in.
    fn changes(&self, now_out: &[(String, config::Refusal)]) -> Vec<(String, String)> {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now: BTreeMap<String, String> = now_out
            .iter()
            .map(|(s, why)| (s.clone(), why.to_string()))
            .collect();
        let mut events = Vec::new();
        for (svc, why) in &now {
            if last.get(svc) != Some(why) {
                events.push((
                    svc.clone(),
                    format!("left out of the data plane configuration: {why}; the other services are served as usual"),
                ));
            }
        }
        for svc in last.keys() {
            if !now.contains_key(svc) {
                events.push((
                    svc.clone(),
                    "back in the data plane configuration".to_string(),
                ));
            }
        }
        *last = now;
        events
    }
}

/// The data plane configuration the store implies (as the JSON the admin
/// API takes), with `admin` as its admin address. A service whose part is
/// invalid or clashes with an older service's is left out, with an event
/// on that service when that changes (see [`config::admit`]).
pub(crate) async fn derive(
    store: &Arc<Store>,
    clock: &SharedClock,
    admin: &str,
    left_out: &LeftOut,
) -> anyhow::Result<Value> {
    // Three queries however many services there are (and two per host
    // deployment group with a load balancer): this runs on every change and
    // every second.
    let (services, deployments, all_tasks) = store
        .call(|c| {
            Ok((
                ops::list_services(c)?,
                ops::unfinished_deployments(c)?,
                ops::list_tasks(c, None, false, u32::MAX)?,
            ))
        })
        .await?;
    let mut tasks: std::collections::HashMap<String, Vec<cutover_store::TaskRow>> =
        std::collections::HashMap::new();
    for t in all_tasks {
        tasks.entry(t.service.clone()).or_default().push(t);
    }
    let none = Vec::new();
    let views: Vec<config::ServiceView<'_>> = services
        .iter()
        .map(|s| config::ServiceView {
            service: s,
            tasks: tasks.get(s.name.as_str()).unwrap_or(&none),
            deployment: deployments.iter().find(|d| d.service == s.name),
        })
        .collect();
    let (apps, groups) = store
        .call(|c| {
            let apps = cutover_store::host_deployments::applications(c)?;
            let mut groups = Vec::new();
            for (app, a) in &apps {
                for (group, dg) in &a.application.deployment_groups {
                    if dg.all_load_balancers().next().is_some() {
                        groups.push((
                            app.clone(),
                            group.clone(),
                            cutover_store::host_deployments::group_hosts(c, app, group)?,
                            cutover_store::host_deployments::newest_host_deployment(c, app, group)?,
                        ));
                    }
                }
            }
            Ok((apps, groups))
        })
        .await?;
    let group_views: Vec<hosts::GroupView<'_>> = groups
        .iter()
        .filter_map(|(app, group, hosts, newest)| {
            Some(hosts::GroupView {
                application: app,
                group,
                spec: apps.get(app)?.application.deployment_groups.get(group)?,
                hosts,
                newest: newest.as_ref(),
            })
        })
        .collect();
    let desired = config::desired_with_hosts(admin, &views, hosts::host_parts(&group_views));
    let events = left_out.changes(&desired.left_out);
    for (svc, message) in &events {
        tracing::warn!(service = %svc, "{message}");
    }
    if !events.is_empty() {
        let now = clock.now_ms();
        store
            .call(move |c| {
                for (svc, message) in &events {
                    ops::add_event(c, now, &format!("service/{svc}"), message)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(desired.config)
}
