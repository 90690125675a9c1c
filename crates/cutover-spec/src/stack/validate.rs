//! The checks of a stack that types cannot express: ranges, durations,
//! combinations of fields, and references between services, deployment
//! configurations and alarms. Every error is located by field path.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use super::{
    Alarm, DeploymentConfig, DeploymentType, HookSpec, ListenerKind, LoadBalancer,
    PREDEFINED_DEPLOYMENT_CONFIGS, ReadyAction, RollbackEvent, Service, Stack, TrafficRoutingType,
    parse_alarm_rule,
};
use crate::check::{Sink, suggest};
use crate::doc::{Path, quote};

/// At most this many alarms per deployment (as CodeDeploy).
const MAX_DEPLOYMENT_ALARMS: usize = 10;
/// 2880 minutes: the longest termination wait and traffic shift interval.
const TWO_DAYS_SECONDS: u64 = 2880 * 60;
/// 120 hours: the longest wait for a manual continue (as CodeDeploy).
const MAX_READY_WAIT_SECONDS: u64 = 120 * 3600;

pub(super) fn validate(stack: &Stack, s: &Sink<'_>) {
    let services = Path::root().key("services");
    for (name, svc) in &stack.services {
        let at = services.key(name);
        if !is_service_name(name) {
            s.error_key(
                &at,
                format!(
                    "invalid service name {}: use 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit",
                    quote(name)
                ),
            );
        }
        s.range(&at.key("desiredCount"), svc.desired_count, 0, 1000, "");
        if let Some(lb) = &svc.load_balancer {
            validate_load_balancer(lb, &at.key("loadBalancer"), s);
        }
        validate_deployment(stack, svc, &at.key("deployment"), s);
        validate_placement(svc, &at, s);
    }
    let host_listeners = super::applications::validate(stack, s);
    check_listeners(stack, host_listeners, s);
    check_deployment_groups(stack, s);
    let configs = Path::root().key("deploymentConfigs");
    for (name, cfg) in &stack.deployment_configs {
        validate_config(name, cfg, &configs.key(name), s);
    }
    validate_alarms(stack, s);
    let functions = Path::root().key("functions");
    for (name, hook) in &stack.functions {
        let at = functions.key(name);
        if !super::functions::is_function_key(name) {
            s.error_key(
                &at,
                format!(
                    "invalid function {}: use a Lambda function name (1 to 64 letters, digits, hyphens and underscores) or a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
                    quote(name)
                ),
            );
        }
        validate_hook(hook, &at, s);
    }
    let repositories = Path::root().key("imageRepositories");
    for (name, repo) in &stack.image_repositories {
        let at = repositories.key(name);
        if !crate::ecr::is_repository_name(name) {
            s.error_key(
                &at,
                format!(
                    "invalid repository name {}: use 2 to 256 characters, lowercase letters and digits separated by \".\", \"_\", \"__\", \"-\" or \"/\" (ECR's pattern)",
                    quote(name)
                ),
            );
        }
        if let Some(policy) = &repo.lifecycle_policy {
            crate::ecr::lifecycle::check(policy, s, &at.key("lifecyclePolicy"));
        }
    }
}

/// Placement maps onto a cluster runtime only; what Swarm cannot express is
/// refused at its value.
fn validate_placement(svc: &Service, at: &Path, s: &Sink<'_>) {
    if svc.placement_constraints.is_empty() && svc.placement_strategy.is_empty() {
        return;
    }
    // Not given: the server's default decides, and the server checks it.
    if svc.runtime.is_some_and(|r| r != super::Runtime::Swarm) {
        let field = if svc.placement_constraints.is_empty() {
            "placementStrategy"
        } else {
            "placementConstraints"
        };
        s.error(
            &at.key(field),
            "placement needs runtime: swarm (the other runtimes run every task on this machine)",
        );
        return;
    }
    let (_, errors) =
        super::placement::node_placement(&svc.placement_constraints, &svc.placement_strategy, at);
    for (path, message) in errors {
        s.error(&path, message);
    }
}

