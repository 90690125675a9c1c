//! Step three of an apply: plan against the store and write the plan, in
//! one transaction on the blocking pool. The plan is computed inside the
//! same transaction it is written in, so what is reported is exactly what
//! was written, even with another apply racing; a dry run computes the same
//! plan and writes nothing.

use super::ApplyError;
use super::plan::{ApplyPlan, Current, plan};
use super::validate::Validated;
use cutover_api::apply::{PlanAction, PlanItem, PlanSubject};
use cutover_store::{Store, StoreError, ops};
use rusqlite::Connection;
use std::sync::Arc;

/// What a commit (or a dry run) did.
pub(crate) struct Committed {
    /// The validated stack it committed.
    pub(crate) validated: Validated,
    /// The plan it wrote (or would write, on a dry run).
    pub(crate) plan: ApplyPlan,
    /// The plan as the API reports it: services, alarms, the pipeline
    /// sections, then the image repositories.
    pub(crate) items: Vec<PlanItem>,
}

/// Plans `v` against the store at `now` and, unless `dry_run`, writes it:
/// new task definition revisions, services, alarms, the pipeline sections,
/// the image repositories and the applied stack, all in one transaction.
pub(crate) async fn commit(
    store: &Arc<Store>,
    v: Validated,
    now: u64,
    dry_run: bool,
) -> Result<Committed, ApplyError> {
    let committed = store
        .transact(move |c| {
            let current = Current::read(c, &v)?;
            let plan = plan(&v, &current, now);
            let mut items = items(&plan);
            if !dry_run {
                write(c, &v, &plan, now)?;
            }
            items.extend(cutover_ci::config::store(c, &v.declared, now, dry_run)?);
            items.extend(super::image_repositories::store(c, &v, now, dry_run)?);
            if !dry_run {
                // Under the stack's identity, which finds its dropped
                // pipelines at the next apply.
                ops::record_stack(c, now, &v.declared.stack, &v.stack_json)?;
            }
            Ok(Committed {
                validated: v,
                plan,
                items,
            })
        })
        .await?;
    Ok(committed)
}

/// The services' and alarms' part of the plan, as reported.
fn items(plan: &ApplyPlan) -> Vec<PlanItem> {
    let services = plan.services.iter().map(|s| PlanItem {
        subject: PlanSubject {
            service: Some(s.name.clone()),
            ..PlanSubject::default()
        },
        action: s.action,
        changes: s.changes.clone(),
    });
    let alarms = plan.alarms.iter().map(|a| PlanItem {
        subject: PlanSubject {
            alarm: Some(a.name.clone()),
            ..PlanSubject::default()
        },
        action: a.action,
        changes: Vec::new(),
    });
    services.chain(alarms).collect()
}

fn write(c: &Connection, v: &Validated, plan: &ApplyPlan, now: u64) -> Result<(), StoreError> {
    for r in &plan.registrations {
        let (row, _) = ops::register_task_definition(c, &r.family, &r.body, now, false)?;
        if row.revision != r.revision {
            return Err(StoreError::Conflict(format!(
                "task definition {} was planned as revision {} but registered as {}",
                r.family, r.revision, row.revision
            )));
        }
    }
    for s in plan
        .services
        .iter()
        .filter(|s| s.action != PlanAction::Unchanged)
    {
        ops::put_service(c, &s.row)?;
        ops::add_event(
            c,
            now,
            &format!("service/{}", s.name),
            &format!(
                "{}d by apply of {}: {}",
                s.action.as_str(),
                v.file,
                s.changes.join(", ")
            ),
        )?;
    }
    for a in plan
        .alarms
        .iter()
        .filter(|a| a.action != PlanAction::Unchanged)
    {
        ops::put_alarm(c, &a.row)?;
    }
    cutover_store::host_deployments::put_applications(c, &v.declared.stack, &v.applications, now)?;
    Ok(())
}
