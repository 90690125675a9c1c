//! The load balancer's configuration: the `lb.yaml` schema (the same structure is accepted as
//! JSON by the admin API), parsing with located errors and semantic validation.
//!
//! Every error names where it happened as `file:line:col: field.path: message`. The text is read
//! by `cutover-spec`'s located-document layer ([`cutover_spec::doc`]), as every file Cutover reads:
//! syntax and type errors are located at the value where they happen, an unknown key is an error
//! with a "did you mean" suggestion, and semantic errors (an unknown target group, a weight out of
//! range, a duplicate name) are located afterwards by their field path in the same document.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use cutover_spec::doc::{Document, Path};
pub use cutover_spec::matcher::{GrpcMatcher, Matcher};

mod gateway;
pub use cutover_spec::upstream::{ProtocolVersion, TargetConnection, TargetProtocol};
pub use gateway::{
    AuthorizerConfig, AuthorizerKind, DEFAULT_LEEWAY_SECONDS, ThrottleConfig, ThrottleKey,
};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1, counted in characters.
    pub col: usize,
}

/// The highest weight a forward action accepts (as in ALB).
pub const MAX_WEIGHT: u32 = 999;

/// ALB's default deregistration delay, in seconds.
pub const DEFAULT_DEREGISTRATION_DELAY_SECONDS: u64 = 300;

/// Default `requestHeaderTimeoutSeconds`: the first request's headers (and, on HTTP/1, every
/// next request's headers, counted from the end of the previous response) must arrive within it.
pub const DEFAULT_REQUEST_HEADER_TIMEOUT_SECONDS: f64 = 30.0;
/// Default `idleTimeoutSeconds` (ALB's idle timeout): a connection with no request in flight
/// and no byte read or written for this long is closed.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: f64 = 60.0;
/// Default `maxHeaderBytes`: the request line and all header lines together (nginx: 4 x 8k).
pub const DEFAULT_MAX_HEADER_BYTES: u32 = 32 * 1024;
/// Default `maxHeaderLineBytes`: one header line, or the request target (nginx: 8k).
pub const DEFAULT_MAX_HEADER_LINE_BYTES: u32 = 8 * 1024;
/// Default `responseTimeoutSeconds` of a target group (ALB's idle timeout).
pub const DEFAULT_RESPONSE_TIMEOUT_SECONDS: f64 = 60.0;
/// What `GET /v1/config` shows instead of a configured `adminToken`; a `PUT` carrying it keeps
/// the token in force.
pub const REDACTED: &str = "<redacted>";

/// The complete configuration of one proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address of the admin API (`127.0.0.1:19900`); no admin API when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// Bearer token required by the admin API when set. A token from `--admin-token-file` or
    /// the environment variable `CUTOVER_PROXY_TOKEN` takes precedence; `GET /v1/config` shows
    /// it as [`REDACTED`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// The listeners, each an address accepting HTTP/1.1 and HTTP/2.
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    /// The target groups listeners forward to.
    #[serde(default)]
    pub target_groups: Vec<TargetGroupConfig>,
}

/// One listener: an address, optional TLS, ordered rules, a default action and its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerConfig {
    /// Unique name (`prod`, `test`).
    pub name: String,
    /// Socket address to bind (`127.0.0.1:18080`).
    pub address: String,
    /// Certificate and key: the listener speaks TLS (HTTP/1.1 and HTTP/2 by ALPN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Rules evaluated in order; the first whose conditions all match decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleConfig>,
    /// The action when no rule matches.
    pub default_action: ActionConfig,
    /// Open connections accepted at most; further ones get a 503 with `Connection: close`
    /// (plain listeners) or are closed (TLS), counted as `RejectedConnectionCount`. Without it
    /// only the process-wide budget applies: all listeners together hold at most the descriptor
    /// limit (raised to its hard limit at start) minus a reserve of a quarter of it (at least
    /// 64) kept for health checks, upstream connections and the admin API; 15,000 at a
    /// 20,000-descriptor limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Seconds a connection may take to send its first request's headers, and on HTTP/1 each
    /// next request's headers after the previous response (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_timeout_seconds: Option<f64>,
    /// Seconds a connection with no request in flight may stay without traffic (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<f64>,
    /// Request line plus headers, in bytes (default 32 KiB); larger requests get 431.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_header_bytes: Option<u32>,
    /// One header line (name, `: ` and value) or the request target, in bytes (default 8 KiB);
    /// a longer header gets 431, a longer target 414.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_header_line_bytes: Option<u32>,
    /// Merge repeated slashes of the path before matching and forwarding (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_slashes: Option<bool>,
    /// Client addresses (`10.0.0.0/8`, `::1`) whose `Forwarded`, `X-Forwarded-*` and
    /// `X-Real-IP` headers are trusted (default none); see the proxy's `headers` module.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}

