//! ECS task definitions (`taskdef.json`): the `RegisterTaskDefinition` input,
//! unchanged and camelCase.
//!
//! Also accepted: the output of `aws ecs describe-task-definition` (either
//! the whole `{"taskDefinition": {...}, "tags": [...]}` or its
//! `--query taskDefinition` part); the output-only fields it adds
//! (`taskDefinitionArn`, `revision`, `status`, ...) are dropped, each with a
//! warning that says so. Any other field this crate does not know is a
//! warning, not an error. An integer written as a string (`"80"`) is read as
//! the number, with a warning, as AWS's readers coerce it.
//!
//! Rules checked beyond the types, with Cutover's deliberate differences
//! from AWS noted:
//! - `family` and container names: 1 to 255 letters, digits, `-` and `_`;
//!   container names unique; at least one container, at least one essential.
//! - `environment` and `secrets`: a variable name appears once across both.
//! - `portMappings`: `containerPort` 1..=65535 (or a `containerPortRange`),
//!   `hostPort` 0..=65535, mapping names unique.
//! - `healthCheck`: `command` is not empty, and `CMD` or `CMD-SHELL` has a
//!   command after it; another first word (`["curl", ...]`) is accepted
//!   with a warning, as ECS registers it, and never run, as Docker never
//!   runs it: the container's health stays UNKNOWN; `interval` 1..=300 s
//!   (AWS: 5..=300; 1 is allowed so that local tests are fast), `timeout` 1..=120 s (AWS: 2..=120),
//!   `retries` 1..=10, `startPeriod` 0..=300 s. A `timeout` that is given
//!   must not exceed the interval; when it is not given it defaults to
//!   5 s, or to the interval if that is shorter (see
//!   [`HealthCheck::timeout_or_default`]).
//! - `dependsOn`: the container exists, is not the container itself, and
//!   has a `healthCheck` when the condition is `HEALTHY`; no cycles.
//! - What `RegisterTaskDefinition` refuses beyond its shapes (at most 10
//!   containers; awsvpc host ports; Fargate's host volumes and cpu/memory
//!   table): see the `register` module.
//! - `stopTimeout` 0..=120 s; `memoryReservation` not above `memory`;
//!   task `cpu` as CPU units (`"256"`) or vCPUs (`"0.5 vCPU"`), task
//!   `memory` as MiB (`"512"`) or GB (`"1 GB"`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::{Document, Sink, is_aws_name};
use crate::de::tolerant_vec;
use crate::diag::{Parsed, SpecError};
use crate::doc::{Format, Path, Value as NodeValue, quote};

mod register;

/// Fields of `describe-task-definition` output that are not part of a
/// registration: accepted and dropped, each with a warning that says so
/// (`aws ecs register-task-definition` refuses them as unknown parameters).
const READ_ONLY_FIELDS: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// Default health check interval, in seconds.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: u32 = 30;
/// Default health check timeout, in seconds (capped by the interval).
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: u32 = 5;
/// Default health check retries.
pub const DEFAULT_HEALTH_CHECK_RETRIES: u32 = 3;
/// Default health check start period, in seconds.
pub const DEFAULT_HEALTH_CHECK_START_PERIOD: u32 = 0;
/// Default time between SIGTERM and SIGKILL when a container stops, in seconds.
pub const DEFAULT_STOP_TIMEOUT: u32 = 30;

/// An ECS task definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    /// The family name; each registration makes the next revision of it.
    pub family: String,
    /// Role the containers' code runs as (kept, unused locally).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// Role used to pull images and read secrets (kept, unused locally).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// `bridge`, `host`, `awsvpc` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    /// The containers, at least one.
    #[serde(deserialize_with = "tolerant_vec")]
    pub container_definitions: Vec<ContainerDefinition>,
    /// Data volumes the containers mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_constraints: Option<Value>,
    /// `EC2`, `FARGATE`, `EXTERNAL`, ... (kept as strings: AWS adds values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_compatibilities: Option<Vec<String>>,
    /// Task CPU, as CPU units (`"256"`) or vCPUs (`"0.25 vCPU"`); an integer is accepted and kept as a string.
    #[serde(
        default,
        deserialize_with = "string_or_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu: Option<String>,
    /// Task memory, as MiB (`"512"`) or GB (`"0.5 GB"`); an integer is accepted and kept as a string.
    #[serde(
        default,
        deserialize_with = "string_or_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<String>,
    /// Kept as written (`[{key, value}]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<String>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<String>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_configuration: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_accelerators: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_fault_injection: Option<bool>,
}

