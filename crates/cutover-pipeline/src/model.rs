//! The pipeline declaration in CodePipeline's own JSON shape (the
//! `pipeline` object of `aws codepipeline get-pipeline`), as serde types with
//! AWS's camelCase field names. Fields Cutover keeps but does not use
//! (`roleArn`, `artifactStore`, ...) are accepted as written so that a file
//! exported from AWS reads unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A pipeline: named stages of actions, variables, triggers and an execution mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    /// The pipeline name.
    pub name: String,
    /// AWS service role, kept as written and unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// AWS artifact bucket, kept as written and unused (Cutover stores artifacts by digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_store: Option<Value>,
    /// AWS per-region artifact buckets, kept as written and unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_stores: Option<Value>,
    /// The stages, in order (at least two, the first holding only source actions).
    pub stages: Vec<Stage>,
    /// The structure version AWS maintains, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// How concurrent executions share the pipeline (default SUPERSEDED).
    #[serde(default)]
    pub execution_mode: ExecutionMode,
    /// V1 or V2; Cutover runs both with V2 semantics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_type: Option<PipelineType>,
    /// Pipeline-level variables, `#{variables.Name}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<PipelineVariable>,
    /// Git triggers with branch, tag and file path filters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
}

impl Pipeline {
    /// The stage named `name` and its index.
    pub fn stage(&self, name: &str) -> Option<(usize, &Stage)> {
        self.stages.iter().enumerate().find(|(_, s)| s.name == name)
    }
}

/// `pipelineType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PipelineType {
    /// The original pipeline type.
    V1,
    /// Pipelines with variables, triggers and execution modes.
    V2,
}

/// `executionMode`: how executions of one pipeline share it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionMode {
    /// One execution per stage; a newer execution waiting between stages
    /// replaces an older one waiting at the same place.
    #[default]
    Superseded,
    /// One execution per stage; waiting executions run in the order they started.
    Queued,
    /// Executions run independently of each other.
    Parallel,
}

/// A pipeline-level variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineVariable {
    /// The name, used as `#{variables.Name}`.
    pub name: String,
    /// The value when the execution does not override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A stage: actions grouped by run order, plus optional conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// The stage name, unique in the pipeline.
    pub name: String,
    /// Reserved by AWS, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockers: Option<Value>,
    /// The actions (at least one).
    pub actions: Vec<Action>,
    /// What happens when the stage fails (`result: ROLLBACK` or `RETRY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<FailureConditions>,
    /// Conditions checked after the stage succeeds; kept, not evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Conditions>,
    /// Conditions gating entry to the stage (DeploymentWindow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_entry: Option<Conditions>,
}

impl Stage {
    /// Whether a failure of this stage rolls it back.
    pub fn rolls_back_on_failure(&self) -> bool {
        self.on_failure
            .as_ref()
            .is_some_and(|f| f.result == Some(ConditionResult::Rollback))
    }

    /// The actions an automatic retry runs again when this stage fails
    /// (`result: RETRY`); `None` when it does not retry. Without
    /// `retryConfiguration` only the failed actions are retried.
    pub fn retries_on_failure(&self) -> Option<RetryMode> {
        let on_failure = self.on_failure.as_ref()?;
        if on_failure.result != Some(ConditionResult::Retry) {
            return None;
        }
        Some(
            on_failure
                .retry_configuration
                .and_then(|c| c.retry_mode)
                .unwrap_or(RetryMode::FailedActions),
        )
    }

    /// The action named `name`.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.name == name)
    }
}

/// `onFailure` of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureConditions {
    /// `ROLLBACK` rolls the stage back to its last successful execution;
    /// `RETRY` retries it once, automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ConditionResult>,
    /// Conditions, kept as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// How `result: RETRY` retries the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_configuration: Option<RetryConfiguration>,
}

/// `onFailure.retryConfiguration` of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfiguration {
    /// Which actions the automatic retry runs again (default
    /// `FAILED_ACTIONS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_mode: Option<RetryMode>,
}

/// Which actions a stage retry runs again: `retryMode` of an automatic
/// retry, and the mode of a manual one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetryMode {
    /// Only the failed (and not yet run) actions.
    FailedActions,
    /// Every action of the stage.
    AllActions,
}

/// `beforeEntry` or `onSuccess` of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    /// The conditions; all must pass.
    pub conditions: Vec<Condition>,
}