impl ListenerConfig {
    /// `requestHeaderTimeoutSeconds` or its default.
    pub fn request_header_timeout(&self) -> std::time::Duration {
        secs(
            self.request_header_timeout_seconds,
            DEFAULT_REQUEST_HEADER_TIMEOUT_SECONDS,
        )
    }
    /// `idleTimeoutSeconds` or its default.
    pub fn idle_timeout(&self) -> std::time::Duration {
        secs(self.idle_timeout_seconds, DEFAULT_IDLE_TIMEOUT_SECONDS)
    }
    /// `maxHeaderBytes` or its default.
    pub fn max_header_bytes(&self) -> u32 {
        self.max_header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES)
    }
    /// `maxHeaderLineBytes` or its default.
    pub fn max_header_line_bytes(&self) -> u32 {
        self.max_header_line_bytes
            .unwrap_or(DEFAULT_MAX_HEADER_LINE_BYTES)
    }
    /// `mergeSlashes` or its default (true).
    pub fn merge_slashes(&self) -> bool {
        self.merge_slashes.unwrap_or(true)
    }
}

fn secs(v: Option<f64>, default: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(v.unwrap_or(default))
}

/// PEM files for a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

/// A rule: conditions that must all match, and the action taken when they do; an optional
/// authorizer and throttle run (in that order) before the action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleConfig {
    /// Conditions, all of which must match; each matches when any of its values does.
    #[serde(default)]
    pub conditions: Vec<ConditionConfig>,
    /// A JWT authorizer: a request without a valid token gets 401, without a scope 403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<AuthorizerConfig>,
    /// A token bucket per client key: a request over it gets 429 with `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleConfig>,
    /// The action for matching requests.
    pub action: ActionConfig,
}

/// One rule condition; exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionConfig {
    /// Path patterns with `*` (any run of characters) and `?` (one character), case-sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_pattern: Option<Vec<String>>,
    /// Host patterns (`*.example.com`), case-insensitive, port ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Vec<String>>,
    /// A header whose value must match one of the patterns (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_header: Option<HeaderCondition>,
    /// Query parameters; the condition matches when any pair matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string: Option<Vec<QueryCondition>>,
    /// Client networks (`10.0.0.0/8`, `::1/128`), matched against the connection's peer
    /// address as ALB's `source-ip` condition (not against forwarding headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<Vec<String>>,
}

/// A header condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderCondition {
    /// Header name.
    pub name: String,
    /// Value patterns with `*` and `?`.
    pub values: Vec<String>,
}

/// A query-string condition: a key (optional: any key) and a value pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryCondition {
    /// Parameter name; any parameter when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Value pattern with `*` and `?`.
    pub value: String,
}

/// An action; exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionConfig {
    /// Weighted forward to one or more target groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Vec<WeightedGroup>>,
    /// A response produced by the proxy itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_response: Option<FixedResponseConfig>,
    /// A redirect produced by the proxy itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectConfig>,
}

/// One target group of a forward action, with its weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedGroup {
    /// Name of the target group.
    pub target_group: String,
    /// Weight 0..=999 (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// A fixed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixedResponseConfig {
    /// HTTP status code (200..=599).
    pub status_code: u16,
    /// `Content-Type` of the body (default `text/plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

