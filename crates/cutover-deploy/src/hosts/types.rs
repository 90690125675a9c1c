//! The vocabulary of host deployments, shared by the in-place and the
//! blue/green planners: the hosts and the spec, each host's state, the
//! statuses, inputs and effects.

use cutover_spec::HostEvent;
use cutover_spec::stack::applications::HostConfig;
use serde::{Deserialize, Serialize};

use super::lifecycle::Step;
use crate::time::Millis;

/// A host selected for the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTarget {
    /// The host's (agent's) name.
    pub name: String,
    /// Its zone, if it has one.
    pub zone: Option<String>,
    /// Whether it is healthy (in service) when the deployment starts.
    pub healthy: bool,
    /// Whether a revision was deployed to it successfully before (its
    /// `ApplicationStop` and block-traffic scripts run from that one).
    pub has_last_revision: bool,
}

/// What an in-place deployment is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostsSpec {
    /// The hosts, in the order the deployment group lists them.
    pub hosts: Vec<HostTarget>,
    /// The deployment configuration.
    pub config: HostConfig,
    /// Whether the group has load balancers (the hosts leave and return).
    pub load_balanced: bool,
    /// A failed `ApplicationStop` counts as a success.
    pub ignore_application_stop_failures: bool,
    /// When it rolls back.
    pub rollback: HostRollback,
}

/// The rollback policy of a host deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostRollback {
    /// Roll back when the deployment fails (`DEPLOYMENT_FAILURE`).
    pub on_failure: bool,
    /// Roll back when an alarm stops it (`DEPLOYMENT_STOP_ON_ALARM`).
    pub on_alarm: bool,
    /// A last good revision of the group exists to roll back to.
    pub last_good_revision: bool,
}

/// Where one host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostState {
    /// Not started.
    Pending,
    /// Running `steps[step]`.
    Running {
        /// Index into the host's steps.
        step: usize,
    },
    /// Every step succeeded: it runs the new revision, in service.
    Succeeded,
    /// A step failed.
    Failed {
        /// The event that failed.
        event: HostEvent,
    },
    /// Its agent was lost (during `event`, or before it started).
    Lost {
        /// The event in flight, if any.
        event: Option<HostEvent>,
    },
    /// The deployment ended while it ran `event`.
    Stopped {
        /// The event in flight.
        event: HostEvent,
    },
    /// The deployment ended before it started.
    Skipped,
}

/// One host of the deployment and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRun {
    /// The host's name.
    pub name: String,
    /// Index of its zone in [`HostDeployment::zones`].
    pub zone: usize,
    /// Healthy when the deployment started.
    pub healthy_at_start: bool,
    /// Its lifecycle.
    pub steps: Vec<Step>,
    /// Where it is.
    pub state: HostState,
    /// When its first step was issued.
    pub started_at: Option<Millis>,
}

impl HostRun {
    /// In service: not touched yet and healthy, or deployed successfully.
    pub fn in_service(&self) -> bool {
        match self.state {
            HostState::Succeeded => true,
            HostState::Pending => self.healthy_at_start,
            _ => false,
        }
    }
}

/// The status of a host deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostDeploymentStatus {
    /// Waits for `Start`.
    Created,
    /// Deploying.
    InProgress,
    /// Ended: enough hosts succeeded.
    Succeeded,
    /// Ended: too few hosts could succeed, or the rules could not be kept.
    Failed,
    /// Ended: an alarm or a request stopped it.
    Stopped,
}

/// Why a host deployment ended other than by succeeding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    /// The group selected no host.
    NoHosts,
    /// The minimum healthy hosts leave no host to deploy (CodeDeploy's
    /// `HEALTH_CONSTRAINTS_INVALID`).
    HealthConstraintsInvalid,
    /// Deploying another host would take too many out of service
    /// (CodeDeploy's `HEALTH_CONSTRAINTS`).
    HealthConstraints,
    /// Fewer hosts can succeed than the configuration needs.
    TooFewSucceeded,
    /// A watched alarm went into ALARM.
    Alarm(String),
    /// Someone stopped it.
    StopRequested,
}

/// What the driver feeds the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostInput {
    /// Begin.
    Start,
    /// A host finished `event` successfully.
    StepSucceeded {
        /// The host.
        host: String,
        /// The event.
        event: HostEvent,
    },
    /// A host's `event` failed (a script failed or timed out, the bundle
    /// could not be installed, the load balancer refused).
    StepFailed {
        /// The host.
        host: String,
        /// The event.
        event: HostEvent,
    },
    /// The host's agent stopped answering.
    AgentLost {
        /// The host.
        host: String,
    },
    /// A watched alarm went into ALARM.
    Alarm {
        /// Its name.
        name: String,
    },
    /// Stop now, rolling back if asked.
    Stop {
        /// Roll back the hosts that got the revision.
        rollback: bool,
    },
    /// Time passed (a wait may be over).
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostEffect {
    /// Perform `step` on `host` (run its scripts, have the agent download or
    /// install, or take the host out of / back into its target groups), then
    /// feed `StepSucceeded` or `StepFailed`. Idempotent per (host, event).
    Run {
        /// The host.
        host: String,
        /// The step.
        step: Step,
    },
    /// The deployment ended while `host` ran a step: tell its agent to stop.
    Cancel {
        /// The host.
        host: String,
    },
    /// Feed `Tick` at this time.
    WaitUntil(Millis),
    /// Create a new deployment of the group's last good revision to these
    /// hosts (CodeDeploy's automatic rollback). Re-issued by `resume`: the
    /// driver creates it once per deployment.
    RollBack {
        /// The hosts that got the failed revision.
        hosts: Vec<String>,
    },
    /// The deployment ended.
    Finished {
        /// Succeeded, Failed or Stopped.
        status: HostDeploymentStatus,
        /// Why, unless it succeeded.
        reason: Option<EndReason>,
    },
}
