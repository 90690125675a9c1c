//! Tag to digest resolution through the OCI Distribution API, so that a
//! deployment runs `repo@sha256:...` and a re-tag never changes what runs.
//!
//! [`RegistryResolver`] asks the registry a reference names for the manifest
//! of its tag (`GET /v2/<name>/manifests/<tag>`, accepting OCI indexes and
//! manifests and Docker manifest lists and schema 2 manifests), hashes the
//! body and checks it against `Docker-Content-Digest`. It authenticates as
//! registries ask (`WWW-Authenticate`): anonymously, with Basic credentials
//! from the engine's `config.json` (the same entries image pulls use), or
//! through the Bearer token flow (`realm`, `service`, `scope`).
//!
//! What it trusts: the registry named by the reference, over HTTPS (the
//! WebPKI roots) unless its host is a loopback address or listed as insecure
//! by the operator, in which case plain HTTP is spoken. Every answer is
//! bounded: no redirect is followed, a manifest over
//! [`ResolverOptions::max_manifest_bytes`] or a token answer over 64 KiB is
//! refused, every request has a deadline, and a body whose sha256 differs
//! from the registry's digest header is refused. A realm is only accepted
//! over HTTPS, or plain HTTP to a host that may be spoken to in plain HTTP.
//!
//! Short names (`sample-app:v1`) and paths are not registry references
//! ([`ImageReference::parse`]): they resolve to nothing and keep the
//! runtimes' own behaviour. A reference already written with a digest is
//! kept as written, without a request.

use crate::auth::PullCredentials;
use crate::reference::ImageReference;
use async_trait::async_trait;
use sha2::{Digest as _, Sha256};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The manifest media types asked for and accepted.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// An image pinned to its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedImage {
    /// What a task runs: `host/repository@sha256:...`.
    pub reference: String,
    /// `sha256:...`.
    pub digest: String,
}

/// Resolves an image as a task definition names it.
#[async_trait]
pub trait ImageResolver: Send + Sync {
    /// The pinned image, or `None` when `image` is not a registry reference
    /// (a short name, a directory, a tarball), which keeps its runtime's own
    /// behaviour.
    async fn resolve(&self, image: &str) -> Result<Option<PinnedImage>, ResolveError>;
}

/// Why an image could not be resolved; shown as ECS shows a failed pull.
#[derive(Debug, thiserror::Error)]
#[error("CannotPullContainerError: cannot resolve {image}: {reason}")]
pub struct ResolveError {
    /// The image as written.
    pub image: String,
    /// What went wrong.
    pub reason: String,
}

/// How the resolver reaches registries.
#[derive(Clone)]
pub struct ResolverOptions {
    /// Registries (`host` or `host:port`) spoken to in plain HTTP besides
    /// loopback ones, as Podman's `registries.conf` `insecure = true` says.
    pub insecure_registries: Vec<String>,
    /// The engine client's `config.json` with registry credentials; `None`
    /// means `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Asked for a registry's credentials before `docker_config`.
    pub pull_credentials: Option<Arc<dyn PullCredentials>>,
    /// Deadline of each request.
    pub timeout: Duration,
    /// The largest manifest accepted.
    pub max_manifest_bytes: usize,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            docker_config: None,
            pull_credentials: None,
            timeout: Duration::from_secs(30),
            max_manifest_bytes: 4 * 1024 * 1024,
        }
    }
}

impl std::fmt::Debug for ResolverOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolverOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("docker_config", &self.docker_config)
            .field(
                "pull_credentials",
                &self.pull_credentials.as_ref().map(|_| "callback"),
            )
            .field("timeout", &self.timeout)
            .field("max_manifest_bytes", &self.max_manifest_bytes)
            .finish()
    }
}

/// [`ImageResolver`] over the OCI Distribution API.
#[derive(Debug, Clone)]
pub struct RegistryResolver {
    client: reqwest::Client,
    options: ResolverOptions,
}

