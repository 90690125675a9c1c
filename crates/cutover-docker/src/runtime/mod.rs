//! [`DockerRuntime`]: the [`Runtime`](cutover_runtime::Runtime) trait over the Docker Engine API.
//!
//! A task is found by its labels (`cutover.instance` and `cutover.task`),
//! never by name alone, and the container id is cached per task. Start is
//! idempotent per task id, within this process by a per-task lock and across
//! processes by the container name: a second create of the same task gets a
//! name conflict and adopts the container that won.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions,
};
use cutover_runtime::{REASON_CANNOT_START, RuntimeError, TaskHandle, TaskSpec};

use crate::container::{
    Inspect, LABEL_INSTANCE, LABEL_TASK, Placement, REASON_CANNOT_CREATE, container_name,
    create_body,
};
use crate::error::{DockerError, if_exists, is_transient_state};
use crate::{DockerOptions, EngineInfo, NetworkMode, ProgressFn, discovery};

mod build;
mod ops;

pub use build::{BuildContainerError, LABEL_BUILD, LABEL_BUILD_INSTANCE};

/// Runs tasks as containers of a Docker or Podman engine.
///
/// - Health checks: run by Cutover through the exec API
///   ([`Runtime::health_probe`](cutover_runtime::Runtime::health_probe)); the engine's own are disabled per container.
/// - Stop: `stop()` returns at once; the engine's stop (SIGTERM, SIGKILL
///   after the task's stop timeout, in whole seconds rounded up) runs in a
///   spawned task. A task stopped this way exits with [`REASON_STOPPED`]
///   unless the OOM killer ended it; this is remembered in memory only, so
///   after a server restart such an exit reads [`REASON_EXITED`].
/// - A container created but never started (the server died in between) is
///   [`TaskStatus::Gone`](cutover_runtime::TaskStatus::Gone) to `status()`; `start()` of the same task starts it.
/// - `remove()` deletes the container and with it the engine's log.
///
/// [`REASON_STOPPED`]: cutover_runtime::REASON_STOPPED
/// [`REASON_EXITED`]: cutover_runtime::REASON_EXITED
pub struct DockerRuntime {
    docker: Docker,
    /// The engine is reached through a local socket (its processes are ours to see).
    local: bool,
    info: EngineInfo,
    engine: String,
    instance: String,
    pull_idle_timeout: Duration,
    pull_auth: crate::auth::PullAuth,
    pull_progress: Option<ProgressFn>,
    ids: Mutex<HashMap<String, String>>,
    stopping: Mutex<HashSet<String>>,
    start_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// How often a start is tried when the chosen host port was taken meanwhile.
const PORT_ATTEMPTS: u32 = 3;

/// How often, and how far apart, an answer naming a state the Docker API
/// does not have (Podman's `stopped`, see
/// [`is_transient_state`]) is asked again: 2 s in all, far
/// more than the moment Podman takes to clean up an exited container.
const TRANSIENT_STATE_TRIES: u32 = 40;
const TRANSIENT_STATE_PAUSE: Duration = Duration::from_millis(50);

/// Calls the engine, and again while its answer names a state the API does
/// not have (at most [`TRANSIENT_STATE_TRIES`] times more).
async fn asked_again_past_transient_states<T, F, Fut>(
    mut call: F,
) -> Result<T, bollard::errors::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, bollard::errors::Error>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(e) if tries < TRANSIENT_STATE_TRIES && is_transient_state(&e) => {
                tries += 1;
                tokio::time::sleep(TRANSIENT_STATE_PAUSE).await;
            }
            answer => return answer,
        }
    }
}

/// What [`DockerRuntime::create`] ended with.
enum Created {
    /// A new container with this id, not started yet.
    New(String),
    /// The task's container already existed (a concurrent start won).
    Existing(TaskHandle),
}