/// A data volume of the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// The name containers' `mountPoints` refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A bind mount of the host (`sourcePath`), or a task-local volume when
    /// `sourcePath` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostVolume>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_at_launch: Option<bool>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_volume_configuration: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsx_windows_file_server_volume_configuration: Option<Value>,
}

/// The `host` part of a [`Volume`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostVolume {
    /// The host path to bind-mount; absent for a task-local volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

/// Docker networking mode of the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Docker's bridge network.
    Bridge,
    /// The host's network.
    Host,
    /// One network interface per task (Fargate).
    Awsvpc,
    /// No networking.
    #[serde(rename = "none")]
    NoNetwork,
}

/// One container of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    /// Unique within the task.
    pub name: String,
    /// Image reference, or a CodeDeployToECS placeholder such as `<IMAGE1_NAME>`.
    pub image: String,
    /// Whether the task stops when this container stops (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    /// Overrides the image's entry point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    /// Overrides the image's command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Working directory of the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValuePair>,
    /// Kept as written (`[{value, type: s3}]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_files: Option<Value>,
    /// Environment variables whose values come from a secret store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    /// Ports the container listens on.
    #[serde(
        default,
        deserialize_with = "tolerant_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub port_mappings: Vec<PortMapping>,
    /// Docker-style health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// CPU units reserved for the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Hard memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    /// Soft memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u32>,
    /// Containers that must reach a condition before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
    /// Seconds to wait for dependencies (kept, unused locally).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<u32>,
    /// Seconds between SIGTERM and SIGKILL (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
    /// Kept as written (`{logDriver, options, secretOptions}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<Value>,
    /// Docker labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_labels: Option<BTreeMap<String, String>>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ulimits: Option<Value>,
    /// User (and group) the command runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Mount the root file system read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_points: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes_from: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_networking: Option<bool>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_servers: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_search_domains: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_hosts: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_security_options: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_terminal: Option<bool>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_controls: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requirements: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firelens_configuration: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_specs: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_consistency: Option<String>,
}

/// An environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValuePair {
    /// Variable name.
    pub name: String,
    /// Variable value.
    pub value: String,
}

/// An environment variable read from a secret store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Variable name.
    pub name: String,
    /// ARN or name of the secret or parameter.
    pub value_from: String,
}

/// A port the container listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// The port inside the container, 1..=65535 (required unless `containerPortRange` is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u32>,
    /// The port on the host; 0 or absent means "any free port" in bridge mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u32>,
    /// `tcp` (default) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Name of the mapping, unique within the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `http`, `http2` or `grpc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<AppProtocol>,
    /// Kept as written (`"8000-8010"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port_range: Option<String>,
}

/// Transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Application protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProtocol {
    /// HTTP/1.1.
    Http,
    /// HTTP/2.
    Http2,
    /// gRPC.
    Grpc,
}

/// A Docker-style container health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// `["CMD-SHELL", "curl -f http://localhost/ || exit 1"]` or `["CMD", "prog", "arg"]`.
    pub command: Vec<String>,
    /// Seconds between checks (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u32>,
    /// Seconds before a check counts as failed (default 5, capped by the interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Consecutive failures before the container is unhealthy (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Seconds after start during which failures do not count (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<u32>,
}

