//! Containers for CodeBuild-style builds: one long-lived container per
//! build, created from the project's image with the build's directories
//! bind-mounted at their host paths, kept alive by a `sleep`, and processes
//! started in it detached through the exec API. The build talks to those
//! processes through files and named pipes in the mounted directories (see
//! `cutover_build::container`), so no attached stream is needed here.
//! Removing the container kills everything the build started.
//!
//! A privileged build (CodeBuild's `privilegedMode`) also gets the engine
//! this runtime speaks to: its unix socket bind-mounted at the same path (a
//! tcp engine is reached as it is, over the host network the container
//! shares), named by `CONTAINER_HOST` and `DOCKER_HOST`, so `podman` (a
//! remote client then) or `docker` in the build builds and pushes on the
//! server's engine. Nothing else changes: no `--privileged` container, no
//! added capability. An unprivileged build container gets no socket.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::exec::{CreateExecOptions, StartExecOptions};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, StartContainerOptions};

use super::DockerRuntime;
use crate::container::{REASON_CANNOT_CREATE, REASON_CANNOT_PULL};
use crate::error::{DockerError, error_chain};

/// The label naming the build a build container belongs to.
pub const LABEL_BUILD: &str = "cutover.build";
/// The label naming the server instance that runs the build (not
/// `cutover.instance`, so that build containers are never taken for tasks).
pub const LABEL_BUILD_INSTANCE: &str = "cutover.build-instance";

/// A build container that could not be had, or an exec that failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildContainerError {
    /// The image is neither local nor pullable.
    #[error("{REASON_CANNOT_PULL}: {reason}")]
    CannotPull {
        /// The image asked for.
        image: String,
        /// Why, in words.
        reason: String,
    },
    /// The engine refused to create or start the container.
    #[error("{REASON_CANNOT_CREATE}: build {build_id} from image {image}: {source}")]
    CannotCreate {
        /// The build.
        build_id: String,
        /// The image.
        image: String,
        /// The engine's error.
        source: DockerError,
    },
    /// Any other engine call about the container failed.
    #[error("container {container_id}: {source}")]
    Engine {
        /// The container.
        container_id: String,
        /// The engine's error.
        source: DockerError,
    },
}

