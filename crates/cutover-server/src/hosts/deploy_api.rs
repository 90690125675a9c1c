//! `/v1/host-deployments`: operators' calls to deploy a revision to a
//! deployment group's hosts (`cutover deploy --application`), to list them
//! (the console's hosts page), to look at a host deployment host by host
//! (`cutover deployments get`) and to stop one.
//!
//! Creating one streams the bundle (the request's body) to a temporary
//! file in the data directory, stores it content-addressed, then checks its
//! `appspec.yml` with the one parser of appspec 0.0: a mistake is a located
//! error (422 with the diagnostics, like a refused `stack.yaml`) before any
//! host is touched.

use std::io::Read;
use std::path::{Path as FsPath, PathBuf};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use cutover_api::agents::BundleFormat;
use cutover_api::host_deployments::{
    CreateHostDeploymentQuery, HostDeploymentList, HostDeploymentView, ListHostDeploymentsQuery,
    StopHostDeploymentQuery,
};
use cutover_store::host_deployments as hd;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::deployer::{HostDeployError, NewHostDeployment};
use super::fleet::BundleStore;
use super::revisions::{self, APPSPEC_NAMES, MAX_APPSPEC, RevisionError};
use crate::api::{ApiError, ApiResult, AppState};

/// The largest bundle accepted.
const MAX_BUNDLE: u64 = 1 << 30;

impl From<HostDeployError> for ApiError {
    fn from(e: HostDeployError) -> Self {
        let message = e.to_string();
        match e {
            HostDeployError::UnknownApplication(_)
            | HostDeployError::UnknownGroup { .. }
            | HostDeployError::NotRunning(_) => ApiError::new(StatusCode::NOT_FOUND, message),
            HostDeployError::UnknownConfig(_)
            | HostDeployError::NoReplacementHosts(_)
            | HostDeployError::TrafficConfig { .. } => ApiError::bad_request(message),
            HostDeployError::Busy { .. } => ApiError::new(StatusCode::CONFLICT, message),
            HostDeployError::Fleet(e) => e.into(),
            HostDeployError::Store(e) => e.into(),
        }
    }
}

impl From<RevisionError> for ApiError {
    fn from(e: RevisionError) -> Self {
        let message = e.to_string();
        match e {
            RevisionError::Deploy(e) => e.into(),
            RevisionError::Fleet(e) => e.into(),
            RevisionError::Appspec(_, e) => {
                ApiError::invalid(message, e.diagnostics.clone(), e.warnings.clone())
            }
            RevisionError::Io(_) => internal(message),
            RevisionError::UnknownRepository(_) => ApiError::not_found(message),
            RevisionError::WhichRepository(..)
            | RevisionError::BadRef(_)
            | RevisionError::Git(_)
            | RevisionError::NoAppspec => ApiError::bad_request(message),
        }
    }
}

/// `POST /v1/host-deployments?application=&deploymentGroup=` with a bundle
/// as the body, or `&git=[REPOSITORY@]REF` and no body.
pub(crate) async fn create(
    State(st): State<AppState>,
    Query(q): Query<CreateHostDeploymentQuery>,
    body: Body,
) -> ApiResult<(StatusCode, Json<HostDeploymentView>)> {
    if let Some(git) = &q.git {
        let (repository, reference) = revisions::split_git(git);
        let repository = revisions::repository(&st, repository, git).await?;
        let target = revisions::Target {
            application: q.application.clone(),
            group: q.deployment_group.clone(),
            config: q.deployment_config.clone(),
        };
        let id = revisions::deploy_git(&st, target, &repository, reference).await?;
        return Ok((StatusCode::CREATED, Json(load(&st, &id).await?)));
    }
    let format = q.format.unwrap_or(BundleFormat::Tar);
    let spool = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(&st.data_dir)
        .map_err(|e| internal(format!("cannot spool the bundle: {e}")))?
        .into_temp_path();
    receive(body, &spool).await?;
    let path = spool.to_path_buf();
    let text = tokio::task::spawn_blocking(move || read_appspec(&path, format))
        .await
        .map_err(|e| internal(format!("appspec reader: {e}")))?
        .map_err(|e| ApiError::bad_request(format!("cannot read the {format:?} bundle: {e}")))?;
    let Some((name, text)) = text else {
        return Err(ApiError::bad_request(
            "the revision has no appspec.yml at its root",
        ));
    };
    cutover_spec::parse_host_appspec(name, &text).map_err(|e| {
        ApiError::invalid(
            format!("{name} is refused"),
            e.diagnostics.clone(),
            e.warnings.clone(),
        )
    })?;
    let revision = st.bundles.put_file(spool.to_path_buf(), format).await?;
    drop(spool);
    let id = st
        .host_deployer
        .create(NewHostDeployment {
            application: q.application,
            group: q.deployment_group,
            source: q.source.unwrap_or_else(|| revision.digest.clone()),
            revision,
            config: q.deployment_config,
            started_by: None,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(load(&st, &id).await?)))
}