/// Each blue/green service is one CodeDeploy deployment group: two services
/// may not share an application and deployment group name.
fn check_deployment_groups(stack: &Stack, s: &Sink<'_>) {
    let mut seen = std::collections::BTreeMap::new();
    for (name, svc) in &stack.services {
        if svc.deployment.kind != DeploymentType::BlueGreen {
            continue;
        }
        let d = &svc.deployment;
        let key = (d.application_name(name), d.deployment_group_name(name));
        if let Some(other) = seen.insert(key, name) {
            s.error(
                &Path::root().key("services").key(name).key("deployment"),
                format!(
                    "services {} and {} are both CodeDeploy application {} with deployment group {}: name one of them apart (deployment.application, deployment.deploymentGroup)",
                    quote(other),
                    quote(name),
                    quote(key.0),
                    quote(key.1)
                ),
            );
        }
    }
}

/// Whether `name` is a service name: `[a-z0-9][a-z0-9-]{0,62}`.
pub fn is_service_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn at_least(s: &Sink<'_>, path: &Path, value: u64, min: u64, unit: &str) {
    if value < min {
        s.error(path, format!("must be at least {min}{unit}, found {value}"));
    }
}

fn validate_load_balancer(lb: &LoadBalancer, at: &Path, s: &Sink<'_>) {
    let gateway = [
        lb.authorizer
            .as_ref()
            .map(|a| ("authorizer", crate::gateway::check_authorizer(a))),
        lb.throttle.as_ref().map(|t| {
            (
                "throttle",
                crate::gateway::check_throttle(t, lb.authorizer.is_some()),
            )
        }),
    ];
    for (key, checked) in gateway.into_iter().flatten() {
        if let Err((field, message)) = checked {
            let path = field.split('.').fold(at.key(key), |p, k| p.key(k));
            s.error(&path, message);
        }
    }
    if let Err((field, message)) = lb.connection().check() {
        s.error(&at.key(&field), message);
    }
    if lb.ca_file.as_ref().is_some_and(|f| !f.starts_with('/')) {
        s.error(
            &at.key("caFile"),
            "must be an absolute path (the data plane runs in its own directory)",
        );
    }
    for (i, c) in lb.source_ip.iter().enumerate() {
        if let Err(m) = crate::gateway::parse_cidr(c) {
            s.error(&at.key("sourceIp").index(i), m);
        }
    }
    if !lb.guarded_paths.is_empty() && lb.authorizer.is_none() && lb.throttle.is_none() {
        s.error(
            &at.key("guardedPaths"),
            "guards nothing without an authorizer or a throttle",
        );
    }
    for (i, p) in lb.guarded_paths.iter().enumerate() {
        if !p.starts_with('/') && p != "*" {
            s.error(
                &at.key("guardedPaths").index(i),
                "must start with / (or be *)",
            );
        }
    }
    if lb.container_name.trim().is_empty() {
        s.error(&at.key("containerName"), "must not be empty");
    }
    s.range(&at.key("containerPort"), lb.container_port, 1, 65535, "");
    let grpc = lb.connection().grpc();
    validate_target_group(
        &lb.health_check,
        lb.deregistration_delay_seconds,
        grpc,
        at,
        s,
    );
}

/// Checks a target group's health check and deregistration delay (a
/// service's `loadBalancer` and a deployment group's alike); `grpc`: its
/// targets speak gRPC (`protocolVersion: GRPC`).
pub(super) fn validate_target_group(
    hc: &super::TargetHealthCheck,
    deregistration_delay_seconds: u64,
    grpc: bool,
    at: &Path,
    s: &Sink<'_>,
) {
    let hp = at.key("healthCheck");
    if hc.grpc_code.is_some() && !grpc {
        s.error(&hp.key("grpcCode"), "needs protocolVersion GRPC");
    }
    if !hc.path.starts_with('/') {
        s.error(
            &hp.key("path"),
            format!("must start with `/`, found {}", quote(&hc.path)),
        );
    }
    let interval_ok = s.range(
        &hp.key("intervalSeconds"),
        hc.interval_seconds,
        1,
        300,
        " seconds",
    );
    if let Some(t) = hc.timeout_seconds
        && s.range(&hp.key("timeoutSeconds"), t, 1, 120, " seconds")
        && interval_ok
        && t > hc.interval_seconds
    {
        s.error(
            &hp.key("timeoutSeconds"),
            format!(
                "must not exceed intervalSeconds ({}), found {t}",
                hc.interval_seconds
            ),
        );
    }
    s.range(
        &hp.key("healthyThresholdCount"),
        hc.healthy_threshold_count,
        1,
        10,
        "",
    );
    s.range(
        &hp.key("unhealthyThresholdCount"),
        hc.unhealthy_threshold_count,
        1,
        10,
        "",
    );
    s.range(
        &at.key("deregistrationDelaySeconds"),
        deregistration_delay_seconds,
        0,
        3600,
        " seconds",
    );
}

