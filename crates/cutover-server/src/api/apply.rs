//! `POST /v1/apply`: declarative create/update of services from a stack file.
//!
//! Order of work, so that a rejected file changes nothing:
//! 1. parse and validate the stack and every file it references, collecting
//!    all diagnostics;
//! 2. compute the plan against the store (create / update with the list of
//!    changes / unchanged);
//! 3. unless it is a dry run, write everything in one transaction (new task
//!    definition revisions, services, repositories, build projects,
//!    pipelines, the applied stack), then wake the affected service loops
//!    and the pipeline drivers.
//!
//! Applying the same file twice is a no-op: a task definition whose
//! canonical JSON equals the newest revision of its family reuses it.

use super::{ApiResult, AppState, views};
use crate::files;
use axum::Json;
use axum::extract::State;
use cutover_api::apply::{
    ApplyDeployment, ApplyRequest, ApplyResponse, PlanAction, PlanItem, PlanSubject,
};
use cutover_api::services::ServiceStatus;
use cutover_spec::diag::Diagnostic;
use cutover_spec::stack::TaskDefinitionRef;
use cutover_store::{ServiceRow, ops};
use serde_json::Value;
use std::collections::BTreeMap;

/// What one service resolves to before anything is written.
struct Resolved {
    name: String,
    runtime: String,
    desired_count: u32,
    spec: cutover_spec::stack::ServiceSettings,
    taskdef: ResolvedTaskDef,
}

enum ResolvedTaskDef {
    /// A file to register (or reuse if identical to the newest revision).
    File { family: String, body: Value },
    /// An existing `family:revision`.
    Existing(String),
}

