//! The action providers Cutover runs, with their configuration keys and, for
//! sources, the output variables they publish. Validation uses this table to
//! name the supported providers and the missing keys; the engine uses
//! [`Provider`] to know which actions are approvals.

/// What Cutover knows about one `(category, provider)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSpec {
    /// `actionTypeId.category`.
    pub category: &'static str,
    /// `actionTypeId.provider`.
    pub provider: &'static str,
    /// Which one it is.
    pub kind: Provider,
    /// Configuration keys that must be present.
    pub required: &'static [&'static str],
    /// Other configuration keys Cutover accepts.
    pub optional: &'static [&'static str],
    /// Output variables known before the action runs (sources); empty when
    /// they are only known at run time (a build's exported variables).
    pub output_variables: &'static [&'static str],
}

/// The providers Cutover runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Provider {
    /// Source from a CodeCommit-style repository (`RepositoryName`, `BranchName`).
    CodeCommit,
    /// Source from a connection (`FullRepositoryId`, `BranchName`).
    CodeStarSourceConnection,
    /// A build or test (`ProjectName`).
    CodeBuild,
    /// A manual approval.
    Manual,
    /// An ECS rolling deploy from `imagedefinitions.json`.
    Ecs,
    /// A CodeDeploy blue/green deploy from taskdef, appspec and `imageDetail.json`.
    CodeDeployToEcs,
    /// An invoke (a command or URL in Cutover).
    Lambda,
}

const SOURCE_OPTIONAL: &[&str] = &[
    "PollForSourceChanges",
    "OutputArtifactFormat",
    "DetectChanges",
    "ConnectionArn",
];

const CODE_DEPLOY_OPTIONAL: &[&str] = &[
    "TaskDefinitionTemplatePath",
    "AppSpecTemplatePath",
    "Image1ArtifactName",
    "Image1ContainerName",
    "Image2ArtifactName",
    "Image2ContainerName",
    "Image3ArtifactName",
    "Image3ContainerName",
    "Image4ArtifactName",
    "Image4ContainerName",
];

const BUILD_OPTIONAL: &[&str] = &[
    "EnvironmentVariables",
    "PrimarySource",
    "BatchEnabled",
    "CombineArtifacts",
];

/// Every supported provider.
pub const PROVIDERS: &[ProviderSpec] = &[
    ProviderSpec {
        category: "Source",
        provider: "CodeCommit",
        kind: Provider::CodeCommit,
        required: &["RepositoryName", "BranchName"],
        optional: SOURCE_OPTIONAL,
        output_variables: &[
            "CommitId",
            "CommitMessage",
            "CommitterDate",
            "AuthorDate",
            "AuthorName",
            "BranchName",
            "RepositoryName",
        ],
    },
    ProviderSpec {
        category: "Source",
        provider: "CodeStarSourceConnection",
        kind: Provider::CodeStarSourceConnection,
        required: &["FullRepositoryId", "BranchName"],
        optional: SOURCE_OPTIONAL,
        output_variables: &[
            "CommitId",
            "CommitMessage",
            "AuthorDate",
            "AuthorName",
            "BranchName",
            "ConnectionArn",
            "FullRepositoryName",
            "ProviderType",
        ],
    },
    ProviderSpec {
        category: "Build",
        provider: "CodeBuild",
        kind: Provider::CodeBuild,
        required: &["ProjectName"],
        optional: BUILD_OPTIONAL,
        output_variables: &[],
    },
    ProviderSpec {
        category: "Test",
        provider: "CodeBuild",
        kind: Provider::CodeBuild,
        required: &["ProjectName"],
        optional: BUILD_OPTIONAL,
        output_variables: &[],
    },
    ProviderSpec {
        category: "Approval",
        provider: "Manual",
        kind: Provider::Manual,
        required: &[],
        optional: &["CustomData", "ExternalEntityLink", "NotificationArn"],
        output_variables: &[],
    },
    ProviderSpec {
        category: "Deploy",
        provider: "ECS",
        kind: Provider::Ecs,
        required: &["ClusterName", "ServiceName"],
        optional: &["FileName", "DeploymentTimeout"],
        output_variables: &[],
    },
    ProviderSpec {
        category: "Deploy",
        provider: "CodeDeployToECS",
        kind: Provider::CodeDeployToEcs,
        required: &[
            "ApplicationName",
            "DeploymentGroupName",
            "TaskDefinitionTemplateArtifact",
            "AppSpecTemplateArtifact",
        ],
        optional: CODE_DEPLOY_OPTIONAL,
        output_variables: &[],
    },
    ProviderSpec {
        category: "Invoke",
        provider: "Lambda",
        kind: Provider::Lambda,
        required: &["FunctionName"],
        optional: &["UserParameters"],
        output_variables: &[],
    },
];

/// The categories AWS defines, in its order.
pub const CATEGORIES: &[&str] = &["Source", "Build", "Test", "Deploy", "Approval", "Invoke"];

/// The spec of `(category, provider)`, if Cutover supports it.
pub fn lookup(category: &str, provider: &str) -> Option<&'static ProviderSpec> {
    PROVIDERS
        .iter()
        .find(|p| p.category == category && p.provider == provider)
}

/// The providers of `category`, as `"A", "B"` for messages.
pub fn providers_of(category: &str) -> String {
    PROVIDERS
        .iter()
        .filter(|p| p.category == category)
        .map(|p| format!("\"{}\"", p.provider))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The default `FileName` of an ECS deploy.
pub const DEFAULT_IMAGE_DEFINITIONS_FILE: &str = "imagedefinitions.json";

/// The default manual approval timeout: 7 days.
pub const DEFAULT_APPROVAL_TIMEOUT_MINUTES: u64 = 7 * 24 * 60;