/// One condition: rules and what happens when they do not pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// What happens when a rule does not pass. On `beforeEntry`: absent
    /// waits for the rules to pass, `FAIL` fails the stage, `SKIP` skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ConditionResult>,
    /// The rules (1 to 5).
    pub rules: Vec<RuleDeclaration>,
}

/// `result` of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConditionResult {
    /// Roll the stage back.
    Rollback,
    /// Fail the stage.
    Fail,
    /// Retry the stage.
    Retry,
    /// Skip the stage.
    Skip,
}

/// A rule of a condition, e.g. a `DeploymentWindow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleDeclaration {
    /// The rule name, unique in its condition.
    pub name: String,
    /// Which rule.
    pub rule_type_id: RuleTypeId,
    /// Rule parameters (`Cron`, `TimeZone` for a deployment window).
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub configuration: BTreeMap<String, String>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_artifacts: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<u64>,
}

/// `ruleTypeId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleTypeId {
    /// Always `Rule`.
    pub category: String,
    /// `AWS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `DeploymentWindow` is the one Cutover evaluates.
    pub provider: String,
    /// `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// An action of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// The action name, unique in the pipeline.
    pub name: String,
    /// Category, owner, provider and version.
    pub action_type_id: ActionTypeId,
    /// Actions of a stage with the same run order run in parallel, lower first (1..=999, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_order: Option<u32>,
    /// Provider parameters; values may hold `#{Namespace.Key}` variables.
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub configuration: BTreeMap<String, String>,
    /// Artifacts this action produces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_artifacts: Vec<ArtifactName>,
    /// Artifacts this action reads, each produced by an earlier action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_artifacts: Vec<ArtifactName>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The namespace its output variables are published under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// For a manual approval, how long it waits (default 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<u64>,
}

impl Action {
    /// The run order, 1 when not written.
    pub fn run_order(&self) -> u32 {
        self.run_order.unwrap_or(1)
    }
}

/// `actionTypeId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTypeId {
    /// `Source`, `Build`, `Test`, `Approval`, `Deploy` or `Invoke`.
    pub category: String,
    /// `AWS`.
    pub owner: String,
    /// E.g. `CodeCommit`, `CodeBuild`, `ECS`.
    pub provider: String,
    /// `1`.
    pub version: String,
}

/// `{"name": "..."}` in `inputArtifacts` and `outputArtifacts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactName {
    /// The artifact name, `[A-Za-z0-9_-]{1,100}`.
    pub name: String,
}

/// A V2 trigger: which source action starts the pipeline on which git events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// `CodeStarSourceConnection` (the only type AWS has).
    pub provider_type: String,
    /// The filters.
    pub git_configuration: GitConfiguration,
}

/// `gitConfiguration` of a trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitConfiguration {
    /// The source action whose repository is watched.
    pub source_action_name: String,
    /// Push filters (any may match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<GitPushFilter>,
    /// Pull request filters (any may match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_request: Vec<GitPullRequestFilter>,
}

/// One push filter: tags, or branches with optional file paths.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitPushFilter {
    /// Tag name globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<GlobFilter>,
    /// Branch name globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<GlobFilter>,
    /// Changed file path globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<GlobFilter>,
}

/// One pull request filter: events, destination branches, file paths.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitPullRequestFilter {
    /// Which pull request events (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<PullRequestEventType>,
    /// Destination branch globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<GlobFilter>,
    /// Changed file path globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<GlobFilter>,
}

/// A pull request event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PullRequestEventType {
    /// A pull request was opened.
    Open,
    /// New commits were pushed to it.
    Updated,
    /// It was merged or closed.
    Closed,
}

/// `includes` and `excludes` globs (`*`, `**`, `?`, `[...]`); excludes win.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobFilter {
    /// Patterns that select (everything when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
    /// Patterns that reject.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
}

/// A configuration map whose values AWS writes as strings; YAML authors may
/// write `false` or `5`, which are kept as their text.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = BTreeMap::<String, ConfigValue>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// A scalar configuration value, as text.
struct ConfigValue(String);

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ConfigValueVisitor)
    }
}

struct ConfigValueVisitor;

impl serde::de::Visitor<'_> for ConfigValueVisitor {
    type Value = ConfigValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_owned()))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }
}
