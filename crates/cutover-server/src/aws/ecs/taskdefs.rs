//! ECS task definitions: RegisterTaskDefinition is `/v1`'s registration
//! (the same parser, the same idempotence rules, the same warnings), the
//! others read the store and answer AWS's `TaskDefinition` shape.

use axum::Json;
use axum::extract::State;
use cutover_api::task_definitions::RegisterTaskDefinitionRequest;
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::ecs::{self, TaskDefinitionStatus, errors};
use cutover_store::{TaskDefinitionRow, ops, taskdef_status};

use super::{at, task_definition_arn, task_definition_ref};
use crate::aws::wire::{self, Call};

/// The largest page ListTaskDefinitions answers (AWS's limit).
const MAX_PAGE: usize = 100;

/// AWS's `TaskDefinition` of a stored revision.
pub(super) fn shape(
    call: &Call<'_>,
    row: &TaskDefinitionRow,
    deregistered_at: Option<u64>,
) -> Result<ecs::TaskDefinition, AwsError> {
    let mut td: ecs::TaskDefinition = serde_json::from_value(row.body.clone())
        .map_err(|e| wire::internal(&e, "read a stored task definition as ECS's shape"))?;
    td.task_definition_arn = Some(task_definition_arn(call, &row.name()));
    td.family = Some(row.family.clone());
    td.revision = Some(row.revision as i32);
    td.registered_at = Some(at(row.registered_at));
    td.status = Some(if deregistered_at.is_some() {
        TaskDefinitionStatus::Inactive
    } else {
        TaskDefinitionStatus::Active
    });
    td.deregistered_at = deregistered_at.map(at);
    td.registered_by = Some(super::super::caller_arn(call.st, call.caller));
    Ok(td)
}

/// RegisterTaskDefinition: the request body is the task definition file.
pub(super) async fn register(
    call: &Call<'_>,
    body: &[u8],
) -> Result<ecs::RegisterTaskDefinitionResponse, AwsError> {
    // Read as AWS's shape first, for AWS's refusal of a malformed request.
    let req: ecs::RegisterTaskDefinitionRequest = wire::input(body)?;
    let content = String::from_utf8(body.to_vec())
        .map_err(|_| AwsError::client(errors::CLIENT_EXCEPTION, "the request is not UTF-8"))?;
    let registered = crate::api::task_definitions::register(
        State(call.st.clone()),
        Json(RegisterTaskDefinitionRequest {
            file: format!("RegisterTaskDefinition({})", req.family),
            content,
        }),
    )
    .await
    .map_err(|e| wire::refused(e, errors::CLIENT_EXCEPTION, errors::CLIENT_EXCEPTION))?;
    let td = registered.0.task_definition;
    let row = load(call, &td.family, Some(td.revision)).await?;
    Ok(ecs::RegisterTaskDefinitionResponse {
        task_definition: Some(shape(call, &row, None)?),
        tags: req.tags,
    })
}

/// The stored revision (`None`: the family's latest ACTIVE one, as AWS).
async fn load(
    call: &Call<'_>,
    family: &str,
    rev: Option<u32>,
) -> Result<TaskDefinitionRow, AwsError> {
    let f = family.to_string();
    let found = call
        .st
        .store
        .call(move |c| {
            if rev.is_some() {
                return ops::task_definition(c, &f, rev);
            }
            let gone = taskdef_status::deregistered(c)?;
            Ok(ops::list_task_definitions(c, Some(&f))?
                .into_iter()
                .rev()
                .find(|r| !gone.contains(&(r.family.clone(), r.revision))))
        })
        .await
        .map_err(wire::store)?;
    found.ok_or_else(|| {
        AwsError::client(
            errors::CLIENT_EXCEPTION,
            "Unable to describe task definition.",
        )
    })
}

/// The revision `text` names, and when it was deregistered.
pub(crate) async fn resolve(
    call: &Call<'_>,
    text: &str,
) -> Result<(TaskDefinitionRow, Option<u64>), AwsError> {
    let (family, rev) = task_definition_ref(text)?;
    let row = load(call, &family, rev).await?;
    let (f, r) = (row.family.clone(), row.revision);
    let gone = call
        .st
        .store
        .call(move |c| taskdef_status::deregistered_at(c, &f, r))
        .await
        .map_err(wire::store)?;
    Ok((row, gone))
}

