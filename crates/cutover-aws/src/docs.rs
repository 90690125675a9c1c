//! The reference page of the AWS operations Cutover answers
//! (`docs/aws-api.md`), generated from the same generated `Operation`
//! enums the server dispatches on, so it cannot drift: a test compares the
//! file with [`operations_page`] (`CUTOVER_BLESS=1` rewrites it).

use crate::protocol::Service;
use crate::shapes::{codebuild, codedeploy, codepipeline, ecr, ecs, secretsmanager, ssm};

/// Operations users look for that Cutover refuses, and what to do instead.
const NOTABLE_UNSUPPORTED: &[(Service, &str, &str)] = &[
    (
        Service::Ecs,
        "RunTask",
        "declare a service (`cutover apply`, or CreateService) and scale it",
    ),
    (
        Service::Ecs,
        "CreateCluster",
        "there is one cluster; every cluster name or ARN maps to it",
    ),
    (Service::Ecs, "TagResource", "tags are not stored yet"),
    (
        Service::CodeDeploy,
        "BatchGetDeployments",
        "GetDeployment, one id at a time (the waiters use it)",
    ),
    (
        Service::CodeDeploy,
        "DeleteApplication",
        "remove the application from its stack file, or keep an API-created one",
    ),
    (
        Service::CodeDeploy,
        "UpdateDeploymentGroup",
        "change the group in its stack file; API-created groups are fixed once created",
    ),
    (
        Service::CodePipeline,
        "CreatePipeline",
        "declare pipelines in the stack (`pipelines:`) and run `cutover apply`",
    ),
    (
        Service::CodeBuild,
        "CreateProject",
        "declare build projects in the stack (`buildProjects:`)",
    ),
    (
        Service::Ecr,
        "PutImage",
        "push with Podman, skopeo or Docker to the `repositoryUri` (the registry under `/v2/`)",
    ),
    (
        Service::Ecr,
        "InitiateLayerUpload",
        "push with Podman, skopeo or Docker to the `repositoryUri` (the registry under `/v2/`)",
    ),
    (
        Service::Ecr,
        "GetDownloadUrlForLayer",
        "pull with Podman, skopeo or Docker from the `repositoryUri` (the registry under `/v2/`)",
    ),
    (
        Service::Ecr,
        "SetRepositoryPolicy",
        "every key of the installation may push and pull; `anonymousPull: true` in `imageRepositories:` opens pulls",
    ),
];

/// What a user of a service must know beyond its operations.
const SERVICE_NOTES: &[(Service, &str)] = &[
    (
        Service::CodeDeploy,
        "CreateDeployment's appspec names its hooks as Lambda functions: each must be\n\
         mapped in the `functions:` section of the service's stack (see the README's\n\
         blue/green section), or the call fails with InvalidRevisionException\n\
         naming the hook's line and column.\n\n\
         For hosts (`computePlatform: Server`, docs/hosts.md): CreateApplication and\n\
         CreateDeploymentGroup create in-place groups choosing hosts by on-premises tags\n\
         (load balancers and blue/green are declared in a stack file; what a group asks\n\
         for that Cutover cannot honour is refused, never dropped); CreateDeployment\n\
         takes a GitHub revision, a commit of a stack `repositories:` entry (named by\n\
         its key, its URL, or `owner/name` ending its URL); Cutover has no S3.\n\
         RegisterOnPremisesInstance names the IAM user (`arn:aws:iam::ACCOUNT:user/NAME`,\n\
         NAME an access key's name) whose access key the host's agent presents\n\
         (`ACCESS_KEY_ID:SECRET` as its key).\n",
    ),
    (
        Service::Ecr,
        "ECR's API answers for the registry the server serves under `/v2/` on the same\n\
         listener: `repositoryUri` is `HOST:PORT/NAME`, `aws ecr get-login-password` is the\n\
         password of user `AWS` for `podman login`/`docker login` (12 hours). Repositories can\n\
         also be declared in `stack.yaml` (`imageRepositories:`); see docs/registry.md.\n",
    ),
];

/// The service's operations Cutover answers, by name.
fn answered(service: Service) -> Vec<&'static str> {
    macro_rules! names {
        ($m:ident) => {
            $m::Operation::ALL.iter().map(|o| o.name()).collect()
        };
    }
    match service {
        Service::Ecs => names!(ecs),
        Service::CodeDeploy => names!(codedeploy),
        Service::CodePipeline => names!(codepipeline),
        Service::CodeBuild => names!(codebuild),
        Service::SecretsManager => names!(secretsmanager),
        Service::Ssm => names!(ssm),
        Service::Ecr => names!(ecr),
    }
}

