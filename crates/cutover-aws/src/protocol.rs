//! The JSON 1.1 protocol's framing: which service and operation an
//! `X-Amz-Target` names, and the error body every refusal carries
//! (`{"__type": CODE, "message": TEXT}`, with the HTTP status AWS uses).

use crate::shapes::{codebuild, codedeploy, codepipeline, ecr, ecs, secretsmanager, ssm};
use serde::Serialize;

/// The services whose JSON 1.1 operations Cutover answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Amazon ECS.
    Ecs,
    /// AWS CodeDeploy.
    CodeDeploy,
    /// AWS CodePipeline.
    CodePipeline,
    /// AWS CodeBuild.
    CodeBuild,
    /// AWS Secrets Manager.
    SecretsManager,
    /// AWS Systems Manager (Parameter Store).
    Ssm,
    /// Amazon ECR (issue 11): its shapes are generated; the server refuses
    /// its operations until the registry answers them.
    Ecr,
}

impl Service {
    /// Every service.
    pub const ALL: &[Service] = &[
        Service::Ecs,
        Service::CodeDeploy,
        Service::CodePipeline,
        Service::CodeBuild,
        Service::SecretsManager,
        Service::Ssm,
        Service::Ecr,
    ];

    /// The service's name, as AWS writes it.
    pub fn display_name(self) -> &'static str {
        match self {
            Service::Ecs => "Amazon ECS",
            Service::CodeDeploy => "AWS CodeDeploy",
            Service::CodePipeline => "AWS CodePipeline",
            Service::CodeBuild => "AWS CodeBuild",
            Service::SecretsManager => "AWS Secrets Manager",
            Service::Ssm => "AWS Systems Manager Parameter Store",
            Service::Ecr => "Amazon Elastic Container Registry",
        }
    }

    /// The `X-Amz-Target` prefix, from AWS's model.
    pub fn target_prefix(self) -> &'static str {
        self.model().0
    }

    /// Every operation of the service in AWS's model.
    pub fn all_operations(self) -> &'static [&'static str] {
        self.model().1
    }

    /// The name requests are signed for (the credential scope's service).
    pub fn signing_name(self) -> &'static str {
        self.model().2
    }

    /// The prefix of the service's AWS endpoint host
    /// (`PREFIX.REGION.amazonaws.com`; `api.ecr` for ECR).
    pub fn endpoint_prefix(self) -> &'static str {
        self.model().3
    }

    /// The generated module's constants: target prefix, operations, signing
    /// name, endpoint prefix.
    fn model(
        self,
    ) -> (
        &'static str,
        &'static [&'static str],
        &'static str,
        &'static str,
    ) {
        macro_rules! model {
            ($m:ident) => {
                (
                    $m::TARGET_PREFIX,
                    $m::ALL_OPERATIONS,
                    $m::SIGNING_NAME,
                    $m::ENDPOINT_PREFIX,
                )
            };
        }
        match self {
            Service::Ecs => model!(ecs),
            Service::CodeDeploy => model!(codedeploy),
            Service::CodePipeline => model!(codepipeline),
            Service::CodeBuild => model!(codebuild),
            Service::SecretsManager => model!(secretsmanager),
            Service::Ssm => model!(ssm),
            Service::Ecr => model!(ecr),
        }
    }
}

/// A refusal in AWS's JSON error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// The HTTP status.
    pub status: u16,
    /// AWS's error code (`__type`).
    pub code: String,
    /// The message.
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    code: &'a str,
    message: &'a str,
}

impl AwsError {
    /// A 400 with `code`.
    pub fn client(code: &str, message: impl Into<String>) -> AwsError {
        AwsError {
            status: 400,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// The JSON body: `{"__type": CODE, "message": TEXT}`.
    pub fn body(&self) -> String {
        serde_json::to_string(&ErrorBody {
            code: &self.code,
            message: &self.message,
        })
        .unwrap_or_default()
    }
}

impl From<crate::sigv4::SigV4Error> for AwsError {
    fn from(e: crate::sigv4::SigV4Error) -> AwsError {
        let status = match e {
            crate::sigv4::SigV4Error::Missing => 403,
            _ => 400,
        };
        AwsError {
            status,
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

/// The service and operation `X-Amz-Target` names, if Cutover knows the
/// service; an operation of a known service that Cutover does not answer is
/// refused with `UnknownOperationException` naming it (and saying whether
/// AWS has it), never answered with a silent success.
pub fn parse_target(target: Option<&str>) -> Result<(Service, &str), AwsError> {
    let Some(target) = target else {
        return Err(AwsError::client(
            "UnknownOperationException",
            "the request has no X-Amz-Target header",
        ));
    };
    let Some((prefix, operation)) = target.rsplit_once('.') else {
        return Err(AwsError::client(
            "UnknownOperationException",
            format!("X-Amz-Target {target:?} is not SERVICE.Operation"),
        ));
    };
    let Some(service) = Service::ALL
        .iter()
        .copied()
        .find(|s| s.target_prefix() == prefix)
    else {
        return Err(AwsError::client(
            "UnknownOperationException",
            format!("Cutover does not serve the AWS service of X-Amz-Target {target:?}"),
        ));
    };
    Ok((service, operation))
}

/// The refusal of `operation` of `service`, which Cutover does not answer.
pub fn unsupported(service: Service, operation: &str) -> AwsError {
    let known = service.all_operations().contains(&operation);
    AwsError::client(
        "UnknownOperationException",
        if known {
            format!("Cutover does not support {operation} yet")
        } else {
            format!("{operation} is not an operation of this service")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_a_service_and_an_operation() {
        assert_eq!(
            parse_target(Some("AmazonEC2ContainerServiceV20141113.DescribeServices")),
            Ok((Service::Ecs, "DescribeServices"))
        );
        assert_eq!(
            parse_target(Some("CodeDeploy_20141006.CreateDeployment")),
            Ok((Service::CodeDeploy, "CreateDeployment"))
        );
        assert_eq!(
            parse_target(Some(
                "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"
            )),
            Ok((Service::Ecr, "DescribeRepositories"))
        );
        assert_eq!(
            (Service::Ecr.signing_name(), Service::Ecr.endpoint_prefix()),
            ("ecr", "api.ecr")
        );
        assert_eq!(
            parse_target(Some("secretsmanager.GetSecretValue")),
            Ok((Service::SecretsManager, "GetSecretValue"))
        );
        for bad in [
            None,
            Some(""),
            Some("NoDot"),
            Some("DynamoDB_20120810.GetItem"),
        ] {
            assert_eq!(
                parse_target(bad).unwrap_err().code,
                "UnknownOperationException"
            );
        }
    }

    #[test]
    fn unsupported_operations_are_named() {
        let e = unsupported(Service::Ecs, "RunTask");
        assert_eq!(e.status, 400);
        assert_eq!(
            e.body(),
            r#"{"__type":"UnknownOperationException","message":"Cutover does not support RunTask yet"}"#
        );
        assert!(
            unsupported(Service::Ecs, "Nope")
                .message
                .contains("not an operation")
        );
    }

    #[test]
    fn signature_refusals_keep_their_codes() {
        let e = AwsError::from(crate::sigv4::SigV4Error::Missing);
        assert_eq!(
            (e.status, e.code.as_str()),
            (403, "MissingAuthenticationTokenException")
        );
        let e = AwsError::from(crate::sigv4::SigV4Error::UnknownKey);
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, "UnrecognizedClientException")
        );
    }
}
