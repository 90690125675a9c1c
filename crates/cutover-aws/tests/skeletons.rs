//! The generated request types read what the real aws CLI sends: every
//! skeleton is `aws SERVICE OPERATION --generate-cli-skeleton input`, the
//! CLI's own full request with every member present.

use cutover_aws::shapes::{codebuild, codedeploy, codepipeline, ecs, secretsmanager, ssm};
use serde::de::DeserializeOwned;

fn reads<T: DeserializeOwned + serde::Serialize>(file: &str, text: &str) {
    let value: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
    // Written back, it carries every member it read (a null is an absent member).
    let again: serde_json::Value = serde_json::to_value(&value).unwrap();
    let original: serde_json::Value = serde_json::from_str(text).unwrap();
    let keys = |v: &serde_json::Value| {
        let members = v.as_object().unwrap().iter();
        members
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&again), keys(&original), "{file}");
}

#[test]
fn every_cli_skeleton_reads_into_its_request_type() {
    macro_rules! check {
        ($file:literal, $ty:ty) => {
            reads::<$ty>($file, include_str!(concat!("skeletons/", $file)))
        };
    }
    check!(
        "ecs-register-task-definition.json",
        ecs::RegisterTaskDefinitionRequest
    );
    check!("ecs-update-service.json", ecs::UpdateServiceRequest);
    check!("ecs-create-service.json", ecs::CreateServiceRequest);
    check!(
        "deploy-create-deployment.json",
        codedeploy::CreateDeploymentInput
    );
    check!(
        "deploy-create-deployment-config.json",
        codedeploy::CreateDeploymentConfigInput
    );
    check!(
        "codepipeline-start-pipeline-execution.json",
        codepipeline::StartPipelineExecutionInput
    );
    check!("codebuild-start-build.json", codebuild::StartBuildInput);
    check!("ssm-put-parameter.json", ssm::PutParameterRequest);
    check!(
        "secretsmanager-create-secret.json",
        secretsmanager::CreateSecretRequest
    );
}

#[test]
fn operations_are_named_as_in_the_model() {
    assert_eq!(
        ecs::Operation::from_name("DescribeServices"),
        Some(ecs::Operation::DescribeServices)
    );
    assert!(ecs::ALL_OPERATIONS.contains(&"RunTask"));
    assert_eq!(ecs::Operation::from_name("RunTask"), None);
    assert_eq!(ecs::TARGET_PREFIX, "AmazonEC2ContainerServiceV20141113");
    assert_eq!(codedeploy::TARGET_PREFIX, "CodeDeploy_20141006");
}
