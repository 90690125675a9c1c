//! Step one of an apply: read the stack and every file it references, and
//! collect *all* of their errors, each located at `file:line:col` with its
//! field path. Nothing here reads the store: what validation needs from it
//! ([`Known`]) is read first, in one call.

use super::ApplyError;
use crate::dataplane::config::{self as dp, Refusal};
use crate::files::{self, FileError, TaskDefFile};
use cutover_api::apply::ApplyRequest;
use cutover_ci::config::{self, Declared};
use cutover_core::service::ServiceStatus;
use cutover_spec::diag::{Diagnostic, Parsed, SourceMap, SpecError};
use cutover_spec::stack::applications::HostConfig;
use cutover_spec::stack::{Alarm, LoadBalancer, ServiceSettings, Stack, TaskDefinitionRef};
use cutover_store::host_deployments::StoredApplication;
use cutover_store::{StoreError, ops};
use rusqlite::Connection;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What one service resolves to before anything is written.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) name: String,
    pub(crate) runtime: String,
    pub(crate) desired_count: u32,
    pub(crate) spec: ServiceSettings,
    pub(crate) taskdef: ResolvedTaskDef,
}

/// The task definition a service runs.
#[derive(Debug, Clone)]
pub(crate) enum ResolvedTaskDef {
    /// A file to register (or reuse if identical to the newest revision).
    File { family: String, body: Value },
    /// An existing `family:revision`.
    Existing(String),
}

/// A stack that passed validation: what the plan is computed from.
pub(crate) struct Validated {
    /// The stack file's name.
    pub(crate) file: String,
    /// The stack as recorded with the apply.
    pub(crate) stack_json: Value,
    pub(crate) services: Vec<Resolved>,
    /// The stack's alarms by name, as stored.
    pub(crate) alarms: Vec<(String, Alarm)>,
    /// The pipeline sections that validated.
    pub(crate) declared: Declared,
    /// The host applications (`applications:`) with the stack's Server
    /// deployment configurations.
    pub(crate) applications: BTreeMap<String, StoredApplication>,
    /// The registry's repositories the stack declares.
    pub(crate) image_repositories:
        std::collections::BTreeMap<String, cutover_spec::ecr::ImageRepositorySpec>,
    pub(crate) warnings: Vec<Diagnostic>,
}

/// What validation needs to know from the store.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Registered task definitions the stack names by family (and
    /// revision): the `family:revision` each resolves to.
    pub(crate) registered: BTreeMap<(String, Option<u32>), String>,
    /// The services already stored.
    pub(crate) services: BTreeSet<String>,
    /// The host applications already stored, with their groups' names.
    pub(crate) applications: BTreeMap<String, BTreeSet<String>>,
    /// Offline (`cutover validate`): no store to ask, so a task definition
    /// named by family is taken as registered.
    pub(crate) offline: bool,
    /// The active stored services with a load balancer: what the data
    /// plane serves beside this stack.
    pub(crate) load_balancers: Vec<StoredLb>,
}

/// A stored service's load balancer, and the stack file that declared it.
#[derive(Debug)]
pub(crate) struct StoredLb {
    pub(crate) service: String,
    pub(crate) created_at: u64,
    pub(crate) lb: LoadBalancer,
    pub(crate) stack_file: Option<String>,
}

/// The registered task definitions `stack` names by family (and revision).
pub(crate) fn family_refs(stack: &Stack) -> BTreeSet<(String, Option<u32>)> {
    stack
        .services
        .values()
        .filter_map(|svc| match &svc.task_definition {
            TaskDefinitionRef::Family { family, revision } => Some((family.clone(), *revision)),
            TaskDefinitionRef::Path(_) => None,
        })
        .collect()
}

impl Known {
    /// Reads what [`validate`] needs: the task definitions named in `refs`
    /// (see [`family_refs`]) and the stored services.
    pub(crate) fn read(
        c: &Connection,
        refs: BTreeSet<(String, Option<u32>)>,
    ) -> Result<Known, StoreError> {
        let mut known = Known::default();
        for (family, revision) in refs {
            if let Some(row) = ops::task_definition(c, &family, revision)? {
                known.registered.insert((family, revision), row.name());
            }
        }
        let stored = ops::list_services(c)?;
        let mut files = ops::stack_files_by_service(c)?;
        for s in &stored {
            if s.status == ServiceStatus::Active
                && let Some(lb) = &s.spec.load_balancer
            {
                known.load_balancers.push(StoredLb {
                    service: s.name.clone(),
                    created_at: s.created_at,
                    lb: lb.clone(),
                    stack_file: files.remove(&s.name),
                });
            }
        }
        known.services = stored.into_iter().map(|s| s.name).collect();
        known.applications = config::application_groups(
            cutover_store::host_deployments::applications(c)?
                .iter()
                .map(|(n, a)| (n, &a.application)),
        );
        Ok(known)
    }
}

