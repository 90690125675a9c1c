//! Deployment configuration for a blue/green deployment: the traffic routing
//! (CodeDeploy's deployment configuration), the lifecycle hooks, the deployment
//! ready option, the termination wait, auto rollback and alarms. Everything is
//! in milliseconds; converting the minutes and seconds of AWS files is the
//! spec crate's job. [`BlueGreenSpec::validate`] checks the AWS limits.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::{HOUR_MS, MINUTE_MS, Millis};

/// How production traffic moves from blue to green during `AllowTraffic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TrafficRouting {
    /// All production traffic moves to green in one change.
    AllAtOnce,
    /// `percent` moves first; the rest moves `interval_ms` later
    /// (CodeDeploy `TimeBasedCanary`).
    Canary {
        /// Share of production traffic in the canary step, 1..=99.
        percent: u8,
        /// Time between the canary step and the full shift.
        interval_ms: Millis,
    },
    /// `percent` more traffic moves every `interval_ms` until all of it is on
    /// green (CodeDeploy `TimeBasedLinear`).
    Linear {
        /// Share of production traffic added per step, 1..=99.
        percent: u8,
        /// Time between two steps.
        interval_ms: Millis,
    },
}

/// The five predefined ECS deployment configurations, by their AWS names.
pub const PREDEFINED_NAMES: [&str; 5] = [
    "CodeDeployDefault.ECSAllAtOnce",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
    "CodeDeployDefault.ECSCanary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes",
];

impl TrafficRouting {
    /// The predefined ECS deployment configuration called `name`
    /// (for example `CodeDeployDefault.ECSCanary10Percent5Minutes`), or `None`
    /// when `name` is not one of [`PREDEFINED_NAMES`].
    pub fn predefined(name: &str) -> Option<TrafficRouting> {
        match name {
            "CodeDeployDefault.ECSAllAtOnce" => Some(Self::ecs_all_at_once()),
            "CodeDeployDefault.ECSLinear10PercentEvery1Minutes" => {
                Some(Self::ecs_linear_10_percent_every_1_minutes())
            }
            "CodeDeployDefault.ECSLinear10PercentEvery3Minutes" => {
                Some(Self::ecs_linear_10_percent_every_3_minutes())
            }
            "CodeDeployDefault.ECSCanary10Percent5Minutes" => {
                Some(Self::ecs_canary_10_percent_5_minutes())
            }
            "CodeDeployDefault.ECSCanary10Percent15Minutes" => {
                Some(Self::ecs_canary_10_percent_15_minutes())
            }
            _ => None,
        }
    }

    /// `CodeDeployDefault.ECSAllAtOnce`.
    pub fn ecs_all_at_once() -> Self {
        Self::AllAtOnce
    }

    /// `CodeDeployDefault.ECSLinear10PercentEvery1Minutes`.
    pub fn ecs_linear_10_percent_every_1_minutes() -> Self {
        Self::Linear {
            percent: 10,
            interval_ms: MINUTE_MS,
        }
    }

    /// `CodeDeployDefault.ECSLinear10PercentEvery3Minutes`.
    pub fn ecs_linear_10_percent_every_3_minutes() -> Self {
        Self::Linear {
            percent: 10,
            interval_ms: 3 * MINUTE_MS,
        }
    }

    /// `CodeDeployDefault.ECSCanary10Percent5Minutes`.
    pub fn ecs_canary_10_percent_5_minutes() -> Self {
        Self::Canary {
            percent: 10,
            interval_ms: 5 * MINUTE_MS,
        }
    }

    /// `CodeDeployDefault.ECSCanary10Percent15Minutes`.
    pub fn ecs_canary_10_percent_15_minutes() -> Self {
        Self::Canary {
            percent: 10,
            interval_ms: 15 * MINUTE_MS,
        }
    }

