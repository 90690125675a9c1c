//! CodeDeploy AppSpec files for ECS (`appspec.yaml`, `appspec.yml` or
//! `appspec.json`), `version: 0.0`.
//!
//! ```yaml
//! version: 0.0
//! Resources:
//!   - TargetService:
//!       Type: AWS::ECS::Service
//!       Properties:
//!         TaskDefinition: <TASK_DEFINITION>
//!         LoadBalancerInfo: {ContainerName: web, ContainerPort: 8080}
//! Hooks:
//!   - AfterAllowTestTraffic: "CheckGreen"
//! ```
//!
//! `version` may be the YAML float `0.0` or the string `"0.0"`. `Resources`
//! holds exactly one service. `TaskDefinition` is an ARN, `family[:revision]`
//! or a `<PLACEHOLDER>` (see [`TaskDefinitionTarget`]) where the appspec
//! names the task definition to deploy (CodeDeploy's `CreateDeployment`);
//! where the task definition comes from elsewhere (`cutover deploy
//! --task-definition F --appspec A`, CodePipeline's `CodeDeployToECS`), the
//! value is replaced whatever it holds, as AWS does, and a value that names
//! no task definition is only a warning ([`TaskDefinitionFrom`]). An
//! EC2/on-premises appspec (`os`, `files`, `hooks`) is recognised and
//! refused as such, not read as a broken ECS one ([`crate::appspec_host`]
//! reads it). Each hook is a
//! one-key mapping from a lifecycle event to the function to call. Keys are
//! case-sensitive; an unknown key is a warning.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::appspec_host::host_appspec_key;
use crate::check::{Document, Sink, is_aws_name};
use crate::diag::{Parsed, SpecError};
use crate::doc::{Format, Path, quote};

/// The one resource type an ECS AppSpec names.
pub const ECS_SERVICE_TYPE: &str = "AWS::ECS::Service";

/// An AppSpec file for an ECS blue/green deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    /// Always `"0.0"`.
    #[serde(deserialize_with = "version_string")]
    pub version: String,
    /// Exactly one resource: the service to deploy.
    #[serde(rename = "Resources")]
    pub resources: Vec<Resource>,
    /// Functions to call at lifecycle events, in file order.
    #[serde(rename = "Hooks", default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
}

/// One entry of `Resources`: `- TargetService: {Type, Properties}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The entry's key, `TargetService` by convention.
    pub name: String,
    /// The service.
    pub service: TargetService,
}

/// The service a deployment replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetService {
    /// Always `AWS::ECS::Service`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// What to deploy and where traffic goes.
    pub properties: ServiceProperties,
}

/// `Properties` of the target service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceProperties {
    /// ARN, `family[:revision]` or `<TASK_DEFINITION>`; see [`TaskDefinitionTarget`].
    pub task_definition: String,
    /// The container and port the load balancer sends traffic to.
    pub load_balancer_info: LoadBalancerInfo,
    /// Fargate platform version (kept, unused locally).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<Value>,
    /// Kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Value>,
}

/// `LoadBalancerInfo` of the target service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoadBalancerInfo {
    /// A container of the task definition.
    pub container_name: String,
    /// One of that container's ports, 1..=65535.
    pub container_port: u32,
}

/// A lifecycle event of a blue/green deployment, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LifecycleEvent {
    /// Before the replacement task set is created.
    BeforeInstall,
    /// After the replacement task set is created and healthy.
    AfterInstall,
    /// After the test listener routes to the replacement.
    AfterAllowTestTraffic,
    /// Before production traffic shifts.
    BeforeAllowTraffic,
    /// After all production traffic has shifted.
    AfterAllowTraffic,
}

impl LifecycleEvent {
    /// Every event, in lifecycle order.
    pub const ALL: [LifecycleEvent; 5] = [
        LifecycleEvent::BeforeInstall,
        LifecycleEvent::AfterInstall,
        LifecycleEvent::AfterAllowTestTraffic,
        LifecycleEvent::BeforeAllowTraffic,
        LifecycleEvent::AfterAllowTraffic,
    ];

    /// The name as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::BeforeInstall => "BeforeInstall",
            LifecycleEvent::AfterInstall => "AfterInstall",
            LifecycleEvent::AfterAllowTestTraffic => "AfterAllowTestTraffic",
            LifecycleEvent::BeforeAllowTraffic => "BeforeAllowTraffic",
            LifecycleEvent::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }
}