impl DockerRuntime {
    /// Finds the engine, negotiates the API version and decides the network
    /// mode. Fails when no engine answers or the instance id is empty.
    pub async fn connect(options: DockerOptions) -> Result<Self, DockerError> {
        let discovery::Connected {
            docker,
            local,
            info,
        } = discovery::connect_with(&options, options.network).await?;
        tracing::info!(
            engine = %info.name, version = %info.version, api = %info.api_version,
            socket = %info.socket, network = %info.network, instance = %options.instance,
            "container engine connected"
        );
        Ok(Self {
            docker,
            local,
            engine: format!("{} {}", info.name, info.version),
            info,
            instance: options.instance,
            pull_idle_timeout: options.pull_idle_timeout,
            pull_auth: crate::auth::PullAuth {
                source: options.pull_credentials,
                docker_config: options
                    .docker_config
                    .or_else(crate::auth::default_config_path),
            },
            pull_progress: options.pull_progress,
            ids: Mutex::new(HashMap::new()),
            stopping: Mutex::new(HashSet::new()),
            start_locks: Mutex::new(HashMap::new()),
        })
    }

    /// Which engine answered, its version, API version, address and network mode.
    pub fn engine_info(&self) -> &EngineInfo {
        &self.info
    }

    /// Whether the engine has `image` locally (no pull is attempted).
    pub async fn image_exists(&self, image: &str) -> Result<bool, DockerError> {
        crate::image::exists(&self.docker, image).await
    }

    /// The instance id containers are labelled with.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Stops every task of this instance (waiting at most `grace` for each
    /// to exit) and removes its container; returns what failed. What tests
    /// call when they end, so the engine is left as they found it.
    pub async fn stop_and_remove_all(&self, grace: Duration) -> Vec<RuntimeError> {
        use cutover_runtime::Runtime;
        let handles = match self.list().await {
            Ok(handles) => handles,
            Err(e) => return vec![e],
        };
        let mut failed = Vec::new();
        for handle in handles {
            self.stop(&handle.task_id).await.ok();
            let _ = tokio::time::timeout(grace, self.wait(&handle.task_id)).await;
            if let Err(e) = self.remove(&handle.task_id).await {
                failed.push(e);
            }
        }
        failed
    }

    fn err(&self, task_id: &str, action: &'static str) -> impl FnOnce(DockerError) -> RuntimeError {
        let endpoint = self.info.socket.clone();
        let task_id = task_id.to_owned();
        move |e| e.for_task(&task_id, action, &endpoint)
    }

    async fn inspect(&self, container: &str) -> Result<Option<Inspect>, DockerError> {
        let answer = asked_again_past_transient_states(|| {
            self.docker
                .inspect_container(container, None::<InspectContainerOptions>)
        })
        .await;
        Ok(if_exists(answer)?.map(Inspect::from))
    }

    /// The containers of this instance, optionally of one task only.
    async fn containers(
        &self,
        task_id: Option<&str>,
    ) -> Result<Vec<ContainerSummary>, DockerError> {
        let mut labels = vec![format!("{LABEL_INSTANCE}={}", self.instance)];
        if let Some(task_id) = task_id {
            labels.push(format!("{LABEL_TASK}={task_id}"));
        }
        self.list_labelled(labels).await
    }