/// A redirect; unset parts keep the request's own (`#{host}` style placeholders are not needed:
/// an absent field means "as requested").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectConfig {
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Path (starting with `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Query without `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// 301 or 302 (default 302); `HTTP_301`/`HTTP_302` are accepted too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<RedirectCode>,
}

/// A redirect status: a number or ALB's `HTTP_301`/`HTTP_302` spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RedirectCode {
    /// 301, 302, 303, 307 or 308.
    Number(u16),
    /// `HTTP_301` or `HTTP_302`.
    Name(String),
}

impl RedirectCode {
    /// The numeric status, if valid.
    pub fn status(&self) -> Option<u16> {
        let n = match self {
            RedirectCode::Number(n) => *n,
            RedirectCode::Name(s) => s.strip_prefix("HTTP_")?.parse().ok()?,
        };
        matches!(n, 301 | 302 | 303 | 307 | 308).then_some(n)
    }
}

/// A target group: targets, an optional active health check and the deregistration delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetGroupConfig {
    /// Unique name.
    pub name: String,
    /// Targets as `host:port`.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Active health check; without one, targets are routable as soon as registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    /// How long a deregistered target may finish in-flight work (default 300).
    #[serde(default = "default_delay")]
    pub deregistration_delay_seconds: u64,
    /// Seconds a target may take to send its response headers, and may then stay silent
    /// between two pieces of its body (default 60); answered 504 before the headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_timeout_seconds: Option<f64>,
    /// How the proxy talks to the targets: `HTTP`, `HTTPS` (TLS), `http1` (the default, HTTP/1.1)
    /// or `h2c` (HTTP/2 without TLS, prior knowledge; gRPC and trailers pass through).
    #[serde(default, skip_serializing_if = "TargetProtocol::is_default")]
    pub protocol: TargetProtocol,
    /// With `HTTP` or `HTTPS`: `HTTP1` (default), `HTTP2` or `GRPC` (HTTP/2, by ALPN `h2` over
    /// TLS), as ALB's target groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<ProtocolVersion>,
    /// Seconds an upstream connection may stay unused before it is closed (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<f64>,
    /// Upstream connections open to one target at most (HTTP/1: a request waits for a free
    /// one; default unlimited). HTTP/2 multiplexes on one connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_target: Option<u32>,
    /// `HTTPS`: PEM certificate authorities trusted for the targets' certificates (default: the
    /// system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// `HTTPS`: accept any target certificate (encrypted, not authenticated). Only if written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

/// Default of a target group's `idleTimeoutSeconds`.
pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT_SECONDS: f64 = 60.0;

impl TargetGroupConfig {
    /// The connection keys, as the model shared with a stack's `loadBalancer` holds them.
    pub fn connection(&self) -> TargetConnection {
        TargetConnection {
            protocol: self.protocol,
            protocol_version: self.protocol_version,
            idle_timeout_seconds: self.idle_timeout_seconds,
            max_connections_per_target: self.max_connections_per_target,
            ca_file: self.ca_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        }
    }

    /// `idleTimeoutSeconds` or its default.
    pub fn upstream_idle_timeout(&self) -> std::time::Duration {
        secs(
            self.idle_timeout_seconds,
            DEFAULT_UPSTREAM_IDLE_TIMEOUT_SECONDS,
        )
    }

    /// `responseTimeoutSeconds` or its default.
    pub fn response_timeout(&self) -> std::time::Duration {
        secs(
            self.response_timeout_seconds,
            DEFAULT_RESPONSE_TIMEOUT_SECONDS,
        )
    }
}

fn default_delay() -> u64 {
    DEFAULT_DEREGISTRATION_DELAY_SECONDS
}

