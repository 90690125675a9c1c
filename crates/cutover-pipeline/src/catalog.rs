//! The action providers Cutover runs, with their configuration keys and, for
//! sources, the output variables they publish. Validation uses this table to
//! name the supported providers and the missing keys; the engine uses
//! [`Provider`] to know which actions are approvals.

use std::collections::BTreeMap;

/// What Cutover knows about one `(category, provider)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSpec {
    /// `actionTypeId.category`.
    pub category: &'static str,
    /// `actionTypeId.owner`: `AWS`, `ThirdParty` for GitHub version 1, or
    /// `Custom` for Cutover's own actions.
    pub owner: &'static str,
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
    /// GitHub version 1 source (`owner: ThirdParty`; `Owner`, `Repo`,
    /// `Branch`): reads the repository `Owner/Repo` of `repositories:`,
    /// like a connection; its `OAuthToken` is ignored.
    GitHub,
    /// A build or test (`ProjectName`).
    CodeBuild,
    /// A manual approval.
    Manual,
    /// An ECS rolling deploy from `imagedefinitions.json`.
    Ecs,
    /// A CodeDeploy blue/green deploy from taskdef, appspec and `imageDetail.json`.
    CodeDeployToEcs,
    /// A CodeDeploy deploy to hosts (the Server platform): the one input
    /// artifact, with `appspec.yml` at its root, is the revision deployed
    /// to `DeploymentGroupName` of `ApplicationName`.
    CodeDeploy,
    /// An invoke (a command or URL in Cutover).
    Lambda,
    /// Cutover's image scan gate (`owner: Custom`, category `Test`):
    /// scans `RepositoryName` at `ImageTag` (default `latest`) or
    /// `ImageDigest` in this server's registry and fails when findings at
    /// or above `FailOn` (default `HIGH`) exist.
    ImageScan,
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
        owner: "AWS",
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
        owner: "AWS",
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
        owner: "ThirdParty",
        category: "Source",
        provider: "GitHub",
        kind: Provider::GitHub,
        required: &["Owner", "Repo", "Branch"],
        optional: &["OAuthToken", "PollForSourceChanges"],
        output_variables: &["CommitId", "CommitMessage", "AuthorDate", "BranchName"],
    },
    ProviderSpec {
        owner: "AWS",
        category: "Build",
        provider: "CodeBuild",
        kind: Provider::CodeBuild,
        required: &["ProjectName"],
        optional: BUILD_OPTIONAL,
        output_variables: &[],
    },
    ProviderSpec {
        owner: "AWS",
        category: "Test",
        provider: "CodeBuild",
        kind: Provider::CodeBuild,
        required: &["ProjectName"],
        optional: BUILD_OPTIONAL,
        output_variables: &[],
    },
    ProviderSpec {
        owner: "AWS",
        category: "Approval",
        provider: "Manual",
        kind: Provider::Manual,
        required: &[],
        optional: &["CustomData", "ExternalEntityLink", "NotificationArn"],
        output_variables: &[],
    },
    ProviderSpec {
        owner: "AWS",
        category: "Deploy",
        provider: "ECS",
        kind: Provider::Ecs,
        required: &["ClusterName", "ServiceName"],
        optional: &["FileName", "DeploymentTimeout"],
        output_variables: &[],
    },
    ProviderSpec {
        owner: "AWS",
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
        owner: "AWS",
        category: "Deploy",
        provider: "CodeDeploy",
        kind: Provider::CodeDeploy,
        required: &["ApplicationName", "DeploymentGroupName"],
        optional: &[],
        output_variables: &[],
    },
    ProviderSpec {
        owner: "AWS",
        category: "Invoke",
        provider: "Lambda",
        kind: Provider::Lambda,
        required: &["FunctionName"],
        optional: &["UserParameters"],
        output_variables: &[],
    },
    ProviderSpec {
        owner: "Custom",
        category: "Test",
        provider: "CutoverImageScan",
        kind: Provider::ImageScan,
        required: &["RepositoryName"],
        optional: &["ImageTag", "ImageDigest", "FailOn"],
        output_variables: &[],
    },
];

/// The repository a source action of `kind` reads, as `repositories:`
/// names it, with the configuration key that names it (for messages):
/// `RepositoryName`, `FullRepositoryId`, or GitHub version 1's
/// `Owner/Repo` (at `Repo`). `None` for other providers or when a key is
/// missing.
pub fn source_repository(
    kind: Provider,
    configuration: &BTreeMap<String, String>,
) -> Option<(&'static str, String)> {
    let get = |key: &str| configuration.get(key);
    match kind {
        Provider::CodeCommit => Some(("RepositoryName", get("RepositoryName")?.clone())),
        Provider::CodeStarSourceConnection => {
            Some(("FullRepositoryId", get("FullRepositoryId")?.clone()))
        }
        Provider::GitHub => Some(("Repo", format!("{}/{}", get("Owner")?, get("Repo")?))),
        _ => None,
    }
}

/// The branch a source action of `kind` reads: `BranchName`, or GitHub
/// version 1's `Branch`.
pub fn source_branch(kind: Provider, configuration: &BTreeMap<String, String>) -> Option<&str> {
    let key = if kind == Provider::GitHub {
        "Branch"
    } else {
        "BranchName"
    };
    configuration.get(key).map(String::as_str)
}

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