    /// Every container (running or not) carrying all of `labels`
    /// (`name=value` each).
    async fn list_labelled(
        &self,
        labels: Vec<String>,
    ) -> Result<Vec<ContainerSummary>, DockerError> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&HashMap::from([("label", labels)]))
            .build();
        Ok(
            asked_again_past_transient_states(|| {
                self.docker.list_containers(Some(options.clone()))
            })
            .await?,
        )
    }

    /// The task's container, inspected; `None` when there is none.
    async fn find(&self, task_id: &str) -> Result<Option<Inspect>, DockerError> {
        let cached = self
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(task_id)
            .cloned();
        if let Some(id) = cached {
            if let Some(found) = self.inspect(&id).await?
                && found.task_id() == task_id
            {
                return Ok(Some(found));
            }
            self.ids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(task_id);
        }
        let mut matches = self.containers(Some(task_id)).await?;
        if matches.len() > 1 {
            tracing::warn!(
                task = task_id,
                count = matches.len(),
                "several containers carry one task id; using the newest"
            );
        }
        matches.sort_by_key(|s| std::cmp::Reverse(s.created));
        let Some(id) = matches.into_iter().find_map(|s| s.id) else {
            return Ok(None);
        };
        let found = self.inspect(&id).await?;
        if let Some(found) = &found {
            self.remember(task_id, &found.id);
        }
        Ok(found)
    }

    fn remember(&self, task_id: &str, container_id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task_id.to_owned(), container_id.to_owned());
    }

    fn forget(&self, task_id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(task_id);
        self.stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(task_id);
        self.start_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(task_id);
    }

    fn was_stopped(&self, task_id: &str) -> bool {
        self.stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(task_id)
    }

    fn start_lock(&self, task_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.start_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(task_id.to_owned())
            .or_default()
            .clone()
    }

    /// Creates the task's container on a fresh host port; a name conflict
    /// means another start of the same task won, and its container is used.
    async fn create(&self, spec: &TaskSpec) -> Result<Created, RuntimeError> {
        let task_id = spec.task_id.as_str();
        let host_port = match spec.container.container_port {
            Some(_) => Some(free_port(task_id)?),
            None => None,
        };
        let placement = Placement {
            network: self.info.network,
            host_port,
        };
        debug_assert_ne!(placement.network, NetworkMode::Auto);
        let body = create_body(spec, &self.instance, placement);
        let name = container_name(&spec.service, task_id);
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(DockerError::from);
        let container_id = match created {
            Ok(created) => created.id,
            Err(e) if is_name_conflict(&e) => {
                // Another start of this task won the race for the name.
                let existing = self
                    .find(task_id)
                    .await
                    .map_err(self.err(task_id, "look up the container at"))?;
                return match existing {
                    Some(existing) => self.resume(task_id, existing).await.map(Created::Existing),
                    None => Err(RuntimeError::CannotStart {
                        task_id: task_id.to_owned(),
                        message: format!(
                            "{REASON_CANNOT_CREATE}: the name {name} is taken by a container of another owner: {}",
                            e.engine_message()
                        ),
                    }),
                };
            }
            Err(e) => {
                return Err(RuntimeError::CannotStart {
                    task_id: task_id.to_owned(),
                    message: format!("{REASON_CANNOT_CREATE}: {}", e.engine_message()),
                });
            }
        };
        self.remember(task_id, &container_id);
        Ok(Created::New(container_id))
    }

    /// Starts a created container; on failure removes it so nothing is left
    /// half made, and reports `CannotStartContainerError`.
    async fn start_container(
        &self,
        task_id: &str,
        container_id: &str,
    ) -> Result<TaskHandle, RuntimeError> {
        let started = self
            .docker
            .start_container(container_id, None::<StartContainerOptions>)
            .await;
        if let Err(e) = started.map_err(DockerError::from) {
            let message = format!("{REASON_CANNOT_START}: {}", e.engine_message());
            tracing::warn!(task = task_id, container = container_id, reason = %message, "container did not start");
            if let Err(error) = self.delete(container_id).await {
                tracing::warn!(task = task_id, container = container_id, %error, "cannot remove the container that did not start");
            }
            self.forget(task_id);
            return Err(RuntimeError::CannotStart {
                task_id: task_id.to_owned(),
                message,
            });
        }
        let inspect = self
            .inspect(container_id)
            .await
            .map_err(self.err(task_id, "inspect the container at"))?
            .ok_or_else(|| RuntimeError::NotFound {
                task_id: task_id.to_owned(),
            })?;
        Ok(inspect.handle(&self.engine))
    }

    /// The handle of a task whose container already exists, starting it if
    /// it was created but never started.
    async fn resume(&self, task_id: &str, existing: Inspect) -> Result<TaskHandle, RuntimeError> {
        if existing.is_unstarted() {
            tracing::info!(task = task_id, container = %existing.id, "starting a container created before");
            return self.start_container(task_id, &existing.id).await;
        }
        tracing::debug!(task = task_id, container = %existing.id, status = %existing.status(), "task already has a container");
        Ok(existing.handle(&self.engine))
    }

    /// Removes a container, running or not, with its anonymous volumes; one
    /// already gone is fine.
    async fn delete(&self, container_id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        if_exists(
            self.docker
                .remove_container(container_id, Some(options))
                .await,
        )?;
        Ok(())
    }
}