    /// Checks the percentage (1..=99) and interval (non-zero) of a canary or
    /// linear configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Self::AllAtOnce => Ok(()),
            Self::Canary {
                percent,
                interval_ms,
            }
            | Self::Linear {
                percent,
                interval_ms,
            } => {
                if !(1..=99).contains(&percent) {
                    return Err(ConfigError::Percent { percent });
                }
                if interval_ms == 0 {
                    return Err(ConfigError::ZeroInterval);
                }
                Ok(())
            }
        }
    }
}

/// The lifecycle events of a CodeDeploy ECS blue/green deployment, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LifecycleEvent {
    /// Hook before the green task set is created.
    BeforeInstall,
    /// Green tasks start, register in the green target group and become healthy.
    Install,
    /// Hook after green is healthy.
    AfterInstall,
    /// The test listener routes to green (skipped without a test listener).
    AllowTestTraffic,
    /// Hook to validate green through the test listener.
    AfterAllowTestTraffic,
    /// Hook before production traffic moves.
    BeforeAllowTraffic,
    /// Production traffic moves to green per the [`TrafficRouting`].
    AllowTraffic,
    /// Hook after all production traffic is on green.
    AfterAllowTraffic,
}

impl LifecycleEvent {
    /// All events in the order a deployment runs them.
    pub const ALL: [LifecycleEvent; 8] = [
        Self::BeforeInstall,
        Self::Install,
        Self::AfterInstall,
        Self::AllowTestTraffic,
        Self::AfterAllowTestTraffic,
        Self::BeforeAllowTraffic,
        Self::AllowTraffic,
        Self::AfterAllowTraffic,
    ];

    /// Whether the event runs a user hook (the five appspec `Hooks` names).
    pub fn is_hook(self) -> bool {
        matches!(
            self,
            Self::BeforeInstall
                | Self::AfterInstall
                | Self::AfterAllowTestTraffic
                | Self::BeforeAllowTraffic
                | Self::AfterAllowTraffic
        )
    }

    /// The AWS name of the event, as in appspec.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeInstall => "BeforeInstall",
            Self::Install => "Install",
            Self::AfterInstall => "AfterInstall",
            Self::AllowTestTraffic => "AllowTestTraffic",
            Self::AfterAllowTestTraffic => "AfterAllowTestTraffic",
            Self::BeforeAllowTraffic => "BeforeAllowTraffic",
            Self::AllowTraffic => "AllowTraffic",
            Self::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    /// The event after this one, or `None` after `AfterAllowTraffic`.
    pub fn next(self) -> Option<LifecycleEvent> {
        let i = Self::ALL.iter().position(|e| *e == self)?;
        Self::ALL.get(i + 1).copied()
    }
}

impl fmt::Display for LifecycleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default time a hook has to report success (CodeDeploy: one hour).
pub const DEFAULT_HOOK_TIMEOUT_MS: Millis = HOUR_MS;

/// A hook attached to a lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSpec {
    /// Time from the first invocation until the event fails, across all
    /// re-invocations of an `IN_PROGRESS` hook.
    pub timeout_ms: Millis,
}

impl Default for HookSpec {
    fn default() -> Self {
        Self {
            timeout_ms: DEFAULT_HOOK_TIMEOUT_MS,
        }
    }
}

/// What happens when a [`ReadyOption::Wait`] runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReadyTimeoutAction {
    /// `CONTINUE_DEPLOYMENT`: reroute production traffic anyway.
    ContinueDeployment,
    /// `STOP_DEPLOYMENT`: stop the deployment and remove green.
    StopDeployment,
}

/// CodeDeploy's `deploymentReadyOption`: reroute at once, or wait in `Ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReadyOption {
    /// Reroute production traffic as soon as green is validated.
    #[default]
    Immediately,
    /// Wait in `Ready` for a manual continue, at most `timeout_ms`.
    Wait {
        /// How long to wait for a continue (AWS allows up to 120 hours).
        timeout_ms: Millis,
        /// What to do when nobody continued in time.
        on_timeout: ReadyTimeoutAction,
    },
}

