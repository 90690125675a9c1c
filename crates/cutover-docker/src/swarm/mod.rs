//! [`SwarmRuntime`]: the [`Runtime`] trait over a Docker Swarm's service and
//! task APIs, for services with `runtime: swarm`.
//!
//! The runtime talks to one manager (`DOCKER_HOST` or the configured host).
//! Each Cutover task is a Swarm service of one replica (see [`spec`]),
//! labelled with the instance, service, task and revision, so a restarted
//! server finds it again ([`Runtime::list`]). The task runs on the node's
//! network on a port Cutover picks, and its endpoint is the node's address
//! (`Status.Addr` of the node Swarm chose) and that port, which the data
//! plane reaches from the control plane's machine. Task states come from
//! Swarm's task list; the health check runs on the node, by the engine
//! (Swarm holds the task in `starting` until it passes), and
//! [`Runtime::health_probe`] reports what Swarm saw.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{Service, Task};
use bollard::query_parameters::{
    ListServicesOptionsBuilder, ListTasksOptionsBuilder, LogsOptionsBuilder,
    UpdateServiceOptionsBuilder,
};
use cutover_runtime::{
    ExitInfo, HealthCommand, LogStream, ProbeOutcome, REASON_CANNOT_START, REASON_LOST, Runtime,
    RuntimeError, TaskHandle, TaskSpec, TaskStatus,
};
use futures_util::TryStreamExt;

use crate::container::{LABEL_HOST_PORT, LABEL_INSTANCE, LABEL_TASK, now_ms};
use crate::error::{DockerError, if_exists};
use crate::{DockerOptions, EngineInfo, NetworkMode, discovery};

mod spec;
mod task;

use task::Phase;
pub use task::REASON_SWARM_MOVED;

/// How often Swarm's task list is read while waiting for a task.
const POLL: Duration = Duration::from_millis(250);
/// Node ports tasks listen on.
const PORTS: std::ops::Range<u16> = 20_000..30_000;

/// Runs tasks as one-replica services of a Docker Swarm.
pub struct SwarmRuntime {
    docker: Docker,
    info: EngineInfo,
    engine: String,
    instance: String,
    /// How long a start waits for Swarm to place and start the task.
    start_timeout: Duration,
    /// Node id to address, learnt from the manager.
    nodes: Mutex<HashMap<String, IpAddr>>,
    stopping: Mutex<HashSet<String>>,
    start_lock: tokio::sync::Mutex<()>,
}

