//! A small client for the control-plane API that turns error bodies into
//! readable messages (every located diagnostic on its own line).

use crate::cli::Globals;
use anyhow::{Context, anyhow};
use cutover_api::ApiErrorBody;
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A client bound to one server.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A rejected request: the server's message plus its diagnostics.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiFailure {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

/// An HTTP client builder for the server `g` names: no proxy, and the CA
/// of `--ca-cert` trusted besides the WebPKI roots.
pub(crate) fn builder(g: &Globals) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut b = reqwest::Client::builder().no_proxy();
    if let Some(path) = &g.ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| anyhow!("{}: no PEM certificate found", path.display()))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b)
}

impl Client {
    pub(crate) fn new(g: &Globals) -> anyhow::Result<Client> {
        Ok(Client {
            http: builder(g)?
                .build()
                .context("cannot build the HTTP client")?,
            base: g.server.trim_end_matches('/').to_string(),
            token: g.token.clone().filter(|t| !t.is_empty()),
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> anyhow::Result<Response> {
        let resp = rb.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach the cutover server at {} (start it with `cutover server`, or set --server / CUTOVER_SERVER)",
                    self.base
                )
            } else {
                anyhow!(e).context(format!("request to {} failed", self.base))
            }
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        Err(ApiFailure {
            status,
            message: render_error(status, &body),
        }
        .into())
    }

    /// Sends and reads the answer as a `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<T> {
        let bytes = self.send(rb).await?.bytes().await?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("unexpected answer of the server to {what}"))
    }

    /// The server's base URL (also its AWS endpoint).
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(self.request(Method::GET, path), &format!("GET {path}"))
            .await
    }

    /// A GET with a query string (a `cutover_api::query` type).
    pub(crate) async fn get_with<Q: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Q,
    ) -> anyhow::Result<T> {
        self.call(
            self.request(Method::GET, path).query(query),
            &format!("GET {path}"),
        )
        .await
    }

    pub(crate) async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.call(
            self.request(Method::POST, path).json(body),
            &format!("POST {path}"),
        )
        .await
    }

    /// A POST whose body is `body`'s bytes (a bundle), with a query string.
    pub(crate) async fn post_body<Q: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Q,
        body: reqwest::Body,
    ) -> anyhow::Result<T> {
        self.call(
            self.request(Method::POST, path)
                .query(query)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body),
            &format!("POST {path}"),
        )
        .await
    }

    pub(crate) async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.call(
            self.request(Method::PUT, path).json(body),
            &format!("PUT {path}"),
        )
        .await
    }

    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(
            self.request(Method::DELETE, path),
            &format!("DELETE {path}"),
        )
        .await
    }

    /// A POST whose body streams from a file.
    pub(crate) async fn post_file<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        file: tokio::fs::File,
    ) -> anyhow::Result<T> {
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        self.call(
            self.request(Method::POST, path)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body),
            &format!("POST {path}"),
        )
        .await
    }

    /// A streaming GET (logs).
    pub(crate) async fn stream<Q: Serialize>(
        &self,
        path: &str,
        query: &Q,
    ) -> anyhow::Result<Response> {
        self.send(self.request(Method::GET, path).query(query))
            .await
    }
}

/// The server's message, then `file:line:col: path: message` lines for
/// each diagnostic; a body that is not an error body gives the status.
pub(crate) fn render_error(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(b) => b.error.render(),
        Err(_) => format!("the server answered {status}"),
    }
}

/// One diagnostic as the compiler-style line users grep for.
pub(crate) use cutover_api::error::render_diagnostic;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diagnostics_render_like_compiler_messages() {
        let body = json!({"error": {"message": "stack.yaml was rejected", "diagnostics": [
            {"severity": "error", "file": "taskdef.json", "line": 14, "column": 7, "path": "containerDefinitions[0].portMappings[0].containerPort", "message": "expected an integer, found \"80a\""},
            {"severity": "error", "file": "stack.yaml", "path": "services.web", "message": "bad"}
        ], "warnings": [{"severity": "warning", "file": "taskdef.json", "line": 2, "column": 3, "path": "foo", "message": "unknown field, ignored"}]}});
        let body = serde_json::to_vec(&body).unwrap();
        assert_eq!(
            render_error(StatusCode::UNPROCESSABLE_ENTITY, &body),
            "stack.yaml was rejected\n  taskdef.json:14:7: containerDefinitions[0].portMappings[0].containerPort: expected an integer, found \"80a\"\n  stack.yaml: services.web: bad\n  warning: taskdef.json:2:3: foo: unknown field, ignored"
        );
        assert_eq!(
            render_error(StatusCode::BAD_GATEWAY, b"<html>"),
            "the server answered 502 Bad Gateway"
        );
    }
}
