//! Images: a local image is used as it is; an absent one is pulled, with
//! registry credentials when the Docker configuration has them.
//!
//! A pull streams JSON progress events; each layer's status changes go to
//! `tracing` (and to the optional progress callback). A pull fails on an
//! `error` event, an error status, or when the engine sends nothing for the
//! idle timeout, so an unreachable registry ends the task with a
//! `CannotPullContainerError` instead of hanging it.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use http::Method;
use serde::Deserialize;

use crate::client::{Client, body_stream, encode};
use crate::error::error_chain;
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

/// One event of the pull stream.
#[derive(Debug, Default, Deserialize)]
struct PullEvent {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
    #[serde(default, rename = "progressDetail")]
    progress_detail: Option<ProgressDetail>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ProgressDetail {
    #[serde(default)]
    current: Option<u64>,
    #[serde(default)]
    total: Option<u64>,
}

/// Makes `image` available in the engine. The error is the reason in words,
/// to follow `CannotPullContainerError: `.
pub(crate) async fn ensure(
    client: &Client,
    image: &str,
    docker_config: Option<&Path>,
    idle_timeout: Duration,
    progress: Option<&ProgressFn>,
) -> Result<Availability, String> {
    match client
        .call(Method::GET, &format!("/images/{image}/json"), None)
        .await
    {
        Ok(_) => return Ok(Availability::Local),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(format!("inspect image {image}: {}", error_chain(&e))),
    }
    let reference = parse_reference(image);
    tracing::info!(image, registry = %reference.registry, "pulling image");
    let mut headers = Vec::new();
    if let Some(header) =
        docker_config.and_then(|path| crate::auth::registry_auth_header(path, &reference.registry))
    {
        headers.push(("x-registry-auth", header));
    }
    let path = format!(
        "/images/create?fromImage={}&tag={}",
        encode(&reference.name),
        encode(&reference.tag)
    );
    let pull = async {
        let response = client
            .send(Method::POST, &path, None, &headers)
            .await
            .map_err(|e| format!("pull image {image}: {}", error_chain(&e)))?;
        let response = client
            .check(&Method::POST, &path, response)
            .await
            .map_err(|e| format!("pull image {image}: {}", e.engine_message()))?;
        let mut body = Box::pin(body_stream(response));
        let mut parser = EventParser::default();
        let mut layers: HashMap<String, String> = HashMap::new();
        loop {
            let chunk = match tokio::time::timeout(idle_timeout, body.next()).await {
                Err(_) => {
                    return Err(format!(
                        "pull image {image}: no progress from the engine for {idle_timeout:?}"
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(format!("pull image {image}: {e}")),
                Ok(Some(Ok(chunk))) => chunk,
            };
            for event in parser.push(&chunk) {
                if let Some(message) = event
                    .error
                    .clone()
                    .or_else(|| event.error_detail.as_ref().and_then(|d| d.message.clone()))
                {
                    return Err(format!("pull image {image}: {message}"));
                }
                report(image, &event, &mut layers, progress);
            }
        }
        Ok(())
    };
    pull.await?;
    // Some engines end a failed pull without an error event: check.
    match client
        .call(Method::GET, &format!("/images/{image}/json"), None)
        .await
    {
        Ok(_) => {
            tracing::info!(image, "image pulled");
            Ok(Availability::Pulled)
        }
        Err(e) => Err(format!(
            "pull image {image}: the engine reported no error but the image is not there: {}",
            e.engine_message()
        )),
    }
}

fn report(
    image: &str,
    event: &PullEvent,
    layers: &mut HashMap<String, String>,
    progress: Option<&ProgressFn>,
) {
    let Some(status) = event.status.as_deref() else {
        return;
    };
    let detail = event.progress_detail.as_ref();
    if let Some(callback) = progress {
        callback(&PullProgress {
            image: image.to_owned(),
            layer: event.id.clone(),
            status: status.to_owned(),
            current: detail.and_then(|d| d.current),
            total: detail.and_then(|d| d.total),
        });
    }
    let layer = event.id.clone().unwrap_or_default();
    if layers.get(&layer).map(String::as_str) != Some(status) {
        tracing::info!(image, layer = %layer, status, "pull progress");
        layers.insert(layer, status.to_owned());
    }
}

/// Splits a byte stream of concatenated or newline-separated JSON objects.
#[derive(Debug, Default)]
struct EventParser {
    buf: BytesMut,
}

impl EventParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<PullEvent> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        loop {
            let mut stream =
                serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde_json::Value>();
            match stream.next() {
                Some(Ok(value)) => {
                    let consumed = stream.byte_offset();
                    if let Ok(event) = serde_json::from_value(value) {
                        events.push(event);
                    }
                    self.buf.advance(consumed);
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(error)) => {
                    tracing::debug!(%error, "skipping an unreadable pull event");
                    match self.buf.iter().position(|&b| b == b'\n') {
                        Some(newline) => self.buf.advance(newline + 1),
                        None => self.buf.clear(),
                    }
                }
                None => {
                    // Only white space is left.
                    self.buf.clear();
                    break;
                }
            }
        }
        events
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

    #[test]
    fn events_split_across_chunks() {
        let mut p = EventParser::default();
        assert!(p.push(br#"{"status":"Pulling fs layer","id":"a1"}"#).len() == 1);
        assert!(p.push(br#"{"status":"Downl"#).is_empty());
        let events = p.push(b"oading\",\"id\":\"a1\",\"progressDetail\":{\"current\":5,\"total\":10}}\r\n{\"error\":\"denied\"}\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].status.as_deref(), Some("Downloading"));
        assert_eq!(events[0].progress_detail.as_ref().unwrap().total, Some(10));
        assert_eq!(events[1].error.as_deref(), Some("denied"));
        assert!(p.buf.is_empty());
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let mut p = EventParser::default();
        let events = p.push(b"not json\n{\"status\":\"ok\"}\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].status.as_deref(), Some("ok"));
    }
}
