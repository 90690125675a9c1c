//! Registry credentials for image pulls: first those of a [`PullCredentials`]
//! source the embedding program gives (the server answers for its own
//! registry), then `~/.docker/config.json`.
//!
//! Only the `auths` section is read: an entry's `auth` (base64 of
//! `user:password`) or `identitytoken`, keyed by registry host as `docker
//! login` writes it (`https://index.docker.io/v1/` for Docker Hub).
//! Credential helpers (`credsStore`, `credHelpers`) are not run; a pull that
//! needs them goes out without credentials and is logged. The file is read
//! at each pull, so a `docker login` takes effect without a restart.
//!
//! The credentials go to `bollard` as [`DockerCredentials`], which sends
//! them in `X-Registry-Auth`. `bollard` 0.21 encodes that header in
//! standard base64, while Docker and Podman decode it as base64url (RFC 4648
//! section 5): credentials whose encoding has a `+` or `/` would fail, so
//! [`url_safe_registry_auth`] swaps the two alphabets' differing characters
//! on the way out.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::BollardRequest;
use bollard::auth::DockerCredentials;
use http::HeaderValue;
use serde::Deserialize;

/// Credentials the embedding program knows for some registries, asked
/// before the client configuration file: `(username, password)` for pulls
/// from `registry` (`host[:port]`), or `None` to fall back to the file.
pub trait PullCredentials: Send + Sync {
    /// The credentials for `registry`, if this source has them.
    fn credentials(&self, registry: &str) -> Option<(String, String)>;
}

/// Where a pull's credentials come from: a [`PullCredentials`] source, then
/// a Docker client configuration file.
#[derive(Clone, Default)]
pub(crate) struct PullAuth {
    /// Asked first.
    pub(crate) source: Option<Arc<dyn PullCredentials>>,
    /// The client configuration file.
    pub(crate) docker_config: Option<PathBuf>,
}

impl fmt::Debug for PullAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullAuth")
            .field("source", &self.source.as_ref().map(|_| "callback"))
            .field("docker_config", &self.docker_config)
            .finish()
    }
}

impl PullAuth {
    /// The credentials for pulls from `registry`, if any.
    pub(crate) fn for_registry(&self, registry: &str) -> Option<DockerCredentials> {
        if let Some((username, password)) =
            self.source.as_ref().and_then(|s| s.credentials(registry))
        {
            return Some(DockerCredentials {
                username: Some(username),
                password: Some(password),
                serveraddress: Some(registry.to_string()),
                ..DockerCredentials::default()
            });
        }
        registry_credentials(self.docker_config.as_deref()?, registry)
    }
}

/// The path of the Docker client configuration: `$DOCKER_CONFIG/config.json`,
/// else `$HOME/.docker/config.json`.
pub(crate) fn default_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker/config.json"))
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// The credentials for pulls from `registry`, if the configuration at
/// `path` has some. A missing or unreadable file means none (logged at
/// debug level).
pub(crate) fn registry_credentials(path: &Path, registry: &str) -> Option<DockerCredentials> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "no docker client configuration");
            return None;
        }
    };
    let config: ConfigFile = match serde_json::from_slice(&text) {
        Ok(config) => config,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot parse the docker client configuration; pulling without credentials");
            return None;
        }
    };
    credentials_from_config(&config, registry)
}

fn credentials_from_config(config: &ConfigFile, registry: &str) -> Option<DockerCredentials> {
    let Some((key, entry)) = registry_keys(registry)
        .into_iter()
        .find_map(|key| config.auths.get(&key).map(|entry| (key, entry)))
    else {
        if let Some(store) = &config.creds_store {
            tracing::info!(
                registry,
                store,
                "credential helpers are not supported; pulling without credentials"
            );
        }
        return None;
    };
    let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64_decode(auth).and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, pass)) => {
                username = Some(user.to_owned());
                password = Some(pass.to_owned());
            }
            None => {
                tracing::warn!(registry = %key, "the auth entry is not base64 of user:password; ignored");
            }
        }
    }
    let username = username.filter(|u| !u.is_empty());
    let identitytoken = entry.identity_token.clone().filter(|t| !t.is_empty());
    if username.is_none() && identitytoken.is_none() {
        return None;
    }
    Some(DockerCredentials {
        username,
        password: password.filter(|p| !p.is_empty()),
        identitytoken,
        serveraddress: Some(key),
        ..DockerCredentials::default()
    })
}

