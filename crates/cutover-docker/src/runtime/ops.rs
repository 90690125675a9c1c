//! The [`Runtime`] operations of [`DockerRuntime`]: start, observe, stop,
//! wait, list, remove, probe and read logs, each on the task's container as
//! found by its labels.

use std::time::Duration;

use async_trait::async_trait;
use bollard::query_parameters::{
    LogsOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use cutover_runtime::{
    ExitInfo, HealthCommand, LogStream, ProbeOutcome, Runtime, RuntimeError, TaskHandle, TaskSpec,
    TaskStatus,
};
use futures_util::{StreamExt, TryStreamExt};

use super::{Created, DockerRuntime, PORT_ATTEMPTS, port_taken, validate_task_id};
use crate::container::REASON_CANNOT_PULL;
use crate::error::{DockerError, if_exists};
use crate::{image, probe};

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn pins_image_tags(&self) -> bool {
        true
    }

    #[tracing::instrument(skip_all, fields(task = %spec.task_id, service = %spec.service))]
    async fn start(&self, spec: &TaskSpec) -> Result<TaskHandle, RuntimeError> {
        let task_id = spec.task_id.as_str();
        validate_task_id(task_id)?;
        let Some(image) = spec
            .container
            .image
            .as_deref()
            .filter(|i| !i.trim().is_empty())
        else {
            return Err(RuntimeError::InvalidSpec {
                task_id: task_id.to_owned(),
                reason: "the docker runtime needs an image in the container definition".into(),
            });
        };
        let lock = self.start_lock(task_id);
        let _guard = lock.lock().await;

        if let Some(existing) = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "look up the container at"))?
        {
            return self.resume(task_id, existing).await;
        }

        let availability = image::ensure(
            &self.docker,
            image,
            &self.pull_auth,
            self.pull_idle_timeout,
            self.pull_progress.as_ref(),
        )
        .await
        .map_err(|reason| RuntimeError::CannotStart {
            task_id: task_id.to_owned(),
            message: format!("{REASON_CANNOT_PULL}: {reason}"),
        })?;

        // The host port is free when chosen but could be taken before the
        // container binds it: a start that fails on it is retried on another.
        let mut attempt = 0;
        let (container_id, handle) = loop {
            attempt += 1;
            let container_id = match self.create(spec).await? {
                Created::New(id) => id,
                Created::Existing(handle) => return Ok(handle),
            };
            match self.start_container(task_id, &container_id).await {
                Ok(handle) => break (container_id, handle),
                Err(RuntimeError::CannotStart { message, .. })
                    if attempt < PORT_ATTEMPTS && port_taken(&message) =>
                {
                    tracing::info!(attempt, reason = %message, "host port taken meanwhile; retrying on another");
                }
                Err(e) => return Err(e),
            }
        };
        tracing::info!(
            container = %container_id, image, pulled = (availability == image::Availability::Pulled),
            endpoint = ?handle.endpoint, "task container started"
        );
        Ok(handle)
    }

    async fn status(&self, task_id: &str) -> Result<TaskStatus, RuntimeError> {
        let Some(found) = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "inspect the container at"))?
        else {
            return Ok(TaskStatus::Gone);
        };
        if found.is_running() {
            Ok(TaskStatus::Running(found.handle(&self.engine)))
        } else if found.is_unstarted() {
            Ok(TaskStatus::Gone)
        } else {
            Ok(TaskStatus::Exited(
                found.exit_info(self.was_stopped(task_id)),
            ))
        }
    }

    #[tracing::instrument(skip(self))]
    async fn stop(&self, task_id: &str) -> Result<(), RuntimeError> {
        let Some(found) = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "inspect the container at"))?
        else {
            return Ok(());
        };
        if !found.is_running() {
            return Ok(());
        }
        self.stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task_id.to_owned());
        let timeout = found.stop_timeout_secs().unwrap_or(30);
        let options = StopContainerOptionsBuilder::default()
            .t(i32::try_from(timeout).unwrap_or(i32::MAX))
            .build();
        let docker = self.docker.clone();
        let container_id = found.id.clone();
        let task = task_id.to_owned();
        tokio::spawn(async move {
            match if_exists(docker.stop_container(&container_id, Some(options)).await) {
                Ok(Some(())) => {
                    tracing::debug!(task = %task, container = %container_id, "container stopped")
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(task = %task, container = %container_id, %error, "cannot stop the container")
                }
            }
        });
        Ok(())
    }

    async fn wait(&self, task_id: &str) -> Result<ExitInfo, RuntimeError> {
        let mut rounds = 0u32;
        loop {
            let Some(found) = self
                .find(task_id)
                .await
                .map_err(self.err(task_id, "inspect the container at"))?
            else {
                return Err(RuntimeError::NotFound {
                    task_id: task_id.to_owned(),
                });
            };
            if found.is_running() {
                if rounds > 0 {
                    // The engine answered the wait but still says running:
                    // do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let options = WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build();
                let mut waited = self.docker.wait_container(&found.id, Some(options));
                match waited.next().await {
                    // `bollard` yields a non-zero exit as this error; the exit
                    // itself is read from the inspect answer next round.
                    None
                    | Some(Ok(_))
                    | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {}
                    Some(Err(e)) => {
                        let e = DockerError::from(e);
                        if !e.is_not_found() {
                            return Err(e.for_task(
                                task_id,
                                "wait for the container at",
                                &self.info.socket,
                            ));
                        }
                    }
                }
            } else if found.is_unstarted() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            } else {
                return Ok(found.exit_info(self.was_stopped(task_id)));
            }
            rounds += 1;
        }
    }

    async fn list(&self) -> Result<Vec<TaskHandle>, RuntimeError> {
        let summaries = self
            .containers(None)
            .await
            .map_err(self.err("", "list containers at"))?;
        let mut out = Vec::with_capacity(summaries.len());
        for id in summaries.into_iter().filter_map(|s| s.id) {
            let Some(found) = self
                .inspect(&id)
                .await
                .map_err(self.err("", "inspect a container at"))?
            else {
                continue;
            };
            if found.task_id().is_empty() {
                continue;
            }
            self.remember(found.task_id(), &found.id);
            out.push(found.handle(&self.engine));
        }
        Ok(out)
    }

    async fn remove(&self, task_id: &str) -> Result<(), RuntimeError> {
        let Some(found) = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "inspect the container at"))?
        else {
            self.forget(task_id);
            return Ok(());
        };
        if found.is_running() {
            return Err(RuntimeError::StillRunning {
                task_id: task_id.to_owned(),
            });
        }
        self.delete(&found.id)
            .await
            .map_err(self.err(task_id, "remove the container at"))?;
        self.forget(task_id);
        tracing::debug!(task = task_id, container = %found.id, "container removed");
        Ok(())
    }

    async fn health_probe(
        &self,
        task_id: &str,
        check: &HealthCommand,
        timeout: Duration,
    ) -> Result<ProbeOutcome, RuntimeError> {
        let Some(found) = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "inspect the container at"))?
        else {
            return Err(RuntimeError::NotFound {
                task_id: task_id.to_owned(),
            });
        };
        if !found.is_running() {
            return Ok(ProbeOutcome::Unhealthy {
                exit_code: None,
                output: "container is not running".into(),
            });
        }
        probe::probe(&self.docker, self.local, &found.id, check, timeout)
            .await
            .map_err(self.err(task_id, "run the health check at"))
    }

    async fn logs(&self, task_id: &str, follow: bool) -> Result<LogStream, RuntimeError> {
        let Some(found) = self
            .find(task_id)
            .await
            .map_err(self.err(task_id, "inspect the container at"))?
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
        // `bollard` takes the engine's frames apart (stdout and stderr
        // interleaved as sent; a TTY's stream as it is).
        let stream = self
            .docker
            .logs(&found.id, Some(options))
            .map_ok(|output| output.into_bytes())
            .map_err(std::io::Error::other);
        Ok(Box::pin(stream))
    }
}
