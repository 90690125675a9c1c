//! Builds in a container: the session protocol through named pipes, first
//! with a stand-in container that runs the wrapper on the host (always
//! runs), then in a real container of the local engine (Podman or Docker)
//! from the `cutover-sample:test` image, which has busybox `sh` and no
//! bash. The engine tests say "skipping" and pass without an engine, unless
//! `CUTOVER_CONTAINER_TESTS=1`, where they fail.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cutover_build::container::BoxFuture;
use cutover_build::plan::{PhaseStatus, PhaseType};
use cutover_build::run::{BuildOutcome, BuildRequest, LogLine, LogSource};
use cutover_build::{BuildContainer, BuildStatus, container_mounts, parse_buildspec, run_build_in};
use cutover_docker::{DockerOptions, DockerRuntime};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "cutover-sample:test";

/// Runs what would be exec'd in a container on the host instead.
struct OnHost;

impl BuildContainer for OnHost {
    fn exec_detached(
        &self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: String,
    ) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            let mut cmd = tokio::process::Command::new(&argv[0]);
            cmd.args(&argv[1..])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(env)
                .current_dir(workdir)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let mut child = cmd.spawn()?;
            tokio::spawn(async move { child.wait().await });
            Ok(())
        })
    }
}

/// A container of the local engine.
struct Engine {
    docker: Arc<DockerRuntime>,
    id: String,
}

impl BuildContainer for Engine {
    fn exec_detached(
        &self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: String,
    ) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            self.docker
                .exec_detached(&self.id, &argv, &env, &workdir)
                .await
                .map_err(io::Error::other)
        })
    }
}

struct Build {
    outcome: BuildOutcome,
    log: Vec<LogLine>,
}

impl Build {
    fn output(&self) -> Vec<&str> {
        self.log
            .iter()
            .filter(|l| l.source == LogSource::Output)
            .map(|l| l.text.as_str())
            .collect()
    }

    fn phase(&self, phase: PhaseType) -> PhaseStatus {
        self.outcome
            .phases
            .iter()
            .find(|p| p.phase == phase)
            .map(|p| p.status)
            .unwrap_or_else(|| panic!("no record of {phase:?}"))
    }
}

