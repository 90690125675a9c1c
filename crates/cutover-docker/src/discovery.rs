//! Finding the engine: `DOCKER_HOST`, else the usual Docker and Podman
//! sockets; then API version negotiation and what the server prints.
//!
//! The order of the default sockets is `/var/run/docker.sock`,
//! `$XDG_RUNTIME_DIR/podman/podman.sock`, `/run/podman/podman.sock` and
//! `/tmp/podman.sock` (where `scripts/setup-podman.sh` serves Podman's API).
//! An explicit host, from the options or `DOCKER_HOST`, is the only one
//! tried: a typo there must not silently pick another engine.

use std::path::PathBuf;
use std::time::Duration;

use http::Method;
use serde::Deserialize;

use crate::client::{Client, Endpoint};
use crate::error::DockerError;
use crate::{EngineInfo, NetworkMode};

/// The API version this client is written against (Podman 4.3 serves it,
/// Docker 20.10 serves 1.41 too).
pub(crate) const API_VERSION: (u32, u32) = (1, 41);
/// The oldest API version that has everything this client uses.
const MIN_API_VERSION: (u32, u32) = (1, 40);
/// How long an engine has to answer `/_ping` during discovery.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Parses a `DOCKER_HOST` value: `unix:///path`, `tcp://host:port`, or a
/// bare absolute socket path.
pub(crate) fn parse_host(host: &str) -> Result<Endpoint, DockerError> {
    let invalid = |reason| DockerError::InvalidHost {
        host: host.to_owned(),
        reason,
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(invalid("a unix socket path must be absolute"));
        }
        Ok(Endpoint::Unix(PathBuf::from(path)))
    } else if let Some(addr) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        let addr = addr.trim_end_matches('/');
        if addr.is_empty() {
            return Err(invalid("no address after tcp://"));
        }
        if addr.contains('/') {
            return Err(invalid("a tcp host takes no path"));
        }
        if addr
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            Ok(Endpoint::Tcp(format!("{addr}:2375")))
        } else {
            Ok(Endpoint::Tcp(addr.to_owned()))
        }
    } else if host.starts_with('/') {
        Ok(Endpoint::Unix(PathBuf::from(host)))
    } else if host.starts_with("ssh://")
        || host.starts_with("npipe://")
        || host.starts_with("https://")
    {
        Err(invalid(
            "only unix:// and plain tcp:// engines are supported",
        ))
    } else {
        Err(invalid("expected unix:///path or tcp://host:port"))
    }
}