/// Two listeners clash when they have the same port and the same IP, or
/// when either listens on all addresses (`0.0.0.0`, `[::]`).
fn check_listeners(stack: &Stack, more: Vec<(SocketAddr, Path)>, s: &Sink<'_>) {
    let mut seen: Vec<(SocketAddr, Path)> = Vec::new();
    let mut all = Vec::new();
    for (name, svc) in &stack.services {
        let Some(lb) = &svc.load_balancer else {
            continue;
        };
        let at = Path::root().key("services").key(name).key("loadBalancer");
        all.push(Some((lb.listener, at.key("listener"))));
        all.push(lb.test_listener.map(|a| (a, at.key("testListener"))));
    }
    {
        for (addr, path) in all.into_iter().flatten().chain(more) {
            let clash = seen.iter().find(|(other, _)| {
                other.port() == addr.port()
                    && (other.ip() == addr.ip()
                        || other.ip().is_unspecified()
                        || addr.ip().is_unspecified())
            });
            match clash {
                Some((other, first)) if *other == addr => {
                    s.error(&path, format!("address {addr} is already used by {first}"));
                }
                Some((other, first)) => {
                    s.error(
                        &path,
                        format!("address {addr} overlaps {other} used by {first}"),
                    );
                }
                None => seen.push((addr, path)),
            }
        }
    }
}

