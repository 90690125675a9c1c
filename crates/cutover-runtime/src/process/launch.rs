//! Turning a container definition into a concrete process launch.
//!
//! Decides the program, arguments, environment and working directory of a
//! task: `entryPoint` + `command`, the word `cutover` meaning this binary,
//! relative program paths resolved against the working directory, the image
//! root (if any) as the base of `workingDirectory`, and the runtime's own
//! variables (`PORT`, `HOST`, `CUTOVER_*`) on top of the container's.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::image::{self, ImageRef};
use super::state::Launch;
use crate::{RuntimeError, TaskSpec};

/// Variables passed through from the server's environment (the container's
/// own `environment` may override them). Nothing else of the server's
/// environment reaches a task: it may hold the API token or credentials.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"];
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The part of this process's environment that tasks, their health checks
/// and their shims see: the variables of [`INHERITED_ENV`] that are set,
/// and a default `PATH`. Callers `env_clear()` first and add their own
/// variables after. (Commands run for pipelines and deployment hooks use
/// `cutover_build::process::base_env` instead.)
pub(crate) fn inherited_env() -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = INHERITED_ENV
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), std::env::var(name).ok()?)))
        .collect();
    env.entry("PATH".to_owned())
        .or_insert_with(|| DEFAULT_PATH.to_owned());
    env
}

/// A resolved launch plus what the runtime noticed on the way.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) launch: Launch,
    pub(crate) image_digest: Option<String>,
    pub(crate) warnings: Vec<String>,
}

/// Where the runtime keeps things and which binary `cutover` means.
pub(crate) struct Context<'a> {
    pub(crate) task_dir: &'a Path,
    pub(crate) images_dir: &'a Path,
    pub(crate) cutover_bin: &'a Path,
    pub(crate) port: u16,
    /// Keep setuid and setgid bits when materialising images.
    pub(crate) keep_setuid: bool,
}

/// Resolves `spec` into a launch; blocking (it may materialise an image).
pub(crate) fn resolve(spec: &TaskSpec, ctx: &Context<'_>) -> Result<Resolved, RuntimeError> {
    let task_id = &spec.task_id;
    let invalid = |reason: String| RuntimeError::InvalidSpec {
        task_id: task_id.clone(),
        reason,
    };
    let container = &spec.container;
    let mut argv = container.entry_point.iter().chain(&container.command);
    let first = argv.next().ok_or_else(|| {
        invalid(format!(
            "container {:?} has neither entryPoint nor command",
            container.name
        ))
    })?;
    let args: Vec<String> = argv.cloned().collect();
    let mut warnings = Vec::new();

    let image = match container.image.as_deref().map(|i| (i, ImageRef::parse(i))) {
        None => None,
        Some((_, ImageRef::Path(path))) => {
            let prepared =
                image::prepare(ctx.images_dir, &path, ctx.keep_setuid).map_err(|source| {
                    RuntimeError::Image {
                        task_id: task_id.clone(),
                        image: container.image.clone().unwrap_or_default(),
                        source,
                    }
                })?;
            Some(prepared)
        }
        Some((name, ImageRef::Foreign)) => {
            let warning = format!(
                "image {name:?} is not a local directory or tar archive; the process runtime ignores it"
            );
            tracing::warn!(%task_id, image = %name, "image ignored by the process runtime");
            warnings.push(warning);
            None
        }
    };

    let cwd = match (&image, container.working_directory.as_deref()) {
        (Some(image), wd) => {
            let rel = wd.map(|wd| {
                relative_inside(wd).ok_or_else(|| {
                    invalid(format!("workingDirectory {wd:?} escapes the image root"))
                })
            });
            let cwd = match rel.transpose()? {
                Some(rel) => image.rootfs.join(rel),
                None => image.rootfs.clone(),
            };
            if !cwd.is_dir() {
                return Err(invalid(format!(
                    "workingDirectory {:?} does not exist in the image",
                    container.working_directory.as_deref().unwrap_or("/")
                )));
            }
            // A symlink inside the image may point anywhere on the host:
            // the directory actually entered must be inside the image.
            let real = cwd.canonicalize().ok();
            let root = image.rootfs.canonicalize().ok();
            match (real, root) {
                (Some(real), Some(root)) if real.starts_with(&root) => real,
                _ => {
                    return Err(invalid(format!(
                        "workingDirectory {:?} leaves the image root through a symbolic link",
                        container.working_directory.as_deref().unwrap_or("/")
                    )));
                }
            }
        }
        (None, None) => ctx.task_dir.to_owned(),
        (None, Some(wd)) if Path::new(wd).is_absolute() => PathBuf::from(wd),
        (None, Some(wd)) => std::env::current_dir()
            .map_err(|e| RuntimeError::io(task_id, "read", "the current directory", e))?
            .join(wd),
    };

    let program = if first == "cutover" {
        ctx.cutover_bin.to_owned()
    } else if first.contains('/') && Path::new(first).is_relative() {
        cwd.join(first)
    } else {
        PathBuf::from(first)
    };

    let mut env = inherited_env();
    for (name, value) in &container.environment {
        if matches!(name.as_str(), "PORT" | "HOST") {
            warnings.push(format!("environment variable {name} is set by the process runtime; the task definition's value is replaced"));
        }
        env.insert(name.clone(), value.clone());
    }
    for (name, value) in [
        ("PORT", ctx.port.to_string()),
        ("HOST", "127.0.0.1".to_owned()),
        ("CUTOVER_TASK_ID", spec.task_id.clone()),
        ("CUTOVER_SERVICE", spec.service.clone()),
        ("CUTOVER_TASK_DEFINITION", spec.task_definition.clone()),
        ("CUTOVER_CONTAINER_NAME", container.name.clone()),
    ] {
        env.insert(name.to_owned(), value);
    }

    Ok(Resolved {
        launch: Launch {
            program,
            args,
            env: env.into_iter().collect(),
            cwd,
            port: ctx.port,
            stop_timeout_ms: u64::try_from(container.stop_timeout.as_millis()).unwrap_or(u64::MAX),
        },
        image_digest: image.map(|i| i.digest),
        warnings,
    })
}

