//! ECR's lifecycle policies: PutLifecyclePolicy (the text, 100 to 30,720
//! characters, read and checked by `cutover_spec::ecr`; its errors are
//! `InvalidParameterException` with the located message),
//! GetLifecyclePolicy, DeleteLifecyclePolicy, StartLifecyclePolicyPreview
//! and GetLifecyclePolicyPreview.
//!
//! A preview is computed when it is started (it is then `COMPLETE`) by
//! `registry::lifecycle::expiring`, the function a run deletes by, so a
//! run at the same instant deletes exactly the preview's images.

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::Timestamp;
use cutover_aws::shapes::ecr::{
    DeleteLifecyclePolicyRequest, DeleteLifecyclePolicyResponse, GetLifecyclePolicyPreviewRequest,
    GetLifecyclePolicyPreviewResponse, GetLifecyclePolicyRequest, GetLifecyclePolicyResponse,
    ImageActionType, LifecyclePolicyPreviewResult, LifecyclePolicyPreviewStatus,
    LifecyclePolicyPreviewSummary, LifecyclePolicyRuleAction, PutLifecyclePolicyRequest,
    PutLifecyclePolicyResponse, StartLifecyclePolicyPreviewRequest,
    StartLifecyclePolicyPreviewResponse, TagStatus, errors,
};
use cutover_spec::ecr::LifecyclePolicy;
use cutover_spec::ecr::lifecycle::POLICY_TEXT_LEN;
use cutover_store::registry::{self as rows, RepositoryRow};

use super::{invalid, page, repository, resolve};
use crate::aws::wire::{self, Call};
use crate::registry::lifecycle::{POLICY_FILE, Preview, expiring};

/// Reads and checks a policy text as PutLifecyclePolicy does.
fn read_policy(text: &str) -> Result<LifecyclePolicy, AwsError> {
    let len = text.chars().count();
    if !POLICY_TEXT_LEN.contains(&len) {
        return Err(invalid(format!(
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Member must have length between {} and {}' (it has {len})",
            POLICY_TEXT_LEN.start(),
            POLICY_TEXT_LEN.end()
        )));
    }
    cutover_spec::ecr::parse_lifecycle_policy(POLICY_FILE, text)
        .map(|p| p.value)
        .map_err(|e| invalid(format!("Invalid parameter at 'LifecyclePolicyText': {e}")))
}

fn no_policy(call: &Call<'_>, repo: &str) -> AwsError {
    AwsError::client(
        errors::LIFECYCLE_POLICY_NOT_FOUND_EXCEPTION,
        format!(
            "Lifecycle policy does not exist for the repository with name '{repo}' in the registry with id '{}'",
            call.account()
        ),
    )
}

async fn set_policy(
    call: &Call<'_>,
    repo: &RepositoryRow,
    text: Option<String>,
) -> Result<(), AwsError> {
    let name = repo.name.clone();
    call.st
        .store
        .transact(move |c| rows::set_lifecycle_policy(c, &name, text.as_deref()))
        .await
        .map_err(wire::store)?;
    call.st.lifecycle.forget(&repo.name);
    Ok(())
}

pub(super) async fn put(
    call: &Call<'_>,
    req: PutLifecyclePolicyRequest,
) -> Result<PutLifecyclePolicyResponse, AwsError> {
    read_policy(&req.lifecycle_policy_text)?;
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    set_policy(call, &repo, Some(req.lifecycle_policy_text.clone())).await?;
    Ok(PutLifecyclePolicyResponse {
        registry_id: Some(call.account().to_string()),
        repository_name: Some(repo.name),
        lifecycle_policy_text: Some(req.lifecycle_policy_text),
    })
}

pub(super) async fn get(
    call: &Call<'_>,
    req: GetLifecyclePolicyRequest,
) -> Result<GetLifecyclePolicyResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let text = repo
        .lifecycle_policy
        .clone()
        .ok_or_else(|| no_policy(call, &repo.name))?;
    Ok(GetLifecyclePolicyResponse {
        registry_id: Some(call.account().to_string()),
        last_evaluated_at: call
            .st
            .lifecycle
            .evaluated_at(&repo.name)
            .map(Timestamp::from_millis),
        repository_name: Some(repo.name),
        lifecycle_policy_text: Some(text),
    })
}