impl SwarmRuntime {
    /// Connects to the engine and checks that it manages a swarm.
    pub async fn connect(options: DockerOptions) -> Result<Self, DockerError> {
        let discovery::Connected { docker, info, .. } =
            discovery::connect_with(&options, NetworkMode::Host).await?;
        let swarm = docker.info().await?.swarm.unwrap_or_default();
        if swarm.control_available != Some(true) {
            return Err(DockerError::NotAManager {
                endpoint: info.socket.clone(),
                state: swarm
                    .local_node_state
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            });
        }
        tracing::info!(engine = %info.name, version = %info.version, socket = %info.socket,
            nodes = swarm.nodes.unwrap_or_default(), "swarm manager connected");
        Ok(Self {
            docker,
            engine: format!("{} {} (swarm)", info.name, info.version),
            info,
            instance: options.instance,
            start_timeout: options.pull_idle_timeout.max(Duration::from_secs(30)),
            nodes: Mutex::new(HashMap::new()),
            stopping: Mutex::new(HashSet::new()),
            start_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The manager that answered.
    pub fn engine_info(&self) -> &EngineInfo {
        &self.info
    }

    fn err(&self, task_id: &str, action: &'static str) -> impl FnOnce(DockerError) -> RuntimeError {
        let endpoint = self.info.socket.clone();
        let task_id = task_id.to_owned();
        move |e| e.for_task(&task_id, action, &endpoint)
    }

    /// This instance's services, optionally of one task only.
    async fn services(&self, task_id: Option<&str>) -> Result<Vec<Service>, DockerError> {
        let mut labels = vec![format!("{LABEL_INSTANCE}={}", self.instance)];
        if let Some(task_id) = task_id {
            labels.push(format!("{LABEL_TASK}={task_id}"));
        }
        let options = ListServicesOptionsBuilder::default()
            .filters(&HashMap::from([("label", labels)]))
            .build();
        Ok(self.docker.list_services(Some(options)).await?)
    }

    /// The Swarm task that is the Cutover task, with its service.
    async fn find(&self, task_id: &str) -> Result<Option<(Service, Option<Task>)>, DockerError> {
        let Some(service) = self.services(Some(task_id)).await?.into_iter().next() else {
            return Ok(None);
        };
        let id = service.id.clone().unwrap_or_default();
        let options = ListTasksOptionsBuilder::default()
            .filters(&HashMap::from([("service", vec![id])]))
            .build();
        let tasks = self.docker.list_tasks(Some(options)).await?;
        Ok(Some((service, task::first_task(tasks))))
    }

    /// The address of a node, asked of the manager once.
    async fn node_addr(&self, node_id: &str) -> Result<Option<IpAddr>, DockerError> {
        if let Some(ip) = self
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(node_id)
        {
            return Ok(Some(*ip));
        }
        let Some(node) = if_exists(self.docker.inspect_node(node_id).await)? else {
            return Ok(None);
        };
        let ip = node
            .status
            .and_then(|s| s.addr)
            .and_then(|a| a.parse::<IpAddr>().ok());
        if let Some(ip) = ip {
            self.nodes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(node_id.to_owned(), ip);
        }
        Ok(ip)
    }

    async fn handle(
        &self,
        task_id: &str,
        service: &Service,
        task: &Task,
    ) -> Result<TaskHandle, DockerError> {
        let port = port_of(service);
        let addr = match task.node_id.as_deref() {
            Some(node) if !node.is_empty() => self.node_addr(node).await?,
            _ => None,
        };
        Ok(task::handle(task_id, task, port, addr, &self.engine))
    }

    /// A node port no service of this instance uses.
    async fn free_port(&self) -> Result<u16, DockerError> {
        let used: HashSet<u16> = self
            .services(None)
            .await?
            .iter()
            .filter_map(port_of)
            .collect();
        let start = (now_ms() % u64::from(PORTS.end - PORTS.start)) as u16;
        (0..PORTS.end - PORTS.start)
            .map(|i| PORTS.start + (start + i) % (PORTS.end - PORTS.start))
            .find(|p| !used.contains(p))
            .ok_or(DockerError::InvalidHost {
                host: self.info.socket.clone(),
                reason: "every node port of 20000-29999 is taken by a task",
            })
    }

    /// Waits until the task's container started, or it ended or never got
    /// placed within the start timeout (then its service is removed).
    async fn await_start(&self, task_id: &str) -> Result<TaskHandle, RuntimeError> {
        let deadline = tokio::time::Instant::now() + self.start_timeout;
        let mut waiting = String::new();
        loop {
            let found = self
                .find(task_id)
                .await
                .map_err(self.err(task_id, "list the tasks at"))?;
            let Some((service, task)) = found else {
                return Err(RuntimeError::NotFound {
                    task_id: task_id.to_owned(),
                });
            };
            if let Some(task) = &task {
                match task::phase(task) {
                    Phase::Started { .. } => {
                        return self
                            .handle(task_id, &service, task)
                            .await
                            .map_err(self.err(task_id, "inspect the node at"));
                    }
                    Phase::Ended => {
                        let reason = task::exit_info(task, false).reason;
                        self.delete(task_id).await;
                        return Err(RuntimeError::CannotStart {
                            task_id: task_id.to_owned(),
                            message: reason,
                        });
                    }
                    Phase::Placing { message } => waiting = message,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                self.delete(task_id).await;
                return Err(RuntimeError::CannotStart {
                    task_id: task_id.to_owned(),
                    message: format!(
                        "{REASON_CANNOT_START}: Swarm did not start the task within {:?}: {waiting}",
                        self.start_timeout
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Removes the task's service; a failure is only logged.
    async fn delete(&self, task_id: &str) {
        if let Err(error) = self.remove(task_id).await {
            tracing::warn!(task = task_id, %error, "cannot remove the Swarm service of a task");
        }
    }

    fn was_stopped(&self, task_id: &str) -> bool {
        self.stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(task_id)
    }
}

/// Whether `stop` scaled the service to zero replicas.
fn scaled_to_zero(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .is_some_and(|r| r.replicas == Some(0))
}

/// The node port recorded on a service.
fn port_of(service: &Service) -> Option<u16> {
    service
        .spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(LABEL_HOST_PORT)?
        .parse()
        .ok()
}

#[async_trait::async_trait]
impl Runtime for SwarmRuntime {
    fn name(&self) -> &'static str {
        "swarm"
    }

    async fn start(&self, task: &TaskSpec) -> Result<TaskHandle, RuntimeError> {
        let task_id = task.task_id.as_str();
        crate::runtime::validate_task_id(task_id)?;
        {
            // One start at a time: the port is chosen from the services
            // that exist, so two concurrent starts could pick the same.
            let _turn = self.start_lock.lock().await;
            let existing = self
                .find(task_id)
                .await
                .map_err(self.err(task_id, "list the services at"))?;
            if existing.is_none() {
                let port = match task.container.container_port {
                    Some(_) => Some(
                        self.free_port()
                            .await
                            .map_err(self.err(task_id, "list the services at"))?,
                    ),
                    None => None,
                };
                let body = spec::service_spec(task, &self.instance, port);
                if let Err(e) = self
                    .docker
                    .create_service(body, None)
                    .await
                    .map_err(DockerError::from)
                {
                    // A concurrent start of the same task (another server
                    // process) made it: go on with that one.
                    if e.status() != Some(409) {
                        return Err(RuntimeError::CannotStart {
                            task_id: task_id.to_owned(),
                            message: format!("{REASON_CANNOT_START}: {}", e.engine_message()),
                        });
                    }
                }
            }
        }
        self.await_start(task_id).await
    }

    async fn status(&self, task_id: &str) -> Result<TaskStatus, RuntimeError> {
        let found = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "list the tasks at"))?;
        let Some((service, task)) = found else {
            return Ok(TaskStatus::Gone);
        };
        let Some(task) = task else {
            // Scaled to zero by `stop`: Swarm forgets the task once it
            // ended. Otherwise Swarm has not made the task yet.
            if scaled_to_zero(&service) {
                return Ok(TaskStatus::Exited(ExitInfo {
                    exit_code: None,
                    signal: None,
                    oom_killed: false,
                    reason: cutover_runtime::REASON_STOPPED.to_owned(),
                    finished_at_unix_ms: now_ms(),
                }));
            }
            return Ok(TaskStatus::Gone);
        };
        let stopped = self.was_stopped(task_id) || scaled_to_zero(&service);
        if !stopped && task::leaving(&task) {
            // Swarm is taking the task away (a drained or lost node): it
            // has ended for Cutover now, which replaces it, even though
            // a lost node may report nothing for a long time.
            return Ok(TaskStatus::Exited(task::moved_exit(&task)));
        }
        Ok(match task::phase(&task) {
            Phase::Ended => TaskStatus::Exited(task::exit_info(&task, stopped)),
            Phase::Placing { .. } => TaskStatus::Gone,
            Phase::Started { .. } => TaskStatus::Running(
                self.handle(task_id, &service, &task)
                    .await
                    .map_err(self.err(task_id, "inspect the node at"))?,
            ),
        })
    }

    async fn stop(&self, task_id: &str) -> Result<(), RuntimeError> {
        let Some((service, _)) = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "list the services at"))?
        else {
            return Ok(());
        };
        self.stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task_id.to_owned());
        // Zero replicas: Swarm stops the container with SIGTERM, then
        // SIGKILL after the stop grace period, and keeps the task's record.
        let mut body = service.spec.clone().unwrap_or_default();
        if let Some(replicated) = body.mode.as_mut().and_then(|m| m.replicated.as_mut()) {
            if replicated.replicas == Some(0) {
                return Ok(());
            }
            replicated.replicas = Some(0);
        }
        let version = service.version.and_then(|v| v.index).unwrap_or_default();
        let options = UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        let id = service.id.unwrap_or_default();
        match self
            .docker
            .update_service(&id, body, options, None)
            .await
            .map_err(DockerError::from)
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.for_task(task_id, "stop the service at", &self.info.socket)),
        }
    }

    async fn wait(&self, task_id: &str) -> Result<ExitInfo, RuntimeError> {
        loop {
            match self.status(task_id).await? {
                TaskStatus::Exited(info) => return Ok(info),
                TaskStatus::Gone if self.find(task_id).await.ok().flatten().is_none() => {
                    return Ok(ExitInfo {
                        exit_code: None,
                        signal: None,
                        oom_killed: false,
                        reason: REASON_LOST.to_owned(),
                        finished_at_unix_ms: now_ms(),
                    });
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn list(&self) -> Result<Vec<TaskHandle>, RuntimeError> {
        let services = self
            .services(None)
            .await
            .map_err(|e| e.for_task("", "list the services at", &self.info.socket))?;
        let mut handles = Vec::new();
        for service in services {
            let Some(task_id) = service
                .spec
                .as_ref()
                .and_then(|s| s.labels.as_ref())
                .and_then(|l| l.get(LABEL_TASK))
                .cloned()
            else {
                continue;
            };
            if let Some((service, Some(task))) = self
                .find(&task_id)
                .await
                .map_err(self.err(&task_id, "list the tasks at"))?
            {
                handles.push(
                    self.handle(&task_id, &service, &task)
                        .await
                        .map_err(self.err(&task_id, "inspect the node at"))?,
                );
            }
        }
        Ok(handles)
    }

    async fn remove(&self, task_id: &str) -> Result<(), RuntimeError> {
        for service in self
            .services(Some(task_id))
            .await
            .map_err(self.err(task_id, "list the services at"))?
        {
            let id = service.id.unwrap_or_default();
            if_exists(self.docker.delete_service(&id).await)
                .map_err(self.err(task_id, "remove the service at"))?;
        }
        self.stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(task_id);
        Ok(())
    }

    async fn health_probe(
        &self,
        task_id: &str,
        _check: &HealthCommand,
        _timeout: Duration,
    ) -> Result<ProbeOutcome, RuntimeError> {
        // The engine of the task's node runs the check (see the module
        // header); this reports its verdict as Swarm has it.
        let found = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "list the tasks at"))?;
        let task = found.and_then(|(_, t)| t);
        Ok(match task.as_ref().map(task::phase) {
            Some(Phase::Started { healthy: true }) => ProbeOutcome::Healthy,
            // Swarm ends the task if its check fails: until then, no verdict.
            Some(Phase::Started { healthy: false }) => ProbeOutcome::Pending,
            Some(Phase::Placing { message }) => ProbeOutcome::Unhealthy {
                exit_code: None,
                output: format!("Swarm: not started: {message}"),
            },
            Some(Phase::Ended) | None => ProbeOutcome::Unhealthy {
                exit_code: None,
                output: "Swarm: the task has ended".into(),
            },
        })
    }

    async fn logs(&self, task_id: &str, follow: bool) -> Result<LogStream, RuntimeError> {
        let Some((service, _)) = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "list the services at"))?
        else {
            return Err(RuntimeError::NotFound {
                task_id: task_id.to_owned(),
            });
        };
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .build();
        let stream = self
            .docker
            .service_logs(&service.id.unwrap_or_default(), Some(options))
            .map_ok(|output| output.into_bytes())
            .map_err(std::io::Error::other);
        Ok(Box::pin(stream))
    }
}
