//! Cutover's own `stack.yaml`: the services of a stack, how each one is
//! deployed, the deployment configurations and the alarms.
//!
//! ```yaml
//! services:
//!   web:
//!     desiredCount: 2
//!     taskDefinition: ./taskdef.json
//!     loadBalancer:
//!       containerName: web
//!       containerPort: 8080
//!       listener: 127.0.0.1:18080
//!       testListener: 127.0.0.1:19080
//!     deployment:
//!       type: BLUE_GREEN
//!       config: Canary20Percent5Seconds
//!       alarms: [web-5xx]
//!       autoRollback: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]
//! deploymentConfigs:
//!   Canary20Percent5Seconds:
//!     trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 20, canaryIntervalSeconds: 5}}
//! alarms:
//!   web-5xx:
//!     metric: {name: HTTPCode_Target_5XX_Count, service: web}
//!     statistic: Sum
//!     threshold: 1
//!     comparisonOperator: GreaterThanOrEqualToThreshold
//! ```
//!
//! Because this is Cutover's own format it is strict: an unknown key is an
//! error, with a "did you mean" suggestion when a known key is close. Keys
//! are camelCase. Durations are integer seconds unless the key says
//! minutes; where AWS uses minutes, both spellings are accepted
//! (`terminationWaitMinutes` or `terminationWaitSeconds`, not both), and
//! [`parse_stack`] folds the minutes into the seconds field so that the
//! stored stack is canonical. The same goes for `trafficRoutingConfig`
//! (folded into `trafficRouting`) and `extendedStatistic` (into `statistic`).
//!
//! `functions:` maps the Lambda functions that appspec hooks and invoke
//! actions name to hooks Cutover runs (see [`functions`]).
//!
//! `imageRepositories:` declares the registry's repositories by ECR
//! repository name: tag mutability, scan on push, a lifecycle policy (as a
//! mapping, checked as ECR checks a policy's text) and `anonymousPull` (see
//! [`crate::ecr::ImageRepositorySpec`]).
//!
//! `applications:` declares CodeDeploy applications for hosts (deployment
//! groups chosen by on-premises tags), and a `deploymentConfigs:` entry
//! with `minimumHealthyHosts` is one for hosts (see [`applications`]).
//!
//! Cross-references are checked: alarm and deployment config names, the
//! service an alarm watches, listener addresses unique across services.
//! What needs another file (the container named by `loadBalancer` exists in
//! the task definition) is checked by [`check_task_definition`].

mod alarm_rule;
pub mod applications;
pub mod ci;
pub mod functions;
pub mod placement;
mod validate;
pub use self::validate::is_service_name;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

pub use self::alarm_rule::{
    AlarmRule, AlarmRuleError, AlarmState, MAX_DEPTH, MAX_RULE_LEN, UnknownAlarmState,
    parse_alarm_rule,
};
use crate::appspec::{LifecycleEvent, parse_family_revision};
use crate::check::{Document, Sink, suggest};
use crate::de::tolerant_map;
use crate::diag::{Parsed, SpecError};
use crate::doc::{Format, Path, quote};
pub use crate::matcher::{GrpcMatcher, Matcher};
use crate::taskdef::TaskDefinition;

/// The deployment configuration used when a service names none.
pub const DEFAULT_DEPLOYMENT_CONFIG: &str = "CodeDeployDefault.ECSAllAtOnce";
/// Default `desiredCount`.
pub const DEFAULT_DESIRED_COUNT: u32 = 1;
/// Default `deregistrationDelaySeconds` (as ALB).
pub const DEFAULT_DEREGISTRATION_DELAY_SECONDS: u64 = 300;
/// Default blue/green termination wait, in seconds. AWS's console suggests
/// an hour; Cutover keeps the old version 5 minutes, enough to roll back
/// instantly while the new one proves itself, without holding resources long.
pub const DEFAULT_TERMINATION_WAIT_SECONDS: u64 = 300;
/// Default timeout of a deployment hook, in seconds (as CodeDeploy: one hour).
pub const DEFAULT_HOOK_TIMEOUT_SECONDS: u64 = 3600;
/// Default `minimumHealthyPercent` of a rolling update.
pub const DEFAULT_MINIMUM_HEALTHY_PERCENT: u32 = 100;
/// Default `maximumPercent` of a rolling update.
pub const DEFAULT_MAXIMUM_PERCENT: u32 = 200;
/// Default alarm `periodSeconds`.
pub const DEFAULT_ALARM_PERIOD_SECONDS: u64 = 60;

/// The predefined CodeDeploy ECS deployment configurations.
pub const PREDEFINED_DEPLOYMENT_CONFIGS: [(&str, TrafficShift); 5] = [
    ("CodeDeployDefault.ECSAllAtOnce", TrafficShift::AllAtOnce),
    (
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
        TrafficShift::Linear {
            percent: 10,
            interval: Duration::from_secs(60),
        },
    ),
    (
        "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
        TrafficShift::Linear {
            percent: 10,
            interval: Duration::from_secs(180),
        },
    ),
    (
        "CodeDeployDefault.ECSCanary10Percent5Minutes",
        TrafficShift::Canary {
            percent: 10,
            interval: Duration::from_secs(300),
        },
    ),
    (
        "CodeDeployDefault.ECSCanary10Percent15Minutes",
        TrafficShift::Canary {
            percent: 10,
            interval: Duration::from_secs(900),
        },
    ),
];