/// Which events roll traffic back to blue (`autoRollbackConfiguration.events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AutoRollback {
    /// `DEPLOYMENT_FAILURE`.
    pub on_failure: bool,
    /// `DEPLOYMENT_STOP_ON_ALARM`.
    pub on_alarm: bool,
    /// `DEPLOYMENT_STOP_ON_REQUEST`: the default for a stop that does not say.
    pub on_request: bool,
}

/// Default time green has to become healthy.
pub const DEFAULT_INSTALL_TIMEOUT_MS: Millis = HOUR_MS;

/// AWS limit on `terminationWaitTimeInMinutes` (2880 minutes).
pub const MAX_TERMINATION_WAIT_MS: Millis = 2_880 * MINUTE_MS;

/// AWS limit on the deployment ready wait (120 hours).
pub const MAX_READY_WAIT_MS: Millis = 120 * HOUR_MS;

/// AWS limit on the number of alarms of a deployment group.
pub const MAX_ALARMS: usize = 10;

/// Everything the engine needs to run one blue/green deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreenSpec {
    /// The deployment's id; hook execution ids derive from it.
    pub deployment_id: String,
    /// How production traffic moves.
    pub routing: TrafficRouting,
    /// Whether a test listener exists (else `AllowTestTraffic` is skipped).
    pub has_test_listener: bool,
    /// Hooks by event; only the five hook events may carry one.
    pub hooks: BTreeMap<LifecycleEvent, HookSpec>,
    /// Reroute at once or wait for a manual continue.
    pub ready: ReadyOption,
    /// Time blue keeps running after all traffic is on green (`Baking`).
    pub termination_wait_ms: Millis,
    /// Which events roll traffic back.
    pub auto_rollback: AutoRollback,
    /// Names of the alarms that stop the deployment when they fire.
    pub alarms: Vec<String>,
    /// Time green has to become healthy after `ProvisionGreen`.
    pub install_timeout_ms: Millis,
}

impl BlueGreenSpec {
    /// A spec with no hooks, no test listener, immediate reroute, no
    /// termination wait, no rollback, no alarms and the default install
    /// timeout. Set the public fields for anything else.
    pub fn new(deployment_id: impl Into<String>, routing: TrafficRouting) -> Self {
        Self {
            deployment_id: deployment_id.into(),
            routing,
            has_test_listener: false,
            hooks: BTreeMap::new(),
            ready: ReadyOption::Immediately,
            termination_wait_ms: 0,
            auto_rollback: AutoRollback::default(),
            alarms: Vec::new(),
            install_timeout_ms: DEFAULT_INSTALL_TIMEOUT_MS,
        }
    }

    /// Checks the spec against the AWS limits. The engine tolerates an
    /// invalid spec (it ignores hooks on non-hook events and treats a zero
    /// percentage as one), but the control plane should refuse one up front.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.deployment_id.is_empty() {
            return Err(ConfigError::EmptyDeploymentId);
        }
        self.routing.validate()?;
        for (event, hook) in &self.hooks {
            if !event.is_hook() {
                return Err(ConfigError::NotAHookEvent { event: *event });
            }
            if hook.timeout_ms == 0 {
                return Err(ConfigError::ZeroHookTimeout { event: *event });
            }
        }
        if let ReadyOption::Wait { timeout_ms, .. } = self.ready
            && timeout_ms > MAX_READY_WAIT_MS
        {
            return Err(ConfigError::ReadyWaitTooLong { timeout_ms });
        }
        if self.termination_wait_ms > MAX_TERMINATION_WAIT_MS {
            return Err(ConfigError::TerminationWaitTooLong {
                termination_wait_ms: self.termination_wait_ms,
            });
        }
        if self.alarms.len() > MAX_ALARMS {
            return Err(ConfigError::TooManyAlarms {
                count: self.alarms.len(),
            });
        }
        if self.install_timeout_ms == 0 {
            return Err(ConfigError::ZeroInstallTimeout);
        }
        Ok(())
    }
}

