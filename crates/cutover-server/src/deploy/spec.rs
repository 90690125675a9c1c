//! From a service's stored declaration to the pure engine's
//! [`BlueGreenSpec`], and the hook targets the driver calls.

use cutover_deploy::config::{
    AutoRollback, ConfigError, HookSpec, ReadyOption, ReadyTimeoutAction,
};
use cutover_deploy::{BlueGreenSpec, LifecycleEvent, TrafficRouting};
use cutover_spec::stack::{
    DeploymentConfig, HookProtocol, HookSpec as StackHookSpec, HookTarget as StackHookTarget,
    ReadyAction, RollbackEvent, ServiceSettings, TrafficShift, functions,
};
use std::collections::BTreeMap;

/// Green must be registered and healthy within this long (ECS gives a task
/// set 10 minutes by default).
const INSTALL_TIMEOUT_MS: u64 = 10 * 60 * 1000;

/// Why a deployment configuration or a service's settings give no engine
/// spec (a bad request: see `api/error.rs`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeploySpecError {
    /// The configuration name is neither predefined nor declared.
    #[error(
        "deployment configuration {0:?} is neither predefined nor declared in the stack's deploymentConfigs nor created with CodeDeploy's CreateDeploymentConfig"
    )]
    UnknownConfig(String),
    /// A declared configuration without `trafficRouting`.
    #[error("deployment configuration {0:?} has no trafficRouting")]
    NoTrafficRouting(String),
    /// A hook (stack or appspec) names an event that takes no hook.
    #[error("{0:?} is not a lifecycle hook event")]
    NotAHookEvent(String),
    /// The engine refuses the spec.
    #[error(transparent)]
    Engine(#[from] ConfigError),
}

/// A hook target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HookTarget {
    /// A local command; exit code 0 succeeds.
    Command(Vec<String>),
    /// An HTTP endpoint speaking the ECS-native protocol (`hookStatus`).
    Ecs(String),
    /// An HTTP endpoint speaking CodeDeploy's callback protocol.
    CodeDeploy(String),
}

/// Resolves a deployment configuration name: predefined CodeDeploy names,
/// then the custom ones of the last applied stack.
pub(crate) fn routing(
    name: &str,
    configs: &BTreeMap<String, DeploymentConfig>,
) -> Result<TrafficRouting, DeploySpecError> {
    if let Some(r) = TrafficRouting::predefined(name) {
        return Ok(r);
    }
    let cfg = configs
        .get(name)
        .ok_or_else(|| DeploySpecError::UnknownConfig(name.to_string()))?;
    let percent = |p: u32| u8::try_from(p.min(100)).unwrap_or(100);
    match cfg.shift() {
        Some(TrafficShift::AllAtOnce) => Ok(TrafficRouting::AllAtOnce),
        Some(TrafficShift::Canary {
            percent: p,
            interval,
        }) => Ok(TrafficRouting::Canary {
            percent: percent(p),
            interval_ms: interval.as_millis() as u64,
        }),
        Some(TrafficShift::Linear {
            percent: p,
            interval,
        }) => Ok(TrafficRouting::Linear {
            percent: percent(p),
            interval_ms: interval.as_millis() as u64,
        }),
        None => Err(DeploySpecError::NoTrafficRouting(name.to_string())),
    }
}

/// The engine spec and hook targets of a blue/green deployment of a
/// service whose declaration is `service_spec`. `appspec_hooks` (event name
/// -> hook, resolved by [`functions::resolve_appspec_hooks`]) come from an
/// appspec.yaml and win over the stack's hooks.
pub(crate) fn blue_green(
    deployment_id: &str,
    service: &ServiceSettings,
    routing: TrafficRouting,
    appspec_hooks: &BTreeMap<String, StackHookSpec>,
) -> Result<(BlueGreenSpec, BTreeMap<LifecycleEvent, HookTarget>), DeploySpecError> {
    let d = &service.deployment;
    let mut spec = BlueGreenSpec::new(deployment_id, routing);
    spec.has_test_listener = service
        .load_balancer
        .as_ref()
        .is_some_and(|lb| lb.test_listener.is_some());
    spec.termination_wait_ms = d
        .termination_wait_seconds
        .or_else(|| d.termination_wait_minutes.map(|m| m * 60))
        .unwrap_or(300)
        * 1000;
    if let Some(ready) = &d.deployment_ready
        && ready.action == ReadyAction::StopDeployment
    {
        let wait = ready
            .wait_seconds
            .or_else(|| ready.wait_minutes.map(|m| m * 60))
            .unwrap_or(0);
        spec.ready = ReadyOption::Wait {
            timeout_ms: wait * 1000,
            on_timeout: ReadyTimeoutAction::StopDeployment,
        };
    }
    let on = |e: RollbackEvent| d.auto_rollback.contains(&e);
    spec.auto_rollback = AutoRollback {
        on_failure: on(RollbackEvent::DeploymentFailure),
        on_alarm: on(RollbackEvent::DeploymentStopOnAlarm),
        on_request: on(RollbackEvent::DeploymentStopOnRequest),
    };
    spec.alarms = d.alarms.clone();
    spec.install_timeout_ms = INSTALL_TIMEOUT_MS;
    let mut targets = BTreeMap::new();
    let stack_hooks = d.hooks.iter().map(|(e, h)| (e.as_str(), h));
    let appspec = appspec_hooks.iter().map(|(e, h)| (e.as_str(), h));
    for (from_appspec, (name, h)) in stack_hooks
        .map(|x| (false, x))
        .chain(appspec.map(|x| (true, x)))
    {
        let event = event(name)?;
        let timeout = h.timeout_seconds.map(|t| HookSpec {
            timeout_ms: t * 1000,
        });
        match timeout {
            Some(t) => {
                spec.hooks.insert(event, t);
            }
            // An appspec hook without a timeout keeps the stack's for the event.
            None if from_appspec => {
                spec.hooks.entry(event).or_default();
            }
            None => {
                spec.hooks.insert(event, HookSpec::default());
            }
        }
        targets.insert(event, target(h));
    }
    spec.validate()?;
    Ok((spec, targets))
}