/// An active HTTP health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Path probed with `GET` (default `/`).
    #[serde(default = "default_hc_path")]
    pub path: String,
    /// Seconds between probes (default 5; fractions allowed).
    #[serde(default = "default_interval")]
    pub interval_seconds: f64,
    /// Probe timeout in seconds (default 2; fractions allowed).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// Consecutive successes that make an unhealthy target healthy (default 2).
    #[serde(default = "default_healthy")]
    pub healthy_threshold_count: u32,
    /// Consecutive failures that make a target unhealthy (default 2).
    #[serde(default = "default_unhealthy")]
    pub unhealthy_threshold_count: u32,
    /// Accepted status codes: `200`, `200-299`, `200,204,300-399` (default `200-399`).
    #[serde(default = "default_matcher")]
    pub matcher: Matcher,
    /// Accepted gRPC status codes (default `12`, ALB's): a group with `protocolVersion: GRPC`
    /// is probed with a gRPC call to `path` (`POST`, `application/grpc`, an empty message),
    /// healthy when it answers HTTP 200 with a `grpc-status` in this set; only for such groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_code: Option<GrpcMatcher>,
}

fn default_hc_path() -> String {
    "/".to_owned()
}
fn default_interval() -> f64 {
    5.0
}
fn default_timeout() -> f64 {
    2.0
}
fn default_healthy() -> u32 {
    2
}
fn default_unhealthy() -> u32 {
    2
}
fn default_matcher() -> Matcher {
    Matcher::range(200, 399)
}

/// A configuration error, located in its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file (or `<request>` for the admin API).
    pub file: String,
    /// Line and column, when known.
    pub location: Option<Location>,
    /// The field path, `listeners[0].defaultAction.forward[1].weight`; empty for the root.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.col)?;
        }
        if !self.path.is_empty() && self.path != "." {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Which text format a configuration is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`lb.yaml`).
    Yaml,
    /// JSON (admin API bodies, the persisted state).
    Json,
}

/// Parses and validates a YAML configuration; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<ProxyConfig, ConfigError> {
    parse_as(file, text, Format::Yaml)
}

/// Parses and validates a JSON configuration; `file` names it in errors.
pub fn parse_json(file: &str, text: &str) -> Result<ProxyConfig, ConfigError> {
    parse_as(file, text, Format::Json)
}

/// Parses any serde type from `text` with located errors (used for admin request bodies too).
/// Unknown keys are errors.
pub fn deserialize<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    format: Format,
) -> Result<T, ConfigError> {
    read(file, text, format, |_| Ok(()))
}

/// Reads a `T` from `text` and checks it with `check`, whose errors are located by their field
/// path in the same document, like type errors. The first error (in document order) is
/// returned.
///
/// Valid JSON takes `serde_json`'s path, about ten times faster (the server sends its whole
/// desired configuration at each change); JSON it refuses, and all YAML, is read through the
/// located-document layer, which says where and why.
fn read<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    format: Format,
    check: impl Fn(&T) -> Result<(), ValidationError>,
) -> Result<T, ConfigError> {
    if format == Format::Json
        && let Ok(value) = serde_json::from_str::<T>(text)
        && check(&value).is_ok()
    {
        return Ok(value);
    }
    let format = match format {
        Format::Yaml => cutover_spec::doc::Format::Yaml,
        Format::Json => cutover_spec::doc::Format::Json,
    };
    let doc = Document::parse(file, text, format).map_err(first_error)?;
    let sink = doc.sink(true);
    let value = sink.read::<T>(&Path::root());
    if let Some(v) = &value
        && let Err(e) = check(v)
    {
        match Path::parse(&e.path) {
            Some(path) => sink.error(&path, e.message),
            // `validate` writes paths that `Path` reads; this is for one it would not.
            None => {
                return Err(ConfigError {
                    file: file.to_owned(),
                    location: None,
                    path: e.path,
                    message: e.message,
                });
            }
        }
    }
    sink.finish(value)
        .map(|parsed| parsed.value)
        .map_err(first_error)
}