/// Why a [`BlueGreenSpec`] or [`TrafficRouting`] is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The deployment id is empty.
    #[error("deployment id is empty")]
    EmptyDeploymentId,
    /// A canary or linear percentage outside 1..=99.
    #[error("traffic percentage {percent} is outside 1..=99")]
    Percent {
        /// The offending percentage.
        percent: u8,
    },
    /// A canary or linear interval of zero.
    #[error("traffic routing interval must be greater than zero")]
    ZeroInterval,
    /// A hook on an event that runs no hook.
    #[error("lifecycle event {event} does not take a hook")]
    NotAHookEvent {
        /// The event.
        event: LifecycleEvent,
    },
    /// A hook with a zero timeout.
    #[error("hook timeout of {event} must be greater than zero")]
    ZeroHookTimeout {
        /// The event.
        event: LifecycleEvent,
    },
    /// A ready wait above 120 hours.
    #[error("deployment ready wait of {timeout_ms} ms exceeds 120 hours")]
    ReadyWaitTooLong {
        /// The configured wait.
        timeout_ms: Millis,
    },
    /// A termination wait above 2880 minutes.
    #[error("termination wait of {termination_wait_ms} ms exceeds 2880 minutes")]
    TerminationWaitTooLong {
        /// The configured wait.
        termination_wait_ms: Millis,
    },
    /// More than ten alarms.
    #[error("{count} alarms configured, at most 10 are allowed")]
    TooManyAlarms {
        /// Number of alarms.
        count: usize,
    },
    /// An install timeout of zero.
    #[error("install timeout must be greater than zero")]
    ZeroInstallTimeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_predefined_name_resolves() {
        for name in PREDEFINED_NAMES {
            let routing = TrafficRouting::predefined(name).unwrap();
            assert_eq!(routing.validate(), Ok(()), "{name}");
        }
        assert_eq!(
            TrafficRouting::predefined("CodeDeployDefault.AllAtOnce"),
            None
        );
        assert_eq!(
            TrafficRouting::predefined("CodeDeployDefault.ECSCanary10Percent15Minutes"),
            Some(TrafficRouting::Canary {
                percent: 10,
                interval_ms: 900_000
            })
        );
        assert_eq!(
            TrafficRouting::predefined("CodeDeployDefault.ECSLinear10PercentEvery3Minutes"),
            Some(TrafficRouting::Linear {
                percent: 10,
                interval_ms: 180_000
            })
        );
    }

    #[test]
    fn validate_rejects_out_of_range_values() {
        let mut spec = BlueGreenSpec::new("d-1", TrafficRouting::AllAtOnce);
        assert_eq!(spec.validate(), Ok(()));
        spec.routing = TrafficRouting::Canary {
            percent: 100,
            interval_ms: 1,
        };
        assert_eq!(spec.validate(), Err(ConfigError::Percent { percent: 100 }));
        spec.routing = TrafficRouting::Linear {
            percent: 10,
            interval_ms: 0,
        };
        assert_eq!(spec.validate(), Err(ConfigError::ZeroInterval));
        spec.routing = TrafficRouting::AllAtOnce;
        spec.hooks
            .insert(LifecycleEvent::Install, HookSpec::default());
        assert_eq!(
            spec.validate(),
            Err(ConfigError::NotAHookEvent {
                event: LifecycleEvent::Install
            })
        );
        assert_eq!(
            spec.validate().unwrap_err().to_string(),
            "lifecycle event Install does not take a hook"
        );
        spec.hooks.clear();
        spec.termination_wait_ms = MAX_TERMINATION_WAIT_MS + 1;
        assert!(matches!(
            spec.validate(),
            Err(ConfigError::TerminationWaitTooLong { .. })
        ));
    }

    #[test]
    fn lifecycle_order_and_hook_events() {
        let hooks: Vec<_> = LifecycleEvent::ALL.iter().filter(|e| e.is_hook()).collect();
        assert_eq!(hooks.len(), 5);
        assert_eq!(
            LifecycleEvent::BeforeInstall.next(),
            Some(LifecycleEvent::Install)
        );
        assert_eq!(LifecycleEvent::AfterAllowTraffic.next(), None);
    }
}
