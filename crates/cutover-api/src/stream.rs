//! The live feed, `GET /v1/events/stream?topic=...`: server-sent events,
//! each a typed snapshot of the watched object, sent when it changes (and
//! once at the start). The console's pages and any client can follow a
//! deployment, a service, a pipeline, the service list, the alarms, a host
//! deployment or the agents without polling.

use crate::agents::AgentList;
use crate::alarms::AlarmList;
use crate::deployments::Deployment;
use crate::host_deployments::HostDeploymentView;
use crate::pipelines::ExecutionList;
use crate::services::{Service, ServiceList};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::{IntoParams, ToSchema};

/// What a stream follows: `services`, `alarms`, `agents`, `service/NAME`,
/// `deployment/ID`, `pipeline/NAME` or `host-deployment/ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// Every service with its counts (the console's overview).
    Services,
    /// Every alarm.
    Alarms,
    /// One service with its tasks and events.
    Service(String),
    /// One deployment with its lifecycle and events.
    Deployment(String),
    /// One pipeline's executions, newest first.
    Pipeline(String),
    /// Every host agent (the console's hosts page).
    Agents,
    /// One host deployment, host by host.
    HostDeployment(String),
}

/// A topic that is not one of [`Topic`]'s forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown topic {0:?}: expected services, alarms, agents, service/NAME, deployment/ID, pipeline/NAME or host-deployment/ID"
)]
pub struct UnknownTopic(pub String);

impl FromStr for Topic {
    type Err = UnknownTopic;
    fn from_str(s: &str) -> Result<Topic, UnknownTopic> {
        let named = |rest: &str, f: fn(String) -> Topic| {
            if rest.is_empty() || rest.contains('/') {
                Err(UnknownTopic(s.to_string()))
            } else {
                Ok(f(rest.to_string()))
            }
        };
        match s.split_once('/') {
            None if s == "services" => Ok(Topic::Services),
            None if s == "alarms" => Ok(Topic::Alarms),
            None if s == "agents" => Ok(Topic::Agents),
            Some(("service", rest)) => named(rest, Topic::Service),
            Some(("deployment", rest)) => named(rest, Topic::Deployment),
            Some(("pipeline", rest)) => named(rest, Topic::Pipeline),
            Some(("host-deployment", rest)) => named(rest, Topic::HostDeployment),
            _ => Err(UnknownTopic(s.to_string())),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Services => f.write_str("services"),
            Topic::Alarms => f.write_str("alarms"),
            Topic::Service(n) => write!(f, "service/{n}"),
            Topic::Deployment(id) => write!(f, "deployment/{id}"),
            Topic::Pipeline(n) => write!(f, "pipeline/{n}"),
            Topic::Agents => f.write_str("agents"),
            Topic::HostDeployment(id) => write!(f, "host-deployment/{id}"),
        }
    }
}

/// `GET /v1/events/stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// `services`, `alarms`, `agents`, `service/NAME`, `deployment/ID`,
    /// `pipeline/NAME` or `host-deployment/ID`.
    pub topic: String,
}

/// One server-sent event: its SSE `event:` field is the variant's name
/// (`services`, `service`, ...) and its `data:` this JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "data", rename_all = "camelCase")]
pub enum StreamEvent {
    /// The service list changed.
    Services(ServiceList),
    /// The alarms changed.
    Alarms(AlarmList),
    /// The service changed.
    Service(Box<Service>),
    /// The deployment changed.
    Deployment(Box<Deployment>),
    /// The pipeline's executions changed.
    Pipeline(ExecutionList),
    /// The agents changed.
    Agents(AgentList),
    /// The host deployment changed.
    HostDeployment(Box<HostDeploymentView>),
}

impl StreamEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::Services(_) => "services",
            StreamEvent::Alarms(_) => "alarms",
            StreamEvent::Service(_) => "service",
            StreamEvent::Deployment(_) => "deployment",
            StreamEvent::Pipeline(_) => "pipeline",
            StreamEvent::Agents(_) => "agents",
            StreamEvent::HostDeployment(_) => "hostDeployment",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_read_back_and_strangers_are_refused() {
        for t in [
            "services",
            "alarms",
            "service/web",
            "deployment/d-1",
            "pipeline/app",
            "agents",
            "host-deployment/hd-1",
        ] {
            assert_eq!(t.parse::<Topic>().unwrap().to_string(), t);
        }
        for bad in [
            "",
            "service",
            "service/",
            "service/a/b",
            "tasks/x",
            "Services",
            "host-deployment/",
        ] {
            assert!(bad.parse::<Topic>().is_err(), "{bad}");
        }
    }
}