/// The first diagnostic of a refused document, as a [`ConfigError`].
fn first_error(e: cutover_spec::SpecError) -> ConfigError {
    // A refused document always has at least one diagnostic.
    let d = e
        .diagnostics
        .into_iter()
        .next()
        .unwrap_or_else(|| cutover_spec::Diagnostic {
            severity: cutover_spec::Severity::Error,
            file: String::new(),
            line: None,
            column: None,
            path: String::new(),
            message: "could not be read".to_owned(),
        });
    ConfigError {
        location: d.line.map(|line| Location {
            line,
            col: d.column.unwrap_or(1),
        }),
        file: d.file,
        path: d.path,
        message: d.message,
    }
}

fn parse_as(file: &str, text: &str, format: Format) -> Result<ProxyConfig, ConfigError> {
    read(file, text, format, ProxyConfig::validate)
}

/// A semantic error found by [`ProxyConfig::validate`]: a field path and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValidationError {
    /// Field path, `targetGroups[1].name`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ValidationError {
    ValidationError {
        path: path.into(),
        message: message.into(),
    }
}

impl ProxyConfig {
    /// Checks what serde cannot: references, ranges, uniqueness and "exactly one of".
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(admin) = &self.admin {
            admin
                .parse::<std::net::SocketAddr>()
                .map_err(|e| invalid("admin", format!("invalid socket address {admin:?}: {e}")))?;
        }
        if let Some(t) = &self.admin_token {
            crate::auth::check_token(t).map_err(|m| invalid("adminToken", m))?;
        }
        let mut groups: HashMap<&str, &TargetGroupConfig> = HashMap::new();
        for (i, tg) in self.target_groups.iter().enumerate() {
            let p = format!("targetGroups[{i}]");
            if tg.name.is_empty() {
                return Err(invalid(format!("{p}.name"), "must not be empty"));
            }
            if groups.insert(&tg.name, tg).is_some() {
                return Err(invalid(
                    format!("{p}.name"),
                    format!("duplicate target group {:?}", tg.name),
                ));
            }
            let mut seen = HashSet::new();
            for (j, t) in tg.targets.iter().enumerate() {
                validate_host_port(t).map_err(|m| invalid(format!("{p}.targets[{j}]"), m))?;
                if !seen.insert(t.as_str()) {
                    return Err(invalid(
                        format!("{p}.targets[{j}]"),
                        format!("duplicate target {t:?}"),
                    ));
                }
            }
            if let Some(hc) = &tg.health_check {
                validate_health_check(hc, &format!("{p}.healthCheck"))?;
                if hc.grpc_code.is_some() && !tg.connection().grpc() {
                    return Err(invalid(
                        format!("{p}.healthCheck.grpcCode"),
                        "needs protocolVersion GRPC",
                    ));
                }
            }
            if let Some(t) = tg.response_timeout_seconds {
                validate_seconds(t, &format!("{p}.responseTimeoutSeconds"))?;
            }
            tg.connection()
                .check()
                .map_err(|(field, message)| invalid(format!("{p}.{field}"), message))?;
        }
        let mut names = HashSet::new();
        let mut addresses = HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let p = format!("listeners[{i}]");
            if l.name.is_empty() {
                return Err(invalid(format!("{p}.name"), "must not be empty"));
            }
            if !names.insert(l.name.as_str()) {
                return Err(invalid(
                    format!("{p}.name"),
                    format!("duplicate listener {:?}", l.name),
                ));
            }
            let addr: std::net::SocketAddr = l.address.parse().map_err(|e| {
                invalid(
                    format!("{p}.address"),
                    format!("invalid socket address {:?}: {e}", l.address),
                )
            })?;
            if !addresses.insert(addr)
                || self.admin.as_deref().and_then(|a| a.parse().ok()) == Some(addr)
            {
                return Err(invalid(
                    format!("{p}.address"),
                    format!("address {addr} is used twice"),
                ));
            }
            validate_limits(l, &p)?;
            for (j, r) in l.rules.iter().enumerate() {
                let rp = format!("{p}.rules[{j}]");
                for (k, c) in r.conditions.iter().enumerate() {
                    validate_condition(c, &format!("{rp}.conditions[{k}]"))?;
                }
                if let Some(a) = &r.authorizer {
                    gateway::validate_authorizer(a, &format!("{rp}.authorizer"))?;
                }
                if let Some(t) = &r.throttle {
                    gateway::validate_throttle(
                        t,
                        &format!("{rp}.throttle"),
                        r.authorizer.is_some(),
                    )?;
                }
                validate_action(&r.action, &format!("{rp}.action"), &groups)?;
            }
            validate_action(&l.default_action, &format!("{p}.defaultAction"), &groups)?;
        }
        Ok(())
    }

    /// Names of the target groups some listener action forwards to.
    pub fn used_groups(&self) -> HashSet<&str> {
        let mut used = HashSet::new();
        for l in &self.listeners {
            let actions = l.rules.iter().map(|r| &r.action).chain([&l.default_action]);
            for a in actions {
                for wg in a.forward.iter().flatten() {
                    used.insert(wg.target_group.as_str());
                }
            }
        }
        used
    }
}