impl fmt::Display for LifecycleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `Hooks`: `- AfterAllowTestTraffic: "FunctionNameOrArn"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// When it runs.
    pub event: LifecycleEvent,
    /// What it calls (a Lambda name or ARN in AWS).
    pub function: String,
}

/// What an AppSpec or stack `TaskDefinition` string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDefinitionTarget {
    /// `<TASK_DEFINITION>`: filled in by the pipeline (holds `TASK_DEFINITION`).
    Placeholder(String),
    /// A family and, unless the latest is meant, a revision.
    Family {
        /// The family name.
        family: String,
        /// The revision, 1 or more.
        revision: Option<u32>,
    },
}

impl TaskDefinitionTarget {
    /// Reads `arn:aws:ecs:us-east-1:111122223333:task-definition/web:8`,
    /// `web:8`, `web` or `<TASK_DEFINITION>`.
    pub fn parse(s: &str) -> Result<TaskDefinitionTarget, String> {
        if let Some(name) = s.strip_prefix('<').and_then(|r| r.strip_suffix('>')) {
            return if name.is_empty() {
                Err("empty placeholder <>".to_owned())
            } else {
                Ok(TaskDefinitionTarget::Placeholder(name.to_owned()))
            };
        }
        let name = if s.starts_with("arn:") {
            match s.split_once(":task-definition/") {
                Some((prefix, rest)) if prefix.split(':').nth(2) == Some("ecs") => rest,
                _ => {
                    return Err(format!(
                        "expected a task definition ARN like arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION, found {}",
                        quote(s)
                    ));
                }
            }
        } else {
            s
        };
        let (family, revision) = parse_family_revision(name)?;
        Ok(TaskDefinitionTarget::Family { family, revision })
    }
}

/// Reads `family` or `family:revision` (revision 1 or more).
pub fn parse_family_revision(s: &str) -> Result<(String, Option<u32>), String> {
    let (family, revision) = match s.rsplit_once(':') {
        Some((f, r)) => {
            let rev = r.parse::<u32>().ok().filter(|r| *r >= 1).ok_or_else(|| {
                format!(
                    "invalid revision {} in {}: expected an integer of 1 or more",
                    quote(r),
                    quote(s)
                )
            })?;
            (f, Some(rev))
        }
        None => (s, None),
    };
    if !is_aws_name(family, 255) {
        return Err(format!(
            "invalid task definition family {}: use 1 to 255 letters, digits, hyphens and underscores",
            quote(family)
        ));
    }
    Ok((family.to_owned(), revision))
}

impl AppSpec {
    /// The service (the first and only resource).
    pub fn target_service(&self) -> &TargetService {
        &self.resources[0].service
    }

    /// The function for `event`, if a hook names one.
    pub fn hook(&self, event: LifecycleEvent) -> Option<&str> {
        self.hooks
            .iter()
            .find(|h| h.event == event)
            .map(|h| h.function.as_str())
    }
}

impl ServiceProperties {
    /// What `TaskDefinition` names (always valid after [`parse_appspec`]).
    pub fn task_definition_target(&self) -> Result<TaskDefinitionTarget, String> {
        TaskDefinitionTarget::parse(&self.task_definition)
    }
}

/// Where the task definition a deployment runs comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskDefinitionFrom {
    /// The appspec's `TaskDefinition` names it (CodeDeploy's
    /// `CreateDeployment`): the value must be an ARN, `family[:revision]` or
    /// a `<PLACEHOLDER>`.
    AppSpec,
    /// It is given elsewhere (`--task-definition`, a pipeline's task
    /// definition artifact) and replaces the appspec's value, whatever it
    /// holds (`"application-stack:*"`, `"taskdef.json"`, `"[YOUR_ARN]"`):
    /// a value that names no task definition is a warning.
    Elsewhere,
}

/// Reads an AppSpec for ECS whose `TaskDefinition` names the task
/// definition ([`TaskDefinitionFrom::AppSpec`]). `*.json` is read as JSON,
/// anything else as YAML.
pub fn parse_appspec(file: &str, text: &str) -> Result<Parsed<AppSpec>, SpecError> {
    parse_appspec_for(file, text, TaskDefinitionFrom::AppSpec)
}

/// Reads an AppSpec for ECS, checking `TaskDefinition` as `from` says.
pub fn parse_appspec_for(
    file: &str,
    text: &str,
    from: TaskDefinitionFrom,
) -> Result<Parsed<AppSpec>, SpecError> {
    let doc = Document::parse(file, text, Format::for_file(file))?;
    let sink = doc.sink(false);
    if let Some(key) = host_appspec_key(doc.root()) {
        sink.error_key(
            &Path::root().key(key),
            "this is an EC2/on-premises appspec (`os`, `files`, `hooks`), for a host deployment (an application with computePlatform: Server), not an ECS service; an ECS appspec has `Resources` with one AWS::ECS::Service",
        );
        return sink.finish(None);
    }
    let spec: Option<AppSpec> = sink.read(&Path::root());
    if let Some(spec) = &spec {
        validate(spec, &sink, from);
    }
    // An AppSpec without exactly one resource is refused by `validate`, so
    // `target_service` can index it.
    sink.finish(spec)
}

fn validate(spec: &AppSpec, s: &Sink<'_>, from: TaskDefinitionFrom) {
    if spec.version != "0.0" {
        s.error(
            &Path::root().key("version"),
            format!("unsupported version {}, expected 0.0", quote(&spec.version)),
        );
    }
    let resources = Path::root().key("Resources");
    if spec.resources.len() != 1 {
        s.error(
            &resources,
            format!(
                "must contain exactly one resource (the target service), found {}",
                spec.resources.len()
            ),
        );
    }
    for (i, r) in spec.resources.iter().enumerate() {
        let at = resources.index(i).key(&r.name);
        if r.service.kind != ECS_SERVICE_TYPE {
            s.error(
                &at.key("Type"),
                format!(
                    "expected {ECS_SERVICE_TYPE}, found {}",
                    quote(&r.service.kind)
                ),
            );
        }
        let props = at.key("Properties");
        if let Err(e) = r.service.properties.task_definition_target() {
            match from {
                TaskDefinitionFrom::AppSpec => s.error(&props.key("TaskDefinition"), e),
                TaskDefinitionFrom::Elsewhere => s.warning(
                    &props.key("TaskDefinition"),
                    format!(
                        "{} names no task definition; it is replaced by the task definition this deployment registers",
                        quote(&r.service.properties.task_definition)
                    ),
                ),
            }
        }
        let lb = props.key("LoadBalancerInfo");
        let info = &r.service.properties.load_balancer_info;
        if info.container_name.trim().is_empty() {
            s.error(&lb.key("ContainerName"), "must not be empty");
        }
        s.range(&lb.key("ContainerPort"), info.container_port, 1, 65535, "");
    }
    let hooks = Path::root().key("Hooks");
    for (i, h) in spec.hooks.iter().enumerate() {
        let at = hooks.index(i).key(h.event.as_str());
        if let Some(first) = spec.hooks[..i].iter().position(|o| o.event == h.event) {
            s.error_key(
                &at,
                format!(
                    "duplicate hook for {}, first at {}",
                    h.event,
                    hooks.index(first)
                ),
            );
        }
        if h.function.trim().is_empty() {
            s.error(&at, "must name the function to call");
        }
    }
}

/// `0.0` (a YAML or JSON number) or `"0.0"`, as a string.
pub(crate) fn version_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("0.0")
        }
        fn visit_str<E>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_f64<E>(self, v: f64) -> Result<String, E> {
            Ok(format!("{v:?}"))
        }
        fn visit_u64<E>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    deserializer.deserialize_str(V)
}

/// Reads a one-key mapping `{key: value}`.
fn one_key_map<'de, A, K, T>(mut map: A, what: &str) -> Result<(K, T), A::Error>
where
    A: MapAccess<'de>,
    K: Deserialize<'de>,
    T: Deserialize<'de>,
{
    let Some(key) = map.next_key::<K>()? else {
        return Err(de::Error::custom(format!(
            "expected {what}, found an empty mapping"
        )));
    };
    let value = map.next_value::<T>()?;
    if map.next_key::<de::IgnoredAny>()?.is_some() {
        return Err(de::Error::custom(format!(
            "expected {what}, found more than one key (is a `-` missing?)"
        )));
    }
    Ok((key, value))
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Resource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Resource, A::Error> {
                let (name, service) =
                    one_key_map(map, "one key naming the resource, such as TargetService")?;
                Ok(Resource { name, service })
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(1))?;
        m.serialize_entry(&self.name, &self.service)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for Hook {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Hook;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Hook, A::Error> {
                let (event, function) = one_key_map(map, "one key naming a lifecycle event")?;
                Ok(Hook { event, function })
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl Serialize for Hook {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(1))?;
        m.serialize_entry(&self.event, &self.function)?;
        m.end()
    }
}
