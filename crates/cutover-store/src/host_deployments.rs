//! Host deployments (issue 12): the applied stack's `applications:`, each
//! host deployment (its planner state and what happened on each host, one
//! typed JSON body) and each host's last successful revision per
//! deployment group (whose `ApplicationStop` scripts run next, and what
//! `cutover agents describe` shows).

use std::collections::{BTreeMap, BTreeSet};

use cutover_api::agents::BundleRef;
use cutover_api::host_deployments::HostEventView;
use cutover_deploy::hosts::{HostDeploymentStatus, HostPlan};
use cutover_spec::appspec_host::FileExistsBehavior;
use cutover_spec::stack::applications::{Application, HostConfig};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// An application as applied: the stack's section, and the stack's Server
/// deployment configurations its deployments may name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredApplication {
    /// The `applications:` entry.
    pub application: Application,
    /// The stack's `deploymentConfigs` for Server, resolved.
    pub configs: BTreeMap<String, HostConfig>,
}

impl StoredApplication {
    /// Resolves a configuration name: the stack's, then the predefined ones.
    pub fn config(&self, name: &str) -> Option<HostConfig> {
        self.configs
            .get(name)
            .copied()
            .or_else(|| HostConfig::predefined(name))
    }
}

/// Replaces the applications declared by the stack `stack` with `apps`
/// (an application another stack declares is taken over).
pub fn put_applications(
    c: &Connection,
    stack: &str,
    apps: &BTreeMap<String, StoredApplication>,
    now: u64,
) -> Result<(), StoreError> {
    c.execute("DELETE FROM host_applications WHERE stack = ?1", [stack])
        .map_err(StoreError::sql("drop applications"))?;
    for (name, app) in apps {
        let body = serde_json::to_string(app).map_err(StoreError::json("application"))?;
        c.execute(
            "INSERT INTO host_applications (name, body, stack, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET body = ?2, stack = ?3, updated_at = ?4",
            params![name, body, stack, now as i64],
        )
        .map_err(StoreError::sql("put application"))?;
    }
    Ok(())
}

/// The `stack` of applications created through CodeDeploy's API
/// (CreateApplication): no stack file declares them, so no apply drops
/// them; a stack that declares the same name takes the application over.
pub const API_STACK: &str = "codedeploy:CreateApplication";

/// Creates or replaces the API-created application `name` (see
/// [`API_STACK`]). Refused with [`StoreError::Conflict`] when a stack
/// declares it.
pub fn put_api_application(
    c: &Connection,
    name: &str,
    app: &StoredApplication,
    now: u64,
) -> Result<(), StoreError> {
    if let Some(stack) = application_stack(c, name)?
        && stack != API_STACK
    {
        return Err(StoreError::Conflict(format!(
            "application {name:?} is declared by stack {stack:?}: change it in its stack file"
        )));
    }
    let body = serde_json::to_string(app).map_err(StoreError::json("application"))?;
    c.execute(
        "INSERT INTO host_applications (name, body, stack, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET body = ?2, updated_at = ?4",
        params![name, body, API_STACK, now as i64],
    )
    .map_err(StoreError::sql("put application"))?;
    Ok(())
}