/// `wd` as a path relative to an image root (a leading `/` means the root),
/// or `None` if it would leave the root.
fn relative_inside(wd: &str) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for component in Path::new(wd).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => rel.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContainerSpec;

    fn spec(container: ContainerSpec) -> TaskSpec {
        TaskSpec {
            task_id: "t1".into(),
            service: "web".into(),
            task_definition: "web:3".into(),
            container,
            labels: BTreeMap::new(),
            placement: Default::default(),
        }
    }

    fn ctx<'a>(dir: &'a Path, bin: &'a Path) -> Context<'a> {
        Context {
            task_dir: dir,
            images_dir: dir,
            cutover_bin: bin,
            port: 4321,
            keep_setuid: false,
        }
    }

    #[test]
    fn cutover_word_means_this_binary_and_runtime_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let bin = Path::new("/opt/cutover/bin/cutover");
        let resolved = resolve(
            &spec(ContainerSpec {
                name: "app".into(),
                entry_point: vec!["cutover".into()],
                command: vec!["sample-app".into()],
                environment: vec![
                    ("PORT".into(), "80".into()),
                    ("APP_VERSION".into(), "v2".into()),
                ],
                ..ContainerSpec::default()
            }),
            &ctx(dir.path(), bin),
        )
        .unwrap();
        let launch = resolved.launch;
        assert_eq!(launch.program, bin);
        assert_eq!(launch.args, ["sample-app"]);
        assert_eq!(launch.cwd, dir.path());
        let env: BTreeMap<_, _> = launch.env.into_iter().collect();
        assert_eq!(env["PORT"], "4321");
        assert_eq!(env["HOST"], "127.0.0.1");
        assert_eq!(env["APP_VERSION"], "v2");
        assert_eq!(env["CUTOVER_TASK_ID"], "t1");
        assert_eq!(env["CUTOVER_TASK_DEFINITION"], "web:3");
        assert_eq!(resolved.warnings.len(), 1, "PORT override is reported");
    }

    #[test]
    fn empty_command_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(
            &spec(ContainerSpec::default()),
            &ctx(dir.path(), dir.path()),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("neither entryPoint nor command"),
            "{err}"
        );
    }

    #[test]
    fn working_directory_cannot_escape_the_image() {
        assert_eq!(relative_inside("/app/web"), Some(PathBuf::from("app/web")));
        assert_eq!(relative_inside("srv/./x"), Some(PathBuf::from("srv/x")));
        assert_eq!(relative_inside("/app/../../etc"), None);
    }

    #[test]
    fn foreign_image_is_ignored_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let resolved = resolve(
            &spec(ContainerSpec {
                image: Some("nginx:1.27".into()),
                command: vec!["./run.sh".into()],
                working_directory: Some("/srv".into()),
                ..ContainerSpec::default()
            }),
            &ctx(dir.path(), dir.path()),
        )
        .unwrap();
        assert_eq!(resolved.launch.cwd, Path::new("/srv"));
        assert_eq!(resolved.launch.program, Path::new("/srv/run.sh"));
        assert!(resolved.warnings[0].contains("nginx:1.27"));
        assert_eq!(resolved.image_digest, None);
    }

    #[test]
    fn working_directory_cannot_leave_the_image_through_a_symlink() {
        let images = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("app")).unwrap();
        std::os::unix::fs::symlink("/etc", src.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("app", src.path().join("inside")).unwrap();
        let run = |wd: &str| {
            resolve(
                &spec(ContainerSpec {
                    image: Some(src.path().display().to_string()),
                    command: vec!["/bin/true".into()],
                    working_directory: Some(wd.into()),
                    ..ContainerSpec::default()
                }),
                &ctx(images.path(), images.path()),
            )
        };
        let err = run("/escape").unwrap_err().to_string();
        assert!(err.contains("leaves the image root"), "{err}");
        let ok = run("/inside").unwrap();
        assert!(ok.launch.cwd.ends_with("rootfs/app"), "{:?}", ok.launch.cwd);
    }
}