/// Parses the stack file itself; a file that cannot be read is rejected
/// with every diagnostic.
pub(crate) fn parse(file: &str, content: &str) -> Result<Parsed<Stack>, FileError> {
    cutover_spec::stack::parse_stack(file, content).map_err(|e| files::rejected(file, e))
}

/// Validates the parsed stack and every file it references against what
/// this server offers (`runtimes`) and what the store knows. Every error of
/// the stack, its task definition files and its pipeline sections is
/// reported at once.
pub(crate) fn validate(
    req: &ApplyRequest,
    parsed: Parsed<Stack>,
    runtimes: &BTreeSet<String>,
    default_runtime: &str,
    known: &Known,
) -> Result<Validated, ApplyError> {
    let stack = &parsed.value;
    let mut warnings = parsed.warnings.clone();
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut services = Vec::new();
    let map = SourceMap::new(&req.file, &req.content);
    // Task definition files by path, each read once however many services
    // use it, and the services to check against theirs.
    let mut taskdef_files: BTreeMap<&str, Result<TaskDefFile, FileError>> = BTreeMap::new();
    let mut to_check: Vec<(&str, &str)> = Vec::new();

    for (name, svc) in &stack.services {
        let at = |field: &str| format!("services.{name}.{field}");
        let runtime = match svc.runtime {
            Some(cutover_spec::stack::Runtime::Process) => "process",
            Some(cutover_spec::stack::Runtime::Docker) => "docker",
            Some(cutover_spec::stack::Runtime::Swarm) => "swarm",
            None => default_runtime,
        }
        .to_string();
        if svc.runtime.is_none()
            && runtime != "swarm"
            && !(svc.placement_constraints.is_empty() && svc.placement_strategy.is_empty())
        {
            errors.push(map.error(
                &at(if svc.placement_constraints.is_empty() {
                    "placementStrategy"
                } else {
                    "placementConstraints"
                }),
                format!(
                    "placement needs runtime: swarm (this server's default runtime is {runtime:?})"
                ),
            ));
        }
        if !runtimes.contains(&runtime) {
            errors.push(map.error(
                &at("runtime"),
                format!(
                    "runtime {runtime:?} is not available on this server (available: {})",
                    runtimes
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let taskdef = match &svc.task_definition {
            TaskDefinitionRef::Path(p) => {
                let Some(text) = req.files.get(p) else {
                    errors.push(map.error(
                        &at("taskDefinition"),
                        format!("cannot read the task definition file {p:?} (relative to the stack file)"),
                    ));
                    continue;
                };
                let first = !taskdef_files.contains_key(p.as_str());
                let td = taskdef_files
                    .entry(p.as_str())
                    .or_insert_with(|| files::task_definition(p, text));
                match td {
                    Ok(td) => {
                        if first {
                            warnings.extend(td.warnings.iter().cloned());
                        }
                        to_check.push((name.as_str(), p.as_str()));
                        ResolvedTaskDef::File {
                            family: td.family.clone(),
                            body: td.body.clone(),
                        }
                    }
                    Err(FileError::Rejected { error, .. }) => {
                        // The file's own diagnostics, once.
                        if first {
                            errors.extend(error.diagnostics.iter().cloned());
                            warnings.extend(error.warnings.iter().cloned());
                        }
                        continue;
                    }
                }
            }
            TaskDefinitionRef::Family { family, revision } => {
                match known.registered.get(&(family.clone(), *revision)) {
                    Some(name) => ResolvedTaskDef::Existing(name.clone()),
                    None if known.offline => ResolvedTaskDef::Existing(format!(
                        "{family}{}",
                        revision.map(|r| format!(":{r}")).unwrap_or_default()
                    )),
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
        services.push(Resolved {
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
            let td = taskdef_files.get(path)?.as_ref().ok()?;
            Some((*svc, &td.parsed))
        })
        .collect();
    if let Err(e) = cutover_spec::stack::check_task_definitions(&req.file, &req.content, &checks) {
        errors.extend(e.diagnostics);
    }
    check_load_balancers(stack, known, &map, &mut errors);
    let mut all_services: BTreeSet<String> = stack.services.keys().cloned().collect();
    all_services.extend(known.services.iter().cloned());
    let mut all_applications = known.applications.clone();
    all_applications.extend(config::application_groups(stack.applications.iter()));
    let stack_key = config::stack_key(&req.file, req.stack.as_deref());
    let declared = config::check(
        &config::StackInput {
            file: &req.file,
            stack: &stack_key,
            map: &map,
            repositories: stack.repositories.as_ref(),
            build_projects: stack.build_projects.as_ref(),
            pipelines: stack.pipelines.as_ref(),
            files: &req.files,
            services: &all_services,
            applications: &all_applications,
        },
        &mut errors,
        &mut warnings,
    );
    if !errors.is_empty() {
        return Err(files::rejected(
            &req.file,
            SpecError {
                diagnostics: errors,
                warnings,
            },
        )
        .into());
    }
    Ok(Validated {
        file: req.file.clone(),
        stack_json: serde_json::to_value(stack)?,
        services,
        alarms: stack
            .alarms
            .iter()
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect(),
        applications: host_applications(stack),
        declared,
        image_repositories: stack.image_repositories.clone(),
        warnings,
    })
}

/// The stack's `applications:`, each with the stack's Server deployment
/// configurations resolved.
fn host_applications(stack: &Stack) -> BTreeMap<String, StoredApplication> {
    let configs: BTreeMap<String, HostConfig> = stack
        .deployment_configs
        .keys()
        .filter_map(|n| Some((n.clone(), stack.host_config(n)?)))
        .collect();
    stack
        .applications
        .iter()
        .map(|(n, a)| {
            (
                n.clone(),
                StoredApplication {
                    application: a.clone(),
                    configs: configs.clone(),
                },
            )
        })
        .collect()
}

/// Refuses a stack whose load balancers would make the data plane's
/// configuration invalid, with the check the data plane sync runs
/// ([`dp::admit`]): each service's part alone, then its listener addresses
/// against every other active service's (those of other stacks keep
/// theirs) and against the stack's own.
fn check_load_balancers(
    stack: &Stack,
    known: &Known,
    map: &SourceMap,
    errors: &mut Vec<Diagnostic>,
) {
    // Services of other stacks first (by age), then this stack's, which
    // may never take an address another service holds.
    let mut parts: Vec<dp::Part> = known
        .load_balancers
        .iter()
        .filter(|s| !stack.services.contains_key(&s.service))
        .map(|s| dp::declared_part(&s.service, s.created_at, &s.lb))
        .collect();
    let first_ours = parts.len();
    for (name, svc) in &stack.services {
        if let Some(lb) = &svc.load_balancer {
            parts.push(dp::declared_part(name, u64::MAX, lb));
        }
    }
    let verdicts = dp::admit(None, &parts);
    for (p, verdict) in parts[first_ours..].iter().zip(&verdicts[first_ours..]) {
        let at = format!("services.{}.loadBalancer", p.service);
        match verdict {
            Ok(()) => {}
            Err(Refusal::Invalid(why)) => errors.push(map.error(
                &at,
                format!("the data plane would refuse this load balancer: {why}"),
            )),
            Err(Refusal::Clash {
                address,
                role,
                other,
            }) => {
                let declared = match known.load_balancers.iter().find(|s| s.service == *other) {
                    Some(StoredLb {
                        stack_file: Some(f),
                        ..
                    }) if !stack.services.contains_key(other) => format!(" (declared in {f})"),
                    Some(_) if !stack.services.contains_key(other) => " (already running)".into(),
                    _ => " (in this stack)".into(),
                };
                errors.push(map.error(
                    &format!("{at}.{}", role.field()),
                    format!("address {address} is already the listener of service {other:?}{declared}: two services cannot share a listener"),
                ));
            }
            Err(Refusal::Admin { address, role }) => errors.push(map.error(
                &format!("{at}.{}", role.field()),
                format!("address {address} is the data plane's admin address"),
            )),
        }
    }
}