/// The addresses to try, in order: the explicit host alone when there is
/// one (`host`, else `docker_host` from the environment), else the defaults.
pub(crate) fn candidates(
    host: Option<&str>,
    docker_host: Option<&str>,
    xdg_runtime_dir: Option<&str>,
) -> Result<Vec<Endpoint>, DockerError> {
    if let Some(explicit) = host.or(docker_host).filter(|h| !h.is_empty()) {
        return Ok(vec![parse_host(explicit)?]);
    }
    let mut out = vec![Endpoint::Unix("/var/run/docker.sock".into())];
    if let Some(dir) = xdg_runtime_dir.filter(|d| !d.is_empty()) {
        out.push(Endpoint::Unix(
            PathBuf::from(dir).join("podman/podman.sock"),
        ));
    }
    out.push(Endpoint::Unix("/run/podman/podman.sock".into()));
    out.push(Endpoint::Unix("/tmp/podman.sock".into()));
    out.dedup();
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Version {
    #[serde(default)]
    version: String,
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Component {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Network {
    name: String,
    #[serde(default)]
    driver: String,
}

/// Connects to the first engine that answers, negotiates the API version
/// and decides the network mode.
pub(crate) async fn connect(
    candidates: Vec<Endpoint>,
    network: NetworkMode,
) -> Result<(Client, EngineInfo), DockerError> {
    let mut tried = Vec::new();
    for endpoint in candidates {
        if let Endpoint::Unix(path) = &endpoint
            && !path.exists()
        {
            tried.push(format!("{endpoint}: no such socket"));
            continue;
        }
        let mut client = Client::new(endpoint.clone());
        let ping =
            tokio::time::timeout(PING_TIMEOUT, client.call(Method::GET, "/_ping", None)).await;
        match ping {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tried.push(format!("{endpoint}: {}", crate::error::error_chain(&e)));
                continue;
            }
            Err(_) => {
                tried.push(format!("{endpoint}: no answer within {PING_TIMEOUT:?}"));
                continue;
            }
        }
        let version: Version = client.json(Method::GET, "/version", None).await?;
        let served =
            parse_api_version(&version.api_version).ok_or_else(|| DockerError::OldApi {
                endpoint: endpoint.to_string(),
                api_version: version.api_version.clone(),
                minimum: "1.40",
            })?;
        if served < MIN_API_VERSION {
            return Err(DockerError::OldApi {
                endpoint: endpoint.to_string(),
                api_version: version.api_version,
                minimum: "1.40",
            });
        }
        let (major, minor) = served.min(API_VERSION);
        let api_version = format!("{major}.{minor}");
        client.set_version(&api_version);
        let name = if version
            .components
            .iter()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"))
        {
            "Podman"
        } else {
            "Docker"
        };
        let network = match network {
            NetworkMode::Auto => {
                let networks: Vec<Network> = client.json(Method::GET, "/networks", None).await?;
                detect_network(&networks)
            }
            chosen => chosen,
        };
        let info = EngineInfo {
            name: name.to_owned(),
            version: version.version,
            api_version,
            socket: endpoint.to_string(),
            network,
        };
        return Ok((client, info));
    }
    Err(DockerError::NoEngine { tried })
}

/// Publishing ports needs a bridge network; Docker run with `--bridge=none`
/// has only `host` and `none`, and then tasks use the host's network.
fn detect_network(networks: &[Network]) -> NetworkMode {
    let bridge = networks
        .iter()
        .any(|n| n.driver == "bridge" && matches!(n.name.as_str(), "bridge" | "podman"));
    if bridge {
        NetworkMode::Bridge
    } else {
        NetworkMode::Host
    }
}

/// Parses "1.41" into (1, 41).
fn parse_api_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_forms() {
        assert_eq!(
            parse_host("unix:///var/run/docker.sock").unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            parse_host("/tmp/podman.sock").unwrap(),
            Endpoint::Unix("/tmp/podman.sock".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2375").unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            parse_host("tcp://engine").unwrap(),
            Endpoint::Tcp("engine:2375".into())
        );
        for bad in [
            "unix://relative.sock",
            "ssh://me@host",
            "tcp://",
            "engine:2375",
            "tcp://h:1/x",
        ] {
            let err = parse_host(bad).unwrap_err();
            assert!(
                matches!(err, DockerError::InvalidHost { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn an_explicit_host_is_the_only_candidate() {
        let from_option = candidates(Some("unix:///a.sock"), Some("tcp://h:1"), None).unwrap();
        assert_eq!(from_option, vec![Endpoint::Unix("/a.sock".into())]);
        let from_env = candidates(None, Some("tcp://h:1"), Some("/run/user/0")).unwrap();
        assert_eq!(from_env, vec![Endpoint::Tcp("h:1".into())]);
    }

    #[test]
    fn default_sockets_docker_first_then_podman() {
        let list = candidates(None, Some(""), Some("/run/user/1000")).unwrap();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "unix:///var/run/docker.sock",
                "unix:///run/user/1000/podman/podman.sock",
                "unix:///run/podman/podman.sock",
                "unix:///tmp/podman.sock"
            ]
        );
    }

    #[test]
    fn api_versions_compare_numerically() {
        assert_eq!(parse_api_version("1.41"), Some((1, 41)));
        assert!(parse_api_version("1.9").unwrap() < parse_api_version("1.41").unwrap());
        assert_eq!(parse_api_version("4.3.1"), None);
        assert_eq!(parse_api_version("x"), None);
    }

    #[test]
    fn bridge_networks_allow_publishing() {
        let net = |name: &str, driver: &str| Network {
            name: name.into(),
            driver: driver.into(),
        };
        assert_eq!(
            detect_network(&[net("bridge", "bridge")]),
            NetworkMode::Bridge
        );
        assert_eq!(
            detect_network(&[net("podman", "bridge")]),
            NetworkMode::Bridge
        );
        assert_eq!(
            detect_network(&[net("host", "host"), net("none", "null")]),
            NetworkMode::Host
        );
    }
}