/// Timeouts: from 50 ms to one day.
fn validate_seconds(v: f64, p: &str) -> Result<(), ValidationError> {
    if !(v.is_finite() && (0.05..=86_400.0).contains(&v)) {
        return Err(invalid(p, "must be between 0.05 and 86400 seconds"));
    }
    Ok(())
}

fn validate_limits(l: &ListenerConfig, p: &str) -> Result<(), ValidationError> {
    if let Some(n) = l.max_connections
        && !(1..=1_000_000).contains(&n)
    {
        return Err(invalid(
            format!("{p}.maxConnections"),
            "must be between 1 and 1000000",
        ));
    }
    if let Some(t) = l.request_header_timeout_seconds {
        validate_seconds(t, &format!("{p}.requestHeaderTimeoutSeconds"))?;
    }
    if let Some(t) = l.idle_timeout_seconds {
        validate_seconds(t, &format!("{p}.idleTimeoutSeconds"))?;
    }
    if let Some(n) = l.max_header_bytes
        && !(8192..=1 << 20).contains(&n)
    {
        return Err(invalid(
            format!("{p}.maxHeaderBytes"),
            "must be between 8192 and 1048576",
        ));
    }
    if let Some(n) = l.max_header_line_bytes
        && !(256..=l.max_header_bytes()).contains(&n)
    {
        return Err(invalid(
            format!("{p}.maxHeaderLineBytes"),
            format!(
                "must be between 256 and maxHeaderBytes ({})",
                l.max_header_bytes()
            ),
        ));
    }
    for (i, c) in l.trusted_proxies.iter().enumerate() {
        crate::headers::Cidr::parse(c)
            .map_err(|m| invalid(format!("{p}.trustedProxies[{i}]"), m))?;
    }
    Ok(())
}