/// A whole `stack.yaml`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    /// Services by name (`[a-z0-9][a-z0-9-]{0,62}`).
    #[serde(
        default,
        deserialize_with = "tolerant_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub services: BTreeMap<String, Service>,
    /// Custom deployment configurations by name.
    #[serde(
        default,
        deserialize_with = "tolerant_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub deployment_configs: BTreeMap<String, DeploymentConfig>,
    /// Alarms by name.
    #[serde(
        default,
        deserialize_with = "tolerant_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub alarms: BTreeMap<String, Alarm>,
    /// What Cutover runs for a Lambda function that an appspec hook or an
    /// invoke action names, by function name or ARN (see [`functions`]).
    #[serde(
        default,
        deserialize_with = "tolerant_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub functions: BTreeMap<String, HookSpec>,
    /// The registry's image repositories by repository name, as ECR's
    /// CreateRepository and PutLifecyclePolicy would set them (see
    /// [`crate::ecr::ImageRepositorySpec`]).
    #[serde(
        default,
        deserialize_with = "tolerant_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub image_repositories: BTreeMap<String, crate::ecr::ImageRepositorySpec>,
    /// Kept as written, not validated yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Value>,
    /// Kept as written, not validated yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_projects: Option<Value>,
    /// Kept as written, not validated yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipelines: Option<Value>,
    /// CodeDeploy applications for hosts (see [`applications`]).
    #[serde(
        default,
        deserialize_with = "tolerant_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub applications: BTreeMap<String, applications::Application>,
}

/// One service: a number of copies of a task definition, maybe behind a load balancer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// How tasks run; not given: the server's default runtime (`process`
    /// unless `cutover server --runtime` names another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// How many tasks to keep running, 0..=1000 (default 1).
    #[serde(default = "default_desired_count")]
    pub desired_count: u32,
    /// The task definition to run.
    pub task_definition: TaskDefinitionRef,
    /// The local load balancer in front of the tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// How a new task definition is rolled out.
    #[serde(default)]
    pub deployment: Deployment,
    /// ECS `placementConstraints` (`runtime: swarm` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement_constraints: Vec<placement::PlacementConstraint>,
    /// ECS `placementStrategy` (`runtime: swarm` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement_strategy: Vec<placement::PlacementStrategy>,
}

fn default_desired_count() -> u32 {
    DEFAULT_DESIRED_COUNT
}

/// What the control plane keeps of a service's declaration besides its task
/// definition, desired count and runtime (which it stores on their own):
/// the load balancer, the deployment and placement settings. It round-trips through
/// JSON, so the store can keep it as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSettings {
    /// The local load balancer in front of the tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// How a new task definition is rolled out.
    #[serde(default)]
    pub deployment: Deployment,
    /// ECS `placementConstraints`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement_constraints: Vec<placement::PlacementConstraint>,
    /// ECS `placementStrategy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement_strategy: Vec<placement::PlacementStrategy>,
}

impl Service {
    /// The settings the control plane stores.
    pub fn settings(&self) -> ServiceSettings {
        ServiceSettings {
            load_balancer: self.load_balancer.clone(),
            deployment: self.deployment.clone(),
            placement_constraints: self.placement_constraints.clone(),
            placement_strategy: self.placement_strategy.clone(),
        }
    }
}

impl ServiceSettings {
    /// Whether new revisions go out blue/green (which needs a load balancer).
    pub fn is_blue_green(&self) -> bool {
        self.deployment.kind == DeploymentType::BlueGreen && self.load_balancer.is_some()
    }
}

/// How the tasks of a service run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Each container is a local process running the container's command.
    #[default]
    Process,
    /// Each container is a Docker (or Podman) container.
    Docker,
    /// Each task is a one-replica service of a Docker Swarm, on the node
    /// Swarm chooses.
    Swarm,
}

/// Where the task definition of a service comes from.
///
/// Written as one string: a path (it contains `/` or ends with `.json`),
/// relative to the stack file, or `family[:revision]` of a registered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDefinitionRef {
    /// A task definition file, relative to the stack file.
    Path(String),
    /// A registered family, at a revision or the latest.
    Family {
        /// The family name.
        family: String,
        /// The revision, or `None` for the latest.
        revision: Option<u32>,
    },
}

impl FromStr for TaskDefinitionRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err(
                "expected a path such as ./taskdef.json or a family such as web:3, found \"\""
                    .to_owned(),
            );
        }
        if s.contains('/') || s.ends_with(".json") {
            return Ok(TaskDefinitionRef::Path(s.to_owned()));
        }
        let (family, revision) = parse_family_revision(s)?;
        Ok(TaskDefinitionRef::Family { family, revision })
    }
}

