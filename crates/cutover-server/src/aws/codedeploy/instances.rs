//! CodeDeploy's on-premises instances: the hosts of `hosts::agents`.
//! `RegisterOnPremisesInstance` creates a host for the agent that
//! authenticates with an access key of the named IAM user (the rule is in
//! `hosts::agents`); every registered agent is an instance here too, and
//! `AddTagsToOnPremisesInstances` / `RemoveTagsFromOnPremisesInstances`
//! change the tags deployment groups select on.

use std::collections::BTreeMap;

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codedeploy::{self as cd, errors};
use cutover_store::agents::{AgentRow, InstanceCreated};

use super::host_apps::filters;
use crate::aws::ecs::at;
use crate::aws::wire::{self, Call};
use crate::hosts::agents::valid_name;
use crate::hosts::fleet::FleetError;

/// At most this many instances per batch call (as CodeDeploy).
const MAX_BATCH: usize = 100;
/// At most this many tags per tag call (as CodeDeploy).
const MAX_TAGS: usize = 10;

fn fleet(e: FleetError) -> AwsError {
    wire::internal(&e, "read the hosts")
}

fn not_registered(name: &str) -> AwsError {
    AwsError::client(
        errors::INSTANCE_NOT_REGISTERED_EXCEPTION,
        format!("The on-premises instance {name} is not registered"),
    )
}

fn checked_name(name: &str) -> Result<&str, AwsError> {
    if valid_name(name) {
        Ok(name)
    } else {
        Err(AwsError::client(
            errors::INVALID_INSTANCE_NAME_EXCEPTION,
            format!("instanceName {name:?}: use 1 to 100 of A-Z a-z 0-9 . _ -"),
        ))
    }
}

pub(super) async fn register(
    call: &Call<'_>,
    req: cd::RegisterOnPremisesInstanceInput,
) -> Result<(), AwsError> {
    let name = checked_name(&req.instance_name)?;
    let user = match (&req.iam_user_arn, &req.iam_session_arn) {
        (Some(_), Some(_)) => {
            return Err(AwsError::client(
                errors::MULTIPLE_IAM_ARNS_PROVIDED_EXCEPTION,
                "give iamUserArn or iamSessionArn, not both",
            ));
        }
        (None, None) => {
            return Err(AwsError::client(
                errors::IAM_ARN_REQUIRED_EXCEPTION,
                "iamUserArn is required: the instance's agent authenticates with an access key of that user",
            ));
        }
        (None, Some(_)) => {
            return Err(AwsError::client(
                errors::INVALID_IAM_SESSION_ARN_EXCEPTION,
                "Cutover's agents authenticate with an IAM user's access keys: give iamUserArn (arn:aws:iam::ACCOUNT:user/NAME, NAME a key's name)",
            ));
        }
        (Some(u), None) => u,
    };
    let prefix = call.st.aws.keys.user_arn("");
    let user_name = user.strip_prefix(&prefix).unwrap_or_default();
    if user_name.is_empty() || user_name.contains(['/', ':']) {
        return Err(AwsError::client(
            errors::INVALID_IAM_USER_ARN_EXCEPTION,
            format!("iamUserArn {user:?} is not {prefix}NAME of this installation"),
        ));
    }
    match call
        .st
        .fleet
        .create_instance(name, user)
        .await
        .map_err(fleet)?
    {
        InstanceCreated::Created => Ok(()),
        InstanceCreated::NameTaken => Err(AwsError::client(
            errors::INSTANCE_NAME_ALREADY_REGISTERED_EXCEPTION,
            format!("The on-premises instance name {name} is already registered"),
        )),
        InstanceCreated::IamArnTaken => Err(AwsError::client(
            errors::IAM_USER_ARN_ALREADY_REGISTERED_EXCEPTION,
            format!("{user} is already registered with another instance"),
        )),
    }
}

pub(super) async fn deregister(
    call: &Call<'_>,
    req: cd::DeregisterOnPremisesInstanceInput,
) -> Result<(), AwsError> {
    let name = checked_name(&req.instance_name)?;
    if !call.st.fleet.deregister(name).await.map_err(fleet)? {
        return Err(not_registered(name));
    }
    Ok(())
}

fn info(call: &Call<'_>, row: AgentRow) -> cd::InstanceInfo {
    let tags = row
        .registration
        .map(|r| r.tags)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| cd::Tag {
            key: Some(k),
            value: Some(v),
        })
        .collect();
    cd::InstanceInfo {
        instance_arn: Some(call.st.fleet.instance_arn(&row.name)),
        instance_name: Some(row.name),
        iam_user_arn: row.iam_arn,
        register_time: Some(at(row.registered_at)),
        tags: Some(tags),
        ..Default::default()
    }
}

