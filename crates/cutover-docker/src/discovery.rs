//! Finding the engine: `DOCKER_HOST`, else the usual Docker and Podman
//! sockets; then API version negotiation and what the server prints.
//!
//! The order of the default sockets is `/var/run/docker.sock`,
//! `$XDG_RUNTIME_DIR/podman/podman.sock` and `/run/podman/podman.sock`
//! (where `scripts/setup-podman.sh` serves Podman's API when run as root).
//! No socket in a world-writable directory such as `/tmp` is a default:
//! any local user could plant a fake engine there and receive container
//! secrets and registry credentials. A default socket is also refused, with
//! the reason in the error, when it or its directory is owned by someone
//! other than root or the user the server runs as.
//!
//! An explicit host, from the options or `DOCKER_HOST`, is the only one
//! tried, and trusted as given: a typo there must not silently pick another
//! engine.
#![allow(unsafe_code)]

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

/// The addresses to try, and whether they were given explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidates {
    /// In order.
    pub(crate) endpoints: Vec<Endpoint>,
    /// From the options or `DOCKER_HOST` (trusted as given), not defaults.
    pub(crate) explicit: bool,
}

/// The addresses to try, in order: the explicit host alone when there is
/// one (`host`, else `docker_host` from the environment), else the defaults.
pub(crate) fn candidates(
    host: Option<&str>,
    docker_host: Option<&str>,
    xdg_runtime_dir: Option<&str>,
) -> Result<Candidates, DockerError> {
    if let Some(explicit) = host.or(docker_host).filter(|h| !h.is_empty()) {
        return Ok(Candidates {
            endpoints: vec![parse_host(explicit)?],
            explicit: true,
        });
    }
    let mut out = vec![Endpoint::Unix("/var/run/docker.sock".into())];
    if let Some(dir) = xdg_runtime_dir.filter(|d| !d.is_empty()) {
        out.push(Endpoint::Unix(
            PathBuf::from(dir).join("podman/podman.sock"),
        ));
    }
    out.push(Endpoint::Unix("/run/podman/podman.sock".into()));
    out.dedup();
    Ok(Candidates {
        endpoints: out,
        explicit: false,
    })
}

/// Why a discovered socket at `path` is not trusted: it, or its directory,
/// belongs to a user other than root and `me`.
fn untrusted_owner(path: &std::path::Path, me: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let trusted = |uid: u32| uid == 0 || uid == me;
    let socket = std::fs::symlink_metadata(path).ok()?;
    if !trusted(socket.uid()) {
        return Some(format!(
            "refused: the socket is owned by uid {}, neither root nor this user (uid {me}); set DOCKER_HOST to use it anyway",
            socket.uid()
        ));
    }
    let dir = std::fs::metadata(path.parent()?).ok()?;
    if !trusted(dir.uid()) {
        return Some(format!(
            "refused: its directory is owned by uid {}, neither root nor this user (uid {me}); set DOCKER_HOST to use it anyway",
            dir.uid()
        ));
    }
    None
}

/// The effective user id of this process.
fn euid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
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
    candidates: Candidates,
    network: NetworkMode,
) -> Result<(Client, EngineInfo), DockerError> {
    let mut tried = Vec::new();
    for endpoint in candidates.endpoints {
        if let Endpoint::Unix(path) = &endpoint {
            if !path.exists() {
                tried.push(format!("{endpoint}: no such socket"));
                continue;
            }
            if !candidates.explicit
                && let Some(why) = untrusted_owner(path, euid())
            {
                tracing::warn!(socket = %endpoint, "{why}");
                tried.push(format!("{endpoint}: {why}"));
                continue;
            }
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
        assert_eq!(
            from_option.endpoints,
            vec![Endpoint::Unix("/a.sock".into())]
        );
        assert!(from_option.explicit);
        let from_env = candidates(None, Some("tcp://h:1"), Some("/run/user/0")).unwrap();
        assert_eq!(from_env.endpoints, vec![Endpoint::Tcp("h:1".into())]);
    }

    #[test]
    fn default_sockets_docker_first_then_podman() {
        let list = candidates(None, Some(""), Some("/run/user/1000")).unwrap();
        assert!(!list.explicit);
        let shown: Vec<String> = list.endpoints.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "unix:///var/run/docker.sock",
                "unix:///run/user/1000/podman/podman.sock",
                "unix:///run/podman/podman.sock",
            ],
            "no socket in /tmp, where anyone can plant one"
        );
    }

    /// A fresh directory under the system's temporary directory.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(name: &str) -> TestDir {
            let dir = std::env::temp_dir()
                .join(format!("cutover-discovery-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            TestDir(dir)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_discovered_socket_of_another_user_is_refused() {
        let dir = TestDir::new("owner");
        let path = dir.0.join("engine.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let me = euid();
        assert_eq!(untrusted_owner(&path, me), None);
        // Seen from another user, a socket this user created is untrusted
        // (unless this user is root, whom everyone trusts).
        let other = if me == 0 { None } else { Some(me) };
        let seen_by = me.wrapping_add(1).max(1);
        match other {
            Some(owner) => {
                let why = untrusted_owner(&path, seen_by).unwrap();
                assert!(why.contains(&format!("owned by uid {owner}")), "{why}");
            }
            None => assert_eq!(untrusted_owner(&path, seen_by), None),
        }
    }

    #[tokio::test]
    async fn discovery_refuses_an_untrusted_socket_with_a_clear_error() {
        // A socket owned by another user can only be made as root: then
        // chown one to nobody and check discovery refuses it.
        if euid() != 0 {
            eprintln!("skipping: needs root to give a socket to another user");
            return;
        }
        let dir = TestDir::new("refused");
        let path = dir.0.join("engine.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let discovered = Candidates {
            endpoints: vec![Endpoint::Unix(path.clone())],
            explicit: false,
        };
        let err = connect(discovered, NetworkMode::Auto).await.err().unwrap();
        let text = err.to_string();
        assert!(
            text.contains("refused: the socket is owned by uid 65534"),
            "{text}"
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