impl fmt::Display for TaskDefinitionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskDefinitionRef::Path(p) => f.write_str(p),
            TaskDefinitionRef::Family {
                family,
                revision: None,
            } => f.write_str(family),
            TaskDefinitionRef::Family {
                family,
                revision: Some(r),
            } => write!(f, "{family}:{r}"),
        }
    }
}

/// The local load balancer of a service: a production listener, an optional
/// test listener, and a target group health check; optionally a JWT
/// authorizer and a throttle applied to the requests of its listeners (all,
/// or those of `guardedPaths`), the client networks allowed (`sourceIp`), and
/// how connections to the tasks are made (`protocol`, ..., the keys of an
/// `lb.yaml` target group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    /// The container that receives traffic.
    pub container_name: String,
    /// Its port, 1..=65535.
    pub container_port: u32,
    /// Address of the production listener.
    #[serde(deserialize_with = "socket_addr")]
    pub listener: SocketAddr,
    /// Address of the test listener (blue/green), different from `listener`.
    #[serde(
        default,
        deserialize_with = "opt_socket_addr",
        skip_serializing_if = "Option::is_none"
    )]
    pub test_listener: Option<SocketAddr>,
    /// Target health check.
    #[serde(default)]
    pub health_check: TargetHealthCheck,
    /// Seconds a deregistering target keeps serving in-flight requests, 0..=3600 (default 300).
    #[serde(default = "default_deregistration_delay")]
    pub deregistration_delay_seconds: u64,
    /// A JWT authorizer in front of the service (as on an `lb.yaml` rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<crate::gateway::AuthorizerConfig>,
    /// A throttle per client key in front of the service (as on an `lb.yaml` rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<crate::gateway::ThrottleConfig>,
    /// Path patterns (`/api/*`) the authorizer and throttle guard; every path when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guarded_paths: Vec<String>,
    /// Client networks (`10.0.0.0/8`) allowed to reach the service's listeners, as an `lb.yaml`
    /// rule's `sourceIp` condition; others get 403. Everyone when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ip: Vec<String>,
    /// How the load balancer talks to the tasks (as on an `lb.yaml` target group).
    #[serde(
        default,
        skip_serializing_if = "crate::upstream::TargetProtocol::is_default"
    )]
    pub protocol: crate::upstream::TargetProtocol,
    /// `HTTP1`, `HTTP2` or `GRPC` with `protocol: HTTP` or `HTTPS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<crate::upstream::ProtocolVersion>,
    /// Seconds a connection to a task may stay unused before it is closed (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<f64>,
    /// HTTP/1 connections open to one task at most (default unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_target: Option<u32>,
    /// `HTTPS`: an absolute path to the PEM certificate authorities trusted for the tasks'
    /// certificates (default: the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// `HTTPS`: accept any certificate from the tasks. Only when written so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

impl LoadBalancer {
    /// The target group connection keys, as the model shared with `lb.yaml` holds them.
    pub fn connection(&self) -> crate::upstream::TargetConnection {
        crate::upstream::TargetConnection {
            protocol: self.protocol,
            protocol_version: self.protocol_version,
            idle_timeout_seconds: self.idle_timeout_seconds,
            max_connections_per_target: self.max_connections_per_target,
            ca_file: self.ca_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        }
    }
}

fn default_deregistration_delay() -> u64 {
    DEFAULT_DEREGISTRATION_DELAY_SECONDS
}

/// A target group health check, with ALB's defaults.
///
/// Ranges are ALB's, widened so local tests can be fast: interval 1..=300 s
/// (ALB: 5..=300), timeout 1..=120 s and not above the interval, thresholds
/// 1..=10 (ALB: 2..=10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealthCheck {
    /// HTTP path probed (default `/`).
    #[serde(default = "default_health_path")]
    pub path: String,
    /// Seconds between probes (default 30).
    #[serde(default = "default_health_interval")]
    pub interval_seconds: u64,
    /// Seconds before a probe fails (default 5, or the interval if shorter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Consecutive successes to become healthy (default 5).
    #[serde(default = "default_healthy_threshold")]
    pub healthy_threshold_count: u32,
    /// Consecutive failures to become unhealthy (default 2).
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold_count: u32,
    /// HTTP codes that count as success (default `200`).
    #[serde(default)]
    pub matcher: Matcher,
    /// gRPC codes that count as success (default `12`), for `protocolVersion: GRPC` only,
    /// whose probes are gRPC calls to `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_code: Option<GrpcMatcher>,
}

fn default_health_path() -> String {
    "/".to_owned()
}
fn default_health_interval() -> u64 {
    30
}
fn default_healthy_threshold() -> u32 {
    5
}
fn default_unhealthy_threshold() -> u32 {
    2
}

impl Default for TargetHealthCheck {
    fn default() -> Self {
        TargetHealthCheck {
            path: default_health_path(),
            interval_seconds: default_health_interval(),
            timeout_seconds: None,
            healthy_threshold_count: default_healthy_threshold(),
            unhealthy_threshold_count: default_unhealthy_threshold(),
            matcher: Matcher::default(),
            grpc_code: None,
        }
    }
}