fn validate_deployment(stack: &Stack, svc: &Service, at: &Path, s: &Sink<'_>) {
    let d = &svc.deployment;
    let type_given = s.has(&at.key("type"));
    let not_for = |key: &str, kind: &str, given: bool| {
        if given {
            let default_note = if type_given {
                ""
            } else {
                " (this one is ROLLING, the default type)"
            };
            s.error_key(
                &at.key(key),
                format!("only applies to {kind} deployments{default_note}"),
            );
        }
    };
    match d.kind {
        DeploymentType::BlueGreen => {
            if svc.load_balancer.is_none() {
                s.error(
                    &at.key("type"),
                    "BLUE_GREEN needs a loadBalancer on the service: traffic shifts between task sets through it",
                );
            }
            not_for(
                "minimumHealthyPercent",
                "ROLLING",
                d.minimum_healthy_percent.is_some(),
            );
            not_for("maximumPercent", "ROLLING", d.maximum_percent.is_some());
            not_for("circuitBreaker", "ROLLING", d.circuit_breaker.is_some());
        }
        DeploymentType::Rolling => {
            not_for("config", "BLUE_GREEN", d.config.is_some());
            not_for(
                "terminationWaitSeconds",
                "BLUE_GREEN",
                d.termination_wait_seconds.is_some(),
            );
            not_for(
                "terminationWaitMinutes",
                "BLUE_GREEN",
                d.termination_wait_minutes.is_some(),
            );
            not_for(
                "deploymentReady",
                "BLUE_GREEN",
                d.deployment_ready.is_some(),
            );
            not_for("hooks", "BLUE_GREEN", !d.hooks.is_empty());
            not_for("application", "BLUE_GREEN", d.application.is_some());
            not_for(
                "deploymentGroup",
                "BLUE_GREEN",
                d.deployment_group.is_some(),
            );
            validate_rolling_percents(svc, at, s);
        }
    }
    if let Some(config) = &d.config {
        let known = stack.deployment_configs.contains_key(config)
            || PREDEFINED_DEPLOYMENT_CONFIGS
                .iter()
                .any(|(n, _)| n == config);
        if !known {
            let candidates = stack
                .deployment_configs
                .keys()
                .map(String::as_str)
                .chain(PREDEFINED_DEPLOYMENT_CONFIGS.iter().map(|(n, _)| *n));
            let hint = match suggest(config, candidates) {
                Some(c) => format!(", did you mean {}?", quote(c)),
                None => ": define it under deploymentConfigs or use a predefined CodeDeployDefault.ECS* name".to_owned(),
            };
            s.error(
                &at.key("config"),
                format!("unknown deployment config {}{hint}", quote(config)),
            );
        }
    }
    match (d.termination_wait_seconds, d.termination_wait_minutes) {
        (Some(_), Some(_)) => s.error_key(
            &at.key("terminationWaitMinutes"),
            "give terminationWaitSeconds or terminationWaitMinutes, not both",
        ),
        (Some(v), None) => {
            s.range(
                &at.key("terminationWaitSeconds"),
                v,
                0,
                TWO_DAYS_SECONDS,
                " seconds",
            );
        }
        (None, Some(m)) => {
            s.range(&at.key("terminationWaitMinutes"), m, 0, 2880, " minutes");
        }
        (None, None) => {}
    }
    if let Some(r) = &d.deployment_ready {
        let rp = at.key("deploymentReady");
        let in_range = match (r.wait_seconds, r.wait_minutes) {
            (Some(_), Some(_)) => {
                s.error_key(
                    &rp.key("waitMinutes"),
                    "give waitSeconds or waitMinutes, not both",
                );
                false
            }
            (Some(v), None) => s.range(
                &rp.key("waitSeconds"),
                v,
                0,
                MAX_READY_WAIT_SECONDS,
                " seconds",
            ),
            (None, Some(m)) => s.range(
                &rp.key("waitMinutes"),
                m,
                0,
                MAX_READY_WAIT_SECONDS / 60,
                " minutes",
            ),
            (None, None) => true,
        };
        let wait_path = if r.wait_minutes.is_some() {
            rp.key("waitMinutes")
        } else {
            rp.key("waitSeconds")
        };
        if in_range {
            match r.action {
                ReadyAction::StopDeployment if r.wait().is_zero() => s.error(
                    &wait_path,
                    "STOP_DEPLOYMENT needs waitSeconds (or waitMinutes) above zero: how long to wait for a manual continue",
                ),
                ReadyAction::ContinueDeployment if !r.wait().is_zero() => s.error(
                    &wait_path,
                    "a wait only applies to STOP_DEPLOYMENT; CONTINUE_DEPLOYMENT shifts traffic at once",
                ),
                _ => {}
            }
        }
    }
    let alarms = at.key("alarms");
    if d.alarms.len() > MAX_DEPLOYMENT_ALARMS {
        s.error(
            &alarms,
            format!(
                "at most {MAX_DEPLOYMENT_ALARMS} alarms, found {}",
                d.alarms.len()
            ),
        );
    }
    for (i, name) in d.alarms.iter().enumerate() {
        if d.alarms[..i].contains(name) {
            s.error(
                &alarms.index(i),
                format!("alarm {} is listed twice", quote(name)),
            );
        } else if !stack.alarms.contains_key(name) {
            s.error(&alarms.index(i), unknown_alarm(stack, name, ""));
        }
    }
    let rollback = at.key("autoRollback");
    for (i, event) in d.auto_rollback.iter().enumerate() {
        if d.auto_rollback[..i].contains(event) {
            s.error(&rollback.index(i), "listed twice");
        } else if *event == RollbackEvent::DeploymentStopOnAlarm && d.alarms.is_empty() {
            s.warning(
                &rollback.index(i),
                "DEPLOYMENT_STOP_ON_ALARM has no effect: the deployment lists no alarms",
            );
        }
    }
    for (event, hook) in &d.hooks {
        validate_hook(hook, &at.key("hooks").key(event.as_str()), s);
    }
}

/// ECS rounds the minimum up and the maximum down; when they meet, no task
/// can be stopped or started and the update never progresses.
fn validate_rolling_percents(svc: &Service, at: &Path, s: &Sink<'_>) {
    let d = &svc.deployment;
    let min_ok = d
        .minimum_healthy_percent
        .is_none_or(|v| s.range(&at.key("minimumHealthyPercent"), v, 0, 100, ""));
    let max_ok = d
        .maximum_percent
        .is_none_or(|v| s.range(&at.key("maximumPercent"), v, 100, 200, ""));
    let desired = u64::from(svc.desired_count);
    if !min_ok || !max_ok || desired == 0 {
        return;
    }
    let min = d.minimum_healthy_percent_or_default();
    let max = d.maximum_percent_or_default();
    let keep = (desired * u64::from(min)).div_ceil(100);
    let most = desired * u64::from(max) / 100;
    if keep >= most {
        let path = if d.maximum_percent.is_some() {
            at.key("maximumPercent")
        } else {
            at.key("minimumHealthyPercent")
        };
        s.error(
            &path,
            format!(
                "with desiredCount {desired}, minimumHealthyPercent {min} keeps {keep} tasks running and maximumPercent {max} allows at most {most}, so no task could ever be replaced"
            ),
        );
    }
}