/// The aws CLI's name of a service.
fn cli_name(service: Service) -> &'static str {
    match service {
        Service::Ecs => "ecs",
        Service::CodeDeploy => "deploy",
        Service::CodePipeline => "codepipeline",
        Service::CodeBuild => "codebuild",
        Service::SecretsManager => "secretsmanager",
        Service::Ssm => "ssm",
        Service::Ecr => "ecr",
    }
}

/// The aws CLI's name of an operation: `RegisterTaskDefinition` is
/// `register-task-definition`.
pub fn cli_command(operation: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = operation.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_ascii_uppercase()
            && (chars[i - 1].is_ascii_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
        if boundary {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The whole page.
pub fn operations_page() -> String {
    let mut page = String::from(
        "# AWS operations Cutover answers\n\n\
         <!-- Generated from crates/cutover-aws/src/shapes (botocore's models): do not edit.\n     \
         Regenerate with `CUTOVER_BLESS=1 cargo test -p cutover-aws docs`. -->\n\n\
         The server's listener answers AWS's JSON 1.1 protocol (`POST /` with `X-Amz-Target`) and STS's\n\
         query protocol, every request verified with Signature Version 4 against an access key of\n\
         `cutover access-keys create`. Point the aws CLI or an SDK at it:\n\n\
         ```sh\n\
         export AWS_ENDPOINT_URL=http://127.0.0.1:7070 AWS_DEFAULT_REGION=us-east-1\n\
         export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...   # from cutover access-keys create\n\
         ```\n\n\
         An operation not listed here is refused with `UnknownOperationException` naming it; nothing\n\
         answers it with a silent success. ARNs carry the caller's region and the installation's\n\
         account id (`aws sts get-caller-identity`), and are accepted wherever AWS accepts a name.\n\n\
         ## STS\n\n\
         | Operation | aws CLI |\n|---|---|\n| GetCallerIdentity | `aws sts get-caller-identity` |\n",
    );
    for &service in Service::ALL {
        let ops = answered(service);
        page.push_str(&format!(
            "\n## {} (`{}`)\n\n{} of the {} operations of AWS's model.\n",
            service.display_name(),
            service.target_prefix(),
            ops.len(),
            service.all_operations().len()
        ));
        if !ops.is_empty() {
            page.push_str("\n| Operation | aws CLI |\n|---|---|\n");
        }
        for op in &ops {
            page.push_str(&format!(
                "| {op} | `aws {} {}` |\n",
                cli_name(service),
                cli_command(op)
            ));
        }
        for (_, note) in SERVICE_NOTES.iter().filter(|(s, _)| *s == service) {
            page.push('\n');
            page.push_str(note);
        }
        let notable: Vec<_> = NOTABLE_UNSUPPORTED
            .iter()
            .filter(|(s, _, _)| *s == service)
            .collect();
        if !notable.is_empty() {
            page.push_str("\nNot answered, and what to do instead:\n\n");
            for (_, op, instead) in notable {
                page.push_str(&format!("- {op}: {instead}.\n"));
            }
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_commands_follow_botocore() {
        assert_eq!(
            cli_command("RegisterTaskDefinition"),
            "register-task-definition"
        );
        assert_eq!(
            cli_command("PutLifecycleEventHookExecutionStatus"),
            "put-lifecycle-event-hook-execution-status"
        );
        assert_eq!(cli_command("BatchGetBuilds"), "batch-get-builds");
        assert_eq!(cli_command("GetParametersByPath"), "get-parameters-by-path");
    }

    #[test]
    fn notable_unsupported_operations_exist_and_are_not_answered() {
        for (service, op, _) in NOTABLE_UNSUPPORTED {
            assert!(
                service.all_operations().contains(op),
                "{op} is not in the model"
            );
            assert!(!answered(*service).contains(op), "{op} is answered");
        }
    }

    /// `docs/aws-api.md` is exactly what the shapes say (the one test of
    /// this pure crate that reads a file: the page it checks).
    #[test]
    #[allow(clippy::disallowed_methods)]
    fn docs_page_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/aws-api.md");
        let want = operations_page();
        if std::env::var_os("CUTOVER_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/aws-api.md is out of date: run CUTOVER_BLESS=1 cargo test -p cutover-aws docs"
        );
    }
}