impl TargetHealthCheck {
    /// Time between probes.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_seconds)
    }

    /// `timeoutSeconds`, or 5 s capped by the interval.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.unwrap_or(5.min(self.interval_seconds)))
    }
}

/// How a service rolls out a new task definition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ROLLING` (default) or `BLUE_GREEN`.
    #[serde(rename = "type", default)]
    pub kind: DeploymentType,
    /// BLUE_GREEN: a name from `deploymentConfigs` or a predefined
    /// `CodeDeployDefault.ECS*` one (default `CodeDeployDefault.ECSAllAtOnce`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// BLUE_GREEN: seconds the original task set is kept after traffic shifted (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_wait_seconds: Option<u64>,
    /// The same in minutes (AWS's unit, 0..=2880); input only, folded into
    /// `termination_wait_seconds` by [`parse_stack`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_wait_minutes: Option<u64>,
    /// BLUE_GREEN: whether traffic shifts as soon as the replacement is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_ready: Option<DeploymentReady>,
    /// Alarms (names from `alarms`, at most 10) that stop the deployment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// Events that roll the deployment back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_rollback: Vec<RollbackEvent>,
    /// BLUE_GREEN: hooks by lifecycle event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hooks: BTreeMap<LifecycleEvent, HookSpec>,
    /// ROLLING: lower bound of healthy tasks during the update, % of desired, 0..=100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_percent: Option<u32>,
    /// ROLLING: upper bound of running tasks during the update, % of desired, 100..=200 (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_percent: Option<u32>,
    /// ROLLING: stop (and maybe roll back) an update whose tasks keep failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// The CodeDeploy application AWS's API names this service by
    /// (BLUE_GREEN only; default: the service's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// The CodeDeploy deployment group AWS's API names this service by
    /// (BLUE_GREEN only; default: the service's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_group: Option<String>,
}

impl Deployment {
    /// The CodeDeploy application naming service `service`.
    pub fn application_name<'a>(&'a self, service: &'a str) -> &'a str {
        self.application.as_deref().unwrap_or(service)
    }

    /// The CodeDeploy deployment group naming service `service`.
    pub fn deployment_group_name<'a>(&'a self, service: &'a str) -> &'a str {
        self.deployment_group.as_deref().unwrap_or(service)
    }

    /// The deployment configuration name, or the default.
    pub fn config_name(&self) -> &str {
        self.config.as_deref().unwrap_or(DEFAULT_DEPLOYMENT_CONFIG)
    }

    /// How long the original task set is kept after a blue/green shift.
    pub fn termination_wait(&self) -> Duration {
        let secs = self
            .termination_wait_seconds
            .or(self.termination_wait_minutes.map(|m| m * 60))
            .unwrap_or(DEFAULT_TERMINATION_WAIT_SECONDS);
        Duration::from_secs(secs)
    }

    /// `deploymentReady`, or continue at once.
    pub fn ready(&self) -> DeploymentReady {
        self.deployment_ready.clone().unwrap_or_default()
    }

    /// `minimumHealthyPercent`, or 100.
    pub fn minimum_healthy_percent_or_default(&self) -> u32 {
        self.minimum_healthy_percent
            .unwrap_or(DEFAULT_MINIMUM_HEALTHY_PERCENT)
    }

    /// `maximumPercent`, or 200.
    pub fn maximum_percent_or_default(&self) -> u32 {
        self.maximum_percent.unwrap_or(DEFAULT_MAXIMUM_PERCENT)
    }

    /// Whether `event` triggers an automatic rollback.
    pub fn rolls_back_on(&self, event: RollbackEvent) -> bool {
        self.auto_rollback.contains(&event)
    }
}

/// The deployment controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentType {
    /// Replace tasks in place, ECS style.
    #[default]
    Rolling,
    /// Start a replacement task set, shift traffic, keep the original for rollback (CodeDeploy style).
    BlueGreen,
}

/// What happens once the replacement task set is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentReady {
    /// `CONTINUE_DEPLOYMENT` or `STOP_DEPLOYMENT`.
    pub action: ReadyAction,
    /// STOP_DEPLOYMENT: how long to wait for a manual continue before the
    /// deployment stops, 1..=432000 s (120 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
    /// The same in minutes; input only, folded into `wait_seconds` by [`parse_stack`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_minutes: Option<u64>,
}

impl Default for DeploymentReady {
    fn default() -> Self {
        DeploymentReady {
            action: ReadyAction::ContinueDeployment,
            wait_seconds: None,
            wait_minutes: None,
        }
    }
}

impl DeploymentReady {
    /// The wait, from either field.
    pub fn wait(&self) -> Duration {
        Duration::from_secs(
            self.wait_seconds
                .or(self.wait_minutes.map(|m| m * 60))
                .unwrap_or(0),
        )
    }
}

/// `deploymentReady.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReadyAction {
    /// Shift traffic as soon as the replacement is ready.
    ContinueDeployment,
    /// Wait for a manual continue, up to the wait.
    StopDeployment,
}

