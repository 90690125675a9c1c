//! Images: a local image is used as it is; an absent one is pulled, with
//! registry credentials when the Docker configuration has them.
//!
//! A pull is `bollard`'s stream of progress events; each layer's status
//! changes go to `tracing` (and to the optional progress callback). A pull
//! fails on an error event (which `bollard` yields as an error), an error
//! status, or when the engine sends nothing for the idle timeout, so an
//! unreachable registry ends the task with a `CannotPullContainerError`
//! instead of hanging it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

use crate::error::{DockerError, if_exists};
use crate::{ProgressFn, PullProgress};

/// An image reference split the way `POST /images/create` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    /// Registry host the image comes from (`docker.io` by default).
    pub(crate) registry: String,
    /// `fromImage`: the reference without tag or digest.
    pub(crate) name: String,
    /// `tag`: the tag, the digest (`sha256:...`), or `latest`.
    pub(crate) tag: String,
}

/// Splits `[registry/]path[:tag][@digest]`.
pub(crate) fn parse_reference(image: &str) -> ImageRef {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(colon) => (
            &rest[..last_slash + colon],
            Some(&rest[last_slash + colon + 1..]),
        ),
        None => (rest, None),
    };
    let registry = match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_owned()
        }
        _ => "docker.io".to_owned(),
    };
    ImageRef {
        registry,
        name: name.to_owned(),
        tag: digest.or(tag).unwrap_or("latest").to_owned(),
    }
}

/// How an image was made available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Availability {
    /// It was already in the engine's store.
    Local,
    /// It was pulled now.
    Pulled,
}

/// Whether the engine has `image` locally (no pull is attempted).
pub(crate) async fn exists(docker: &Docker, image: &str) -> Result<bool, DockerError> {
    Ok(if_exists(docker.inspect_image(image).await)?.is_some())
}

/// Makes `image` available in the engine. The error is the reason in words,
/// to follow `CannotPullContainerError: `.
pub(crate) async fn ensure(
    docker: &Docker,
    image: &str,
    auth: &crate::auth::PullAuth,
    idle_timeout: Duration,
    progress: Option<&ProgressFn>,
) -> Result<Availability, String> {
    let failed =
        |what: &str, e: DockerError| format!("{what} image {image}: {}", e.engine_message());
    if exists(docker, image)
        .await
        .map_err(|e| failed("inspect", e))?
    {
        return Ok(Availability::Local);
    }
    let reference = parse_reference(image);
    tracing::info!(image, registry = %reference.registry, "pulling image");
    let credentials = auth.for_registry(&reference.registry);
    let options = CreateImageOptionsBuilder::default()
        .from_image(&reference.name)
        .tag(&reference.tag)
        .build();
    let mut events = docker.create_image(Some(options), None, credentials);
    let mut layers: HashMap<String, String> = HashMap::new();
    loop {
        match tokio::time::timeout(idle_timeout, events.next()).await {
            Err(_) => {
                return Err(format!(
                    "pull image {image}: no progress from the engine for {idle_timeout:?}"
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(failed("pull", e.into())),
            Ok(Some(Ok(event))) => report(image, &event, &mut layers, progress),
        }
    }
    // Some engines end a failed pull without an error event: check.
    match exists(docker, image).await {
        Ok(true) => {
            tracing::info!(image, "image pulled");
            Ok(Availability::Pulled)
        }
        Ok(false) => Err(format!(
            "pull image {image}: the engine reported no error but the image is not there"
        )),
        Err(e) => Err(failed("inspect", e)),
    }
}

fn report(
    image: &str,
    event: &CreateImageInfo,
    layers: &mut HashMap<String, String>,
    progress: Option<&ProgressFn>,
) {
    let Some(status) = event.status.as_deref() else {
        return;
    };
    let detail = event.progress_detail.as_ref();
    if let Some(callback) = progress {
        let bytes = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
        callback(&PullProgress {
            image: image.to_owned(),
            layer: event.id.clone(),
            status: status.to_owned(),
            current: bytes(detail.and_then(|d| d.current)),
            total: bytes(detail.and_then(|d| d.total)),
        });
    }
    let layer = event.id.clone().unwrap_or_default();
    if layers.get(&layer).map(String::as_str) != Some(status) {
        tracing::info!(image, layer = %layer, status, "pull progress");
        layers.insert(layer, status.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(registry: &str, name: &str, tag: &str) -> ImageRef {
        ImageRef {
            registry: registry.into(),
            name: name.into(),
            tag: tag.into(),
        }
    }

    #[test]
    fn references_split_into_name_and_tag() {
        assert_eq!(parse_reference("nginx"), r("docker.io", "nginx", "latest"));
        assert_eq!(
            parse_reference("library/nginx:1.25"),
            r("docker.io", "library/nginx", "1.25")
        );
        assert_eq!(
            parse_reference("localhost:5000/app/web:v2"),
            r("localhost:5000", "localhost:5000/app/web", "v2")
        );
        assert_eq!(
            parse_reference("123.dkr.ecr.us-east-1.amazonaws.com/web@sha256:abc"),
            r(
                "123.dkr.ecr.us-east-1.amazonaws.com",
                "123.dkr.ecr.us-east-1.amazonaws.com/web",
                "sha256:abc"
            )
        );
        assert_eq!(
            parse_reference("localhost/web"),
            r("localhost", "localhost/web", "latest")
        );
        assert_eq!(
            parse_reference("cutover-sample:test"),
            r("docker.io", "cutover-sample", "test")
        );
    }
}