fn validate_hook(hook: &HookSpec, at: &Path, s: &Sink<'_>) {
    match (&hook.url, hook.command.is_empty()) {
        (None, true) => s.error(at, "needs a command or a url"),
        (Some(_), false) => s.error_key(&at.key("url"), "give command or url, not both"),
        (Some(url), true) => {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(str::is_empty) {
                s.error(
                    &at.key("url"),
                    format!("expected an http:// or https:// URL, found {}", quote(url)),
                );
            }
        }
        (None, false) => {
            if hook.protocol.is_some() {
                s.error_key(&at.key("protocol"), "only applies to url hooks");
            }
        }
    }
    if let Some(t) = hook.timeout_seconds {
        s.range(&at.key("timeoutSeconds"), t, 1, 3600, " seconds");
    }
}

fn validate_config(name: &str, cfg: &DeploymentConfig, at: &Path, s: &Sink<'_>) {
    if name.starts_with("CodeDeployDefault.") {
        s.error_key(
            at,
            "names starting with CodeDeployDefault. are reserved for the predefined configurations",
        );
    }
    if super::applications::validate_server_config(cfg, at, s) {
        return;
    }
    let (routing, rp) = match (&cfg.traffic_routing, &cfg.traffic_routing_config) {
        (Some(_), Some(_)) => {
            s.error_key(
                &at.key("trafficRoutingConfig"),
                "give trafficRouting or trafficRoutingConfig, not both",
            );
            return;
        }
        (Some(r), None) => (r, at.key("trafficRouting")),
        (None, Some(r)) => (r, at.key("trafficRoutingConfig")),
        (None, None) => {
            s.error(at, "missing field \"trafficRouting\"");
            return;
        }
    };
    let canary = rp.key("timeBasedCanary");
    let linear = rp.key("timeBasedLinear");
    let needs = |path: &Path, key: &str, given: bool, wanted: bool| {
        if given && !wanted {
            s.error_key(path, format!("does not apply to type {:?}", routing.kind));
        } else if !given && wanted {
            s.error(
                &rp,
                format!("missing field \"{key}\" (type is {:?})", routing.kind),
            );
        }
    };
    let kind = routing.kind;
    needs(
        &canary,
        "timeBasedCanary",
        routing.time_based_canary.is_some(),
        kind == TrafficRoutingType::TimeBasedCanary,
    );
    needs(
        &linear,
        "timeBasedLinear",
        routing.time_based_linear.is_some(),
        kind == TrafficRoutingType::TimeBasedLinear,
    );
    if let Some(c) = &routing.time_based_canary {
        s.range(
            &canary.key("canaryPercentage"),
            c.canary_percentage,
            1,
            99,
            "",
        );
        interval(
            &canary,
            "canaryInterval",
            c.canary_interval_seconds,
            c.canary_interval,
            s,
        );
    }
    if let Some(l) = &routing.time_based_linear {
        s.range(
            &linear.key("linearPercentage"),
            l.linear_percentage,
            1,
            100,
            "",
        );
        interval(
            &linear,
            "linearInterval",
            l.linear_interval_seconds,
            l.linear_interval,
            s,
        );
    }
}

/// `<key>Seconds` or `<key>` (minutes, AWS): exactly one, above zero.
fn interval(at: &Path, key: &str, seconds: Option<u64>, minutes: Option<u64>, s: &Sink<'_>) {
    let seconds_key = format!("{key}Seconds");
    match (seconds, minutes) {
        (Some(_), Some(_)) => s.error_key(
            &at.key(key),
            format!("give {seconds_key} or {key} (minutes), not both"),
        ),
        (Some(v), None) => {
            s.range(&at.key(&seconds_key), v, 1, TWO_DAYS_SECONDS, " seconds");
        }
        (None, Some(m)) => {
            s.range(&at.key(key), m, 1, 2880, " minutes");
        }
        (None, None) => s.error(
            at,
            format!("missing field \"{seconds_key}\" (or \"{key}\" in minutes)"),
        ),
    }
}