impl HealthCheck {
    /// `interval`, or 30 s.
    pub fn interval_or_default(&self) -> u32 {
        self.interval.unwrap_or(DEFAULT_HEALTH_CHECK_INTERVAL)
    }

    /// `timeout`, or 5 s capped by the interval (so `interval: 1` alone
    /// gives a 1 s timeout rather than an error).
    pub fn timeout_or_default(&self) -> u32 {
        self.timeout
            .unwrap_or_else(|| DEFAULT_HEALTH_CHECK_TIMEOUT.min(self.interval_or_default()))
    }

    /// `retries`, or 3.
    pub fn retries_or_default(&self) -> u32 {
        self.retries.unwrap_or(DEFAULT_HEALTH_CHECK_RETRIES)
    }

    /// `startPeriod`, or 0 s.
    pub fn start_period_or_default(&self) -> u32 {
        self.start_period
            .unwrap_or(DEFAULT_HEALTH_CHECK_START_PERIOD)
    }

    /// The command to run: `Shell("curl ...")` for `CMD-SHELL`, `Exec([...])`
    /// for `CMD`, `Never` for any other first word (as Docker, which runs
    /// ECS's checks, does); `None` for an empty command or a bare `CMD`.
    pub fn probe(&self) -> Option<HealthProbe<'_>> {
        match self.command.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
                Some(HealthProbe::Shell(rest.join(" ")))
            }
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => {
                Some(HealthProbe::Exec(rest))
            }
            Some((kind, _)) if kind != "CMD" && kind != "CMD-SHELL" => Some(HealthProbe::Never),
            _ => None,
        }
    }
}

/// What a [`HealthCheck`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthProbe<'a> {
    /// Run with `/bin/sh -c`.
    Shell(String),
    /// Run directly: program and arguments.
    Exec(&'a [String]),
    /// Nothing: `command[0]` is neither `CMD` nor `CMD-SHELL`, so Docker (and
    /// so ECS) never runs the check and the container's health stays UNKNOWN.
    Never,
}

/// A dependency on another container of the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    /// The container depended on.
    pub container_name: String,
    /// What it must reach first.
    pub condition: DependencyCondition,
}

/// The state a container dependency must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DependencyCondition {
    /// Started.
    Start,
    /// Ran to completion (any exit code).
    Complete,
    /// Exited with code 0.
    Success,
    /// Passed its health check.
    Healthy,
}

impl TaskDefinition {
    /// The task definition as canonical JSON (camelCase, absent fields left out).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a task definition always serializes to JSON")
    }

    /// Whether `requiresCompatibilities` names `FARGATE` (AWS then holds the
    /// task to Fargate's rules, even when `EC2` is named too).
    pub fn requires_fargate(&self) -> bool {
        self.requires_compatibilities
            .as_deref()
            .is_some_and(|c| c.iter().any(|c| c == "FARGATE"))
    }

    /// The container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.container_definitions.iter().find(|c| c.name == name)
    }

    /// Replaces every container image equal to `<placeholder>` (written
    /// without the angle brackets, e.g. `IMAGE1_NAME`) with `image`, as
    /// CodeDeployToECS does with `imageDetail.json`. Returns how many were replaced.
    pub fn replace_image_placeholder(&mut self, placeholder: &str, image: &str) -> usize {
        let mut n = 0;
        for c in &mut self.container_definitions {
            if c.image_placeholder() == Some(placeholder) {
                c.image = image.to_owned();
                n += 1;
            }
        }
        n
    }
}

impl ContainerDefinition {
    /// `essential`, or true.
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }

    /// `stopTimeout`, or 30 s.
    pub fn stop_timeout_or_default(&self) -> u32 {
        self.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT)
    }

    /// `IMAGE1_NAME` when the image is the placeholder `<IMAGE1_NAME>`.
    pub fn image_placeholder(&self) -> Option<&str> {
        self.image.strip_prefix('<')?.strip_suffix('>')
    }
}

