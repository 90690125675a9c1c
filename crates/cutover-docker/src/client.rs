//! A small Docker Engine API client: HTTP/1.1 over a unix socket or TCP.
//!
//! Every request opens its own connection. On a local socket that costs a few
//! microseconds, keeps long requests (`wait`, `logs?follow`, pulls) from
//! holding up others, and makes cancelling a request as simple as dropping
//! its future: the connection goes with it. Paths are given without the
//! version prefix; the client adds the one negotiated at connect time.

use std::fmt;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::DockerError;

/// Where an engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address `host:port` (plain HTTP).
    Tcp(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// A handle on one engine; cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct Client {
    endpoint: Endpoint,
    display: String,
    prefix: String,
}

impl Client {
    /// A client of the engine at `endpoint`, speaking the unversioned API
    /// until [`Client::set_version`] is called.
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        let display = endpoint.to_string();
        Self {
            endpoint,
            display,
            prefix: String::new(),
        }
    }

    /// Prefixes every later path with `/v{version}`.
    pub(crate) fn set_version(&mut self, version: &str) {
        self.prefix = format!("/v{version}");
    }

    /// The engine's address as `unix://...` or `tcp://...`.
    pub(crate) fn endpoint(&self) -> &str {
        &self.display
    }

    /// Whether the engine is reached through a local socket (so its
    /// container processes are visible on this host).
    pub(crate) fn is_local(&self) -> bool {
        matches!(self.endpoint, Endpoint::Unix(_))
    }

    /// Sends one request and returns the response, whatever its status.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&'static str, String)],
    ) -> Result<Response<Incoming>, DockerError> {
        let http_err = |source| DockerError::Http {
            endpoint: self.display.clone(),
            method: method.to_string(),
            path: path.to_owned(),
            source,
        };
        let mut sender = match &self.endpoint {
            Endpoint::Unix(socket) => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|source| self.connect_error(source))?;
                handshake(stream).await.map_err(http_err)?
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|source| self.connect_error(source))?;
                stream.set_nodelay(true).ok();
                handshake(stream).await.map_err(http_err)?
            }
        };
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.prefix))
            .header(header::HOST, "docker");
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let payload = match body {
            Some(value) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(value).expect("a JSON value serialises"))
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .expect("method, path and headers are valid");
        sender.send_request(request).await.map_err(http_err)
    }

    /// Sends one request and returns the body of a 2xx answer; other
    /// statuses become [`DockerError::Api`] with the engine's message.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Bytes, DockerError> {
        let response = self.send(method.clone(), path, body, &[]).await?;
        let response = self.check(&method, path, response).await?;
        response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|source| DockerError::Http {
                endpoint: self.display.clone(),
                method: method.to_string(),
                path: path.to_owned(),
                source,
            })
    }

    /// [`Client::call`], then decodes the body as JSON.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, DockerError> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|source| DockerError::Decode {
            path: path.to_owned(),
            source,
        })
    }

    /// Passes a 2xx response through; turns any other into an error
    /// carrying the engine's message.
    pub(crate) async fn check(
        &self,
        method: &Method,
        path: &str,
        response: Response<Incoming>,
    ) -> Result<Response<Incoming>, DockerError> {
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(response);
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(DockerError::Api {
            method: method.to_string(),
            path: path.to_owned(),
            status: status.as_u16(),
            message: error_message(&body),
        })
    }

    fn connect_error(&self, source: std::io::Error) -> DockerError {
        DockerError::Connect {
            endpoint: self.display.clone(),
            source,
        }
    }
}

/// The body of a response as a stream of chunks.
pub(crate) fn body_stream(
    response: Response<Incoming>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    response
        .into_body()
        .into_data_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other))
}

async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "engine connection ended with an error");
        }
    });
    Ok(sender)
}

/// The `message` of an engine error body, else the body as text.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    }
}

/// Percent-encodes a query parameter value (everything but RFC 3986's
/// unreserved characters).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(
            encode(r#"{"label":["cutover.task=t 1"]}"#),
            "%7B%22label%22%3A%5B%22cutover.task%3Dt%201%22%5D%7D"
        );
    }

    #[test]
    fn error_bodies_give_the_engine_message() {
        assert_eq!(
            error_message(br#"{"message":"no such container: x"}"#),
            "no such container: x"
        );
        assert_eq!(error_message(b"plain failure\n"), "plain failure");
    }

    #[test]
    fn endpoints_display_as_docker_host_urls() {
        assert_eq!(
            Endpoint::Unix("/tmp/p.sock".into()).to_string(),
            "unix:///tmp/p.sock"
        );
        assert_eq!(
            Endpoint::Tcp("127.0.0.1:2375".into()).to_string(),
            "tcp://127.0.0.1:2375"
        );
    }
}
