//! The container of a task: its name, labels and create request, and how an
//! engine's inspect answer becomes a [`TaskHandle`] or an [`ExitInfo`].
//!
//! Everything here is pure; the runtime does the requests. The labels carry
//! all the runtime needs to find and describe a task after a restart of the
//! server: which instance owns it, the task, service and revision, and the
//! host port and network mode chosen when it was created.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerState, ContainerStateStatusEnum,
    HealthConfig, HostConfig, PortBinding,
};
use cutover_runtime::{
    ExitInfo, REASON_CANNOT_START, REASON_EXITED, REASON_STOPPED, TaskHandle, TaskSpec,
};
use serde_json::json;

use crate::NetworkMode;

/// Label naming the service of a task's container.
pub const LABEL_SERVICE: &str = "cutover.service";
/// Label naming the task.
pub const LABEL_TASK: &str = "cutover.task";
/// Label naming the task definition as `family:revision`.
pub const LABEL_TASK_DEFINITION: &str = "cutover.task-definition";
/// Label naming the Cutover instance that owns the container.
pub const LABEL_INSTANCE: &str = "cutover.instance";
/// Label with the container definition's name.
pub(crate) const LABEL_CONTAINER: &str = "cutover.container";
/// Label with the host port the task's endpoint is on.
pub(crate) const LABEL_HOST_PORT: &str = "cutover.host-port";
/// Label with the network mode chosen at creation ("bridge" or "host").
pub(crate) const LABEL_NETWORK: &str = "cutover.network";
/// Label with the stop timeout in seconds.
pub(crate) const LABEL_STOP_TIMEOUT: &str = "cutover.stop-timeout";

/// Stop reason of a container the kernel's OOM killer ended.
pub const REASON_OOM: &str = "OutOfMemoryError: Container killed due to memory usage";
/// Prefix of the stop reason of a task whose image cannot be had.
pub const REASON_CANNOT_PULL: &str = "CannotPullContainerError";
/// Prefix of the stop reason of a task whose container cannot be created.
pub const REASON_CANNOT_CREATE: &str = "CannotCreateContainerError";

/// `cutover-<service>-<task id>`, with anything an engine refuses in a
/// container name replaced by `-`.
pub(crate) fn container_name(service: &str, task_id: &str) -> String {
    let raw = format!("cutover-{service}-{task_id}");
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Where the task's port goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Bridge (published port) or host network.
    pub(crate) network: NetworkMode,
    /// Host port chosen for the container port, if the task has one.
    pub(crate) host_port: Option<u16>,
}

/// The `POST /containers/create` body of a task.
pub(crate) fn create_body(
    spec: &TaskSpec,
    instance: &str,
    placement: Placement,
) -> ContainerCreateBody {
    let c = &spec.container;
    let host_network = placement.network == NetworkMode::Host;
    let stop_secs = stop_timeout_secs(c.stop_timeout);

    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(LABEL_SERVICE.into(), spec.service.clone());
    labels.insert(LABEL_TASK.into(), spec.task_id.clone());
    labels.insert(LABEL_TASK_DEFINITION.into(), spec.task_definition.clone());
    labels.insert(LABEL_INSTANCE.into(), instance.to_owned());
    labels.insert(LABEL_CONTAINER.into(), c.name.clone());
    labels.insert(
        LABEL_NETWORK.into(),
        if host_network { "host" } else { "bridge" }.into(),
    );
    labels.insert(LABEL_STOP_TIMEOUT.into(), stop_secs.to_string());
    if let Some(port) = placement.host_port {
        labels.insert(LABEL_HOST_PORT.into(), port.to_string());
    }

    // The task's own environment wins, except PORT on the host network:
    // there the process must listen on the host port chosen for it.
    let mut env: Vec<(String, String)> = Vec::new();
    let listen_port = if host_network {
        placement.host_port
    } else {
        c.container_port
    };
    if let Some(port) = listen_port {
        env.push(("PORT".into(), port.to_string()));
    }
    // In a bridge network the process must listen on all of the container's
    // addresses; on the host network, loopback is where the endpoint is.
    env.push((
        "HOST".into(),
        if host_network { "127.0.0.1" } else { "0.0.0.0" }.into(),
    ));
    for (name, value) in &c.environment {
        if host_network && name == "PORT" && listen_port.is_some() {
            continue;
        }
        env.retain(|(n, _)| n != name);
        env.push((name.clone(), value.clone()));
    }
    let env: Vec<String> = env.into_iter().map(|(n, v)| format!("{n}={v}")).collect();

    let mut host_config = HostConfig {
        network_mode: Some(if host_network { "host" } else { "bridge" }.into()),
        init: Some(false),
        ..HostConfig::default()
    };
    let mut exposed_ports = None;
    if let (Some(container_port), false) = (c.container_port, host_network) {
        let key = format!("{container_port}/tcp");
        if let Some(host_port) = placement.host_port {
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(host_port.to_string()),
            };
            host_config.port_bindings = Some(HashMap::from([(key.clone(), Some(vec![binding]))]));
        }
        exposed_ports = Some(vec![key]);
    }
    if let Some(cpu) = c.cpu.filter(|&u| u > 0) {
        // 1024 units = 1 CPU, as ECS counts them.
        host_config.nano_cpus = Some(i64::from(cpu) * 1_000_000_000 / 1024);
    }
    if let Some(mib) = c.memory_mib.filter(|&m| m > 0) {
        let bytes = i64::from(mib) * 1024 * 1024;
        host_config.memory = Some(bytes);
        // A hard limit, as in ECS: no swap beyond it.
        host_config.memory_swap = Some(bytes);
    }
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    ContainerCreateBody {
        image: Some(c.image.clone().unwrap_or_default()),
        entrypoint: non_empty(&c.entry_point),
        cmd: non_empty(&c.command),
        working_dir: c.working_directory.clone(),
        env: Some(env),
        labels: Some(labels),
        stop_signal: Some("SIGTERM".into()),
        stop_timeout: Some(i64::try_from(stop_secs).unwrap_or(i64::MAX)),
        // Cutover runs the health check itself (Runtime::health_probe), so
        // the image's own HEALTHCHECK would only run it twice.
        healthcheck: Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..HealthConfig::default()
        }),
        tty: Some(false),
        open_stdin: Some(false),
        attach_stdout: Some(false),
        attach_stderr: Some(false),
        exposed_ports,
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    }
}

