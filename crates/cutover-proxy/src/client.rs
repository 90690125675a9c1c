//! A small async client for the admin API, used by the `cutover proxy` subcommands and by the
//! control plane (which confirms each change by its returned version before its next step).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{
    ConfigResponse, ErrorResponse, HealthReport, StatusReport, TargetsRequest, VersionResponse,
    WeightsRequest,
};
use crate::config::ProxyConfig;
use crate::metrics::MetricsFeed;

/// How long one admin call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL could not be built.
    #[error("invalid admin url {url:?}: {message}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The proxy could not be reached or the exchange failed.
    #[error("{method} {url}: {message}")]
    Transport {
        /// HTTP method.
        method: Method,
        /// The URL.
        url: String,
        /// The cause.
        message: String,
    },
    /// The proxy answered with an error (400 carries the located message).
    #[error("{method} {url}: {status}: {message}")]
    Rejected {
        /// HTTP method.
        method: Method,
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The proxy's message.
        message: String,
    },
    /// The answer was not the expected JSON.
    #[error("{url}: unexpected answer: {source}")]
    Decode {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// A client for one proxy's admin API.
#[derive(Clone, Debug)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    /// A client for `base_url` (`http://127.0.0.1:19900`; a bare `host:port` works too).
    pub fn new(base_url: impl Into<String>) -> Self {
        let mut base: String = base_url.into();
        if !base.contains("://") {
            base.insert_str(0, "http://");
        }
        while base.ends_with('/') {
            base.pop();
        }
        AdminClient {
            base,
            token: None,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends `Authorization: Bearer <token>` with every call (an empty token sends none).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// The configuration in force and its version.
    pub async fn get_config(&self) -> Result<ConfigResponse, ClientError> {
        self.call(Method::GET, "/v1/config", None::<&()>).await
    }

    /// Replaces the whole configuration; returns the version once it is in force.
    pub async fn put_config(&self, config: &ProxyConfig) -> Result<u64, ClientError> {
        let v: VersionResponse = self.call(Method::PUT, "/v1/config", Some(config)).await?;
        Ok(v.version)
    }

    /// Sets forward weights of a listener's rule (`None`: its default action); returns the
    /// version once in force.
    pub async fn set_weights(
        &self,
        listener: &str,
        rule: Option<usize>,
        weights: &[(&str, u32)],
    ) -> Result<u64, ClientError> {
        let body = WeightsRequest {
            rule,
            weights: weights.iter().map(|(g, w)| ((*g).to_owned(), *w)).collect(),
        };
        let path = format!("/v1/listeners/{}/weights", encode(listener));
        let v: VersionResponse = self.call(Method::PUT, &path, Some(&body)).await?;
        Ok(v.version)
    }

    /// Replaces a target group's targets (removed ones drain); returns the version once in force.
    pub async fn set_targets<S: AsRef<str>>(
        &self,
        target_group: &str,
        targets: &[S],
    ) -> Result<u64, ClientError> {
        let body = TargetsRequest {
            targets: targets.iter().map(|t| t.as_ref().to_owned()).collect(),
        };
        let path = format!("/v1/target-groups/{}/targets", encode(target_group));
        let v: VersionResponse = self.call(Method::PUT, &path, Some(&body)).await?;
        Ok(v.version)
    }

    /// Tells the proxy to reload its configuration file.
    pub async fn reload(&self) -> Result<u64, ClientError> {
        let v: VersionResponse = self.call(Method::POST, "/v1/reload", None::<&()>).await?;
        Ok(v.version)
    }

    /// Health of every target.
    pub async fn health(&self) -> Result<HealthReport, ClientError> {
        self.call(Method::GET, "/v1/health", None::<&()>).await
    }

    /// Version, uptime and listeners.
    pub async fn status(&self) -> Result<StatusReport, ClientError> {
        self.call(Method::GET, "/v1/status", None::<&()>).await
    }

    /// Completed 1-second buckets after `since_unix_sec`.
    pub async fn metrics_feed(&self, since_unix_sec: u64) -> Result<MetricsFeed, ClientError> {
        let path = format!("/v1/metrics/feed?since={since_unix_sec}");
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn prometheus(&self) -> Result<String, ClientError> {
        let bytes = self.raw(Method::GET, "/metrics", None).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let body =
            body.map(serde_json::to_vec)
                .transpose()
                .map_err(|source| ClientError::Decode {
                    url: url.clone(),
                    source,
                })?;
        let bytes = self.raw(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode { url, source })
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let url = format!("{}{path}", self.base);
        let transport = |message: String| ClientError::Transport {
            method: method.clone(),
            url: url.clone(),
            message,
        };
        let mut builder = Request::builder().method(method.clone()).uri(&url);
        if let Some(t) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Url {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| transport(error_chain(&e)))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| transport(e.to_string()))?
                .to_bytes();
            Ok::<_, ClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| transport(format!("no answer within {TIMEOUT:?}")))??;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorResponse>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ClientError::Rejected {
                method,
                url,
                status,
                message,
            });
        }
        Ok(bytes)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Percent-encodes a path segment.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