/// An event that can trigger an automatic rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RollbackEvent {
    /// The deployment failed.
    DeploymentFailure,
    /// An alarm of the deployment went into ALARM.
    DeploymentStopOnAlarm,
    /// Someone stopped the deployment.
    DeploymentStopOnRequest,
}

/// A deployment hook: a command to run or a URL to call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookSpec {
    /// Program and arguments (exactly one of `command` and `url`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// HTTP(S) URL to call (exactly one of `command` and `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URL hooks only: `ecs` (default) or `codedeploy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<HookProtocol>,
    /// Seconds before the hook counts as failed, 1..=3600 (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

impl HookSpec {
    /// What the hook does.
    pub fn target(&self) -> HookTarget<'_> {
        match &self.url {
            Some(url) => HookTarget::Url {
                url,
                protocol: self.protocol.unwrap_or_default(),
            },
            None => HookTarget::Command(&self.command),
        }
    }

    /// `timeoutSeconds`, or one hour.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.unwrap_or(DEFAULT_HOOK_TIMEOUT_SECONDS))
    }
}

/// What a [`HookSpec`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookTarget<'a> {
    /// Run a program; exit code 0 is success.
    Command(&'a [String]),
    /// Call a URL.
    Url {
        /// The URL.
        url: &'a str,
        /// How the hook reports its result.
        protocol: HookProtocol,
    },
}

/// How a URL hook reports its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HookProtocol {
    /// ECS-native: the response says `hookStatus` SUCCEEDED, FAILED or IN_PROGRESS (call again).
    #[default]
    #[serde(rename = "ecs")]
    Ecs,
    /// CodeDeploy: the hook later calls back with PutLifecycleEventHookExecutionStatus.
    #[serde(rename = "codedeploy")]
    CodeDeploy,
}

/// ROLLING deployment circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreaker {
    /// Fail the update when tasks keep failing to start.
    #[serde(default)]
    pub enable: bool,
    /// Roll back to the last completed deployment when it fails.
    #[serde(default)]
    pub rollback: bool,
}

/// A custom deployment configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfig {
    /// How traffic shifts (always set after [`parse_stack`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
    /// AWS's name for the same; input only, folded into `traffic_routing` by [`parse_stack`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing_config: Option<TrafficRouting>,
    /// `ECS` or `Server` (see [`DeploymentConfig::platform`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_platform: Option<applications::ComputePlatform>,
    /// Server: how many hosts stay healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_hosts: Option<applications::MinimumHealthyHosts>,
    /// Server: zone by zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zonal_config: Option<applications::ZonalConfig>,
}

/// `trafficRouting`, as AWS writes `trafficRoutingConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRouting {
    /// `AllAtOnce`, `TimeBasedCanary` or `TimeBasedLinear`.
    #[serde(rename = "type")]
    pub kind: TrafficRoutingType,
    /// With `TimeBasedCanary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_based_canary: Option<TimeBasedCanary>,
    /// With `TimeBasedLinear`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_based_linear: Option<TimeBasedLinear>,
}

/// The kind of traffic shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrafficRoutingType {
    /// Everything at once.
    AllAtOnce,
    /// A share, then the rest after an interval.
    TimeBasedCanary,
    /// Equal steps at equal intervals.
    TimeBasedLinear,
}

/// Canary parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBasedCanary {
    /// Share of traffic in the first step, 1..=99.
    pub canary_percentage: u32,
    /// Seconds before the rest shifts, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_interval_seconds: Option<u64>,
    /// The same in minutes (AWS); input only, folded into `canary_interval_seconds` by [`parse_stack`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_interval: Option<u64>,
}

/// Linear parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBasedLinear {
    /// Share of traffic added at each step, 1..=100.
    pub linear_percentage: u32,
    /// Seconds between steps, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_interval_seconds: Option<u64>,
    /// The same in minutes (AWS); input only, folded into `linear_interval_seconds` by [`parse_stack`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_interval: Option<u64>,
}

/// A deployment configuration resolved to what the engine does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficShift {
    /// 100% at once.
    AllAtOnce,
    /// `percent`, then the rest after `interval`.
    Canary {
        /// First step.
        percent: u32,
        /// Wait before the rest.
        interval: Duration,
    },
    /// `percent` more every `interval` until 100%.
    Linear {
        /// Each step.
        percent: u32,
        /// Wait between steps.
        interval: Duration,
    },
}

impl DeploymentConfig {
    /// The shift this configuration describes (`None` only before validation).
    pub fn shift(&self) -> Option<TrafficShift> {
        let r = self
            .traffic_routing
            .as_ref()
            .or(self.traffic_routing_config.as_ref())?;
        let secs = |s: Option<u64>, m: Option<u64>| {
            Duration::from_secs(s.or(m.map(|m| m * 60)).unwrap_or(0))
        };
        Some(match r.kind {
            TrafficRoutingType::AllAtOnce => TrafficShift::AllAtOnce,
            TrafficRoutingType::TimeBasedCanary => {
                let c = r.time_based_canary.as_ref()?;
                TrafficShift::Canary {
                    percent: c.canary_percentage,
                    interval: secs(c.canary_interval_seconds, c.canary_interval),
                }
            }
            TrafficRoutingType::TimeBasedLinear => {
                let l = r.time_based_linear.as_ref()?;
                TrafficShift::Linear {
                    percent: l.linear_percentage,
                    interval: secs(l.linear_interval_seconds, l.linear_interval),
                }
            }
        })
    }
}

