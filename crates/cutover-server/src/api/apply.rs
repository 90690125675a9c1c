//! `POST /v1/apply`: wires the three steps of [`crate::apply`] (validate,
//! plan and commit) to HTTP, then wakes what changed: the service loops,
//! the pipeline drivers, and a deployment for every blue/green service whose
//! revision changed.

use super::{ApiResult, AppState};
use crate::apply::{commit, validate};
use axum::Json;
use axum::extract::State;
use cutover_api::apply::{ApplyDeployment, ApplyRequest, ApplyResponse};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) async fn apply(
    State(st): State<AppState>,
    Json(req): Json<ApplyRequest>,
) -> ApiResult<Json<ApplyResponse>> {
    // On its own task: a client that goes away after the commit must not
    // leave the stack written without its loops woken, its pipelines
    // reloaded and its deployments created.
    crate::detach::to_completion(apply_and_wake(st, req)).await
}

async fn apply_and_wake(st: AppState, req: ApplyRequest) -> ApiResult<Json<ApplyResponse>> {
    let parsed = validate::parse(&req.file, &req.content)?;
    let refs = validate::family_refs(&parsed.value);
    let known = st
        .store
        .call(move |c| validate::Known::read(c, refs))
        .await?;
    let runtimes: BTreeSet<String> = st.controller.runtimes().keys().cloned().collect();
    let valid = validate::validate(&req, parsed, &runtimes, &st.default_runtime, &known)?;
    let dry_run = req.dry_run;
    let committed = commit::commit(&st.store, valid, st.clock.now_ms(), dry_run).await?;
    let mut deployments = Vec::new();
    if !dry_run {
        // Also when none is declared now: a pipeline the stack dropped ends.
        st.pipelines.reload().await?;
        for s in &committed.plan.services {
            st.controller.changed.notify_one();
            st.controller.wake(&s.name);
        }
        for s in &committed.plan.services {
            let Some(revision) = &s.deploy else {
                continue;
            };
            // The stack is applied already; a deployment that cannot be
            // created is reported with it, not as a failed apply.
            match st
                .deployer
                .create(crate::deploy::DeployRequest {
                    service: s.name.clone(),
                    task_definition: revision.clone(),
                    config: None,
                    appspec_hooks: BTreeMap::new(),
                    started_by: format!("apply of {}", req.file),
                    rollback_of: None,
                })
                .await
            {
                Ok(d) => deployments.push(ApplyDeployment::Started {
                    status: d.status,
                    id: d.id,
                    service: d.service,
                }),
                Err(e) => deployments.push(ApplyDeployment::Failed {
                    service: s.name.clone(),
                    error: e.to_string(),
                }),
            }
        }
    }
    Ok(Json(ApplyResponse {
        applied: !dry_run,
        deployments,
        plan: committed.items,
        warnings: committed.validated.warnings,
    }))
}