async fn build_in(yaml: &str, req: BuildRequest, container: Arc<dyn BuildContainer>) -> Build {
    let spec = parse_buildspec("buildspec.yml", yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .value;
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let outcome = run_build_in(
        &spec,
        req,
        Some(container),
        move |l| sink.lock().unwrap().push(l),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let log = log.lock().unwrap().clone();
    Build { outcome, log }
}

const SESSION: &str = r#"
version: 0.2
env:
  exported-variables: [GREETING]
phases:
  install:
    commands:
      - mkdir -p sub && cd sub
      - export GREETING=hello
  build:
    commands:
      - echo "in $(basename "$PWD") $GREETING"
      - echo built > ../out.txt
      - exit 3
      - echo not reached
    finally:
      - echo finally ran
  post_build:
    commands:
      - echo "after exit in $(basename "$PWD") $GREETING"
artifacts:
  files: [out.txt]
"#;

fn check_session(b: &Build) {
    let out = b.output();
    assert!(out.contains(&"in sub hello"), "{out:?}");
    assert!(out.contains(&"after exit in sub hello"), "{out:?}");
    assert!(out.contains(&"finally ran"), "{out:?}");
    assert!(!out.contains(&"not reached"), "{out:?}");
    assert_eq!(b.outcome.status, BuildStatus::Failed);
    assert_eq!(b.phase(PhaseType::Install), PhaseStatus::Succeeded);
    assert_eq!(b.phase(PhaseType::Build), PhaseStatus::Failed);
    assert_eq!(
        b.outcome
            .exported_variables
            .get("GREETING")
            .map(String::as_str),
        Some("hello")
    );
}

#[tokio::test]
async fn the_session_runs_through_named_pipes() {
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let req = BuildRequest::new("p", 1, src.path().into(), work.path().into());
    let b = build_in(SESSION, req, Arc::new(OnHost)).await;
    check_session(&b);
    // The upload still runs after a failed build phase, as on the host.
    assert_eq!(
        b.outcome.artifacts[0].files,
        vec![Path::new("out.txt").to_path_buf()]
    );
    assert_eq!(
        std::fs::read_to_string(src.path().join("out.txt")).unwrap(),
        "built\n"
    );
}

#[tokio::test]
async fn the_host_environment_is_not_passed_into_a_container() {
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let req = BuildRequest::new("p", 1, src.path().into(), work.path().into());
    let yaml = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"home=${HOME:-unset} src=$CODEBUILD_SRC_DIR\"\n";
    let b = build_in(yaml, req, Arc::new(OnHost)).await;
    let src_dir = std::fs::canonicalize(src.path()).unwrap();
    assert_eq!(
        b.output(),
        vec![format!("home=unset src={}", src_dir.display())]
    );
    assert_eq!(b.outcome.status, BuildStatus::Succeeded);
}

/// The local engine, or `None` after saying why (a panic when the tests
/// are required).
async fn engine() -> Option<Arc<DockerRuntime>> {
    let required = std::env::var("CUTOVER_CONTAINER_TESTS").is_ok_and(|v| v == "1");
    let instance = format!("test-build-{}", std::process::id());
    let docker = match DockerRuntime::connect(DockerOptions::new(instance)).await {
        Ok(d) => d,
        Err(e) if required => panic!("CUTOVER_CONTAINER_TESTS=1 but no container engine: {e}"),
        Err(e) => {
            eprintln!("skipping: no container engine ({e})");
            return None;
        }
    };
    match docker.image_exists(IMAGE).await {
        Ok(true) => Some(Arc::new(docker)),
        Ok(false) if required => panic!("CUTOVER_CONTAINER_TESTS=1 but no {IMAGE} image"),
        Ok(false) => {
            eprintln!("skipping: no {IMAGE} image (run scripts/build-test-images.sh)");
            None
        }
        Err(e) => panic!("cannot ask the engine for {IMAGE}: {e}"),
    }
}

async fn build_in_engine(docker: &Arc<DockerRuntime>, yaml: &str, src: &Path) -> Build {
    build_in_engine_with(docker, yaml, src, false).await
}

async fn build_in_engine_with(
    docker: &Arc<DockerRuntime>,
    yaml: &str,
    src: &Path,
    privileged: bool,
) -> Build {
    let work = tempfile::tempdir().unwrap();
    let req = BuildRequest::new("p", 1, src.into(), work.path().into());
    let mounts = container_mounts(&req).unwrap();
    let id = docker
        .create_build_container(&req.build_id, IMAGE, &mounts, privileged)
        .await
        .unwrap();
    let container = Arc::new(Engine {
        docker: docker.clone(),
        id: id.clone(),
    });
    let b = build_in(yaml, req, container).await;
    docker.remove_build_container(&id).await;
    b
}

#[tokio::test]
async fn a_build_runs_in_the_image_with_sh() {
    let Some(docker) = engine().await else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let b = build_in_engine(&docker, SESSION, src.path()).await;
    check_session(&b);
    assert_eq!(
        b.outcome.artifacts[0].files,
        vec![Path::new("out.txt").to_path_buf()]
    );

    // Inside the image (busybox, no bash), and artifacts are collected on
    // the host from the mounted source.
    let yaml = r#"
version: 0.2
phases:
  build:
    commands:
      - test -x /bin/busybox
      - if command -v bash; then echo has bash; else echo no bash; fi
      - mkdir -p dist && echo "$CODEBUILD_BUILD_ID" > dist/id.txt
artifacts:
  files: ['dist/**/*']
"#;
    let src = tempfile::tempdir().unwrap();
    let b = build_in_engine(&docker, yaml, src.path()).await;
    assert_eq!(b.outcome.status, BuildStatus::Succeeded, "{:?}", b.log);
    assert_eq!(b.output(), vec!["no bash"]);
    let set = &b.outcome.artifacts[0];
    assert_eq!(set.files, vec![Path::new("dist/id.txt").to_path_buf()]);
}

/// A privileged build (CodeBuild's `privilegedMode`) gets the engine's
/// socket and its address in `CONTAINER_HOST` and `DOCKER_HOST`; any other
/// build gets neither.
#[tokio::test]
async fn only_a_privileged_build_gets_the_engine_socket() {
    let Some(docker) = engine().await else {
        return;
    };
    let yaml = r#"
version: 0.2
phases:
  build:
    commands:
      - echo "host=${CONTAINER_HOST:-none} docker=${DOCKER_HOST:-none}"
      - if [ -S "${CONTAINER_HOST#unix://}" ]; then echo socket; else echo no socket; fi
"#;
    let address = docker.engine_address().to_string();
    let src = tempfile::tempdir().unwrap();
    let b = build_in_engine_with(&docker, yaml, src.path(), true).await;
    assert_eq!(b.outcome.status, BuildStatus::Succeeded, "{:?}", b.log);
    let socket = if address.starts_with("unix://") {
        "socket"
    } else {
        "no socket"
    };
    assert_eq!(
        b.output(),
        vec![format!("host={address} docker={address}"), socket.into()]
    );
    let b = build_in_engine_with(&docker, yaml, src.path(), false).await;
    assert_eq!(b.output(), vec!["host=none docker=none", "no socket"]);
}

#[tokio::test]
async fn build_containers_left_by_a_crash_are_swept() {
    let Some(_) = engine().await else {
        return;
    };
    // An instance of its own: the sweep removes every build container of it.
    let instance = format!("test-build-sweep-{}", std::process::id());
    let docker = DockerRuntime::connect(DockerOptions::new(instance))
        .await
        .unwrap();
    let id = docker
        .create_build_container("p:left", IMAGE, &[], false)
        .await
        .unwrap();
    assert_eq!(docker.remove_build_containers().await.unwrap(), 1);
    assert!(
        docker
            .exec_detached(&id, &["true".into()], &[], "/")
            .await
            .is_err()
    );
    assert_eq!(docker.remove_build_containers().await.unwrap(), 0);
}

#[tokio::test]
async fn an_image_that_cannot_be_had_is_a_cannot_pull_error() {
    let Some(docker) = engine().await else {
        return;
    };
    let err = docker
        .create_build_container("p:1", "localhost:1/cutover/no-such-image:x", &[], false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("CannotPullContainerError: "),
        "{err}"
    );
}