/// Docker takes whole seconds; a fraction rounds up so a task always gets
/// at least the time it asked for.
pub(crate) fn stop_timeout_secs(timeout: std::time::Duration) -> u64 {
    timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)
}

/// The part of an inspected container (`GET /containers/{id}/json`) the
/// runtime reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inspect {
    /// The container id.
    pub(crate) id: String,
    name: String,
    image_id: String,
    image: String,
    labels: HashMap<String, String>,
    state: ContainerState,
}

impl From<ContainerInspectResponse> for Inspect {
    fn from(r: ContainerInspectResponse) -> Self {
        let config = r.config.unwrap_or_default();
        Self {
            id: r.id.unwrap_or_default(),
            name: r.name.unwrap_or_default(),
            image_id: r.image.unwrap_or_default(),
            image: config.image.unwrap_or_default(),
            labels: config.labels.unwrap_or_default(),
            state: r.state.unwrap_or_default(),
        }
    }
}

impl Inspect {
    /// A label's value.
    pub(crate) fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// The task id from the labels.
    pub(crate) fn task_id(&self) -> &str {
        self.label(LABEL_TASK).unwrap_or_default()
    }

    /// Whether the container's process runs (or is paused or restarting).
    pub(crate) fn is_running(&self) -> bool {
        let s = &self.state;
        [s.running, s.paused, s.restarting].contains(&Some(true))
    }

    /// Created and never started, and no start failed: what a server that
    /// died between create and start leaves.
    pub(crate) fn is_unstarted(&self) -> bool {
        self.state.status == Some(ContainerStateStatusEnum::CREATED)
            && self.start_error().is_empty()
    }

    /// Why the engine could not start the container, or "".
    fn start_error(&self) -> &str {
        self.state.error.as_deref().unwrap_or_default()
    }

    /// The engine's status word ("running", "exited", ...), for logs.
    pub(crate) fn status(&self) -> String {
        self.state.status.map(|s| s.to_string()).unwrap_or_default()
    }

    /// The stop timeout recorded at creation.
    pub(crate) fn stop_timeout_secs(&self) -> Option<u64> {
        self.label(LABEL_STOP_TIMEOUT)?.parse().ok()
    }

    /// The task's handle, for a running container.
    pub(crate) fn handle(&self, engine: &str) -> TaskHandle {
        let endpoint = self
            .label(LABEL_HOST_PORT)
            .and_then(|p| p.parse::<u16>().ok())
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        TaskHandle {
            task_id: self.task_id().to_owned(),
            runtime: "docker".into(),
            endpoint,
            pid: self
                .state
                .pid
                .and_then(|p| u32::try_from(p).ok())
                .filter(|&p| p > 0),
            started_at_unix_ms: parse_time_ms(self.state.started_at.as_deref()).unwrap_or(0),
            detail: json!({
                "containerId": self.id,
                "containerName": self.name.trim_start_matches('/'),
                "image": self.image,
                "imageId": self.image_id,
                "engine": engine,
                "network": self.label(LABEL_NETWORK).unwrap_or("bridge"),
            }),
        }
    }

