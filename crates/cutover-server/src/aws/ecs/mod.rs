//! Amazon ECS over JSON 1.1: task definitions, services, tasks and the one
//! cluster, translated onto the operations `/v1` runs (the handlers of
//! `api::task_definitions`, `api::services` and `api::deployments`), so
//! `aws ecs update-service` and `cutover deploy` are the same deployment.
//!
//! There is one cluster: `default`, any other name or a cluster ARN all
//! name it (a Jenkinsfile's `--cluster prod` works unchanged). Names and
//! ARNs are accepted wherever AWS accepts either.

mod services;
mod taskdefs;
mod tasks;

pub(crate) use taskdefs::resolve_active;

use cutover_aws::arn;
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::ecs::{self, Operation};

use super::wire::{self, Call, Reply, input, output};

/// The name of the one cluster.
pub(crate) const CLUSTER: &str = "default";

/// Runs `op`.
pub(super) async fn call(call: &Call<'_>, op: Operation, body: &[u8]) -> Result<Reply, AwsError> {
    match op {
        Operation::RegisterTaskDefinition => output(&taskdefs::register(call, body).await?),
        Operation::DescribeTaskDefinition => output(&taskdefs::describe(call, input(body)?).await?),
        Operation::ListTaskDefinitions => output(&taskdefs::list(call, input(body)?).await?),
        Operation::DeregisterTaskDefinition => {
            output(&taskdefs::deregister(call, input(body)?).await?)
        }
        Operation::CreateService => output(&services::create(call, input(body)?).await?),
        Operation::UpdateService => output(&services::update(call, input(body)?).await?),
        Operation::DeleteService => output(&services::delete(call, input(body)?).await?),
        Operation::DescribeServices => output(&services::describe(call, input(body)?).await?),
        Operation::ListServices => output(&services::list(call, input(body)?).await?),
        Operation::ListTasks => output(&tasks::list(call, input(body)?).await?),
        Operation::DescribeTasks => output(&tasks::describe(call, input(body)?).await?),
        Operation::ListClusters => {
            let _: ecs::ListClustersRequest = input(body)?;
            output(&ecs::ListClustersResponse {
                cluster_arns: Some(vec![cluster_arn(call)]),
                next_token: None,
            })
        }
        Operation::DescribeClusters => output(&tasks::describe_clusters(call, input(body)?).await?),
    }
}

/// The cluster's ARN.
pub(crate) fn cluster_arn(call: &Call<'_>) -> String {
    call.arn("ecs", &format!("cluster/{CLUSTER}"))
}

/// A service's ARN (the long form, with the cluster).
pub(crate) fn service_arn(call: &Call<'_>, name: &str) -> String {
    call.arn("ecs", &format!("service/{CLUSTER}/{name}"))
}

/// A task definition's ARN; `name` is `family:revision`.
pub(crate) fn task_definition_arn(call: &Call<'_>, name: &str) -> String {
    call.arn("ecs", &format!("task-definition/{name}"))
}

/// The service a name or ARN names.
pub(crate) fn service_name(text: &str) -> Result<String, AwsError> {
    arn::name_or_arn(text, "ecs", "service")
        .map(str::to_string)
        .map_err(|e| AwsError::client(ecs::errors::INVALID_PARAMETER_EXCEPTION, e.to_string()))
}

/// `(family, revision)` of a task definition given as `family`,
/// `family:revision` or an ARN. Surrounding double quotes are dropped: a
/// Jenkinsfile that passes `jq`'s quoted output works, as it does on AWS.
pub(crate) fn task_definition_ref(text: &str) -> Result<(String, Option<u32>), AwsError> {
    let text = text.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    let invalid = |m: String| AwsError::client(ecs::errors::CLIENT_EXCEPTION, m);
    let name =
        arn::name_or_arn(text, "ecs", "task-definition").map_err(|e| invalid(e.to_string()))?;
    let (family, rev) =
        crate::api::task_definitions::parse_name(name).map_err(|e| invalid(e.to_string()))?;
    if family.is_empty() {
        return Err(invalid(format!("{text:?} names no task definition family")));
    }
    Ok((family.to_string(), rev))
}

/// Millisecond time as the protocol's timestamp.
pub(crate) fn at(ms: u64) -> cutover_aws::shapes::Timestamp {
    cutover_aws::shapes::Timestamp::from_millis(ms)
}

/// A refusal of `/v1`'s domain operation, in ECS's vocabulary.
pub(crate) fn refused(e: crate::api::ApiError, not_found: &str) -> AwsError {
    wire::refused(e, not_found, ecs::errors::INVALID_PARAMETER_EXCEPTION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definitions_are_read_from_names_arns_and_quoted_arns() {
        assert_eq!(task_definition_ref("web").unwrap(), ("web".into(), None));
        assert_eq!(
            task_definition_ref("web:3").unwrap(),
            ("web".into(), Some(3))
        );
        assert_eq!(
            task_definition_ref("arn:aws:ecs:us-east-1:123456789012:task-definition/web:7")
                .unwrap(),
            ("web".into(), Some(7))
        );
        assert_eq!(
            task_definition_ref("\"arn:aws:ecs:us-east-1:123456789012:task-definition/web:7\"")
                .unwrap(),
            ("web".into(), Some(7))
        );
        assert_eq!(
            task_definition_ref("web:x").unwrap_err().code,
            "ClientException"
        );
        assert!(task_definition_ref("arn:aws:ecs:us-east-1:1:service/default/web").is_err());
    }

    #[test]
    fn services_are_read_from_names_and_both_arn_forms() {
        assert_eq!(service_name("web").unwrap(), "web");
        assert_eq!(
            service_name("arn:aws:ecs:us-east-1:123456789012:service/default/web").unwrap(),
            "web"
        );
        assert_eq!(
            service_name("arn:aws:ecs:us-east-1:123456789012:service/web").unwrap(),
            "web"
        );
    }
}
