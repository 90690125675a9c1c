//! Host agents (`cutover agent`): the protocol between the server and the
//! agents it drives, and the views of `/v1/agents`.
//!
//! An agent registers its host (name, tags, zone, the address the load
//! balancer sends its traffic to), then long-polls for [`AgentCommand`]s.
//! A command is one lifecycle event of one host deployment; the agent runs
//! it (downloads or installs the bundle, or runs the appspec's scripts of
//! that event) and reports a [`CommandResult`]. Commands are idempotent by
//! `id`: an agent that restarts in the middle of one reports it as failed
//! (or finishes it) instead of running it twice, and the server re-sends a
//! command whose result it has not recorded.

use std::collections::BTreeMap;

use cutover_spec::HostEvent;
use cutover_spec::appspec_host::FileExistsBehavior;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an agent says of its host when it registers (and at every start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentRegistration {
    /// The host's name, unique in the installation (CodeDeploy's
    /// on-premises instance name).
    pub name: String,
    /// Its tags (`--tags k=v,...`), matched by deployment groups' tag filters.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Its zone (`--zone`), for zonal deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `HOST:PORT` the load balancer sends this host's traffic to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The agent's version (`cutover --version`).
    pub version: String,
}

/// A revision's bundle, stored content-addressed by the server and
/// downloaded by agents.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleRef {
    /// `sha256:<hex>` of the stored bundle's bytes.
    pub digest: String,
    /// How the bytes are packed.
    pub format: BundleFormat,
}

/// CodeDeploy's bundle types (a directory revision is stored as `Tar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BundleFormat {
    /// An uncompressed tar archive.
    Tar,
    /// A gzip-compressed tar archive.
    Tgz,
    /// A zip archive.
    Zip,
}

/// One lifecycle event for one host, sent to its agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCommand {
    /// Unique and stable across re-sends: `{deployment}/{host}/{event}/{attempt}`.
    pub id: String,
    /// The host deployment.
    pub deployment_id: String,
    /// The application (`APPLICATION_NAME`).
    pub application: String,
    /// The deployment group (`DEPLOYMENT_GROUP_NAME`).
    pub deployment_group: String,
    /// The deployment group's id (`DEPLOYMENT_GROUP_ID`).
    pub deployment_group_id: String,
    /// The event to perform (`LIFECYCLE_EVENT`).
    #[schema(value_type = String)]
    pub event: HostEvent,
    /// The revision whose bundle and appspec the event uses: the one being
    /// deployed, or for `ApplicationStop` and the block-traffic events the
    /// host's last successful one. `None`: nothing to run (success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<BundleRef>,
    /// The deployment's `fileExistsBehavior`, overriding the appspec's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub file_exists_behavior: Option<FileExistsBehavior>,
}

/// What an agent is told at one poll.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoll {
    /// Commands to run, in order.
    #[serde(default)]
    pub commands: Vec<AgentCommand>,
    /// Ids of commands to stop (their scripts killed, reported `Cancelled`).
    #[serde(default)]
    pub cancel: Vec<String>,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum CommandStatus {
    /// Every script (or the agent's own work) succeeded.
    Succeeded,
    /// A script exited non-zero, or the bundle could not be installed.
    Failed,
    /// A script ran past its `timeout`.
    TimedOut,
    /// The server cancelled it, or the agent restarted while it ran.
    Cancelled,
}

/// An agent's report of one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandResult {
    /// The command's id.
    pub id: String,
    /// How it ended.
    pub status: CommandStatus,
    /// The scripts' output (stdout and stderr interleaved), its tail kept
    /// when long.
    #[serde(default)]
    pub output: String,
    /// Why it failed, in the agent's words (which script, which exit code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it started (ms since the epoch, the agent's clock).
    pub started_at_ms: u64,
    /// When it ended.
    pub ended_at_ms: u64,
}

/// A registered host, as `/v1/agents` and `cutover agents ls` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    /// What it registered.
    #[serde(flatten)]
    pub registration: AgentRegistration,
    /// Its on-premises instance ARN.
    pub instance_arn: String,
    /// When it registered first.
    pub registered_at_ms: u64,
    /// When it last polled.
    pub last_seen_ms: u64,
    /// Whether it polled recently enough to be driven.
    pub online: bool,
    /// The last revision deployed successfully to it, per deployment group.
    #[serde(default)]
    pub last_successful: BTreeMap<String, BundleRef>,
}

/// `GET /v1/agents`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentList {
    /// Every registered host, by name.
    pub agents: Vec<AgentView>,
}

/// `POST /v1/agents/{name}/key` (`cutover agents register NAME`): the
/// agent's key, shown this once (the server keeps only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentKey {
    /// The agent it is bound to.
    pub name: String,
    /// The key (`--key-file` or `CUTOVER_AGENT_KEY`).
    pub key: String,
}

/// `DELETE /v1/agents/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterAgentResponse {
    /// The host that was deregistered.
    pub name: String,
}

/// `POST /v1/agents/{name}/results`: whether the result was recorded now
/// (`false`: one was recorded before, this one is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultAck {
    /// Recorded by this call.
    pub recorded: bool,
}

/// `GET /v1/agents/{name}/poll`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// The command the agent is running: the poll then answers early only
    /// when that command is cancelled.
    pub running: Option<String>,
    /// Longest wait in seconds (default and at most 20).
    pub wait: Option<u32>,
}

/// The header naming the agent on its calls (the bundle downloads, whose
/// path has no agent name).
pub const AGENT_HEADER: &str = "x-cutover-agent";
