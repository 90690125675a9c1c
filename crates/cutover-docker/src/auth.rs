//! Registry credentials from `~/.docker/config.json` for image pulls.
//!
//! Only the `auths` section is read: an entry's `auth` (base64 of
//! `user:password`) or `identitytoken`, keyed by registry host as `docker
//! login` writes it (`https://index.docker.io/v1/` for Docker Hub).
//! Credential helpers (`credsStore`, `credHelpers`) are not run; a pull that
//! needs them goes out without credentials and is logged. The file is read
//! at each pull, so a `docker login` takes effect without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use serde::{Deserialize, Serialize};

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

/// The JSON the engine expects, base64url-encoded, in `X-Registry-Auth`.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct RegistryAuth {
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    password: String,
    #[serde(skip_serializing_if = "String::is_empty", rename = "identitytoken")]
    identity_token: String,
    serveraddress: String,
}

/// The `X-Registry-Auth` header value for pulls from `registry`, if the
/// configuration at `path` has credentials for it. A missing or unreadable
/// file means no credentials (logged at debug level).
pub(crate) fn registry_auth_header(path: &Path, registry: &str) -> Option<String> {
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
    header_from_config(&config, registry)
}

fn header_from_config(config: &ConfigFile, registry: &str) -> Option<String> {
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
    let (mut username, mut password) = (
        entry.username.clone().unwrap_or_default(),
        entry.password.clone().unwrap_or_default(),
    );
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64_decode(auth).and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, pass)) => {
                username = user.to_owned();
                password = pass.to_owned();
            }
            None => {
                tracing::warn!(registry = %key, "the auth entry is not base64 of user:password; ignored");
            }
        }
    }
    let auth = RegistryAuth {
        username,
        password,
        identity_token: entry.identity_token.clone().unwrap_or_default(),
        serveraddress: key,
    };
    if auth.username.is_empty() && auth.identity_token.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(&auth).expect("credentials serialise");
    Some(URL_SAFE.encode(&json))
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

    #[test]
    fn base64_round_trips() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("user:pa ss", "dXNlcjpwYSBzcw=="),
        ] {
            assert_eq!(
                base64::engine::general_purpose::STANDARD.encode(plain),
                encoded
            );
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(URL_SAFE.encode([0xfb, 0xff]), "-_8=");
        assert_eq!(base64_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("not base64!"), None);
    }

    fn config(json: &str) -> ConfigFile {
        serde_json::from_str(json).unwrap()
    }

    fn decode_header(header: &str) -> serde_json::Value {
        serde_json::from_slice(&base64_decode(header).unwrap()).unwrap()
    }

    #[test]
    fn docker_hub_credentials_use_the_index_key() {
        let c = config(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpzZWNyZXQ="}}}"#);
        let header = header_from_config(&c, "docker.io").unwrap();
        assert_eq!(
            decode_header(&header),
            serde_json::json!({"username":"user","password":"secret","serveraddress":"https://index.docker.io/v1/"})
        );
    }

    #[test]
    fn private_registries_match_by_host() {
        let c = config(
            r#"{"auths":{"registry.example.com:5000":{"identitytoken":"tok"},"other.example":{"auth":"eDp5"}}}"#,
        );
        let header = header_from_config(&c, "registry.example.com:5000").unwrap();
        assert_eq!(
            decode_header(&header),
            serde_json::json!({"identitytoken":"tok","serveraddress":"registry.example.com:5000"})
        );
        assert_eq!(header_from_config(&c, "docker.io"), None);
    }

    #[test]
    fn helpers_and_empty_entries_give_no_header() {
        let c = config(r#"{"auths":{"ghcr.io":{}},"credsStore":"desktop"}"#);
        assert_eq!(header_from_config(&c, "ghcr.io"), None);
        assert_eq!(header_from_config(&c, "quay.io"), None);
    }
}
