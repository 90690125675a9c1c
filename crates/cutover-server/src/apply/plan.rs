//! Step two of an apply: the plan, a pure function of the validated stack
//! and the store's current state ([`Current`]): which task definition
//! revisions to register, which services and alarms to create or update
//! (with the rows to write and the list of changes a user reads), and which
//! blue/green services get their new revision through a deployment.
//!
//! The same plan is what a dry run answers and what [`super::commit`]
//! writes, so the two never disagree.

use super::validate::{ResolvedTaskDef, Validated};
use cutover_api::apply::PlanAction;
use cutover_api::services::ServiceStatus;
use cutover_store::{AlarmRow, ServiceRow, StoreError, ops};
use rusqlite::Connection;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The store's state a plan is computed against.
#[derive(Debug, Default, Clone)]
pub(crate) struct Current {
    /// Stored services of the stack, by name.
    pub(crate) services: BTreeMap<String, ServiceRow>,
    /// The newest revision and digest of every family the stack registers
    /// from a file.
    pub(crate) latest: BTreeMap<String, (u32, String)>,
    /// `(service, revision)` of every unfinished deployment.
    pub(crate) deploying: BTreeSet<(String, String)>,
    /// Stored alarms, by name.
    pub(crate) alarms: BTreeMap<String, AlarmRow>,
}

impl Current {
    /// Reads what [`plan`] compares `v` against.
    pub(crate) fn read(c: &Connection, v: &Validated) -> Result<Current, StoreError> {
        let mut current = Current::default();
        for r in &v.services {
            if let Some(s) = ops::service(c, &r.name)? {
                current.services.insert(r.name.clone(), s);
            }
            if let ResolvedTaskDef::File { family, .. } = &r.taskdef
                && !current.latest.contains_key(family)
                && let Some(l) = ops::task_definition(c, family, None)?
            {
                current
                    .latest
                    .insert(family.clone(), (l.revision, l.digest));
            }
        }
        current.deploying = ops::unfinished_deployments(c)?
            .into_iter()
            .map(|d| (d.service, d.to_task_definition))
            .collect();
        current.alarms = ops::list_alarms(c)?
            .into_iter()
            .map(|a| (a.name.clone(), a))
            .collect();
        Ok(current)
    }
}

/// A new task definition revision to register.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Registration {
    pub(crate) family: String,
    /// The revision it will get (the family's newest plus one).
    pub(crate) revision: u32,
    pub(crate) body: Value,
}

/// What happens to one service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServicePlan {
    pub(crate) name: String,
    pub(crate) action: PlanAction,
    /// The changes, as a user reads them.
    pub(crate) changes: Vec<String>,
    /// The row to write (meaningful unless the action is unchanged).
    pub(crate) row: ServiceRow,
    /// A blue/green service's new revision, deployed after the commit.
    pub(crate) deploy: Option<String>,
}

/// What happens to one alarm.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlarmPlan {
    pub(crate) name: String,
    pub(crate) action: PlanAction,
    /// The row to write (meaningful unless the action is unchanged).
    pub(crate) row: AlarmRow,
}

/// Everything an apply changes, in the order it is reported.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ApplyPlan {
    pub(crate) registrations: Vec<Registration>,
    pub(crate) services: Vec<ServicePlan>,
    pub(crate) alarms: Vec<AlarmPlan>,
}

/// Computes the plan of `v` against `current` at time `now`.
pub(crate) fn plan(v: &Validated, current: &Current, now: u64) -> ApplyPlan {
    let mut out = ApplyPlan::default();
    // The newest revision of each family as the plan goes, so that services
    // sharing a file share its revision.
    let mut latest = current.latest.clone();
    for r in &v.services {
        let taskdef = match &r.taskdef {
            ResolvedTaskDef::Existing(name) => name.clone(),
            ResolvedTaskDef::File { family, body } => {
                let digest = ops::digest(body);
                match latest.get(family) {
                    Some((rev, d)) if *d == digest => format!("{family}:{rev}"),
                    newest => {
                        let revision = newest.map_or(1, |(rev, _)| rev + 1);
                        out.registrations.push(Registration {
                            family: family.clone(),
                            revision,
                            body: body.clone(),
                        });
                        latest.insert(family.clone(), (revision, digest));
                        format!("{family}:{revision}")
                    }
                }
            }
        };
        let existing = current.services.get(&r.name);
        let mut changes = Vec::new();
        let mut deploy = None;
        let mut deployed_later = false;
        let action = match existing {
            None => {
                changes.push(format!("taskDefinition {taskdef}"));
                changes.push(format!("desiredCount {}", r.desired_count));
                changes.push(format!("runtime {}", r.runtime));
                PlanAction::Create
            }
            Some(e) => {
                if e.task_definition != taskdef {
                    let blue_green = r.spec.is_blue_green() && e.status == ServiceStatus::Active;
                    let under_way = blue_green
                        && current
                            .deploying
                            .contains(&(r.name.clone(), taskdef.clone()));
                    deployed_later = blue_green;
                    if under_way {
                        changes.push(format!(
                            "taskDefinition {} -> {taskdef}: a deployment to it is already under way",
                            e.task_definition
                        ));
                    } else if blue_green {
                        changes.push(format!(
                            "taskDefinition {} -> {taskdef} by a blue/green deployment",
                            e.task_definition
                        ));
                        deploy = Some(taskdef.clone());
                    } else {
                        changes.push(format!("taskDefinition {} -> {taskdef}", e.task_definition));
                    }
                }
                if e.desired_count != r.desired_count {
                    changes.push(format!(
                        "desiredCount {} -> {}",
                        e.desired_count, r.desired_count
                    ));
                }
                if e.runtime != r.runtime {
                    changes.push(format!("runtime {} -> {}", e.runtime, r.runtime));
                }
                if e.spec != r.spec {
                    changes.push("loadBalancer/deployment settings changed".to_string());
                }
                if e.status != ServiceStatus::Active {
                    changes.push(format!("status {} -> ACTIVE", e.status));
                }
                if changes.is_empty() {
                    PlanAction::Unchanged
                } else {
                    PlanAction::Update
                }
            }
        };
        let row = ServiceRow {
            name: r.name.clone(),
            task_definition: match existing {
                // A blue/green service's revision changes through its
                // deployment, not here.
                Some(e) if deployed_later => e.task_definition.clone(),
                _ => taskdef,
            },
            desired_count: r.desired_count,
            runtime: r.runtime.clone(),
            spec: r.spec.clone(),
            status: ServiceStatus::Active,
            lb_group: existing.map_or_else(|| "a".to_string(), |e| e.lb_group.clone()),
            generation: existing.map_or(1, |e| e.generation + 1),
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        };
        out.services.push(ServicePlan {
            name: r.name.clone(),
            action,
            changes,
            row,
            deploy,
        });
    }
    for (name, alarm) in &v.alarms {
        let before = current.alarms.get(name);
        let action = match before {
            None => PlanAction::Create,
            Some(b) if b.spec.declared() != Ok(alarm) => PlanAction::Update,
            Some(_) => PlanAction::Unchanged,
        };
        out.alarms.push(AlarmPlan {
            name: name.clone(),
            action,
            row: AlarmRow {
                name: name.clone(),
                spec: alarm.clone().into(),
                state: before.map_or(cutover_deploy::alarm::AlarmState::InsufficientData, |b| {
                    b.state
                }),
                reason: before.map_or_else(|| "created by apply".to_string(), |b| b.reason.clone()),
                updated_at: now,
            },
        });
    }
    out
}