    /// How the container ended; `stopped` says a stop was asked through
    /// the runtime (reason [`REASON_STOPPED`] unless the OOM killer struck).
    pub(crate) fn exit_info(&self, stopped: bool) -> ExitInfo {
        let s = &self.state;
        let finished = parse_time_ms(s.finished_at.as_deref()).unwrap_or_else(now_ms);
        if !self.start_error().is_empty() && parse_time_ms(s.started_at.as_deref()).is_none() {
            return ExitInfo {
                exit_code: None,
                signal: None,
                oom_killed: false,
                reason: format!("{REASON_CANNOT_START}: {}", self.start_error()),
                finished_at_unix_ms: finished,
            };
        }
        let exit_code = s
            .exit_code
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or_default();
        let oom_killed = s.oom_killed.unwrap_or_default();
        let signal = (129..=192).contains(&exit_code).then(|| exit_code - 128);
        let reason = if oom_killed {
            REASON_OOM.to_owned()
        } else if stopped {
            REASON_STOPPED.to_owned()
        } else {
            REASON_EXITED.to_owned()
        };
        ExitInfo {
            exit_code: Some(exit_code),
            signal,
            oom_killed,
            reason,
            finished_at_unix_ms: finished,
        }
    }
}

/// Milliseconds since the epoch of an engine timestamp; `None` for the zero
/// time engines use for "never" (`0001-01-01T00:00:00Z`) and for garbage.
pub(crate) fn parse_time_ms(text: Option<&str>) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text?, &time::format_description::well_known::Rfc3339).ok()?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).ok().filter(|&ms| ms > 0)
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_runtime::ContainerSpec;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn spec() -> TaskSpec {
        TaskSpec {
            task_id: "t-1".into(),
            service: "web app".into(),
            task_definition: "web:3".into(),
            container: ContainerSpec {
                name: "web".into(),
                image: Some("cutover-sample:test".into()),
                entry_point: vec!["/cutover".into()],
                command: vec!["sample-app".into()],
                environment: vec![
                    ("APP_VERSION".into(), "v2".into()),
                    ("PORT".into(), "9999".into()),
                ],
                working_directory: Some("/srv".into()),
                container_port: Some(8080),
                stop_timeout: Duration::from_millis(2500),
                cpu: Some(256),
                memory_mib: Some(128),
                health_check: None,
            },
            labels: BTreeMap::from([("team".into(), "core".into())]),
            placement: Default::default(),
        }
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(container_name("web app", "t-1"), "cutover-web-app-t-1");
        assert_eq!(container_name("a/b:c", "x.y_z"), "cutover-a-b-c-x.y_z");
    }

    #[test]
    fn bridge_tasks_publish_their_port_on_loopback() {
        let body = wire(create_body(
            &spec(),
            "inst-1",
            Placement {
                network: NetworkMode::Bridge,
                host_port: Some(41000),
            },
        ));
        assert_eq!(body["Image"], "cutover-sample:test");
        assert_eq!(body["Entrypoint"], json!(["/cutover"]));
        assert_eq!(body["Cmd"], json!(["sample-app"]));
        assert_eq!(body["WorkingDir"], "/srv");
        assert_eq!(
            body["Env"],
            json!(["HOST=0.0.0.0", "APP_VERSION=v2", "PORT=9999"])
        );
        assert_eq!(body["ExposedPorts"], json!({"8080/tcp": {}}));
        assert_eq!(
            body["HostConfig"]["PortBindings"],
            json!({"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41000"}]})
        );
        assert_eq!(body["HostConfig"]["NetworkMode"], "bridge");
        assert_eq!(body["HostConfig"]["NanoCpus"], 250_000_000);
        assert_eq!(body["HostConfig"]["Memory"], 128 * 1024 * 1024);
        assert_eq!(body["HostConfig"]["MemorySwap"], 128 * 1024 * 1024);
        assert_eq!(body["StopTimeout"], 3);
        assert_eq!(body["Healthcheck"]["Test"], json!(["NONE"]));
        let labels = &body["Labels"];
        assert_eq!(labels[LABEL_SERVICE], "web app");
        assert_eq!(labels[LABEL_TASK], "t-1");
        assert_eq!(labels[LABEL_TASK_DEFINITION], "web:3");
        assert_eq!(labels[LABEL_INSTANCE], "inst-1");
        assert_eq!(labels[LABEL_HOST_PORT], "41000");
        assert_eq!(labels[LABEL_NETWORK], "bridge");
        assert_eq!(labels["team"], "core");
    }

    #[test]
    fn host_network_tasks_listen_on_the_chosen_port() {
        let mut s = spec();
        s.container.entry_point.clear();
        s.container.command.clear();
        s.container.cpu = None;
        s.container.memory_mib = None;
        let body = wire(create_body(
            &s,
            "i",
            Placement {
                network: NetworkMode::Host,
                host_port: Some(41001),
            },
        ));
        assert_eq!(
            body["Env"],
            json!(["PORT=41001", "HOST=127.0.0.1", "APP_VERSION=v2"])
        );
        assert_eq!(body["HostConfig"]["NetworkMode"], "host");
        assert!(body["HostConfig"].get("PortBindings").is_none());
        assert!(body.get("ExposedPorts").is_none());
        assert!(
            body.get("Entrypoint").is_none(),
            "the image's entry point is kept"
        );
        assert!(body.get("Cmd").is_none(), "the image's command is kept");
        assert!(body["HostConfig"].get("Memory").is_none());
        assert_eq!(body["Labels"][LABEL_NETWORK], "host");
    }

    /// The create body as it goes to the engine.
    fn wire(body: ContainerCreateBody) -> serde_json::Value {
        serde_json::to_value(body).unwrap()
    }

    fn inspect(state: serde_json::Value) -> Inspect {
        serde_json::from_value::<ContainerInspectResponse>(json!({
            "Id": "abc",
            "Name": "/cutover-web-t-1",
            "Image": "sha256:img",
            "State": state,
            "Config": {"Image": "cutover-sample:test", "Tty": false,
                       "Labels": {"cutover.task": "t-1", "cutover.host-port": "41000", "cutover.stop-timeout": "3"}},
        }))
        .unwrap()
        .into()
    }

    #[test]
    fn running_containers_give_a_handle_with_the_published_endpoint() {
        let i = inspect(json!({"Status": "running", "Running": true, "Pid": 4242,
                               "StartedAt": "2024-05-01T10:00:00.5Z", "FinishedAt": "0001-01-01T00:00:00Z"}));
        assert!(i.is_running());
        assert_eq!(i.stop_timeout_secs(), Some(3));
        let h = i.handle("Podman 4.3.1");
        assert_eq!(h.task_id, "t-1");
        assert_eq!(h.runtime, "docker");
        assert_eq!(h.endpoint, Some("127.0.0.1:41000".parse().unwrap()));
        assert_eq!(h.pid, Some(4242));
        assert_eq!(h.started_at_unix_ms, 1_714_557_600_500);
        assert_eq!(h.detail["containerName"], "cutover-web-t-1");
    }

    #[test]
    fn exits_become_ecs_stop_reasons() {
        let exited = |code: i32, oom: bool| {
            inspect(
                json!({"Status": "exited", "ExitCode": code, "OOMKilled": oom,
                           "StartedAt": "2024-05-01T10:00:00Z", "FinishedAt": "2024-05-01T10:00:01Z"}),
            )
        };
        let e = exited(3, false).exit_info(false);
        assert_eq!(
            (e.exit_code, e.signal, e.oom_killed),
            (Some(3), None, false)
        );
        assert_eq!(e.reason, REASON_EXITED);
        assert_eq!(e.finished_at_unix_ms, 1_714_557_601_000);

        let e = exited(143, false).exit_info(true);
        assert_eq!((e.exit_code, e.signal), (Some(143), Some(15)));
        assert_eq!(e.reason, REASON_STOPPED);

        let e = exited(137, true).exit_info(true);
        assert_eq!((e.signal, e.oom_killed), (Some(9), true));
        assert_eq!(e.reason, REASON_OOM);

        let never = inspect(json!({"Status": "created", "ExitCode": 127,
            "Error": "exec: \"nope\": executable file not found in $PATH",
            "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}));
        let e = never.exit_info(false);
        assert_eq!(e.exit_code, None);
        assert!(
            e.reason.starts_with("CannotStartContainerError: exec"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn stop_timeouts_round_up_to_seconds() {
        assert_eq!(stop_timeout_secs(Duration::from_secs(30)), 30);
        assert_eq!(stop_timeout_secs(Duration::from_millis(100)), 1);
        assert_eq!(stop_timeout_secs(Duration::ZERO), 0);
    }
}