/// Docker answers a taken name with 409; Podman 4.3 with 500 and "is
/// already in use".
fn is_name_conflict(e: &DockerError) -> bool {
    e.status() == Some(409)
        || (e.status().is_some() && e.engine_message().contains("already in use"))
}

/// Whether a start failed because the host port was taken (Podman: "address
/// already in use"; Docker: "port is already allocated").
fn port_taken(message: &str) -> bool {
    message.contains("address already in use") || message.contains("port is already allocated")
}

/// A port on 127.0.0.1 that nothing listens on right now.
fn free_port(task_id: &str) -> Result<u16, RuntimeError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| RuntimeError::io(task_id, "bind", "127.0.0.1:0", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| RuntimeError::io(task_id, "bind", "127.0.0.1:0", e))
}

/// Same rule as the process runtime: ids name containers and labels.
pub(crate) fn validate_task_id(task_id: &str) -> Result<(), RuntimeError> {
    let reason = if task_id.is_empty() {
        Some("empty")
    } else if task_id.len() > 128 {
        Some("longer than 128 bytes")
    } else if task_id.starts_with('.') {
        Some("starts with a dot")
    } else if !task_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("only letters, digits, '-', '_' and '.' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RuntimeError::InvalidTaskId {
            task_id: task_id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

trait RuntimeErrorExt {
    fn io(task_id: &str, action: &'static str, path: &str, source: std::io::Error) -> RuntimeError;
}

impl RuntimeErrorExt for RuntimeError {
    fn io(task_id: &str, action: &'static str, path: &str, source: std::io::Error) -> RuntimeError {
        RuntimeError::Io {
            task_id: task_id.to_owned(),
            action,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> DockerError {
        DockerError::Engine(bollard::errors::Error::DockerResponseServerError {
            status_code: status,
            message: message.into(),
        })
    }

    #[test]
    fn name_conflicts_of_docker_and_podman() {
        assert!(is_name_conflict(&api(
            409,
            "Conflict. The container name is already in use"
        )));
        assert!(is_name_conflict(&api(
            500,
            "creating container storage: the container name \"cutover-web-t1\" is already in use by 1202"
        )));
        assert!(!is_name_conflict(&api(500, "no space left on device")));
        assert!(!is_name_conflict(&api(404, "no such image")));
    }

    #[test]
    fn taken_host_ports_are_recognised() {
        assert!(port_taken(
            "CannotStartContainerError: cannot listen on the TCP port: listen tcp4 127.0.0.1:18555: bind: address already in use"
        ));
        assert!(port_taken(
            "CannotStartContainerError: driver failed programming external connectivity: Bind for 127.0.0.1:80 failed: port is already allocated"
        ));
        assert!(!port_taken(
            "CannotStartContainerError: exec: \"x\": executable file not found"
        ));
    }

    #[test]
    fn task_ids_follow_the_process_runtime_rule() {
        assert!(validate_task_id("web-1.2_x").is_ok());
        for bad in ["", ".x", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_task_id(bad).is_err(), "{bad}");
        }
    }
}