/// An alarm: on a load balancer metric of a service, or a rule over other alarms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAlarm", into = "RawAlarm")]
pub enum Alarm {
    /// A threshold on a metric.
    Metric(MetricAlarm),
    /// A rule over other alarms.
    Composite(CompositeAlarm),
}

/// A threshold on a metric, CloudWatch style.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAlarm {
    /// The metric watched.
    pub metric: MetricRef,
    /// How datapoints in a period are combined.
    pub statistic: Statistic,
    /// Length of a period, seconds (default 60).
    pub period_seconds: u64,
    /// Periods looked at (default 1).
    pub evaluation_periods: u32,
    /// Breaching periods among them that trigger ALARM (default `evaluation_periods`).
    pub datapoints_to_alarm: u32,
    /// The threshold.
    pub threshold: f64,
    /// How the statistic is compared to the threshold.
    pub comparison_operator: ComparisonOperator,
    /// How periods without data count (default `missing`).
    pub treat_missing_data: TreatMissingData,
}

/// A rule over other alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositeAlarm {
    /// The rule as written; see [`parse_alarm_rule`].
    pub alarm_rule: String,
}

impl CompositeAlarm {
    /// The parsed rule (always valid after [`parse_stack`]).
    pub fn rule(&self) -> Result<AlarmRule, AlarmRuleError> {
        parse_alarm_rule(&self.alarm_rule)
    }
}

/// Which metric an alarm watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricRef {
    /// The metric.
    pub name: MetricName,
    /// The service whose load balancer reports it.
    pub service: String,
    /// Only traffic through this listener (default: the production listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<ListenerKind>,
}

/// Load balancer metrics, named as ALB's in CloudWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricName {
    /// Requests served.
    RequestCount,
    /// 2xx responses from targets.
    #[serde(rename = "HTTPCode_Target_2XX_Count")]
    Target2xx,
    /// 3xx responses from targets.
    #[serde(rename = "HTTPCode_Target_3XX_Count")]
    Target3xx,
    /// 4xx responses from targets.
    #[serde(rename = "HTTPCode_Target_4XX_Count")]
    Target4xx,
    /// 5xx responses from targets.
    #[serde(rename = "HTTPCode_Target_5XX_Count")]
    Target5xx,
    /// 5xx responses made by the load balancer itself.
    #[serde(rename = "HTTPCode_ELB_5XX_Count")]
    Elb5xx,
    /// Seconds from request sent to response headers received.
    TargetResponseTime,
    /// Healthy targets.
    HealthyHostCount,
    /// Unhealthy targets.
    UnHealthyHostCount,
    /// Open connections.
    ActiveConnectionCount,
}

/// A listener of a service's load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// The production listener.
    Prod,
    /// The test listener.
    Test,
}

/// How the datapoints of a period are combined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    /// Sum.
    Sum,
    /// Mean.
    Average,
    /// Smallest.
    Minimum,
    /// Largest.
    Maximum,
    /// Number of datapoints.
    SampleCount,
    /// A percentile, 0..=100 (`p99`, `p99.9`).
    Percentile(f64),
}

impl FromStr for Statistic {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "Sum" => Statistic::Sum,
            "Average" => Statistic::Average,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            "SampleCount" => Statistic::SampleCount,
            _ => {
                let p = s
                    .strip_prefix('p')
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p));
                match p {
                    Some(p) => Statistic::Percentile(p),
                    None => {
                        return Err(format!(
                            "unknown statistic {}, expected one of Sum, Average, Minimum, Maximum, SampleCount or a percentile such as p99",
                            quote(s)
                        ));
                    }
                }
            }
        })
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Sum => f.write_str("Sum"),
            Statistic::Average => f.write_str("Average"),
            Statistic::Minimum => f.write_str("Minimum"),
            Statistic::Maximum => f.write_str("Maximum"),
            Statistic::SampleCount => f.write_str("SampleCount"),
            Statistic::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

impl Serialize for Statistic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Statistic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How a statistic is compared to the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonOperator {
    /// `>=`.
    GreaterThanOrEqualToThreshold,
    /// `>`.
    GreaterThanThreshold,
    /// `<`.
    LessThanThreshold,
    /// `<=`.
    LessThanOrEqualToThreshold,
}