pub(crate) async fn apply(
    State(st): State<AppState>,
    Json(req): Json<ApplyRequest>,
) -> ApiResult<Json<ApplyResponse>> {
    let parsed = cutover_spec::stack::parse_stack(&req.file, &req.content)
        .map_err(|e| files::rejected(&req.file, e))?;
    let mut warnings = parsed.warnings.clone();
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut resolved = Vec::new();
    let available: Vec<&String> = st.controller.runtimes().keys().collect();
    let map = cutover_spec::diag::SourceMap::new(&req.file, &req.content);
    // Task definition files by path (None: rejected), and the services to
    // check against theirs once every service is resolved.
    let mut taskdef_files: BTreeMap<&str, Option<files::TaskDefFile>> = BTreeMap::new();
    let mut to_check: Vec<(&str, &str)> = Vec::new();

    for (name, svc) in &parsed.value.services {
        let at = |field: &str| format!("services.{name}.{field}");
        let runtime = match svc.runtime {
            cutover_spec::stack::Runtime::Process => "process",
            cutover_spec::stack::Runtime::Docker => "docker",
        }
        .to_string();
        if !st.controller.runtimes().contains_key(&runtime) {
            errors.push(map.error(
                &at("runtime"),
                format!(
                    "runtime {runtime:?} is not available on this server (available: {})",
                    available
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let taskdef = match &svc.task_definition {
            TaskDefinitionRef::Path(p) => match req.files.get(p) {
                None => {
                    errors.push(map.error(
                        &at("taskDefinition"),
                        format!("cannot read the task definition file {p:?} (relative to the stack file)"),
                    ));
                    continue;
                }
                Some(text) => {
                    // Each file is read once, however many services use it.
                    let first = !taskdef_files.contains_key(p.as_str());
                    let td = taskdef_files
                        .entry(p.as_str())
                        .or_insert_with(|| files::task_definition(p, text).ok());
                    match td {
                        Some(td) => {
                            if first {
                                warnings.extend(td.warnings.iter().cloned());
                            }
                            to_check.push((name.as_str(), p.as_str()));
                            ResolvedTaskDef::File {
                                family: td.family.clone(),
                                body: td.body.clone(),
                            }
                        }
                        None => {
                            // Collect the file's own diagnostics, once.
                            if first
                                && let Err(e) =
                                    cutover_spec::taskdef::parse_task_definition(p, text)
                            {
                                errors.extend(e.diagnostics);
                                warnings.extend(e.warnings);
                            }
                            continue;
                        }
                    }
                }
            },
            TaskDefinitionRef::Family { family, revision } => {
                match st
                    .store
                    .with(|c| ops::task_definition(c, family, *revision))?
                {
                    Some(row) => ResolvedTaskDef::Existing(row.name()),
                    None => {
                        errors.push(map.error(
                            &at("taskDefinition"),
                            format!(
                                "task definition {family}{} is not registered",
                                revision.map(|r| format!(":{r}")).unwrap_or_default()
                            ),
                        ));
                        continue;
                    }
                }
            }
        };
        resolved.push(Resolved {
            name: name.clone(),
            runtime,
            desired_count: svc.desired_count,
            spec: svc.settings(),
            taskdef,
        });
    }
    let checks: Vec<(&str, &cutover_spec::taskdef::TaskDefinition)> = to_check
        .iter()
        .filter_map(|(svc, path)| {
            let td = taskdef_files.get(path)?.as_ref()?;
            Some((*svc, &td.parsed))
        })
        .collect();
    if let Err(e) = cutover_spec::stack::check_task_definitions(&req.file, &req.content, &checks) {
        errors.extend(e.diagnostics);
    }
    let mut services: std::collections::BTreeSet<String> =
        parsed.value.services.keys().cloned().collect();
    services.extend(
        st.store
            .with(ops::list_services)?
            .into_iter()
            .map(|s| s.name),
    );
    let declared = crate::pipelines::config::check(
        &crate::pipelines::config::StackInput {
            file: &req.file,
            map: &map,
            repositories: parsed.value.repositories.as_ref(),
            build_projects: parsed.value.build_projects.as_ref(),
            pipelines: parsed.value.pipelines.as_ref(),
            files: &req.files,
            services: &services,
        },
        &mut errors,
        &mut warnings,
    );
    if !errors.is_empty() {
        return Err(files::rejected(
            &req.file,
            cutover_spec::diag::SpecError {
                diagnostics: errors,
                warnings,
            },
        ));
    }

    let stack_json = serde_json::to_value(&parsed.value).map_err(anyhow::Error::from)?;
    let alarms: Vec<(String, Value)> = parsed
        .value
        .alarms
        .iter()
        .map(|(n, a)| Ok((n.clone(), serde_json::to_value(a)?)))
        .collect::<Result<_, serde_json::Error>>()
        .map_err(anyhow::Error::from)?;
    let dry_run = req.dry_run;
    let file = req.file.clone();
    // Blue/green services get a new revision through a deployment, not by
    // replacing their tasks in place: (service, revision) to deploy after the
    // transaction commits.
    let mut deploy_after: Vec<(String, String)> = Vec::new();
    // Services whose stored revision changes only through a deployment.
    let mut deferred: Vec<String> = Vec::new();
    let plan = st.store.atomically(|c| {
        let now = st.clock.now_ms();
        let mut plan = Vec::new();
        for r in &resolved {
            let existing = ops::service(c, &r.name)?;
            let taskdef = match &r.taskdef {
                ResolvedTaskDef::Existing(name) => name.clone(),
                ResolvedTaskDef::File { family, body } => {
                    let latest = ops::task_definition(c, family, None)?;
                    match latest {
                        Some(l) if l.digest == ops::digest(body) => l.name(),
                        _ if dry_run => {
                            format!("{family}:{}", latest.map_or(1, |l| l.revision + 1))
                        }
                        _ => ops::register_task_definition(c, family, body, now, false)?
                            .0
                            .name(),
                    }
                }
            };
            let mut changes = Vec::new();
            let action = match &existing {
                None => {
                    changes.push(format!("taskDefinition {taskdef}"));
                    changes.push(format!("desiredCount {}", r.desired_count));
                    changes.push(format!("runtime {}", r.runtime));
                    PlanAction::Create
                }
                Some(e) => {
                    if e.task_definition != taskdef {
                        let blue_green =
                            r.spec.is_blue_green() && e.status == ServiceStatus::Active.as_str();
                        let under_way = blue_green
                            && ops::unfinished_deployments(c)?
                                .iter()
                                .any(|d| d.service == r.name && d.to_task_definition == taskdef);
                        if blue_green {
                            deferred.push(r.name.clone());
                        }
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
                            deploy_after.push((r.name.clone(), taskdef.clone()));
                        } else {
                            changes
                                .push(format!("taskDefinition {} -> {taskdef}", e.task_definition));
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
                    if e.status != ServiceStatus::Active.as_str() {
                        changes.push(format!("status {} -> ACTIVE", e.status));
                    }
                    if changes.is_empty() {
                        PlanAction::Unchanged
                    } else {
                        PlanAction::Update
                    }
                }
            };
            if !dry_run && action != PlanAction::Unchanged {
                let deployed_later = deferred.contains(&r.name);
                let row = ServiceRow {
                    name: r.name.clone(),
                    task_definition: match &existing {
                        Some(e) if deployed_later => e.task_definition.clone(),
                        _ => taskdef.clone(),
                    },
                    desired_count: r.desired_count,
                    runtime: r.runtime.clone(),
                    spec: r.spec.clone(),
                    status: ServiceStatus::Active.as_str().into(),
                    lb_group: existing
                        .as_ref()
                        .map_or_else(|| "a".to_string(), |e| e.lb_group.clone()),
                    generation: existing.as_ref().map_or(1, |e| e.generation + 1),
                    created_at: existing.as_ref().map_or(now, |e| e.created_at),
                    updated_at: now,
                };
                ops::put_service(c, &row)?;
                ops::add_event(
                    c,
                    now,
                    &format!("service/{}", r.name),
                    &format!(
                        "{}d by apply of {file}: {}",
                        action.as_str(),
                        changes.join(", ")
                    ),
                )?;
            }
            plan.push(PlanItem {
                subject: PlanSubject {
                    service: Some(r.name.clone()),
                    ..PlanSubject::default()
                },
                action,
                changes,
            });
        }
        let existing_alarms = ops::list_alarms(c)?;
        for (name, alarm) in &alarms {
            let before = existing_alarms.iter().find(|a| &a.name == name);
            let action = match before {
                None => PlanAction::Create,
                Some(b) if b.spec != *alarm => PlanAction::Update,
                Some(_) => PlanAction::Unchanged,
            };
            if !dry_run && action != PlanAction::Unchanged {
                ops::put_alarm(
                    c,
                    &cutover_store::AlarmRow {
                        name: name.clone(),
                        spec: alarm.clone(),
                        state: before
                            .map_or_else(|| "INSUFFICIENT_DATA".to_string(), |b| b.state.clone()),
                        reason: before
                            .map_or_else(|| "created by apply".to_string(), |b| b.reason.clone()),
                        updated_at: now,
                    },
                )?;
            }
            plan.push(PlanItem {
                subject: PlanSubject {
                    alarm: Some(name.clone()),
                    ..PlanSubject::default()
                },
                action,
                changes: Vec::new(),
            });
        }
        for item in crate::pipelines::config::store(c, &declared, now, dry_run)? {
            // The pipelines' part of the plan is still built as JSON there.
            plan.push(
                serde_json::from_value(item)
                    .map_err(cutover_store::StoreError::json("a pipeline plan entry"))?,
            );
        }
        if !dry_run {
            ops::record_stack(c, now, &file, &stack_json)?;
        }
        Ok(plan)
    })?;
    if !dry_run {
        st.pipelines.reload()?;
        for r in &resolved {
            st.controller.changed.notify_one();
            st.controller.wake(&r.name);
        }
    }
    let mut deployments = Vec::new();
    if !dry_run {
        for (service, revision) in deploy_after {
            // The stack is applied already; a deployment that cannot be
            // created is reported with it, not as a failed apply.
            match st.deployer.create(crate::deploy::DeployRequest {
                service: service.clone(),
                task_definition: revision,
                config: None,
                appspec_hooks: BTreeMap::new(),
                started_by: format!("apply of {}", req.file),
                rollback_of: None,
            }) {
                Ok(d) => deployments.push(ApplyDeployment::Started {
                    status: views::deployment_status(&d.status)?,
                    id: d.id,
                    service: d.service,
                }),
                Err(e) => deployments.push(ApplyDeployment::Failed {
                    service,
                    error: e.to_string(),
                }),
            }
        }
    }
    Ok(Json(ApplyResponse {
        applied: !dry_run,
        deployments,
        plan,
        warnings,
    }))
}