/// What a stack's (or a resolved appspec's) hook runs.
fn target(h: &StackHookSpec) -> HookTarget {
    match h.target() {
        StackHookTarget::Command(argv) => HookTarget::Command(argv.to_vec()),
        StackHookTarget::Url {
            url,
            protocol: HookProtocol::CodeDeploy,
        } => HookTarget::CodeDeploy(url.to_string()),
        StackHookTarget::Url {
            url,
            protocol: HookProtocol::Ecs,
        } => HookTarget::Ecs(url.to_string()),
    }
}

/// The appspec hooks recorded with a deployment (the
/// `deployment/ID/appspec-hooks` event): event name to the resolved hook.
/// Deployments recorded before `functions:` existed stored the raw value,
/// which meant a URL or a shell command.
pub(crate) fn recorded_appspec_hooks(message: &str) -> BTreeMap<String, StackHookSpec> {
    if let Ok(hooks) = serde_json::from_str(message) {
        return hooks;
    }
    let raw: BTreeMap<String, String> = serde_json::from_str(message).unwrap_or_default();
    raw.into_iter()
        .map(|(event, value)| {
            let hook = match functions::FunctionRef::classify(&value) {
                Ok(functions::FunctionRef::Url(url)) => StackHookSpec {
                    url: Some(url.to_string()),
                    ..StackHookSpec::default()
                },
                _ => functions::shell(&value),
            };
            (event, hook)
        })
        .collect()
}

fn event(name: &str) -> Result<LifecycleEvent, DeploySpecError> {
    LifecycleEvent::ALL
        .into_iter()
        .find(|e| e.to_string() == name && e.is_hook())
        .ok_or_else(|| DeploySpecError::NotAHookEvent(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_and_predefined_configurations_resolve() {
        let stack: BTreeMap<String, DeploymentConfig> = serde_json::from_value(json!({
            "Canary20Percent5Seconds": {"trafficRouting": {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 20, "canaryIntervalSeconds": 5}}},
            "Linear": {"trafficRoutingConfig": {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 1}}}}))
        .unwrap();
        assert_eq!(
            routing("Canary20Percent5Seconds", &stack).unwrap(),
            TrafficRouting::Canary {
                percent: 20,
                interval_ms: 5_000
            }
        );
        assert_eq!(
            routing("Linear", &stack).unwrap(),
            TrafficRouting::Linear {
                percent: 25,
                interval_ms: 60_000
            }
        );
        assert_eq!(
            routing("CodeDeployDefault.ECSAllAtOnce", &BTreeMap::new()).unwrap(),
            TrafficRouting::AllAtOnce
        );
        // The message users saw before the error was typed (it may go on
        // to name more places a configuration comes from).
        assert!(
            routing("Nope", &stack).unwrap_err().to_string().starts_with(
                "deployment configuration \"Nope\" is neither predefined nor declared in the stack's deploymentConfigs"
            )
        );
    }

    #[test]
    fn the_service_declaration_becomes_an_engine_spec() {
        let svc = json!({"loadBalancer": {"containerName": "web", "containerPort": 8080, "listener": "127.0.0.1:1", "testListener": "127.0.0.1:2"},
            "deployment": {"type": "BLUE_GREEN", "terminationWaitSeconds": 30,
              "alarms": ["web-5xx"], "autoRollback": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
              "hooks": {"AfterAllowTestTraffic": {"command": ["sh", "-c", "true"], "timeoutSeconds": 30},
                        "BeforeAllowTraffic": {"url": "http://127.0.0.1:9/h", "protocol": "codedeploy"}}}});
        let appspec = recorded_appspec_hooks(r#"{"AfterInstall": "http://127.0.0.1:9/ecs"}"#);
        let svc: ServiceSettings = serde_json::from_value(svc).unwrap();
        let (spec, targets) = blue_green("d1", &svc, TrafficRouting::AllAtOnce, &appspec).unwrap();
        assert!(spec.has_test_listener);
        assert_eq!(spec.termination_wait_ms, 30_000);
        assert!(
            spec.auto_rollback.on_alarm
                && spec.auto_rollback.on_failure
                && !spec.auto_rollback.on_request
        );
        assert_eq!(spec.alarms, vec!["web-5xx"]);
        assert_eq!(
            spec.hooks[&LifecycleEvent::AfterAllowTestTraffic].timeout_ms,
            30_000
        );
        assert_eq!(targets.len(), 3);
        assert_eq!(
            targets[&LifecycleEvent::BeforeAllowTraffic],
            HookTarget::CodeDeploy("http://127.0.0.1:9/h".into())
        );
        assert_eq!(
            targets[&LifecycleEvent::AfterInstall],
            HookTarget::Ecs("http://127.0.0.1:9/ecs".into())
        );
    }
}