fn validate_host_port(t: &str) -> Result<(), String> {
    let (host, port) = t
        .rsplit_once(':')
        .ok_or_else(|| format!("target {t:?} must be host:port"))?;
    if host.is_empty() {
        return Err(format!("target {t:?} has no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("target {t:?} has an invalid port")),
    }
}

fn validate_health_check(hc: &HealthCheckConfig, p: &str) -> Result<(), ValidationError> {
    if !hc.path.starts_with('/') {
        return Err(invalid(format!("{p}.path"), "must start with /"));
    }
    // Bounded, not only positive: Duration::from_secs_f64 panics past u64.
    validate_seconds(hc.interval_seconds, &format!("{p}.intervalSeconds"))?;
    validate_seconds(hc.timeout_seconds, &format!("{p}.timeoutSeconds"))?;
    for (name, v) in [
        ("healthyThresholdCount", hc.healthy_threshold_count),
        ("unhealthyThresholdCount", hc.unhealthy_threshold_count),
    ] {
        if !(1..=10).contains(&v) {
            return Err(invalid(format!("{p}.{name}"), "must be between 1 and 10"));
        }
    }
    Ok(())
}

fn validate_condition(c: &ConditionConfig, p: &str) -> Result<(), ValidationError> {
    let set = [
        c.path_pattern.is_some(),
        c.host.is_some(),
        c.http_header.is_some(),
        c.query_string.is_some(),
        c.source_ip.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set != 1 {
        return Err(invalid(
            p,
            "a condition needs exactly one of pathPattern, host, httpHeader, queryString, sourceIp",
        ));
    }
    for (i, c) in c.source_ip.iter().flatten().enumerate() {
        crate::headers::Cidr::parse(c).map_err(|m| invalid(format!("{p}.sourceIp[{i}]"), m))?;
    }
    let empty = match c {
        ConditionConfig {
            path_pattern: Some(v),
            ..
        }
        | ConditionConfig { host: Some(v), .. }
        | ConditionConfig {
            source_ip: Some(v), ..
        } => v.is_empty(),
        ConditionConfig {
            http_header: Some(h),
            ..
        } => {
            if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
                return Err(invalid(
                    format!("{p}.httpHeader.name"),
                    format!("invalid header name {:?}", h.name),
                ));
            }
            h.values.is_empty()
        }
        ConditionConfig {
            query_string: Some(q),
            ..
        } => q.is_empty(),
        _ => false,
    };
    if empty {
        return Err(invalid(p, "a condition needs at least one value"));
    }
    Ok(())
}

fn validate_action(
    a: &ActionConfig,
    p: &str,
    groups: &HashMap<&str, &TargetGroupConfig>,
) -> Result<(), ValidationError> {
    let set = [
        a.forward.is_some(),
        a.fixed_response.is_some(),
        a.redirect.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set != 1 {
        return Err(invalid(
            p,
            "an action needs exactly one of forward, fixedResponse, redirect",
        ));
    }
    if let Some(fwd) = &a.forward {
        if fwd.is_empty() {
            return Err(invalid(
                format!("{p}.forward"),
                "needs at least one target group",
            ));
        }
        let mut seen = HashSet::new();
        for (i, wg) in fwd.iter().enumerate() {
            let gp = format!("{p}.forward[{i}]");
            if !groups.contains_key(wg.target_group.as_str()) {
                return Err(invalid(
                    format!("{gp}.targetGroup"),
                    format!("unknown target group {:?}", wg.target_group),
                ));
            }
            if !seen.insert(wg.target_group.as_str()) {
                return Err(invalid(
                    format!("{gp}.targetGroup"),
                    format!("target group {:?} appears twice", wg.target_group),
                ));
            }
            if wg.weight > MAX_WEIGHT {
                return Err(invalid(
                    format!("{gp}.weight"),
                    format!("weight {} is out of range 0..{MAX_WEIGHT}", wg.weight),
                ));
            }
        }
        if fwd.iter().all(|wg| wg.weight == 0) {
            return Err(invalid(
                format!("{p}.forward"),
                "at least one target group needs a non-zero weight",
            ));
        }
    }
    if let Some(fr) = &a.fixed_response {
        if !(200..=599).contains(&fr.status_code) {
            return Err(invalid(
                format!("{p}.fixedResponse.statusCode"),
                "must be between 200 and 599",
            ));
        }
        if let Some(ct) = &fr.content_type
            && http::HeaderValue::from_str(ct).is_err()
        {
            return Err(invalid(
                format!("{p}.fixedResponse.contentType"),
                "invalid header value",
            ));
        }
    }
    if let Some(r) = &a.redirect {
        if let Some(proto) = &r.protocol
            && !matches!(proto.to_ascii_lowercase().as_str(), "http" | "https")
        {
            return Err(invalid(
                format!("{p}.redirect.protocol"),
                "must be http or https",
            ));
        }
        if let Some(path) = &r.path
            && !path.starts_with('/')
        {
            return Err(invalid(format!("{p}.redirect.path"), "must start with /"));
        }
        if let Some(code) = &r.status_code
            && code.status().is_none()
        {
            return Err(invalid(
                format!("{p}.redirect.statusCode"),
                "must be 301, 302, 303, 307, 308, HTTP_301 or HTTP_302",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
