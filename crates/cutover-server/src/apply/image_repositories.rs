//! The stack's `imageRepositories:` applied in the apply's transaction:
//! each declared repository created or brought to its settings (tag
//! mutability, scan on push, lifecycle policy, anonymous pull), and a
//! repository this stack declared before and no longer does deleted, unless
//! it holds images: then it is kept and the plan says so (images are never
//! deleted by an apply; `aws ecr delete-repository --force` does that).
//! A repository another stack declares is left to that stack.

use std::collections::BTreeSet;

use cutover_api::apply::{PlanAction, PlanItem, PlanSubject};
use cutover_spec::ecr::ImageRepositorySpec;
use cutover_store::StoreError;
use cutover_store::registry::{self as rows, RepositoryRow, TagMutability};
use rusqlite::Connection;

use super::validate::Validated;

fn item(name: &str, action: PlanAction, changes: Vec<String>) -> PlanItem {
    PlanItem {
        subject: PlanSubject {
            image_repository: Some(name.to_string()),
            ..PlanSubject::default()
        },
        action,
        changes,
    }
}

/// The row `spec` asks for (creation time and name from `base`).
fn wanted(base: &RepositoryRow, spec: &ImageRepositorySpec) -> RepositoryRow {
    RepositoryRow {
        tag_mutability: spec.image_tag_mutability,
        scan_on_push: spec.image_scanning_configuration.scan_on_push,
        anonymous_pull: spec.anonymous_pull,
        lifecycle_policy: spec
            .lifecycle_policy
            .as_ref()
            .map(cutover_spec::ecr::LifecyclePolicy::to_json_text),
        ..base.clone()
    }
}

/// The changes from `old` to `new`, as a user reads them.
fn changes(old: &RepositoryRow, new: &RepositoryRow) -> Vec<String> {
    let mut out = Vec::new();
    if old.tag_mutability != new.tag_mutability {
        out.push(format!(
            "imageTagMutability {} -> {}",
            old.tag_mutability.as_str(),
            new.tag_mutability.as_str()
        ));
    }
    if old.scan_on_push != new.scan_on_push {
        out.push(format!(
            "scanOnPush {} -> {}",
            old.scan_on_push, new.scan_on_push
        ));
    }
    if old.anonymous_pull != new.anonymous_pull {
        out.push(format!(
            "anonymousPull {} -> {}",
            old.anonymous_pull, new.anonymous_pull
        ));
    }
    if old.lifecycle_policy != new.lifecycle_policy {
        out.push(match &new.lifecycle_policy {
            Some(_) if old.lifecycle_policy.is_none() => "lifecyclePolicy added".into(),
            Some(_) => "lifecyclePolicy changed".into(),
            None => "lifecyclePolicy removed".into(),
        });
    }
    out
}

fn write(c: &Connection, row: &RepositoryRow) -> Result<(), StoreError> {
    rows::set_tag_mutability(c, &row.name, row.tag_mutability)?;
    rows::set_scan_on_push(c, &row.name, row.scan_on_push)?;
    rows::set_anonymous_pull(c, &row.name, row.anonymous_pull)?;
    rows::set_lifecycle_policy(c, &row.name, row.lifecycle_policy.as_deref())
}

/// Plans (and, unless `dry_run`, writes) the stack's image repositories.
/// Runs after the pipeline sections' step, which has filed older records
/// of this stack under its key.
pub(crate) fn store(
    c: &Connection,
    v: &Validated,
    now: u64,
    dry_run: bool,
) -> Result<Vec<PlanItem>, StoreError> {
    let mut plan = Vec::new();
    for (name, spec) in &v.image_repositories {
        let current = rows::get_repository(c, name)?;
        let base = current.clone().unwrap_or(RepositoryRow {
            name: name.clone(),
            created_at_ms: now,
            tag_mutability: TagMutability::Mutable,
            scan_on_push: false,
            anonymous_pull: false,
            lifecycle_policy: None,
        });
        let new = wanted(&base, spec);
        let (action, changed) = match &current {
            None => (PlanAction::Create, Vec::new()),
            Some(old) => {
                let changed = changes(old, &new);
                let action = if changed.is_empty() {
                    PlanAction::Unchanged
                } else {
                    PlanAction::Update
                };
                (action, changed)
            }
        };
        if !dry_run {
            match action {
                PlanAction::Create => rows::create_repository(c, &new)?,
                PlanAction::Update => write(c, &new)?,
                PlanAction::Unchanged | PlanAction::Delete => {}
            }
        }
        plan.push(item(name, action, changed));
    }
    let stacks = rows::stack_image_repositories(c)?;
    let key = &v.declared.stack;
    let previous: Vec<String> = stacks
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, names)| names.clone())
        .unwrap_or_default();
    let elsewhere: BTreeSet<&String> = stacks
        .iter()
        .filter(|(k, _)| k != key)
        .flat_map(|(_, names)| names)
        .collect();
    for name in previous {
        if v.image_repositories.contains_key(&name)
            || elsewhere.contains(&name)
            || rows::get_repository(c, &name)?.is_none()
        {
            continue;
        }
        let images = rows::count_images(c, &name)?;
        if images > 0 {
            plan.push(item(
                &name,
                PlanAction::Unchanged,
                vec![format!(
                    "no longer declared, but kept: it holds {images} images (aws ecr delete-repository --force deletes it)"
                )],
            ));
            continue;
        }
        if !dry_run {
            rows::delete_repository(c, &name, false)?;
        }
        plan.push(item(&name, PlanAction::Delete, Vec::new()));
    }
    Ok(plan)
}