impl ComparisonOperator {
    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => value >= threshold,
            ComparisonOperator::GreaterThanThreshold => value > threshold,
            ComparisonOperator::LessThanThreshold => value < threshold,
            ComparisonOperator::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// The comparison in words, for an alarm's reason
    /// ("greater than or equal to").
    pub fn phrase(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => "greater than or equal to",
            ComparisonOperator::GreaterThanThreshold => "greater than",
            ComparisonOperator::LessThanThreshold => "less than",
            ComparisonOperator::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// How periods without data count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissingData {
    /// Not counted either way (CloudWatch's default).
    #[default]
    Missing,
    /// As good.
    NotBreaching,
    /// As bad.
    Breaching,
    /// The alarm keeps its state.
    Ignore,
}

/// An alarm as written: one struct for both kinds, so that unknown keys are
/// reported against the full list and each field error is located.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAlarm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metric: Option<MetricRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    statistic: Option<Statistic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extended_statistic: Option<Statistic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evaluation_periods: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    datapoints_to_alarm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comparison_operator: Option<ComparisonOperator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    treat_missing_data: Option<TreatMissingData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alarm_rule: Option<String>,
}

const METRIC_ONLY_KEYS: [&str; 8] = [
    "statistic",
    "extendedStatistic",
    "periodSeconds",
    "evaluationPeriods",
    "datapointsToAlarm",
    "threshold",
    "comparisonOperator",
    "treatMissingData",
];

impl TryFrom<RawAlarm> for Alarm {
    type Error = String;

    fn try_from(r: RawAlarm) -> Result<Self, String> {
        if let Some(alarm_rule) = r.alarm_rule {
            let given = [
                r.metric.is_some(),
                r.statistic.is_some(),
                r.extended_statistic.is_some(),
                r.period_seconds.is_some(),
                r.evaluation_periods.is_some(),
                r.datapoints_to_alarm.is_some(),
                r.threshold.is_some(),
                r.comparison_operator.is_some(),
                r.treat_missing_data.is_some(),
            ];
            let names = std::iter::once("metric").chain(METRIC_ONLY_KEYS);
            let extra: Vec<_> = names
                .zip(given)
                .filter(|(_, g)| *g)
                .map(|(n, _)| n)
                .collect();
            if !extra.is_empty() {
                return Err(format!(
                    "a composite alarm (with alarmRule) cannot have {}",
                    extra.join(", ")
                ));
            }
            return Ok(Alarm::Composite(CompositeAlarm { alarm_rule }));
        }
        let Some(metric) = r.metric else {
            return Err(
                "missing field \"metric\" (or \"alarmRule\" for a composite alarm)".to_owned(),
            );
        };
        let statistic = match (r.statistic, r.extended_statistic) {
            (Some(_), Some(_)) => {
                return Err("give statistic or extendedStatistic, not both".to_owned());
            }
            (Some(s), None) => s,
            (None, Some(Statistic::Percentile(p))) => Statistic::Percentile(p),
            (None, Some(other)) => {
                return Err(format!(
                    "extendedStatistic must be a percentile such as p99, found {}; use statistic: {other}",
                    quote(&other.to_string())
                ));
            }
            (None, None) => return Err("missing field \"statistic\"".to_owned()),
        };
        let mut missing = Vec::new();
        if r.threshold.is_none() {
            missing.push("\"threshold\"");
        }
        if r.comparison_operator.is_none() {
            missing.push("\"comparisonOperator\"");
        }
        match (r.threshold, r.comparison_operator) {
            (Some(threshold), Some(comparison_operator)) => {
                let evaluation_periods = r.evaluation_periods.unwrap_or(1);
                Ok(Alarm::Metric(MetricAlarm {
                    metric,
                    statistic,
                    period_seconds: r.period_seconds.unwrap_or(DEFAULT_ALARM_PERIOD_SECONDS),
                    evaluation_periods,
                    datapoints_to_alarm: r.datapoints_to_alarm.unwrap_or(evaluation_periods),
                    threshold,
                    comparison_operator,
                    treat_missing_data: r.treat_missing_data.unwrap_or_default(),
                }))
            }
            _ => Err(format!(
                "missing field{} {}",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", ")
            )),
        }
    }
}

impl From<Alarm> for RawAlarm {
    fn from(a: Alarm) -> RawAlarm {
        match a {
            Alarm::Composite(c) => RawAlarm {
                alarm_rule: Some(c.alarm_rule),
                ..RawAlarm::default()
            },
            Alarm::Metric(m) => RawAlarm {
                metric: Some(m.metric),
                statistic: Some(m.statistic),
                period_seconds: Some(m.period_seconds),
                evaluation_periods: Some(m.evaluation_periods),
                datapoints_to_alarm: Some(m.datapoints_to_alarm),
                threshold: Some(m.threshold),
                comparison_operator: Some(m.comparison_operator),
                treat_missing_data: Some(m.treat_missing_data),
                ..RawAlarm::default()
            },
        }
    }
}

impl Stack {
    /// Resolves a deployment configuration name: one of `deploymentConfigs`
    /// or a predefined `CodeDeployDefault.ECS*` one.
    pub fn traffic_shift(&self, config: &str) -> Option<TrafficShift> {
        if let Some(c) = self.deployment_configs.get(config) {
            return c.shift();
        }
        PREDEFINED_DEPLOYMENT_CONFIGS
            .iter()
            .find(|(name, _)| *name == config)
            .map(|(_, shift)| *shift)
    }

    /// The stack as canonical JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a stack always serializes to JSON")
    }
}

