//! `outdatedInstancesStrategy: UPDATE`: a host that joins a deployment
//! group after its last deployment gets the group's current revision (the
//! newest succeeded deployment's) by a deployment of its own, as CodeDeploy
//! does for instances launched later. Runs whenever the fleet changes.
//! Blue/green groups are left out: the hosts of their next deployment are
//! chosen by tags when it is created.

use std::collections::BTreeSet;
use std::sync::Arc;

use cutover_spec::stack::applications::OutdatedInstancesStrategy;
use cutover_store::host_deployments as hd;

use super::deployer::{HostDeployError, HostDeployer, NewHostDeployment};

/// Watches the fleet until shutdown, updating outdated hosts.
pub(crate) async fn watch(dep: Arc<HostDeployer>) {
    let changed = dep.fleet.changed();
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Err(e) = update(&dep).await {
            tracing::warn!(error = %e, "cannot update outdated hosts");
        }
        tokio::select! {
            _ = dep.shutdown.cancelled() => return,
            _ = &mut notified => {}
            _ = tokio::time::sleep(dep.settings.poll * 10) => {}
        }
    }
}

/// Creates a deployment of each `UPDATE` group's current revision to its
/// online hosts that the group's newest deployment did not include and
/// that do not run that revision. Returns the deployments created.
pub(crate) async fn update(dep: &Arc<HostDeployer>) -> Result<Vec<String>, HostDeployError> {
    let (apps, running) = dep
        .store
        .call(|c| Ok((hd::applications(c)?, hd::unfinished_host_deployments(c)?)))
        .await?;
    let instances = dep.fleet.instances().await?;
    let now = dep.clock.now_ms();
    let lost_after = dep.settings.agent_lost_after.as_millis() as u64;
    let mut created = Vec::new();
    for (app, a) in &apps {
        for (group, dg) in &a.application.deployment_groups {
            // A blue/green group's hosts change by its deployments (the
            // originals it retired still match its tags).
            if dg.outdated_instances_strategy != OutdatedInstancesStrategy::Update
                || dg.blue_green.is_some()
                || running
                    .iter()
                    .any(|r| &r.application == app && &r.deployment_group == group)
            {
                continue;
            }
            let (ap, gr) = (app.clone(), group.clone());
            let (good, revisions, newest) = dep
                .store
                .call(move |c| {
                    Ok((
                        hd::last_good_revision(c, &ap, &gr)?,
                        hd::host_revisions(c, &ap, &gr)?,
                        hd::newest_host_deployment(c, &ap, &gr)?,
                    ))
                })
                .await?;
            let Some((_, revision, source)) = good else {
                continue;
            };
            let outdated: BTreeSet<String> = instances
                .iter()
                .filter(|i| dg.selects(&i.registration.tags))
                .filter(|i| now.saturating_sub(i.last_seen_ms) < lost_after)
                .map(|i| i.registration.name.clone())
                .filter(|h| revisions.get(h) != Some(&revision))
                .filter(|h| {
                    !newest
                        .as_ref()
                        .is_some_and(|d| d.body.plan.targets().iter().any(|r| &r.name == h))
                })
                .collect();
            if outdated.is_empty() {
                continue;
            }
            tracing::info!(application = %app, group = %group, hosts = ?outdated, "updating hosts that joined the group");
            let new = NewHostDeployment {
                application: app.clone(),
                group: group.clone(),
                revision,
                source,
                config: None,
                started_by: None,
            };
            match dep.create_for(new, Some(outdated)).await {
                Ok(id) => created.push(id),
                // A deployment started meanwhile: it takes the hosts.
                Err(HostDeployError::Busy { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(created)
}