/// Reads a task definition (`taskdef.json`, or `describe-task-definition` output).
///
/// `*.json` files are read as JSON, anything else as YAML (which also reads JSON).
pub fn parse_task_definition(file: &str, text: &str) -> Result<Parsed<TaskDefinition>, SpecError> {
    let mut doc = Document::parse(file, text, Format::for_file(file))?;
    let base = unwrap_describe_output(&mut doc.root);
    let mut read_only = Vec::new();
    if let Some(node) = doc.root.get_mut(&base)
        && let Some(entries) = node.entries_mut()
    {
        entries.retain(|e| {
            let keep = !READ_ONLY_FIELDS.contains(&e.name());
            if !keep {
                read_only.push((e.name().to_owned(), e.key.pos));
            }
            keep
        });
    }
    let sink = doc.sink(false);
    for (name, pos) in read_only {
        sink.warning_at(
            &base.key(&name),
            pos,
            format!(
                "{} is an output-only field of describe-task-definition, ignored",
                quote(&name)
            ),
        );
    }
    let td: Option<TaskDefinition> = sink.read(&base);
    if let Some(td) = &td {
        validate(td, &base, &sink);
    }
    sink.finish(td)
}

/// `{"taskDefinition": {...}, "tags": [...]}` (the whole describe output):
/// read the inner object, with the outer tags. Returns the path to read.
fn unwrap_describe_output(root: &mut crate::doc::Node) -> Path {
    let is_wrapper = root.entry("family").is_none()
        && root.entry("containerDefinitions").is_none()
        && root
            .entry("taskDefinition")
            .is_some_and(|e| matches!(e.value.value, NodeValue::Map(_)));
    if !is_wrapper {
        return Path::root();
    }
    let outer = root.entries_mut().expect("checked to be a mapping");
    let tags = outer
        .iter()
        .position(|e| e.name() == "tags")
        .map(|i| outer.remove(i));
    if let Some(inner) = outer.iter_mut().find(|e| e.name() == "taskDefinition")
        && let (Some(tags), Some(entries)) = (tags, inner.value.entries_mut())
        && !entries.iter().any(|e| e.name() == "tags")
    {
        entries.push(tags);
    }
    Path::root().key("taskDefinition")
}