/// Reads a `stack.yaml` (or `*.json`), strictly: see the module documentation.
pub fn parse_stack(file: &str, text: &str) -> Result<Parsed<Stack>, SpecError> {
    let doc = Document::parse(file, text, Format::for_file(file))?;
    let sink = doc.sink(true);
    let mut stack: Option<Stack> = sink.read(&Path::root());
    if let Some(stack) = &mut stack {
        validate::validate(stack, &sink);
        normalize(stack);
    }
    sink.finish(stack)
}

/// Folds the input-only spellings into the canonical fields.
fn normalize(stack: &mut Stack) {
    for svc in stack.services.values_mut() {
        let d = &mut svc.deployment;
        if let Some(m) = d.termination_wait_minutes.take() {
            d.termination_wait_seconds.get_or_insert(m * 60);
        }
        if let Some(r) = &mut d.deployment_ready
            && let Some(m) = r.wait_minutes.take()
        {
            r.wait_seconds.get_or_insert(m * 60);
        }
    }
    for cfg in stack.deployment_configs.values_mut() {
        if let Some(r) = cfg.traffic_routing_config.take() {
            cfg.traffic_routing.get_or_insert(r);
        }
        if let Some(r) = &mut cfg.traffic_routing {
            if let Some(c) = &mut r.time_based_canary
                && let Some(m) = c.canary_interval.take()
            {
                c.canary_interval_seconds.get_or_insert(m * 60);
            }
            if let Some(l) = &mut r.time_based_linear
                && let Some(m) = l.linear_interval.take()
            {
                l.linear_interval_seconds.get_or_insert(m * 60);
            }
        }
    }
}

/// Checks a service of a stack against its task definition: the
/// `loadBalancer` container exists and maps `containerPort`. Errors are
/// located in the stack file. `file` and `text` are the stack's.
pub fn check_task_definition(
    file: &str,
    text: &str,
    service: &str,
    task_definition: &TaskDefinition,
) -> Result<(), SpecError> {
    check_task_definitions(file, text, &[(service, task_definition)])
}

/// [`check_task_definition`] for many services at once: the stack is
/// parsed once, so checking every service of a large stack stays linear.
pub fn check_task_definitions(
    file: &str,
    text: &str,
    services: &[(&str, &TaskDefinition)],
) -> Result<(), SpecError> {
    let doc = Document::parse(file, text, Format::for_file(file))?;
    let sink = doc.sink(true);
    let stack: Option<Stack> = sink.read(&Path::root());
    for (service, task_definition) in services {
        check_one(&sink, stack.as_ref(), service, task_definition);
    }
    sink.finish(stack).map(|_| ())
}

fn check_one(
    sink: &Sink<'_>,
    stack: Option<&Stack>,
    service: &str,
    task_definition: &TaskDefinition,
) {
    let svc_path = Path::root().key("services").key(service);
    match stack.map(|s| s.services.get(service)) {
        None => {}
        Some(None) => sink.error(
            &Path::root().key("services"),
            format!("no service named {}", quote(service)),
        ),
        Some(Some(svc)) => {
            if let Some(lb) = &svc.load_balancer {
                let lb_path = svc_path.key("loadBalancer");
                match task_definition.container(&lb.container_name) {
                    None => {
                        let names = task_definition
                            .container_definitions
                            .iter()
                            .map(|c| c.name.as_str());
                        let hint = match suggest(&lb.container_name, names.clone()) {
                            Some(s) => format!(", did you mean {}?", quote(s)),
                            None => format!(" (it has {})", names.collect::<Vec<_>>().join(", ")),
                        };
                        sink.error(
                            &lb_path.key("containerName"),
                            format!(
                                "task definition {} has no container named {}{hint}",
                                quote(&task_definition.family),
                                quote(&lb.container_name)
                            ),
                        );
                    }
                    Some(c) => {
                        let ports: Vec<u32> = c
                            .port_mappings
                            .iter()
                            .filter_map(|p| p.container_port)
                            .collect();
                        if !ports.contains(&lb.container_port) {
                            let has = if ports.is_empty() {
                                "it has no portMappings".to_owned()
                            } else {
                                format!(
                                    "it maps {}",
                                    ports
                                        .iter()
                                        .map(u32::to_string)
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            };
                            sink.error(
                                &lb_path.key("containerPort"),
                                format!(
                                    "container {} has no port mapping for containerPort {} ({has})",
                                    quote(&c.name),
                                    lb.container_port
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}

fn socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = SocketAddr;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a socket address such as 127.0.0.1:8080")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SocketAddr, E> {
            v.parse().map_err(|_| {
                E::custom(format!(
                    "expected a socket address such as 127.0.0.1:8080 or [::1]:8080 (an IP address, not a host name), found {}",
                    quote(v)
                ))
            })
        }
    }
    deserializer.deserialize_str(V)
}

fn opt_socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "socket_addr")] SocketAddr);
    Ok(Option::<Wrap>::deserialize(deserializer)?.map(|w| w.0))
}

impl Serialize for TaskDefinitionRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskDefinitionRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
