//! Revisions the server reads itself rather than receives as a bundle: a
//! commit of a stack repository (`cutover deploy --revision git:REF`,
//! CodeDeploy's GitHub revision) and a directory (a pipeline's input
//! artifact, through [`super::for_pipelines`]). Each is checked like an
//! uploaded bundle (its `appspec.yml` parsed with every located diagnostic
//! before any host is touched), packed with [`BundleStore::put_dir`] and
//! deployed.
//!
//! A tree is read by `cutover-ci`'s git mirrors (`Pipelines::export_tree`),
//! the pipelines' own source code, never a second git reader.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cutover_spec::SpecError;

use super::deployer::{HostDeployError, HostDeployer, NewHostDeployment};
use super::fleet::{BundleStore, FleetError};
use crate::api::AppState;

/// The names an appspec may have at a revision's root, in preference order.
pub(crate) const APPSPEC_NAMES: [&str; 3] = ["appspec.yml", "appspec.yaml", "appspec.json"];

/// The largest `appspec.yml` read from a revision.
pub(crate) const MAX_APPSPEC: u64 = 1 << 20;

/// Why a revision could not be deployed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RevisionError {
    /// No repository of `repositories:` has this name or URL.
    #[error(
        "no repository of the stack's repositories: is named {0:?} or has that URL (owner/name matches a URL ending in /owner/name)"
    )]
    UnknownRepository(String),
    /// `git:` names no repository and the stack declares not exactly one.
    #[error(
        "git:{0}: name the repository (git:REPOSITORY@REF); the stack declares {1} repositories"
    )]
    WhichRepository(String, usize),
    /// The ref is empty or looks like an option.
    #[error("{0:?} is not a branch, tag or commit")]
    BadRef(String),
    /// Reading the tree failed (an unknown ref, an unreachable remote).
    #[error(transparent)]
    Git(#[from] cutover_ci::PipelineError),
    /// The revision has no appspec at its root.
    #[error("the revision has no appspec.yml at its root")]
    NoAppspec,
    /// The appspec is refused.
    #[error("{0} is refused")]
    Appspec(&'static str, SpecError),
    /// The deployment could not be created.
    #[error(transparent)]
    Deploy(#[from] HostDeployError),
    /// Storing the bundle failed.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// A temporary directory could not be made or read.
    #[error("revision: {0}")]
    Io(#[from] std::io::Error),
}

/// A deployment to make of a server-side revision.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The application.
    pub(crate) application: String,
    /// The deployment group.
    pub(crate) group: String,
    /// A configuration overriding the group's.
    pub(crate) config: Option<String>,
}

/// Splits `git:` revision text into a repository (if named) and a ref:
/// `REPOSITORY@REF` or `REF`.
pub(crate) fn split_git(text: &str) -> (Option<&str>, &str) {
    match text.rsplit_once('@') {
        Some((repo, reference)) if !repo.is_empty() => (Some(repo), reference),
        _ => (None, text),
    }
}

/// The declared repository `wanted` names: a `repositories:` key, its URL,
/// or `owner/name` matching the end of its URL (GitHub's form); `None`
/// names the only one.
pub(crate) async fn repository(
    st: &AppState,
    wanted: Option<&str>,
    what: &str,
) -> Result<String, RevisionError> {
    let rows = st
        .store
        .call(cutover_store::pipeline_ops::list_repositories)
        .await
        .map_err(|e| RevisionError::Fleet(e.into()))?;
    let Some(wanted) = wanted else {
        return match rows.as_slice() {
            [only] => Ok(only.name.clone()),
            _ => Err(RevisionError::WhichRepository(what.to_string(), rows.len())),
        };
    };
    let tail = |url: &str| {
        let url = url.trim_end_matches('/');
        let url = url.strip_suffix(".git").unwrap_or(url);
        url.ends_with(&format!("/{wanted}")) || url.ends_with(&format!(":{wanted}"))
    };
    rows.iter()
        .find(|r| r.name == wanted)
        .or_else(|| rows.iter().find(|r| r.spec.url == wanted))
        .or_else(|| {
            rows.iter()
                .find(|r| wanted.contains('/') && tail(&r.spec.url))
        })
        .map(|r| r.name.clone())
        .ok_or_else(|| RevisionError::UnknownRepository(wanted.to_string()))
}

/// Deploys the tree of `reference` of the declared repository
/// `repository` to `target`; returns the deployment's id.
pub(crate) async fn deploy_git(
    st: &AppState,
    target: Target,
    repository: &str,
    reference: &str,
) -> Result<String, RevisionError> {
    if reference.is_empty() || reference.starts_with('-') {
        return Err(RevisionError::BadRef(reference.to_string()));
    }
    let tree = tempfile::Builder::new()
        .prefix("git-revision-")
        .tempdir_in(&st.data_dir)?;
    let commit = st
        .pipelines
        .export_tree(repository, reference, tree.path())
        .await?;
    let source = format!("git:{repository}@{commit}");
    deploy_dir(st, target, tree.path().to_path_buf(), source).await
}

/// Deploys the directory `dir` to `target`; returns the deployment's id.
pub(crate) async fn deploy_dir(
    st: &AppState,
    target: Target,
    dir: PathBuf,
    source: String,
) -> Result<String, RevisionError> {
    deploy_dir_with(&*st.bundles, &st.host_deployer, target, dir, source, None).await
}

/// [`deploy_dir`] through `bundles` and `deployer`, the deployment tagged
/// `started_by` (a pipeline action's).
pub(crate) async fn deploy_dir_with(
    bundles: &dyn BundleStore,
    deployer: &Arc<HostDeployer>,
    target: Target,
    dir: PathBuf,
    source: String,
    started_by: Option<String>,
) -> Result<String, RevisionError> {
    let root = dir.clone();
    let found = tokio::task::spawn_blocking(move || read_appspec(&root))
        .await
        .map_err(std::io::Error::other)??;
    let (name, text) = found.ok_or(RevisionError::NoAppspec)?;
    cutover_spec::parse_host_appspec(name, &text).map_err(|e| RevisionError::Appspec(name, e))?;
    let revision = bundles.put_dir(dir).await?;
    Ok(deployer
        .create(NewHostDeployment {
            application: target.application,
            group: target.group,
            revision,
            source,
            config: target.config,
            started_by,
        })
        .await?)
}

/// The appspec at the root of directory `dir`, with its name. A symlink
/// is not followed (a build decides what its artifact holds): it is no
/// appspec.
fn read_appspec(dir: &Path) -> std::io::Result<Option<(&'static str, String)>> {
    use std::io::Read;
    for name in APPSPEC_NAMES {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
            let mut text = String::new();
            std::fs::File::open(path)?
                .take(MAX_APPSPEC)
                .read_to_string(&mut text)?;
            return Ok(Some((name, text)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_text_names_a_repository_or_only_a_ref() {
        assert_eq!(split_git("shop@v2"), (Some("shop"), "v2"));
        assert_eq!(split_git("me/shop@main"), (Some("me/shop"), "main"));
        assert_eq!(split_git("main"), (None, "main"));
        assert_eq!(split_git("@main"), (None, "@main"));
    }

    #[test]
    fn the_appspec_is_read_from_the_root_in_preference_order() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read_appspec(d.path()).unwrap(), None);
        std::fs::write(d.path().join("appspec.yaml"), "b").unwrap();
        std::fs::write(d.path().join("appspec.yml"), "a").unwrap();
        assert_eq!(
            read_appspec(d.path()).unwrap(),
            Some(("appspec.yml", "a".to_string()))
        );
        let e = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(d.path().join("appspec.yml"), e.path().join("appspec.yml"))
            .unwrap();
        assert_eq!(read_appspec(e.path()).unwrap(), None);
    }
}
