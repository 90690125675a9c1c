//! The [`Runtime`] operations of [`DockerRuntime`]: start, observe, stop,
//! wait, list, remove, probe and read logs, each on the task's container as
//! found by its labels.

use std::time::Duration;

use async_trait::async_trait;
use cutover_runtime::{
    ExitInfo, HealthCommand, LogStream, ProbeOutcome, Runtime, RuntimeError, TaskHandle, TaskSpec,
    TaskStatus,
};
use http::Method;

use super::{Created, DockerRuntime, PORT_ATTEMPTS, port_taken, validate_task_id};
use crate::client::body_stream;
use crate::container::REASON_CANNOT_PULL;
use crate::{image, logs, probe};

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
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
            &self.client,
            image,
            self.docker_config.as_deref(),
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
        } else if found.is_created() && found.state.error.is_empty() {
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
        let client = self.client.clone();
        let container_id = found.id.clone();
        let task = task_id.to_owned();
        tokio::spawn(async move {
            let path = format!("/containers/{container_id}/stop?t={timeout}");
            match client.call(Method::POST, &path, None).await {
                Ok(_) => {
                    tracing::debug!(task = %task, container = %container_id, "container stopped")
                }
                Err(e) if e.is_not_found() => {}
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
                let path = format!("/containers/{}/wait?condition=not-running", found.id);
                match self.client.call(Method::POST, &path, None).await {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        return Err(e.for_task(
                            task_id,
                            "wait for the container at",
                            self.client.endpoint(),
                        ));
                    }
                }
            } else if found.is_created() && found.state.error.is_empty() {
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
        for summary in summaries {
            let Some(found) = self
                .inspect(&summary.id)
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
        probe::probe(&self.client, &found.id, check, timeout)
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
        let path = format!(
            "/containers/{}/logs?stdout=true&stderr=true&follow={follow}",
            found.id
        );
        let response = self
            .client
            .send(Method::GET, &path, None, &[])
            .await
            .map_err(self.err(task_id, "read the log at"))?;
        let response = self
            .client
            .check(&Method::GET, &path, response)
            .await
            .map_err(self.err(task_id, "read the log at"))?;
        let body = Box::pin(body_stream(response));
        if found.config.tty {
            Ok(Box::pin(body))
        } else {
            Ok(Box::pin(logs::demultiplex(body)))
        }
    }
}