fn validate(td: &TaskDefinition, base: &Path, s: &Sink<'_>) {
    if !is_aws_name(&td.family, 255) {
        s.error(
            &base.key("family"),
            format!(
                "invalid family name {}: use 1 to 255 letters, digits, hyphens and underscores",
                quote(&td.family)
            ),
        );
    }
    if let Some(cpu) = &td.cpu
        && task_cpu_units(cpu).is_none()
    {
        s.error(
            &base.key("cpu"),
            format!(
                "expected CPU units such as \"256\" or vCPUs such as \"0.5 vCPU\", found {}",
                quote(cpu)
            ),
        );
    }
    if let Some(memory) = &td.memory
        && task_memory_mib(memory).is_none()
    {
        s.error(
            &base.key("memory"),
            format!(
                "expected MiB such as \"512\" or GB such as \"1 GB\", found {}",
                quote(memory)
            ),
        );
    }
    let containers = base.key("containerDefinitions");
    if td.container_definitions.is_empty() {
        s.error(&containers, "must contain at least one container");
        return;
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut port_names: HashMap<&str, Path> = HashMap::new();
    for (i, c) in td.container_definitions.iter().enumerate() {
        let at = containers.index(i);
        if !is_aws_name(&c.name, 255) {
            s.error(
                &at.key("name"),
                format!(
                    "invalid container name {}: use 1 to 255 letters, digits, hyphens and underscores",
                    quote(&c.name)
                ),
            );
        } else if let Some(first) = names.get(c.name.as_str()) {
            // Container names are unique within a task (`name`,
            // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html).
            s.error(
                &at.key("name"),
                format!(
                    "duplicate container name {}, first used by {}",
                    quote(&c.name),
                    containers.index(*first)
                ),
            );
        } else {
            names.insert(&c.name, i);
        }
        validate_container(c, &at, s, &mut port_names);
    }
    // `dependsOn` names a container of the same task, not itself, and forms
    // no cycle (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDependency.html).
    for (i, c) in td.container_definitions.iter().enumerate() {
        for (j, d) in c.depends_on.iter().enumerate() {
            let at = containers
                .index(i)
                .key("dependsOn")
                .index(j)
                .key("containerName");
            match td.container(&d.container_name) {
                None => s.error(
                    &at,
                    format!(
                        "no container named {} in this task definition",
                        quote(&d.container_name)
                    ),
                ),
                Some(_) if d.container_name == c.name => {
                    s.error(&at, "a container cannot depend on itself")
                }
                Some(target)
                    if d.condition == DependencyCondition::Healthy
                        && target.health_check.is_none() =>
                {
                    s.error(
                        &at,
                        format!(
                            "condition HEALTHY needs a healthCheck on container {}",
                            quote(&d.container_name)
                        ),
                    )
                }
                Some(_) => {}
            }
        }
    }
    if let Some(cycle) = dependency_cycle(td) {
        s.error(
            &containers.index(cycle[0]).key("dependsOn"),
            format!(
                "dependency cycle: {}",
                cycle
                    .iter()
                    .map(|&i| td.container_definitions[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ),
        );
    }
    // "All tasks must have at least one essential container"
    // (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html).
    if !td
        .container_definitions
        .iter()
        .any(ContainerDefinition::is_essential)
    {
        s.error(&containers, "at least one container must be essential");
    }
    register::validate(td, base, s);
}

fn validate_container<'a>(
    c: &'a ContainerDefinition,
    at: &Path,
    s: &Sink<'_>,
    port_names: &mut HashMap<&'a str, Path>,
) {
    if c.image.trim().is_empty() {
        s.error(&at.key("image"), "must not be empty");
    }
    let mut vars: HashMap<&str, Path> = HashMap::new();
    let env = c
        .environment
        .iter()
        .enumerate()
        .map(|(j, kv)| (kv.name.as_str(), at.key("environment").index(j)));
    let secrets = c
        .secrets
        .iter()
        .enumerate()
        .map(|(j, kv)| (kv.name.as_str(), at.key("secrets").index(j)));
    for (name, path) in env.chain(secrets) {
        if name.is_empty() {
            s.error(&path.key("name"), "must not be empty");
        } else if let Some(first) = vars.get(name) {
            s.error(
                &path.key("name"),
                format!(
                    "duplicate environment variable {}, first set by {first}",
                    quote(name)
                ),
            );
        } else {
            vars.insert(name, path);
        }
    }
    for (j, pm) in c.port_mappings.iter().enumerate() {
        let p = at.key("portMappings").index(j);
        match (pm.container_port, &pm.container_port_range) {
            (Some(port), _) => {
                s.range(&p.key("containerPort"), port, 1, 65535, "");
            }
            (None, Some(_)) => {}
            (None, None) => s.error(&p, "missing field \"containerPort\""),
        }
        if let Some(host) = pm.host_port {
            s.range(&p.key("hostPort"), host, 0, 65535, "");
        }
        if let Some(name) = &pm.name {
            if let Some(first) = port_names.get(name.as_str()) {
                s.error(
                    &p.key("name"),
                    format!(
                        "duplicate port mapping name {}, first used by {first}",
                        quote(name)
                    ),
                );
            } else {
                port_names.insert(name, p.clone());
            }
        }
    }
    if let Some(hc) = &c.health_check {
        validate_health_check(hc, &at.key("healthCheck"), s);
    }
    if let Some(t) = c.stop_timeout {
        s.range(&at.key("stopTimeout"), t, 0, 120, " seconds");
    }
    if let (Some(mem), Some(res)) = (c.memory, c.memory_reservation)
        && res > mem
    {
        s.error(
            &at.key("memoryReservation"),
            format!("must not exceed memory ({mem} MiB), found {res}"),
        );
    }
}

fn validate_health_check(hc: &HealthCheck, at: &Path, s: &Sink<'_>) {
    let command = at.key("command");
    match hc.command.first().map(String::as_str) {
        None => s.error(
            &command,
            "must not be empty: use [\"CMD-SHELL\", \"...\"] or [\"CMD\", ...]",
        ),
        Some("CMD" | "CMD-SHELL") if hc.command.len() == 1 => {
            s.error(
                &command,
                format!("{} must be followed by a command", quote(&hc.command[0])),
            );
        }
        Some("CMD" | "CMD-SHELL") => {}
        // ECS registers it and hands it to Docker as `HealthConfig.Test`
        // unchanged; Docker runs only CMD and CMD-SHELL tests and leaves any
        // other kind unprobed, its health "starting", which ECS reports as
        // UNKNOWN. See https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html
        // ("maps to the HEALTHCHECK parameter of docker run") and moby's
        // daemon/health.go (`getProbe`: "Unknown healthcheck type").
        Some(other) => s.warning(
            &command.index(0),
            format!(
                "{} is not \"CMD\" or \"CMD-SHELL\": ECS registers it, but Docker runs no such check, \
                 so the container's health stays UNKNOWN (here too); write [\"CMD-SHELL\", {}]",
                quote(other),
                quote(&hc.command.join(" "))
            ),
        ),
    }
    if let Some(v) = hc.interval {
        s.range(&at.key("interval"), v, 1, 300, " seconds");
    }
    if let Some(v) = hc.timeout
        && s.range(&at.key("timeout"), v, 1, 120, " seconds")
        && v > hc.interval_or_default()
    {
        s.error(
            &at.key("timeout"),
            format!(
                "must not exceed the interval ({} seconds), found {v}",
                hc.interval_or_default()
            ),
        );
    }
    if let Some(v) = hc.retries {
        s.range(&at.key("retries"), v, 1, 10, "");
    }
    if let Some(v) = hc.start_period {
        s.range(&at.key("startPeriod"), v, 0, 300, " seconds");
    }
}

/// A cycle among `dependsOn` links, as container indexes (first repeated last).
fn dependency_cycle(td: &TaskDefinition) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        td: &TaskDefinition,
        i: usize,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[i] = Mark::Active;
        stack.push(i);
        for d in &td.container_definitions[i].depends_on {
            let Some(j) = td
                .container_definitions
                .iter()
                .position(|c| c.name == d.container_name)
            else {
                continue;
            };
            if j == i {
                continue; // reported on its own
            }
            match marks[j] {
                Mark::Active => {
                    let start = stack.iter().position(|&k| k == j).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(j);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(td, j, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; td.container_definitions.len()];
    (0..marks.len()).find_map(|i| {
        if marks[i] == Mark::New {
            visit(td, i, &mut marks, &mut Vec::new())
        } else {
            None
        }
    })
}

/// Task-level CPU in CPU units (1024 per vCPU): `"256"`, `"1 vCPU"`, `"0.5vcpu"`.
pub fn task_cpu_units(cpu: &str) -> Option<u32> {
    scaled(cpu, "vcpu", 1024.0)
}

/// Task-level memory in MiB: `"512"`, `"1 GB"`, `"0.5GB"`.
pub fn task_memory_mib(memory: &str) -> Option<u32> {
    scaled(memory, "gb", 1024.0)
}

fn scaled(text: &str, unit: &str, factor: f64) -> Option<u32> {
    let t = text.trim().to_ascii_lowercase();
    if let Ok(n) = t.parse::<u32>() {
        return (n > 0).then_some(n);
    }
    let number = t.strip_suffix(unit)?.trim_end();
    let v: f64 = number.parse().ok()?;
    let scaled = (v * factor).round();
    (v > 0.0 && v.is_finite() && scaled <= f64::from(u32::MAX)).then_some(scaled as u32)
}

/// Accepts `"256"` or `256` (kept as the string `"256"`).
fn string_or_integer<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an integer")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    deserializer.deserialize_option(V)
}