pub(super) async fn get(
    call: &Call<'_>,
    req: cd::GetOnPremisesInstanceInput,
) -> Result<cd::GetOnPremisesInstanceOutput, AwsError> {
    let name = checked_name(&req.instance_name)?;
    let row = call
        .st
        .fleet
        .row(name)
        .await
        .map_err(fleet)?
        .ok_or_else(|| not_registered(name))?;
    Ok(cd::GetOnPremisesInstanceOutput {
        instance_info: Some(info(call, row)),
    })
}

pub(super) async fn batch_get(
    call: &Call<'_>,
    req: cd::BatchGetOnPremisesInstancesInput,
) -> Result<cd::BatchGetOnPremisesInstancesOutput, AwsError> {
    if req.instance_names.len() > MAX_BATCH {
        return Err(AwsError::client(
            errors::BATCH_LIMIT_EXCEEDED_EXCEPTION,
            format!("at most {MAX_BATCH} instance names"),
        ));
    }
    let mut infos = Vec::new();
    for name in &req.instance_names {
        if let Some(row) = call
            .st
            .fleet
            .row(checked_name(name)?)
            .await
            .map_err(fleet)?
        {
            infos.push(info(call, row));
        }
    }
    Ok(cd::BatchGetOnPremisesInstancesOutput {
        instance_infos: Some(infos),
    })
}

pub(super) async fn list(
    call: &Call<'_>,
    req: cd::ListOnPremisesInstancesInput,
) -> Result<cd::ListOnPremisesInstancesOutput, AwsError> {
    let wanted = filters(req.tag_filters.as_deref().unwrap_or_default(), "tagFilters")?;
    // Deregistered instances are deleted, so none is listed as such.
    let deregistered = req.registration_status == Some(cd::RegistrationStatus::Deregistered);
    let names = call
        .st
        .fleet
        .views()
        .await
        .map_err(fleet)?
        .into_iter()
        .filter(|_| !deregistered)
        .filter(|v| wanted.is_empty() || wanted.iter().any(|f| f.matches(&v.registration.tags)))
        .map(|v| v.registration.name)
        .collect();
    let (names, next) = wire::next_token_page(names, req.next_token.as_deref(), None)?;
    Ok(cd::ListOnPremisesInstancesOutput {
        instance_names: Some(names),
        next_token: next,
    })
}

/// The tags of an Add/Remove call, checked.
fn tags_of(tags: &[cd::Tag], names: &[String]) -> Result<BTreeMap<String, String>, AwsError> {
    if tags.is_empty() {
        return Err(AwsError::client(
            errors::TAG_REQUIRED_EXCEPTION,
            "at least one tag is required",
        ));
    }
    if tags.len() > MAX_TAGS {
        return Err(AwsError::client(
            errors::TAG_LIMIT_EXCEEDED_EXCEPTION,
            format!("at most {MAX_TAGS} tags per call"),
        ));
    }
    if names.is_empty() || names.len() > MAX_BATCH {
        return Err(AwsError::client(
            errors::INSTANCE_LIMIT_EXCEEDED_EXCEPTION,
            format!("name 1 to {MAX_BATCH} instances"),
        ));
    }
    tags.iter()
        .map(|t| match t.key.as_deref() {
            Some(k) if !k.is_empty() && k.len() <= 128 => {
                Ok((k.to_string(), t.value.clone().unwrap_or_default()))
            }
            _ => Err(AwsError::client(
                errors::INVALID_TAG_EXCEPTION,
                "a tag needs a Key of 1 to 128 characters",
            )),
        })
        .collect()
}

/// Applies `edit` to the tags of every instance of `names`, after checking
/// they are all registered.
async fn edit_all(
    call: &Call<'_>,
    names: &[String],
    edit: impl Fn(&mut BTreeMap<String, String>) + Clone + Send + 'static,
) -> Result<(), AwsError> {
    for name in names {
        let exists = call
            .st
            .fleet
            .row(checked_name(name)?)
            .await
            .map_err(fleet)?
            .is_some_and(|r| r.registration.is_some());
        if !exists {
            return Err(not_registered(name));
        }
    }
    for name in names {
        if !call
            .st
            .fleet
            .edit_tags(name, edit.clone())
            .await
            .map_err(fleet)?
        {
            return Err(not_registered(name));
        }
    }
    Ok(())
}

pub(super) async fn add_tags(
    call: &Call<'_>,
    req: cd::AddTagsToOnPremisesInstancesInput,
) -> Result<(), AwsError> {
    let tags = tags_of(&req.tags, &req.instance_names)?;
    edit_all(call, &req.instance_names, move |t| t.extend(tags.clone())).await
}

pub(super) async fn remove_tags(
    call: &Call<'_>,
    req: cd::RemoveTagsFromOnPremisesInstancesInput,
) -> Result<(), AwsError> {
    let tags = tags_of(&req.tags, &req.instance_names)?;
    edit_all(call, &req.instance_names, move |t| {
        // A tag goes when its key and value both match (as CodeDeploy).
        t.retain(|k, v| tags.get(k) != Some(v));
    })
    .await
}