/// The stack that declares application `name` ([`API_STACK`] for one
/// created through the API), if it exists.
pub fn application_stack(c: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    c.query_row(
        "SELECT stack FROM host_applications WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sql("read application"))
}

/// One application by name.
pub fn application(c: &Connection, name: &str) -> Result<Option<StoredApplication>, StoreError> {
    let body: Option<String> = c
        .query_row(
            "SELECT body FROM host_applications WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sql("read application"))?;
    body.map(|b| serde_json::from_str(&b).map_err(StoreError::json("application")))
        .transpose()
}

/// Every application, by name.
pub fn applications(c: &Connection) -> Result<BTreeMap<String, StoredApplication>, StoreError> {
    let mut stmt = c
        .prepare("SELECT name, body FROM host_applications ORDER BY name")
        .map_err(StoreError::sql("list applications"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(StoreError::sql("list applications"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list applications"))?;
    rows.into_iter()
        .map(|(n, b)| {
            Ok((
                n,
                serde_json::from_str(&b).map_err(StoreError::json("application"))?,
            ))
        })
        .collect()
}

/// What a host deployment is and how far it got (the row's JSON body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostDeploymentBody {
    /// The revision being deployed.
    pub revision: BundleRef,
    /// Where the revision came from, for people (`./bundle-v2`, `git:abc`).
    pub source: String,
    /// The deployment configuration's name.
    pub config: String,
    /// The deployment group's id (`DEPLOYMENT_GROUP_ID`).
    pub deployment_group_id: String,
    /// Overrides the appspec's `file_exists_behavior`.
    pub file_exists_behavior: Option<FileExistsBehavior>,
    /// The planner's state (in place or blue/green).
    pub plan: HostPlan,
    /// Each host's last successful revision when the deployment was created
    /// (its `ApplicationStop` and block-traffic scripts run from it).
    pub previous: BTreeMap<String, BundleRef>,
    /// Each host's zone and events so far, by host.
    pub events: BTreeMap<String, Vec<HostEventView>>,
    /// Each host's load-balancer target (`HOST:PORT`) when it was selected.
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
    /// Hosts out of their target groups now (`BlockTraffic` done,
    /// `AllowTraffic` not yet).
    pub blocked: BTreeSet<String>,
    /// Hosts returned to their target groups by this deployment
    /// (`AllowTraffic` done), before they are recorded as succeeded.
    #[serde(default)]
    pub allowed: BTreeSet<String>,
    /// The deployment this one rolls back.
    pub rollback_of: Option<String>,
    /// The rollback deployment created when this one ended.
    pub rolled_back_by: Option<String>,
    /// What started it when a pipeline did (`pipeline/<action key>`): a
    /// re-issued action finds its deployment by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
}

/// A stored host deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct HostDeploymentRow {
    /// Its id (`d-…`).
    pub id: String,
    /// The application.
    pub application: String,
    /// The deployment group.
    pub deployment_group: String,
    /// Its status (the planner's).
    pub status: HostDeploymentStatus,
    /// Everything else.
    pub body: HostDeploymentBody,
    /// Creation time, ms.
    pub created_at: u64,
    /// Last write, ms.
    pub updated_at: u64,
    /// When it ended, ms.
    pub finished_at: Option<u64>,
}

fn status_str(s: HostDeploymentStatus) -> &'static str {
    match s {
        HostDeploymentStatus::Created => "Created",
        HostDeploymentStatus::InProgress => "InProgress",
        HostDeploymentStatus::Succeeded => "Succeeded",
        HostDeploymentStatus::Failed => "Failed",
        HostDeploymentStatus::Stopped => "Stopped",
    }
}

const COLUMNS: &str =
    "id, application, deployment_group, body, created_at, updated_at, finished_at";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

type Raw = (String, String, String, String, i64, i64, Option<i64>);

fn finish(raw: Raw) -> Result<HostDeploymentRow, StoreError> {
    let (id, application, deployment_group, body, created_at, updated_at, finished_at) = raw;
    let body: HostDeploymentBody =
        serde_json::from_str(&body).map_err(StoreError::json("host deployment"))?;
    Ok(HostDeploymentRow {
        id,
        application,
        deployment_group,
        status: body.plan.status(),
        body,
        created_at: created_at as u64,
        updated_at: updated_at as u64,
        finished_at: finished_at.map(|f| f as u64),
    })
}

/// Inserts or replaces a host deployment.
pub fn put_host_deployment(c: &Connection, row: &HostDeploymentRow) -> Result<(), StoreError> {
    let body = serde_json::to_string(&row.body).map_err(StoreError::json("host deployment"))?;
    c.execute(
        "INSERT INTO host_deployments (id, application, deployment_group, status, body, created_at, updated_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET status = ?4, body = ?5, updated_at = ?7, finished_at = ?8",
        params![
            row.id,
            row.application,
            row.deployment_group,
            status_str(row.status),
            body,
            row.created_at as i64,
            row.updated_at as i64,
            row.finished_at.map(|f| f as i64)
        ],
    )
    .map_err(StoreError::sql("put host deployment"))?;
    Ok(())
}

/// One host deployment.
pub fn host_deployment(c: &Connection, id: &str) -> Result<Option<HostDeploymentRow>, StoreError> {
    let raw = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM host_deployments WHERE id = ?1"),
            [id],
            read,
        )
        .optional()
        .map_err(StoreError::sql("read host deployment"))?;
    raw.map(finish).transpose()
}

fn select(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<HostDeploymentRow>, StoreError> {
    let mut stmt = c
        .prepare(sql)
        .map_err(StoreError::sql("list host deployments"))?;
    let rows = stmt
        .query_map(p, read)
        .map_err(StoreError::sql("list host deployments"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list host deployments"))?;
    rows.into_iter().map(finish).collect()
}

/// Host deployments that have not ended (resumed at server start).
pub fn unfinished_host_deployments(c: &Connection) -> Result<Vec<HostDeploymentRow>, StoreError> {
    select(
        c,
        &format!(
            "SELECT {COLUMNS} FROM host_deployments WHERE finished_at IS NULL ORDER BY created_at, id"
        ),
        [],
    )
}

/// Every host deployment, newest first (CodeDeploy's ListDeployments
/// without a group).
pub fn all_host_deployments(c: &Connection) -> Result<Vec<HostDeploymentRow>, StoreError> {
    select(
        c,
        &format!("SELECT {COLUMNS} FROM host_deployments ORDER BY created_at DESC, id DESC"),
        [],
    )
}

/// A group's deployments, newest first.
pub fn group_host_deployments(
    c: &Connection,
    application: &str,
    group: &str,
) -> Result<Vec<HostDeploymentRow>, StoreError> {
    select(
        c,
        &format!(
            "SELECT {COLUMNS} FROM host_deployments WHERE application = ?1 AND deployment_group = ?2
             ORDER BY created_at DESC, id DESC"
        ),
        params![application, group],
    )
}

/// The group's newest deployment tagged `started_by`, ended or not.
pub fn started_by_host_deployment(
    c: &Connection,
    application: &str,
    group: &str,
    started_by: &str,
) -> Result<Option<HostDeploymentRow>, StoreError> {
    Ok(group_host_deployments(c, application, group)?
        .into_iter()
        .find(|r| r.body.started_by.as_deref() == Some(started_by)))
}

/// The group's newest deployment, ended or not.
pub fn newest_host_deployment(
    c: &Connection,
    application: &str,
    group: &str,
) -> Result<Option<HostDeploymentRow>, StoreError> {
    Ok(select(
        c,
        &format!(
            "SELECT {COLUMNS} FROM host_deployments WHERE application = ?1 AND deployment_group = ?2
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ),
        params![application, group],
    )?
    .pop())
}

/// The revision of the group's newest succeeded deployment (its last good
/// revision, what automatic rollback redeploys).
pub fn last_good_revision(
    c: &Connection,
    application: &str,
    group: &str,
) -> Result<Option<(String, BundleRef, String)>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT id, body FROM host_deployments WHERE application = ?1 AND deployment_group = ?2
             AND status = 'Succeeded' ORDER BY finished_at DESC, id DESC LIMIT 1",
        )
        .map_err(StoreError::sql("last good revision"))?;
    let row: Option<(String, String)> = stmt
        .query_row(params![application, group], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(StoreError::sql("last good revision"))?;
    row.map(|(id, body)| {
        let b: HostDeploymentBody =
            serde_json::from_str(&body).map_err(StoreError::json("host deployment"))?;
        Ok((id, b.revision, b.source))
    })
    .transpose()
}

/// A host that runs a group's revision: what it runs and where the load
/// balancer reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRevision {
    /// The host.
    pub host: String,
    /// Its last successful revision in the group.
    pub revision: BundleRef,
    /// Its load-balancer target, if it registered one.
    pub target: Option<String>,
}

/// Records that `rev.revision` was deployed successfully to `rev.host` in
/// the group by `deployment_id`.
pub fn put_host_revision(
    c: &Connection,
    application: &str,
    group: &str,
    rev: &HostRevision,
    deployment_id: &str,
    at: u64,
) -> Result<(), StoreError> {
    let bundle = serde_json::to_string(&rev.revision).map_err(StoreError::json("bundle ref"))?;
    c.execute(
        "INSERT INTO host_revisions (application, deployment_group, host, bundle, target, deployment_id, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (application, deployment_group, host) DO UPDATE SET bundle = ?4, target = ?5, deployment_id = ?6, at = ?7",
        params![application, group, rev.host, bundle, rev.target, deployment_id, at as i64],
    )
    .map_err(StoreError::sql("put host revision"))?;
    Ok(())
}

/// Forgets that `host` runs a revision of the group (an original host a
/// blue/green deployment took out of service: it serves no longer).
pub fn remove_host_revision(
    c: &Connection,
    application: &str,
    group: &str,
    host: &str,
) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM host_revisions WHERE application = ?1 AND deployment_group = ?2 AND host = ?3",
        params![application, group, host],
    )
    .map_err(StoreError::sql("remove host revision"))?;
    Ok(())
}

/// Each host's last successful revision in the group.
pub fn host_revisions(
    c: &Connection,
    application: &str,
    group: &str,
) -> Result<BTreeMap<String, BundleRef>, StoreError> {
    Ok(group_hosts(c, application, group)?
        .into_iter()
        .map(|h| (h.host, h.revision))
        .collect())
}

/// The hosts that run a revision of the group, by name.
pub fn group_hosts(
    c: &Connection,
    application: &str,
    group: &str,
) -> Result<Vec<HostRevision>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT host, bundle, target FROM host_revisions
             WHERE application = ?1 AND deployment_group = ?2 ORDER BY host",
        )
        .map_err(StoreError::sql("host revisions"))?;
    let rows = stmt
        .query_map(params![application, group], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .map_err(StoreError::sql("host revisions"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("host revisions"))?;
    rows.into_iter()
        .map(|(host, b, target)| {
            Ok(HostRevision {
                host,
                revision: serde_json::from_str(&b).map_err(StoreError::json("bundle ref"))?,
                target,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use cutover_deploy::hosts::{HostDeployment, HostRollback, HostsSpec};

    fn app() -> StoredApplication {
        StoredApplication {
            application: serde_json::from_value(serde_json::json!({
                "computePlatform": "Server",
                "deploymentGroups": {"prod": {
                    "onPremisesTagFilters": [{"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}]
                }}
            }))
            .unwrap(),
            configs: BTreeMap::new(),
        }
    }

    fn row(id: &str, digest: &str, at: u64, done: bool) -> HostDeploymentRow {
        let mut plan = HostDeployment::new(HostsSpec {
            hosts: Vec::new(),
            config: HostConfig::predefined("CodeDeployDefault.AllAtOnce").unwrap(),
            load_balanced: false,
            ignore_application_stop_failures: false,
            rollback: HostRollback::default(),
        });
        if done {
            // No hosts: Start ends it at once (Failed, NoHosts).
            plan.handle(cutover_deploy::hosts::HostInput::Start, at);
        }
        HostDeploymentRow {
            id: id.into(),
            application: "shop".into(),
            deployment_group: "prod".into(),
            status: plan.status(),
            body: HostDeploymentBody {
                plan: plan.into(),
                revision: BundleRef {
                    digest: digest.into(),
                    format: cutover_api::agents::BundleFormat::Tar,
                },
                source: digest.into(),
                config: "CodeDeployDefault.AllAtOnce".into(),
                deployment_group_id: "g".into(),
                file_exists_behavior: None,
                previous: BTreeMap::new(),
                events: BTreeMap::new(),
                targets: BTreeMap::new(),
                blocked: BTreeSet::new(),
                allowed: BTreeSet::new(),
                rollback_of: None,
                rolled_back_by: None,
                started_by: None,
            },
            created_at: at,
            updated_at: at,
            finished_at: done.then_some(at),
        }
    }

    #[allow(clippy::disallowed_methods)]
    #[test]
    fn applications_follow_their_stack_and_deployments_read_back() {
        let s = Store::open_in_memory().unwrap();
        s.with(|c| {
            put_applications(c, "a.yaml", &[("shop".to_string(), app())].into(), 1)?;
            assert_eq!(application(c, "shop")?, Some(app()));
            // Another stack's apply leaves it; its own apply without it drops it.
            put_applications(c, "b.yaml", &BTreeMap::new(), 2)?;
            assert_eq!(applications(c)?.len(), 1);
            put_applications(c, "a.yaml", &BTreeMap::new(), 3)?;
            assert_eq!(application(c, "shop")?, None);

            put_host_deployment(c, &row("d-1", "v1", 10, true))?;
            put_host_deployment(c, &row("d-2", "v2", 20, false))?;
            let d2 = host_deployment(c, "d-2")?.unwrap();
            assert_eq!(d2, row("d-2", "v2", 20, false));
            let open: Vec<String> = unfinished_host_deployments(c)?
                .into_iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(open, ["d-2"]);
            assert_eq!(
                newest_host_deployment(c, "shop", "prod")?.unwrap().id,
                "d-2"
            );
            // d-1 ended Failed: no good revision yet.
            assert_eq!(last_good_revision(c, "shop", "prod")?, None);

            let rev = HostRevision {
                host: "h1".into(),
                revision: d2.body.revision.clone(),
                target: Some("127.0.0.1:9101".into()),
            };
            put_host_revision(c, "shop", "prod", &rev, "d-2", 30)?;
            assert_eq!(group_hosts(c, "shop", "prod")?, [rev]);
            Ok(())
        })
        .unwrap();
    }
}