/// `context` follows the name: "" or " in the rule".
pub(super) fn unknown_alarm(stack: &Stack, name: &str, context: &str) -> String {
    match suggest(name, stack.alarms.keys().map(String::as_str)) {
        Some(c) => format!(
            "unknown alarm {}{context}, did you mean {}?",
            quote(name),
            quote(c)
        ),
        None => format!(
            "unknown alarm {}{context}: define it under alarms",
            quote(name)
        ),
    }
}

fn validate_alarms(stack: &Stack, s: &Sink<'_>) {
    let root = Path::root().key("alarms");
    let mut composite_refs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, alarm) in &stack.alarms {
        let at = root.key(name);
        if name.chars().count() > 255
            || name
                .chars()
                .any(|c| c.is_control() || matches!(c, '"' | '(' | ')'))
        {
            s.error_key(
                &at,
                format!(
                    "invalid alarm name {}: use up to 255 characters, without quotes, parentheses or control characters",
                    quote(name)
                ),
            );
        }
        match alarm {
            Alarm::Metric(m) => {
                let mp = at.key("metric");
                match stack.services.get(&m.metric.service) {
                    None => {
                        let hint = match suggest(&m.metric.service, stack.services.keys().map(String::as_str)) {
                            Some(c) => format!(", did you mean {}?", quote(c)),
                            None => String::new(),
                        };
                        s.error(
                            &mp.key("service"),
                            format!("no service named {}{hint}", quote(&m.metric.service)),
                        );
                    }
                    Some(svc) => match &svc.load_balancer {
                        None => s.error(
                            &mp.key("service"),
                            format!(
                                "service {} has no loadBalancer, so it reports no load balancer metrics",
                                quote(&m.metric.service)
                            ),
                        ),
                        Some(lb) if m.metric.listener == Some(ListenerKind::Test) && lb.test_listener.is_none() => {
                            s.error(
                                &mp.key("listener"),
                                format!("service {} has no testListener", quote(&m.metric.service)),
                            );
                        }
                        Some(_) => {}
                    },
                }
                at_least(s, &at.key("periodSeconds"), m.period_seconds, 1, " seconds");
                at_least(
                    s,
                    &at.key("evaluationPeriods"),
                    u64::from(m.evaluation_periods),
                    1,
                    "",
                );
                if m.evaluation_periods >= 1
                    && !(1..=m.evaluation_periods).contains(&m.datapoints_to_alarm)
                {
                    s.error(
                        &at.key("datapointsToAlarm"),
                        format!(
                            "must be between 1 and evaluationPeriods ({}), found {}",
                            m.evaluation_periods, m.datapoints_to_alarm
                        ),
                    );
                }
                if !m.threshold.is_finite() {
                    s.error(
                        &at.key("threshold"),
                        format!("must be a finite number, found {}", m.threshold),
                    );
                }
            }
            Alarm::Composite(c) => {
                let rp = at.key("alarmRule");
                match parse_alarm_rule(&c.alarm_rule) {
                    Err(e) => s.error(&rp, format!("invalid alarm rule {e}")),
                    Ok(rule) => {
                        let mut seen = HashSet::new();
                        for n in rule.alarm_names() {
                            if !seen.insert(n) {
                                continue;
                            }
                            if n == name {
                                s.error(&rp, "an alarm rule cannot refer to its own alarm");
                            } else if !stack.alarms.contains_key(n) {
                                s.error(&rp, unknown_alarm(stack, n, " in the rule"));
                            } else if matches!(stack.alarms.get(n), Some(Alarm::Composite(_))) {
                                composite_refs.entry(name).or_default().push(n.to_owned());
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(cycle) = composite_cycle(&composite_refs) {
        s.error(
            &root.key(cycle[0]).key("alarmRule"),
            format!(
                "alarm rules refer to each other in a cycle: {}",
                cycle.join(" -> ")
            ),
        );
    }
}

/// A cycle among composite alarms (first name repeated last).
fn composite_cycle<'a>(refs: &'a BTreeMap<&'a str, Vec<String>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        refs: &'a BTreeMap<&'a str, Vec<String>>,
        node: &'a str,
        stack: &mut Vec<&'a str>,
        done: &mut HashSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(i) = stack.iter().position(|n| *n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node);
        for next in refs.get(node).into_iter().flatten() {
            if let Some(c) = visit(refs, next.as_str(), stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node);
        None
    }
    let mut done = HashSet::new();
    refs.keys()
        .find_map(|start| visit(refs, start, &mut Vec::new(), &mut done))
}
