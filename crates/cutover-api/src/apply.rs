//! `POST /v1/apply`: a stack file and the files it references.

use cutover_deploy::bluegreen::DeploymentStatus;
use cutover_spec::diag::Diagnostic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Body of `POST /v1/apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyRequest {
    /// The stack file's name (default `stack.yaml`), as errors show it.
    #[serde(default = "default_file")]
    pub file: String,
    /// The stack's identity: the file's canonical absolute path on the
    /// client (`cutover apply` sends it). The pipelines a stack no longer
    /// declares are found under it; without it, `file` normalised
    /// (`./stack.yaml` is `stack.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// The stack file's text.
    pub content: String,
    /// Referenced files (task definitions, buildspecs) by the path the stack uses.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Plan only.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_file() -> String {
    "stack.yaml".into()
}

/// What apply does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    /// New.
    Create,
    /// Changed.
    Update,
    /// Same as stored.
    Unchanged,
    /// Stored, no longer declared: removed.
    Delete,
}

impl PlanAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanAction::Create => "create",
            PlanAction::Update => "update",
            PlanAction::Unchanged => "unchanged",
            PlanAction::Delete => "delete",
        }
    }
}

/// Which resource a plan entry is about: exactly one of the fields is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSubject {
    /// A service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// An alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    /// A repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// An image repository of the registry (`imageRepositories:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    /// A build project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_project: Option<String>,
    /// A pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
}

impl PlanSubject {
    /// (kind, name) of the subject: `("service", "web")`.
    pub fn kind_and_name(&self) -> (&'static str, &str) {
        let pairs = [
            ("service", &self.service),
            ("alarm", &self.alarm),
            ("repository", &self.repository),
            ("imageRepository", &self.image_repository),
            ("buildProject", &self.build_project),
            ("pipeline", &self.pipeline),
        ];
        pairs
            .into_iter()
            .find_map(|(k, v)| v.as_deref().map(|n| (k, n)))
            .unwrap_or(("", ""))
    }
}

/// One entry of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanItem {
    /// The resource.
    #[serde(flatten)]
    pub subject: PlanSubject,
    /// What apply does.
    pub action: PlanAction,
    /// What changes, for people.
    pub changes: Vec<String>,
}

/// A blue/green deployment apply started, or why it could not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ApplyDeployment {
    /// Started.
    Started {
        /// The deployment.
        id: String,
        /// The service.
        service: String,
        /// Its status.
        #[schema(schema_with = crate::schema::deployment_status)]
        status: DeploymentStatus,
    },
    /// Not started: the stack is applied, the deployment is not.
    Failed {
        /// The service.
        service: String,
        /// Why.
        error: String,
    },
}

/// Answer of `POST /v1/apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApplyResponse {
    /// False for a dry run.
    pub applied: bool,
    /// Blue/green deployments started for new revisions.
    pub deployments: Vec<ApplyDeployment>,
    /// Every resource of the stack.
    pub plan: Vec<PlanItem>,
    /// Warnings about the files.
    #[schema(value_type = Vec<crate::schema::DiagnosticSchema>)]
    pub warnings: Vec<Diagnostic>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plan_entries_and_deployments_keep_their_wire_shape() {
        let answer = json!({
            "applied": true,
            "deployments": [
                {"id": "d-1", "service": "web", "status": "Queued"},
                {"service": "api", "error": "no load balancer"}
            ],
            "plan": [
                {"service": "web", "action": "update", "changes": ["desiredCount 1 -> 2"]},
                {"buildProject": "b", "action": "unchanged", "changes": []}
            ],
            "warnings": []
        });
        let typed: ApplyResponse = serde_json::from_value(answer.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), answer);
        assert!(matches!(
            typed.deployments[1],
            ApplyDeployment::Failed { .. }
        ));
        assert_eq!(typed.plan[1].subject.kind_and_name(), ("buildProject", "b"));
    }
}
