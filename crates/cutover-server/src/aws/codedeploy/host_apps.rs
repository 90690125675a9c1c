//! CodeDeploy applications for hosts (`computePlatform: Server`): those of
//! the stack's `applications:` and those created here
//! (`CreateApplication`), stored as one more application row
//! (`cutover_store::host_deployments::API_STACK`) so host deployments
//! cannot tell them apart; and on-premises tag filters, read once for
//! groups (`host_groups`) and instance listings (`instances`).

use std::collections::BTreeMap;

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::codedeploy::{self as cd, errors};
use cutover_spec::stack::applications::{Application, ComputePlatform, TagFilter, TagFilterType};
use cutover_store::host_deployments::{self as hd, StoredApplication};

use super::id_of;
use crate::aws::wire::{self, Call};

/// The host application `name`, if there is one.
pub(super) async fn application(
    call: &Call<'_>,
    name: &str,
) -> Result<Option<StoredApplication>, AwsError> {
    let n = name.to_string();
    call.st
        .store
        .call(move |c| hd::application(c, &n))
        .await
        .map_err(wire::store)
}

/// Every host application's name.
pub(super) async fn names(call: &Call<'_>) -> Result<Vec<String>, AwsError> {
    Ok(call
        .st
        .store
        .call(hd::applications)
        .await
        .map_err(wire::store)?
        .into_keys()
        .collect())
}

/// Whether `name` may name an application or a group (CodeDeploy: 1-100
/// characters; Cutover keeps them to characters safe in listener names,
/// paths and logs).
pub(super) fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub(super) fn invalid_input(message: impl Into<String>) -> AwsError {
    AwsError::client(errors::INVALID_INPUT_EXCEPTION, message)
}

pub(super) async fn create_application(
    call: &Call<'_>,
    req: cd::CreateApplicationInput,
) -> Result<cd::CreateApplicationOutput, AwsError> {
    let name = req.application_name.clone();
    if !valid_name(&name) {
        return Err(AwsError::client(
            errors::INVALID_APPLICATION_NAME_EXCEPTION,
            format!("applicationName {name:?}: use 1 to 100 of A-Z a-z 0-9 . _ -"),
        ));
    }
    match req.compute_platform.unwrap_or(cd::ComputePlatform::Server) {
        cd::ComputePlatform::Server => {}
        cd::ComputePlatform::Ecs => {
            return Err(AwsError::client(
                errors::INVALID_COMPUTE_PLATFORM_EXCEPTION,
                "an ECS application is a blue/green service's deployment: declare the service in a stack file (deployment.application names its application)",
            ));
        }
        other => {
            return Err(AwsError::client(
                errors::INVALID_COMPUTE_PLATFORM_EXCEPTION,
                format!(
                    "computePlatform {}: Cutover deploys to Server (hosts) and ECS",
                    other.as_str()
                ),
            ));
        }
    }
    if req.tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(AwsError::client(
            errors::INVALID_TAGS_TO_ADD_EXCEPTION,
            "Cutover keeps no tags on applications",
        ));
    }
    let ecs = super::groups(call).await?;
    if ecs.iter().any(|s| super::application_of(s) == name) {
        return Err(already_exists(&name));
    }
    let now = call.st.clock.now_ms();
    let n = name.clone();
    call.transact(move |c| {
        if hd::application_stack(c, &n)?.is_some() {
            return Ok(Err(already_exists(&n)));
        }
        let app = StoredApplication {
            application: Application {
                compute_platform: ComputePlatform::Server,
                deployment_groups: BTreeMap::new(),
            },
            configs: BTreeMap::new(),
        };
        hd::put_api_application(c, &n, &app, now)?;
        cutover_store::ops::add_event(
            c,
            now,
            &format!("application/{n}"),
            "created by codedeploy:CreateApplication",
        )?;
        Ok(Ok(()))
    })
    .await?;
    Ok(cd::CreateApplicationOutput {
        application_id: Some(id_of(call, "application", &name)),
    })
}

fn already_exists(name: &str) -> AwsError {
    AwsError::client(
        errors::APPLICATION_ALREADY_EXISTS_EXCEPTION,
        format!("{name} already exists in your account"),
    )
}

/// `GetApplication`'s answer for a host application.
pub(super) fn application_info(call: &Call<'_>, name: &str) -> cd::ApplicationInfo {
    cd::ApplicationInfo {
        application_id: Some(id_of(call, "application", name)),
        application_name: Some(name.to_string()),
        linked_to_git_hub: Some(false),
        compute_platform: Some(cd::ComputePlatform::Server),
        ..Default::default()
    }
}

fn tag_filter(f: &cd::TagFilter, what: &str) -> Result<TagFilter, AwsError> {
    let bad = |m: String| AwsError::client(errors::INVALID_TAG_EXCEPTION, format!("{what}: {m}"));
    let kind = match f.type_ {
        Some(cd::TagFilterType::KeyOnly) => TagFilterType::KeyOnly,
        Some(cd::TagFilterType::ValueOnly) => TagFilterType::ValueOnly,
        Some(cd::TagFilterType::KeyAndValue) => TagFilterType::KeyAndValue,
        None => return Err(bad("a filter needs its Type".into())),
    };
    let (need_key, need_value) = match kind {
        TagFilterType::KeyOnly => (true, false),
        TagFilterType::ValueOnly => (false, true),
        TagFilterType::KeyAndValue => (true, true),
    };
    for (given, needed, field) in [(&f.key, need_key, "Key"), (&f.value, need_value, "Value")] {
        match given.as_deref() {
            None | Some("") if needed => return Err(bad(format!("{kind:?} needs a {field}"))),
            Some(_) if !needed => return Err(bad(format!("{kind:?} takes no {field}"))),
            _ => {}
        }
    }
    Ok(TagFilter {
        key: f.key.clone(),
        value: f.value.clone(),
        kind,
    })
}

pub(super) fn filters(list: &[cd::TagFilter], what: &str) -> Result<Vec<TagFilter>, AwsError> {
    list.iter().map(|f| tag_filter(f, what)).collect()
}
