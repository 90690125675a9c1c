//! From a stored task definition to what a runtime starts.
//!
//! The store keeps the canonical ECS JSON; this module reads the few fields
//! the runtimes and the health checker need, so the control plane does not
//! depend on every detail of the file format.

use cutover_core::health::HealthPolicy;
use cutover_runtime::{ContainerSpec, HealthCheckSpec, HealthCommand};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskDef {
    container_definitions: Vec<Container>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: String,
    image: Option<String>,
    essential: Option<bool>,
    #[serde(default)]
    entry_point: Vec<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    environment: Vec<KeyValue>,
    working_directory: Option<String>,
    #[serde(default)]
    port_mappings: Vec<PortMapping>,
    health_check: Option<Check>,
    stop_timeout: Option<u64>,
    cpu: Option<u32>,
    memory: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct KeyValue {
    name: String,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortMapping {
    container_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Check {
    command: Vec<String>,
    interval: Option<u64>,
    timeout: Option<u64>,
    retries: Option<u32>,
    start_period: Option<u64>,
}

/// What the control plane runs for one task.
#[derive(Debug, Clone)]
pub(crate) struct RunPlan {
    /// The container the runtime starts.
    pub(crate) container: ContainerSpec,
    /// Its health check, if the task definition has one.
    pub(crate) health: Option<HealthPlan>,
}

/// A container's health check.
#[derive(Debug, Clone)]
pub(crate) struct HealthPlan {
    /// What to run; `None` when `command[0]` is neither `CMD` nor
    /// `CMD-SHELL`: ECS hands such a check to Docker, which never runs it,
    /// so the task's health stays UNKNOWN (and it never counts as healthy).
    pub(crate) command: Option<HealthCommand>,
    /// When and how often.
    pub(crate) policy: HealthPolicy,
}

/// Reads the essential container of a stored task definition body.
pub(crate) fn run_plan(body: &serde_json::Value) -> Result<RunPlan, String> {
    let def: TaskDef = serde_json::from_value(body.clone())
        .map_err(|e| format!("stored task definition does not decode: {e}"))?;
    let c = def
        .container_definitions
        .into_iter()
        .find(|c| c.essential.unwrap_or(true))
        .ok_or("task definition has no essential container")?;
    let health = match c.health_check {
        Some(h) => {
            let command = match h.command.split_first() {
                Some((kind, rest)) if kind == "CMD-SHELL" => {
                    Some(HealthCommand::Shell(rest.join(" ")))
                }
                Some((kind, rest)) if kind == "CMD" => Some(HealthCommand::Cmd(rest.to_vec())),
                Some(_) => None,
                None => return Err("healthCheck.command is empty".into()),
            };
            let policy = HealthPolicy {
                interval_ms: h.interval.unwrap_or(30) * 1000,
                timeout_ms: h.timeout.unwrap_or(5) * 1000,
                retries: h.retries.unwrap_or(3),
                start_period_ms: h.start_period.unwrap_or(0) * 1000,
            };
            Some(HealthPlan { command, policy })
        }
        None => None,
    };
    Ok(RunPlan {
        container: ContainerSpec {
            name: c.name,
            image: c.image,
            entry_point: c.entry_point,
            command: c.command,
            environment: c
                .environment
                .into_iter()
                .map(|kv| (kv.name, kv.value.unwrap_or_default()))
                .collect(),
            working_directory: c.working_directory,
            container_port: c.port_mappings.first().and_then(|p| p.container_port),
            stop_timeout: Duration::from_secs(c.stop_timeout.unwrap_or(30)),
            cpu: c.cpu,
            memory_mib: c.memory,
            health_check: health.as_ref().and_then(|h| {
                Some(HealthCheckSpec {
                    command: h.command.clone()?,
                    interval: Duration::from_millis(h.policy.interval_ms),
                    timeout: Duration::from_millis(h.policy.timeout_ms),
                    retries: h.policy.retries,
                    start_period: Duration::from_millis(h.policy.start_period_ms),
                })
            }),
        },
        health,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_essential_container_and_its_health_check() {
        let body = json!({"family": "web", "containerDefinitions": [
            {"name": "sidecar", "image": "x", "essential": false},
            {"name": "web", "image": "sample-app:v1", "command": ["cutover", "sample-app"],
             "environment": [{"name": "APP_VERSION", "value": "v1"}],
             "portMappings": [{"containerPort": 8080}],
             "healthCheck": {"command": ["CMD-SHELL", "curl -fs http://127.0.0.1:$PORT/health"], "interval": 5, "timeout": 2, "retries": 2}}]});
        let plan = run_plan(&body).unwrap();
        assert_eq!(plan.container.name, "web");
        assert_eq!(plan.container.container_port, Some(8080));
        assert_eq!(
            plan.container.environment,
            vec![("APP_VERSION".into(), "v1".into())]
        );
        assert_eq!(plan.container.stop_timeout, Duration::from_secs(30));
        let HealthPlan { command, policy } = plan.health.unwrap();
        assert!(
            matches!(command, Some(HealthCommand::Shell(s)) if s == "curl -fs http://127.0.0.1:$PORT/health")
        );
        assert_eq!(policy.interval_ms, 5000);
        assert_eq!(policy.retries, 2);
        assert_eq!(policy.start_period_ms, 0);
    }

    #[test]
    fn a_health_check_without_cmd_is_kept_but_never_run() {
        let body = json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "x",
             "healthCheck": {"command": ["curl", "-f", "http://localhost/"], "retries": 2}}]});
        let health = run_plan(&body).unwrap().health.unwrap();
        assert!(health.command.is_none());
        assert_eq!(health.policy.retries, 2);
    }

    #[test]
    fn a_task_without_an_essential_container_is_refused() {
        let body =
            json!({"family": "web", "containerDefinitions": [{"name": "a", "essential": false}]});
        assert!(
            run_plan(&body)
                .unwrap_err()
                .contains("no essential container")
        );
    }
}