pub(super) async fn delete(
    call: &Call<'_>,
    req: DeleteLifecyclePolicyRequest,
) -> Result<DeleteLifecyclePolicyResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let text = repo
        .lifecycle_policy
        .clone()
        .ok_or_else(|| no_policy(call, &repo.name))?;
    let evaluated = call.st.lifecycle.evaluated_at(&repo.name);
    set_policy(call, &repo, None).await?;
    Ok(DeleteLifecyclePolicyResponse {
        registry_id: Some(call.account().to_string()),
        repository_name: Some(repo.name),
        lifecycle_policy_text: Some(text),
        last_evaluated_at: evaluated.map(Timestamp::from_millis),
    })
}

pub(super) async fn start_preview(
    call: &Call<'_>,
    req: StartLifecyclePolicyPreviewRequest,
) -> Result<StartLifecyclePolicyPreviewResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let text = match req.lifecycle_policy_text {
        Some(t) => t,
        None => repo
            .lifecycle_policy
            .clone()
            .ok_or_else(|| no_policy(call, &repo.name))?,
    };
    let policy = read_policy(&text)?;
    let (name, now) = (repo.name.clone(), call.st.clock.now_ms());
    let expired = call
        .st
        .store
        .call(move |c| expiring(c, &name, &policy, now))
        .await
        .map_err(wire::store)?;
    call.st.lifecycle.set_preview(
        &repo.name,
        Preview {
            text: text.clone(),
            expiring: expired,
        },
    );
    Ok(StartLifecyclePolicyPreviewResponse {
        registry_id: Some(call.account().to_string()),
        repository_name: Some(repo.name),
        lifecycle_policy_text: Some(text),
        status: Some(LifecyclePolicyPreviewStatus::Complete),
    })
}

pub(super) async fn get_preview(
    call: &Call<'_>,
    req: GetLifecyclePolicyPreviewRequest,
) -> Result<GetLifecyclePolicyPreviewResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let preview = call.st.lifecycle.preview(&repo.name).ok_or_else(|| {
        AwsError::client(
            errors::LIFECYCLE_POLICY_PREVIEW_NOT_FOUND_EXCEPTION,
            format!(
                "Lifecycle policy preview request does not exist for the repository with name '{}' in the registry with id '{}'",
                repo.name,
                call.account()
            ),
        )
    })?;
    let mut expiring = preview.expiring;
    if let Some(ids) = req.image_ids.filter(|ids| !ids.is_empty()) {
        let name = repo.name.clone();
        let digests = call
            .st
            .store
            .call(move |c| {
                ids.iter()
                    .map(|id| resolve(c, &name, id).map(|r| r.ok().map(|i| i.digest)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(wire::store)?;
        expiring.retain(|e| digests.iter().flatten().any(|d| d == &e.image.digest));
    }
    let total = expiring.len();
    match req.filter.and_then(|f| f.tag_status) {
        Some(TagStatus::Tagged) => expiring.retain(|e| !e.image.tags.is_empty()),
        Some(TagStatus::Untagged) => expiring.retain(|e| e.image.tags.is_empty()),
        Some(TagStatus::Any) | None => {}
    }
    let (shown, next) = page(expiring, req.max_results, 100, req.next_token.as_deref())?;
    let results = shown
        .into_iter()
        .map(|e| LifecyclePolicyPreviewResult {
            image_tags: Some(e.image.tags),
            image_digest: Some(e.image.digest),
            image_pushed_at: Some(Timestamp::from_millis(e.image.pushed_at_ms)),
            action: Some(LifecyclePolicyRuleAction {
                type_: Some(ImageActionType::Expire),
                target_storage_class: None,
            }),
            applied_rule_priority: Some(e.rule_priority as i32),
            storage_class: None,
        })
        .collect();
    Ok(GetLifecyclePolicyPreviewResponse {
        registry_id: Some(call.account().to_string()),
        repository_name: Some(repo.name),
        lifecycle_policy_text: Some(preview.text),
        status: Some(LifecyclePolicyPreviewStatus::Complete),
        next_token: next,
        preview_results: Some(results),
        summary: Some(LifecyclePolicyPreviewSummary {
            expiring_image_total_count: Some(total as i32),
            transitioning_image_total_counts: None,
        }),
    })
}