impl RegistryResolver {
    /// A resolver with `options`.
    pub fn new(options: ResolverOptions) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, options })
    }

    /// Whether `registry` (`host[:port]`) is spoken to in plain HTTP.
    pub fn plain_http(&self, registry: &str, host: &str) -> bool {
        is_loopback(host)
            || self
                .options
                .insecure_registries
                .iter()
                .any(|r| r == registry || r == host)
    }

    async fn manifest_digest(&self, r: &ImageReference) -> Result<String, String> {
        let scheme = if self.plain_http(&r.registry, r.host()) {
            "http"
        } else {
            "https"
        };
        let url = format!(
            "{scheme}://{}/v2/{}/manifests/{}",
            r.registry,
            r.repository,
            r.tag_or_latest()
        );
        let credentials = self.credentials(&r.registry);
        let mut auth: Option<String> = None;
        for attempt in 0..2 {
            let mut request = self
                .client
                .get(&url)
                .header(reqwest::header::ACCEPT, MANIFEST_TYPES.join(", "));
            if let Some(value) = &auth {
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            let response = request.send().await.map_err(|e| transport(&url, e))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                let challenge = response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .ok_or("the registry answered 401 without a WWW-Authenticate challenge")?;
                auth = Some(self.answer(challenge, r, credentials.as_ref()).await?);
                continue;
            }
            if status.is_redirection() {
                return Err(format!(
                    "the registry answered {status} (redirects are not followed)"
                ));
            }
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(format!(
                    "manifest unknown: {}:{} not found in {}",
                    r.repository,
                    r.tag_or_latest(),
                    r.registry
                ));
            }
            if !status.is_success() {
                return Err(format!("the registry answered {status}"));
            }
            return self.read_manifest(response).await;
        }
        Err("the registry refused the credentials (401)".into())
    }

    /// Reads a manifest answer: its media type, its size, its digest.
    async fn read_manifest(&self, response: reqwest::Response) -> Result<String, String> {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        if !MANIFEST_TYPES.contains(&content_type.as_str()) {
            return Err(format!(
                "the registry answered a {content_type:?}, not an image manifest or index"
            ));
        }
        let header = response
            .headers()
            .get("docker-content-digest")
            .map(|v| v.to_str().map(str::to_string))
            .transpose()
            .map_err(|_| "the Docker-Content-Digest header is not text")?;
        let body = read_bounded(response, self.options.max_manifest_bytes).await?;
        let digest = format!("sha256:{:x}", Sha256::digest(&body));
        match header {
            Some(h) if h != digest => Err(format!(
                "the registry's Docker-Content-Digest {h} is not the manifest's digest {digest}"
            )),
            _ => Ok(digest),
        }
    }

    /// The `Authorization` value answering a challenge.
    async fn answer(
        &self,
        challenge: &str,
        r: &ImageReference,
        credentials: Option<&(String, String)>,
    ) -> Result<String, String> {
        let (scheme, params) = parse_challenge(challenge)
            .ok_or_else(|| format!("cannot read the challenge {challenge:?}"))?;
        let basic = credentials.map(|(user, password)| {
            use base64::Engine as _;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        if scheme.eq_ignore_ascii_case("basic") {
            return basic.ok_or_else(|| {
                format!(
                    "the registry wants credentials and the engine's config.json has none for {}",
                    r.registry
                )
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(format!("unsupported authentication scheme {scheme:?}"));
        }
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let realm = param("realm").ok_or("the Bearer challenge has no realm")?;
        let realm_url =
            reqwest::Url::parse(realm).map_err(|e| format!("bad token realm {realm:?}: {e}"))?;
        let realm_host = realm_url.host_str().unwrap_or("");
        let realm_authority = match realm_url.port() {
            Some(port) => format!("{realm_host}:{port}"),
            None => realm_host.to_string(),
        };
        let secure = realm_url.scheme() == "https";
        let plain_ok = realm_url.scheme() == "http"
            && self.plain_http(&realm_authority, realm_host.trim_matches(['[', ']']));
        if !secure && !plain_ok {
            return Err(format!(
                "refusing the token realm {realm:?}: only HTTPS, or plain HTTP to a loopback or insecure-listed host"
            ));
        }
        let scope = param("scope")
            .map(str::to_string)
            .unwrap_or_else(|| format!("repository:{}:pull", r.repository));
        let mut query: Vec<(&str, &str)> = vec![("scope", &scope)];
        if let Some(service) = param("service") {
            query.push(("service", service));
        }
        let mut request = self.client.get(realm_url).query(&query);
        if let Some(value) = &basic {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(|e| transport(realm, e))?;
        if !response.status().is_success() {
            return Err(format!("the token realm answered {}", response.status()));
        }
        let body = read_bounded(response, MAX_TOKEN_BYTES).await?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| format!("the token realm's answer is not a token: {e}"))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or("the token realm's answer has no token")?;
        Ok(format!("Bearer {token}"))
    }

    fn credentials(&self, registry: &str) -> Option<(String, String)> {
        let auth = crate::auth::PullAuth {
            source: self.options.pull_credentials.clone(),
            docker_config: self
                .options
                .docker_config
                .clone()
                .or_else(crate::auth::default_config_path),
        };
        let found = auth.for_registry(registry)?;
        Some((found.username?, found.password.unwrap_or_default()))
    }
}

#[async_trait]
impl ImageResolver for RegistryResolver {
    async fn resolve(&self, image: &str) -> Result<Option<PinnedImage>, ResolveError> {
        let Some(reference) = ImageReference::parse(image) else {
            return Ok(None);
        };
        if let Some(digest) = &reference.digest {
            return Ok(Some(PinnedImage {
                reference: image.to_string(),
                digest: digest.clone(),
            }));
        }
        let digest = self
            .manifest_digest(&reference)
            .await
            .map_err(|reason| ResolveError {
                image: image.to_string(),
                reason,
            })?;
        Ok(Some(PinnedImage {
            reference: reference.pinned(&digest),
            digest,
        }))
    }
}

/// Whether `host` is `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn transport(url: &str, e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        format!("{url}: no answer in time")
    } else {
        format!("{url}: {e}")
    }
}

/// Reads a body of at most `limit` bytes; a longer one is refused as soon
/// as it passes the limit.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("the answer is larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads `Scheme key="value", key=value, ...` (RFC 7235): the scheme and
/// its parameters, quoted values unescaped.
pub fn parse_challenge(header: &str) -> Option<(String, Vec<(String, String)>)> {
    let header = header.trim();
    let (scheme, mut rest) = match header.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest.trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || key.contains([' ', ',', '"']) {
            return None;
        }
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((key.to_string(), value));
        let remaining = remaining.trim_start();
        rest = match remaining.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if remaining.is_empty() => "",
            None => return None,
        };
    }
    Some((scheme.to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_commas_in_quotes() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="Registry \"x\"""#).unwrap();
        assert_eq!(
            (scheme.as_str(), params[0].1.as_str()),
            ("Basic", "Registry \"x\"")
        );
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
        assert_eq!(parse_challenge(r#"Bearer realm="a" junk"#), None);
    }

    #[test]
    fn loopback_hosts_are_plain_http() {
        let r = RegistryResolver::new(ResolverOptions {
            insecure_registries: vec!["registry.lan:5000".into()],
            ..ResolverOptions::default()
        })
        .unwrap();
        assert!(r.plain_http("127.0.0.1:5000", "127.0.0.1"));
        assert!(r.plain_http("[::1]:5000", "::1"));
        assert!(r.plain_http("localhost:5000", "localhost"));
        assert!(r.plain_http("registry.lan:5000", "registry.lan"));
        assert!(!r.plain_http("registry.lan:5001", "registry.lan"));
        assert!(!r.plain_http("ghcr.io", "ghcr.io"));
    }
}