/// `GET /v1/host-deployments[?application=A[&deploymentGroup=G]][&limit=N]`.
pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListHostDeploymentsQuery>,
) -> ApiResult<Json<HostDeploymentList>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let rows = match (q.application, q.deployment_group) {
        (Some(app), Some(group)) => {
            st.store
                .call(move |c| hd::group_host_deployments(c, &app, &group))
                .await?
        }
        (Some(app), None) => st
            .store
            .call(hd::all_host_deployments)
            .await?
            .into_iter()
            .filter(|r| r.application == app)
            .collect(),
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "deploymentGroup needs application".to_string(),
            ));
        }
        (None, None) => st.store.call(hd::all_host_deployments).await?,
    };
    Ok(Json(HostDeploymentList {
        host_deployments: rows
            .iter()
            .take(limit)
            .map(|r| super::views::view(r).into())
            .collect(),
    }))
}

/// `GET /v1/host-deployments/{id}`.
pub(crate) async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<HostDeploymentView>> {
    Ok(Json(load(&st, &id).await?))
}

/// `POST /v1/host-deployments/{id}/stop[?rollback=true]`.
pub(crate) async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopHostDeploymentQuery>,
) -> ApiResult<Json<HostDeploymentView>> {
    let view = load(&st, &id).await?;
    if view.finished_at_ms.is_some() || !st.host_deployer.is_running(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("host deployment {id} has ended ({:?})", view.status),
        ));
    }
    st.host_deployer.stop(&id, q.rollback)?;
    Ok(Json(view))
}

async fn load(st: &AppState, id: &str) -> ApiResult<HostDeploymentView> {
    let owned = id.to_string();
    let row = st
        .store
        .call(move |c| hd::host_deployment(c, &owned))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("host deployment {id:?}")))?;
    Ok(super::views::view(&row))
}

fn internal(message: String) -> ApiError {
    tracing::error!(%message, "host deployment upload failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// Streams `body` to `path`, refusing more than [`MAX_BUNDLE`] bytes.
async fn receive(body: Body, path: &FsPath) -> ApiResult<()> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| internal(format!("cannot spool the bundle: {e}")))?;
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
        total += chunk.len() as u64;
        if total > MAX_BUNDLE {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a bundle is at most {MAX_BUNDLE} bytes"),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| internal(format!("cannot spool the bundle: {e}")))?;
    }
    file.flush()
        .await
        .map_err(|e| internal(format!("cannot spool the bundle: {e}")))?;
    if total == 0 {
        return Err(ApiError::bad_request("the body (the bundle) is empty"));
    }
    Ok(())
}

/// The appspec at the root of the archive at `path`, with its name.
fn read_appspec(
    path: &FsPath,
    format: BundleFormat,
) -> std::io::Result<Option<(&'static str, String)>> {
    let file = std::fs::File::open(path)?;
    let mut found: Vec<(usize, String)> = Vec::new();
    let mut consider = |entry: PathBuf, r: &mut dyn Read| -> std::io::Result<()> {
        let entry = entry.strip_prefix(".").unwrap_or(&entry).to_path_buf();
        let Some(rank) = APPSPEC_NAMES.iter().position(|n| entry == FsPath::new(n)) else {
            return Ok(());
        };
        let mut text = String::new();
        r.take(MAX_APPSPEC).read_to_string(&mut text)?;
        found.push((rank, text));
        Ok(())
    };
    match format {
        BundleFormat::Tar => tar_entries(tar::Archive::new(file), &mut consider)?,
        BundleFormat::Tgz => tar_entries(
            tar::Archive::new(flate2::read::GzDecoder::new(file)),
            &mut consider,
        )?,
        BundleFormat::Zip => {
            let mut zip = zip::ZipArchive::new(file).map_err(std::io::Error::other)?;
            for i in 0..zip.len() {
                let mut f = zip.by_index(i).map_err(std::io::Error::other)?;
                if let Some(name) = f.enclosed_name() {
                    consider(name, &mut f)?;
                }
            }
        }
    }
    found.sort_by_key(|(rank, _)| *rank);
    Ok(found
        .into_iter()
        .next()
        .map(|(rank, text)| (APPSPEC_NAMES[rank], text)))
}

fn tar_entries<R: Read>(
    mut archive: tar::Archive<R>,
    consider: &mut impl FnMut(PathBuf, &mut dyn Read) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        consider(path, &mut entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> tempfile::NamedTempFile {
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut b = tar::Builder::new(out.reopen().unwrap());
        for (name, text) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, text.as_bytes()).unwrap();
        }
        b.finish().unwrap();
        out
    }

    #[test]
    fn finds_the_appspec_at_the_root_only() {
        let t = tar_of(&[
            ("sub/appspec.yml", "nested"),
            ("./appspec.yaml", "yaml"),
            ("scripts/start.sh", "#!/bin/sh"),
        ]);
        let got = read_appspec(t.path(), BundleFormat::Tar).unwrap();
        assert_eq!(got, Some(("appspec.yaml", "yaml".to_string())));
        let none = tar_of(&[("sub/appspec.yml", "nested")]);
        assert_eq!(read_appspec(none.path(), BundleFormat::Tar).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), b"not an archive at all, really").unwrap();
        assert!(read_appspec(t.path(), BundleFormat::Tgz).is_err());
        assert!(read_appspec(t.path(), BundleFormat::Zip).is_err());
    }
}