/// The ACTIVE revision `text` names, for a new service or deployment.
pub(crate) async fn resolve_active(
    call: &Call<'_>,
    text: &str,
) -> Result<TaskDefinitionRow, AwsError> {
    let (row, gone) = resolve(call, text).await?;
    if gone.is_some() {
        return Err(AwsError::client(
            errors::CLIENT_EXCEPTION,
            format!(
                "TaskDefinition {} is inactive: deregistered revisions run no new tasks",
                row.name()
            ),
        ));
    }
    Ok(row)
}

pub(super) async fn describe(
    call: &Call<'_>,
    req: ecs::DescribeTaskDefinitionRequest,
) -> Result<ecs::DescribeTaskDefinitionResponse, AwsError> {
    let (row, gone) = resolve(call, &req.task_definition).await?;
    Ok(ecs::DescribeTaskDefinitionResponse {
        task_definition: Some(shape(call, &row, gone)?),
        tags: None,
    })
}

pub(super) async fn deregister(
    call: &Call<'_>,
    req: ecs::DeregisterTaskDefinitionRequest,
) -> Result<ecs::DeregisterTaskDefinitionResponse, AwsError> {
    let (family, rev) = task_definition_ref(&req.task_definition)?;
    let Some(rev) = rev else {
        return Err(AwsError::client(
            errors::CLIENT_EXCEPTION,
            "The specified task definition revision is required: family:revision or its ARN.",
        ));
    };
    let row = load(call, &family, Some(rev)).await?;
    let now = call.st.clock.now_ms();
    let when = call
        .st
        .store
        .transact(move |c| taskdef_status::deregister(c, &family, rev, now))
        .await
        .map_err(wire::store)?;
    Ok(ecs::DeregisterTaskDefinitionResponse {
        task_definition: Some(shape(call, &row, Some(when))?),
    })
}

pub(super) async fn list(
    call: &Call<'_>,
    req: ecs::ListTaskDefinitionsRequest,
) -> Result<ecs::ListTaskDefinitionsResponse, AwsError> {
    let (rows, gone) = call
        .st
        .store
        .call(|c| {
            Ok((
                ops::list_task_definitions(c, None)?,
                taskdef_status::deregistered(c)?,
            ))
        })
        .await
        .map_err(wire::store)?;
    let want = req.status.unwrap_or(TaskDefinitionStatus::Active);
    let mut arns: Vec<(String, u32, String)> = rows
        .into_iter()
        .filter(|r| {
            req.family_prefix
                .as_deref()
                .is_none_or(|p| r.family.starts_with(p))
        })
        .filter(|r| {
            let inactive = gone.contains(&(r.family.clone(), r.revision));
            match want {
                TaskDefinitionStatus::Inactive => inactive,
                TaskDefinitionStatus::Active => !inactive,
                TaskDefinitionStatus::DeleteInProgress => false,
            }
        })
        .map(|r| {
            let arn = task_definition_arn(call, &r.name());
            (r.family, r.revision, arn)
        })
        .collect();
    arns.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    if req.sort == Some(ecs::SortOrder::Desc) {
        arns.reverse();
    }
    let (page, next) = page(
        arns.into_iter().map(|a| a.2).collect(),
        req.next_token.as_deref(),
        req.max_results,
    )?;
    Ok(ecs::ListTaskDefinitionsResponse {
        task_definition_arns: Some(page),
        next_token: next,
    })
}

/// One page of `items` (ECS's page sizes and its refusal of a bad token).
pub(crate) fn page(
    items: Vec<String>,
    token: Option<&str>,
    max: Option<i32>,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    let size = max.map_or(MAX_PAGE, |m| m.clamp(1, MAX_PAGE as i32) as usize);
    wire::page(items, size, token, || {
        AwsError::client(errors::INVALID_PARAMETER_EXCEPTION, "Invalid nextToken.")
    })
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn pages_follow_their_tokens_to_the_end() {
        let items: Vec<String> = (0..250).map(|i| i.to_string()).collect();
        let (a, t) = page(items.clone(), None, None).unwrap();
        assert_eq!(a.len(), 100);
        let (b, t) = page(items.clone(), t.as_deref(), Some(200)).unwrap();
        assert_eq!((b[0].as_str(), b.len()), ("100", 100));
        let (c, t) = page(items.clone(), t.as_deref(), None).unwrap();
        assert_eq!((c.len(), t), (50, None));
        assert_eq!(
            page(items, Some("x"), None).unwrap_err().code,
            "InvalidParameterException"
        );
    }
}