impl DockerRuntime {
    /// Creates and starts a container for build `build_id` from `image`
    /// (pulled if it is not local), with each of `mounts` bind-mounted
    /// read-write at the same path, host networking, and `sleep` as its
    /// main process; when `privileged`, with the engine's socket too (see
    /// the module's header). Returns the container id.
    pub async fn create_build_container(
        &self,
        build_id: &str,
        image: &str,
        mounts: &[PathBuf],
        privileged: bool,
    ) -> Result<String, BuildContainerError> {
        crate::image::ensure(
            &self.docker,
            image,
            &self.pull_auth,
            self.pull_idle_timeout,
            self.pull_progress.as_ref(),
        )
        .await
        .map_err(|reason| BuildContainerError::CannotPull {
            image: image.to_owned(),
            reason,
        })?;
        let mut binds: Vec<String> = mounts
            .iter()
            .map(|p| format!("{0}:{0}:rw", p.display()))
            .collect();
        let mut env = Vec::new();
        if privileged {
            let engine = engine_access(&self.info.socket);
            binds.extend(engine.bind);
            env = engine.env;
        }
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            env: (!env.is_empty()).then_some(env),
            entrypoint: Some(vec!["sleep".into()]),
            cmd: Some(vec!["2147483647".into()]),
            labels: Some(HashMap::from([
                (LABEL_BUILD_INSTANCE.to_owned(), self.instance.clone()),
                (LABEL_BUILD.to_owned(), build_id.to_owned()),
            ])),
            host_config: Some(HostConfig {
                binds: Some(binds),
                network_mode: Some("host".into()),
                init: Some(true),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let cannot_create = |source: bollard::errors::Error| BuildContainerError::CannotCreate {
            build_id: build_id.to_owned(),
            image: image.to_owned(),
            source: source.into(),
        };
        let created = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(cannot_create)?;
        let started = self
            .docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await;
        if let Err(e) = started {
            self.remove_build_container(&created.id).await;
            return Err(cannot_create(e));
        }
        tracing::info!(build_id, image, privileged, container_id = %created.id, "build container started");
        Ok(created.id)
    }

    /// The address of the engine privileged builds get, e.g.
    /// `unix:///run/podman/podman.sock`.
    pub fn engine_address(&self) -> &str {
        &self.info.socket
    }

    /// Starts `argv` in build container `container_id`, detached, with
    /// `env` added to the image's environment and `workdir` as its
    /// directory. Returns once the engine started it.
    pub async fn exec_detached(
        &self,
        container_id: &str,
        argv: &[String],
        env: &[(String, String)],
        workdir: &str,
    ) -> Result<(), BuildContainerError> {
        let engine = |source: bollard::errors::Error| BuildContainerError::Engine {
            container_id: container_id.to_owned(),
            source: source.into(),
        };
        let options = CreateExecOptions {
            cmd: Some(argv.to_vec()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: Some(workdir.to_owned()),
            attach_stdin: Some(false),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            tty: Some(false),
            ..CreateExecOptions::default()
        };
        let created = self
            .docker
            .create_exec(container_id, options)
            .await
            .map_err(engine)?;
        let start = StartExecOptions {
            detach: true,
            tty: false,
            output_capacity: None,
        };
        self.docker
            .start_exec(&created.id, Some(start))
            .await
            .map_err(engine)?;
        Ok(())
    }

    /// Removes every build container of this instance: those a crashed
    /// server left behind. Call it at start, before any build runs. Returns
    /// how many were removed.
    pub async fn remove_build_containers(&self) -> Result<usize, DockerError> {
        let found = self
            .list_labelled(vec![format!("{LABEL_BUILD_INSTANCE}={}", self.instance)])
            .await?;
        for id in found.iter().filter_map(|c| c.id.as_deref()) {
            self.remove_build_container(id).await;
        }
        if !found.is_empty() {
            tracing::info!(count = found.len(), "left-over build containers removed");
        }
        Ok(found.len())
    }

    /// Kills and removes build container `container_id` (and what runs in
    /// it). A container already gone is fine; other failures are logged.
    pub async fn remove_build_container(&self, container_id: &str) {
        match self.delete(container_id).await {
            Ok(()) => tracing::info!(container_id, "build container removed"),
            Err(e) => tracing::warn!(
                container_id, error = %error_chain(&e), "could not remove the build container"
            ),
        }
    }
}

/// What a privileged build container gets to reach the engine at
/// `address` (`unix:///path` or `tcp://host:port`, as discovery names it).
struct EngineAccess {
    /// The socket's bind mount, at the same path.
    bind: Option<String>,
    /// `CONTAINER_HOST` and `DOCKER_HOST`.
    env: Vec<String>,
}

fn engine_access(address: &str) -> EngineAccess {
    EngineAccess {
        bind: address
            .strip_prefix("unix://")
            .map(|path| format!("{path}:{path}:rw")),
        env: ["CONTAINER_HOST", "DOCKER_HOST"]
            .iter()
            .map(|name| format!("{name}={address}"))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_privileged_build_gets_the_engine_socket_or_its_tcp_address() {
        let unix = engine_access("unix:///run/podman/podman.sock");
        assert_eq!(
            unix.bind.as_deref(),
            Some("/run/podman/podman.sock:/run/podman/podman.sock:rw")
        );
        assert_eq!(
            unix.env,
            [
                "CONTAINER_HOST=unix:///run/podman/podman.sock",
                "DOCKER_HOST=unix:///run/podman/podman.sock"
            ]
        );
        let tcp = engine_access("tcp://127.0.0.1:2375");
        assert_eq!(tcp.bind, None);
        assert_eq!(tcp.env[1], "DOCKER_HOST=tcp://127.0.0.1:2375");
    }
}