/// Re-encodes a request's `X-Registry-Auth` header from standard base64
/// (what `bollard` writes) to base64url (what engines read): the alphabets
/// differ only in `+`/`-` and `/`/`_`, and both pad with `=`.
pub(crate) fn url_safe_registry_auth(mut request: BollardRequest) -> BollardRequest {
    if let Some(value) = request.headers_mut().get_mut("x-registry-auth") {
        let url_safe: Vec<u8> = value
            .as_bytes()
            .iter()
            .map(|&b| match b {
                b'+' => b'-',
                b'/' => b'_',
                b => b,
            })
            .collect();
        if let Ok(fixed) = HeaderValue::from_bytes(&url_safe) {
            *value = fixed;
        }
    }
    request
}

/// The keys `docker login` may have used for a registry host.
fn registry_keys(registry: &str) -> Vec<String> {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "https://docker.io",
            "registry-1.docker.io",
        ]
        .map(String::from)
        .to_vec();
    }
    vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
        format!("http://{registry}"),
    ]
}

/// Decodes standard or URL-safe base64, padded or not (`docker login`
/// writes standard padded; hand-written files vary).
fn base64_decode(input: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let input = input.trim();
    [STANDARD, URL_SAFE]
        .into_iter()
        .find_map(|alphabet| GeneralPurpose::new(&alphabet, config).decode(input).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn base64_decodes_both_alphabets_padded_or_not() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("user:pa ss", "dXNlcjpwYSBzcw=="),
        ] {
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("+/8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("not base64!"), None);
    }

    fn config(json: &str) -> ConfigFile {
        serde_json::from_str(json).unwrap()
    }

    struct Own;
    impl PullCredentials for Own {
        fn credentials(&self, registry: &str) -> Option<(String, String)> {
            (registry == "127.0.0.1:7070").then(|| ("AWS".into(), "minted".into()))
        }
    }

    #[test]
    fn the_source_answers_first_and_the_file_for_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(
            &file,
            r#"{"auths":{"127.0.0.1:7070":{"auth":"b2xkOnN0YWxl"},"other.example":{"auth":"eDp5"}}}"#,
        )
        .unwrap();
        let auth = PullAuth {
            source: Some(Arc::new(Own)),
            docker_config: Some(file),
        };
        let own = auth.for_registry("127.0.0.1:7070").unwrap();
        assert_eq!(
            (own.username.as_deref(), own.password.as_deref()),
            (Some("AWS"), Some("minted"))
        );
        let other = auth.for_registry("other.example").unwrap();
        assert_eq!(
            (other.username.as_deref(), other.password.as_deref()),
            (Some("x"), Some("y"))
        );
        assert!(auth.for_registry("third.example").is_none());
        assert!(PullAuth::default().for_registry("127.0.0.1:7070").is_none());
    }

    #[test]
    fn docker_hub_credentials_use_the_index_key() {
        let c = config(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpzZWNyZXQ="}}}"#);
        assert_eq!(
            credentials_from_config(&c, "docker.io").unwrap(),
            DockerCredentials {
                username: Some("user".into()),
                password: Some("secret".into()),
                serveraddress: Some("https://index.docker.io/v1/".into()),
                ..DockerCredentials::default()
            }
        );
    }

    #[test]
    fn private_registries_match_by_host() {
        let c = config(
            r#"{"auths":{"registry.example.com:5000":{"identitytoken":"tok"},"other.example":{"auth":"eDp5"}}}"#,
        );
        assert_eq!(
            credentials_from_config(&c, "registry.example.com:5000").unwrap(),
            DockerCredentials {
                identitytoken: Some("tok".into()),
                serveraddress: Some("registry.example.com:5000".into()),
                ..DockerCredentials::default()
            }
        );
        assert_eq!(credentials_from_config(&c, "docker.io"), None);
    }

    #[test]
    fn helpers_and_empty_entries_give_no_credentials() {
        let c = config(r#"{"auths":{"ghcr.io":{}},"credsStore":"desktop"}"#);
        assert_eq!(credentials_from_config(&c, "ghcr.io"), None);
        assert_eq!(credentials_from_config(&c, "quay.io"), None);
    }

    #[test]
    fn the_registry_auth_header_goes_out_as_base64url() {
        // Standard base64 of these bytes has both `+` and `/`.
        let bytes = [0xfb, 0xef, 0xff];
        let standard = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(standard, "++//");
        let request = http::Request::builder()
            .header("x-registry-auth", standard)
            .header("x-other", "a+b/c")
            .body(bollard::body_full(bytes::Bytes::new()))
            .unwrap();
        let sent = url_safe_registry_auth(request);
        let header = sent.headers()["x-registry-auth"].to_str().unwrap();
        assert_eq!(header, "--__");
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE
                .decode(header)
                .unwrap(),
            bytes
        );
        assert_eq!(
            sent.headers()["x-other"],
            "a+b/c",
            "other headers untouched"
        );
    }
}
