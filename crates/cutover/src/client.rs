//! A small client for the control-plane API that turns error bodies into
//! readable messages (every located diagnostic on its own line).

use crate::cli::Globals;
use anyhow::{Context, anyhow};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

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

impl Client {
    pub(crate) fn new(g: &Globals) -> anyhow::Result<Client> {
        Ok(Client {
            http: reqwest::Client::builder()
                .no_proxy()
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
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Err(ApiFailure {
            status,
            message: render_error(status, &body),
        }
        .into())
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .send(self.request(Method::GET, path))
            .await?
            .json()
            .await?)
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self
            .send(self.request(Method::POST, path).json(body))
            .await?
            .json()
            .await?)
    }

    pub(crate) async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self
            .send(self.request(Method::PUT, path).json(body))
            .await?
            .json()
            .await?)
    }

    pub(crate) async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .send(self.request(Method::DELETE, path))
            .await?
            .json()
            .await?)
    }

    /// A streaming GET (logs).
    pub(crate) async fn stream(&self, path: &str) -> anyhow::Result<Response> {
        self.send(self.request(Method::GET, path)).await
    }
}

/// `file:line:col: path: message` lines for each diagnostic, after the message.
pub(crate) fn render_error(status: StatusCode, body: &Value) -> String {
    let err = &body["error"];
    let mut out = err["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the server answered {status}"));
    for d in err["diagnostics"].as_array().into_iter().flatten() {
        out.push_str("\n  ");
        out.push_str(&render_diagnostic(d));
    }
    for d in err["warnings"].as_array().into_iter().flatten() {
        out.push_str("\n  warning: ");
        out.push_str(&render_diagnostic(d));
    }
    out
}

/// One diagnostic as the compiler-style line users grep for.
pub(crate) fn render_diagnostic(d: &Value) -> String {
    let mut loc = d["file"].as_str().unwrap_or("").to_string();
    if let Some(line) = d["line"].as_u64() {
        loc.push_str(&format!(":{line}"));
        if let Some(col) = d["column"].as_u64() {
            loc.push_str(&format!(":{col}"));
        }
    }
    let path = d["path"].as_str().unwrap_or("");
    let msg = d["message"].as_str().unwrap_or("");
    match (loc.is_empty(), path.is_empty()) {
        (true, true) => msg.to_string(),
        (true, false) => format!("{path}: {msg}"),
        (false, true) => format!("{loc}: {msg}"),
        (false, false) => format!("{loc}: {path}: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diagnostics_render_like_compiler_messages() {
        let body = json!({"error": {"message": "stack.yaml was rejected", "diagnostics": [
            {"file": "taskdef.json", "line": 14, "column": 7, "path": "containerDefinitions[0].portMappings[0].containerPort", "message": "expected an integer, found \"80a\""},
            {"file": "stack.yaml", "path": "services.web", "message": "bad"}
        ], "warnings": [{"file": "taskdef.json", "line": 2, "column": 3, "path": "foo", "message": "unknown field, ignored"}]}});
        assert_eq!(
            render_error(StatusCode::UNPROCESSABLE_ENTITY, &body),
            "stack.yaml was rejected\n  taskdef.json:14:7: containerDefinitions[0].portMappings[0].containerPort: expected an integer, found \"80a\"\n  stack.yaml: services.web: bad\n  warning: taskdef.json:2:3: foo: unknown field, ignored"
        );
    }
}
