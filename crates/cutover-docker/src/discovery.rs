//! Finding the engine: `DOCKER_HOST`, else the usual Docker and Podman
//! sockets; then a `bollard` client on the one chosen, API version
//! negotiation and what the server prints.
//!
//! The order of the default sockets is `/var/run/docker.sock`,
//! `$XDG_RUNTIME_DIR/podman/podman.sock` and `/run/podman/podman.sock`
//! (where `scripts/setup-podman.sh` serves Podman's API when run as root).
//! No socket in a world-writable directory such as `/tmp` is a default:
//! any local user could plant a fake engine there and receive container
//! secrets and registry credentials. A default socket is also refused, with
//! the reason in the error, when it or its directory is owned by someone
//! other than root or the user the server runs as. (`bollard`'s own
//! `connect_with_unix` only checks that the path exists, and its defaults
//! follow other rules, so discovery stays here.)
//!
//! An explicit host, from the options or `DOCKER_HOST`, is the only one
//! tried, and trusted as given: a typo there must not silently pick another
//! engine.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::Network;
use bollard::query_parameters::ListNetworksOptions;
use bollard::{BollardRequest, ClientVersion, Docker};

use crate::error::DockerError;
use crate::{DockerOptions, EngineInfo, NetworkMode};

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

/// The API version this client is written against (Podman 4.3 serves it,
/// Docker 20.10 serves 1.41 too).
const API_VERSION: (usize, usize) = (1, 41);
/// The oldest API version that has everything this client uses; discovery
/// asks `/_ping` and `/version` in it, since `bollard` puts a version in
/// every path and an engine refuses one newer than its own.
const MIN_API_VERSION: (usize, usize) = (1, 40);
/// How long an engine has to answer `/_ping` during discovery.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// `bollard`'s per-request deadline, in seconds: none. It bounds the wait
/// for response headers, and some answers come only when the container
/// does something (a stop after its timeout, a wait when it exits); the
/// requests that must be bounded (discovery's ping, a pull's idle time,
/// a health check) are bounded by the caller.
const NO_DEADLINE: u64 = u64::MAX;

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
    rustix::process::geteuid().as_raw()
}

/// A `bollard` client of the engine at `endpoint`, speaking API `version`,
/// with no deadline of its own (see [`NO_DEADLINE`]), the version in every
/// path ([`versioned`]) and registry credentials sent the way engines decode
/// them ([`crate::auth::url_safe_registry_auth`]).
fn client(endpoint: &Endpoint, (major, minor): (usize, usize)) -> Result<Docker, DockerError> {
    let version = ClientVersion {
        major_version: major,
        minor_version: minor,
    };
    let docker = match endpoint {
        Endpoint::Unix(path) => {
            Docker::connect_with_unix(&path.to_string_lossy(), NO_DEADLINE, &version)?
        }
        Endpoint::Tcp(addr) => Docker::connect_with_http(addr, NO_DEADLINE, &version)?,
    };
    Ok(docker.with_request_modifier(move |request| {
        crate::auth::url_safe_registry_auth(versioned(request, (major, minor)))
    }))
}

/// Puts `/v{major}.{minor}` in front of a request's path. `bollard` 0.21
/// builds its versioned base URL and then joins the absolute API path onto
/// it, which drops the version, so the engine would answer every request
/// in its own newest API instead of the negotiated one.
fn versioned(mut request: BollardRequest, (major, minor): (usize, usize)) -> BollardRequest {
    let mut parts = request.uri().clone().into_parts();
    let Some(path) = parts.path_and_query.as_ref() else {
        return request;
    };
    if has_version(path.path()) {
        return request;
    }
    let Ok(path) = format!("/v{major}.{minor}{path}").parse() else {
        return request;
    };
    parts.path_and_query = Some(path);
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

/// Whether `path` starts with an API version (`/v1.41/...`).
fn has_version(path: &str) -> bool {
    path.strip_prefix("/v")
        .and_then(|rest| rest.split_once('/').map(|(v, _)| v).or(Some(rest)))
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major
                    .bytes()
                    .chain(minor.bytes())
                    .all(|b| b.is_ascii_digit())
        })
}

/// An engine that answered: the client, whether its containers are
/// processes of this host (a unix socket), and what it is.
pub(crate) struct Connected {
    /// The client, speaking the negotiated API version.
    pub(crate) docker: Docker,
    /// Reached through a local socket.
    pub(crate) local: bool,
    /// Name, versions, address and network mode.
    pub(crate) info: EngineInfo,
}

/// Connects the way `options` and the environment (`DOCKER_HOST`,
/// `XDG_RUNTIME_DIR`) say, in `network` mode: the one entry point of the
/// docker and swarm runtimes. Refuses an empty instance id first.
pub(crate) async fn connect_with(
    options: &DockerOptions,
    network: NetworkMode,
) -> Result<Connected, DockerError> {
    if options.instance.trim().is_empty() {
        return Err(DockerError::InvalidHost {
            host: options.host.clone().unwrap_or_default(),
            reason: "the instance id is empty",
        });
    }
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let xdg = std::env::var("XDG_RUNTIME_DIR").ok();
    let candidates = candidates(
        options.host.as_deref(),
        docker_host.as_deref(),
        xdg.as_deref(),
    )?;
    connect(candidates, network).await
}

/// Connects to the first engine that answers, negotiates the API version
/// and decides the network mode.
pub(crate) async fn connect(
    candidates: Candidates,
    network: NetworkMode,
) -> Result<Connected, DockerError> {
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
        let probe = match ping(&endpoint).await {
            Ok(probe) => probe,
            Err(why) => {
                tried.push(format!("{endpoint}: {why}"));
                continue;
            }
        };
        let version = probe.version().await?;
        let served_text = version.api_version.unwrap_or_default();
        let old_api = || DockerError::OldApi {
            endpoint: endpoint.to_string(),
            api_version: served_text.clone(),
            minimum: "1.40",
        };
        let served = parse_api_version(&served_text).ok_or_else(old_api)?;
        if served < MIN_API_VERSION {
            return Err(old_api());
        }
        let negotiated = served.min(API_VERSION);
        let docker = client(&endpoint, negotiated)?;
        let name = if version
            .components
            .unwrap_or_default()
            .iter()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"))
        {
            "Podman"
        } else {
            "Docker"
        };
        let network = match network {
            NetworkMode::Auto => {
                detect_network(&docker.list_networks(None::<ListNetworksOptions>).await?)
            }
            chosen => chosen,
        };
        let info = EngineInfo {
            name: name.to_owned(),
            version: version.version.unwrap_or_default(),
            api_version: format!("{}.{}", negotiated.0, negotiated.1),
            socket: endpoint.to_string(),
            network,
        };
        return Ok(Connected {
            docker,
            local: matches!(endpoint, Endpoint::Unix(_)),
            info,
        });
    }
    Err(DockerError::NoEngine { tried })
}

/// A client of `endpoint` in the oldest API version, once the engine
/// answered `/_ping`; else why not, for [`DockerError::NoEngine`].
async fn ping(endpoint: &Endpoint) -> Result<Docker, String> {
    let probe = client(endpoint, MIN_API_VERSION).map_err(|e| crate::error::error_chain(&e))?;
    match tokio::time::timeout(PING_TIMEOUT, probe.ping()).await {
        Ok(Ok(_)) => Ok(probe),
        Ok(Err(e)) => Err(crate::error::error_chain(&DockerError::from(e))),
        Err(_) => Err(format!("no answer within {PING_TIMEOUT:?}")),
    }
}

/// Publishing ports needs a bridge network; Docker run with `--bridge=none`
/// has only `host` and `none`, and then tasks use the host's network.
fn detect_network(networks: &[Network]) -> NetworkMode {
    let bridge = networks.iter().any(|n| {
        n.driver.as_deref() == Some("bridge")
            && matches!(n.name.as_deref(), Some("bridge" | "podman"))
    });
    if bridge {
        NetworkMode::Bridge
    } else {
        NetworkMode::Host
    }
}

/// Parses "1.41" into (1, 41).
fn parse_api_version(v: &str) -> Option<(usize, usize)> {
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
    fn requests_carry_the_negotiated_version() {
        let sent = |uri: &str| {
            let request = http::Request::builder()
                .uri(uri)
                .body(bollard::body_full(bytes::Bytes::new()))
                .unwrap();
            versioned(request, (1, 41)).uri().to_string()
        };
        assert_eq!(sent("http://h:2375/_ping"), "http://h:2375/v1.41/_ping");
        assert_eq!(
            sent("http://h:2375/volumes?x=1"),
            "http://h:2375/v1.41/volumes?x=1"
        );
        assert_eq!(
            sent("http://h:2375/v1.40/version"),
            "http://h:2375/v1.40/version"
        );
        assert!(has_version("/v1.41/_ping") && has_version("/v1.41"));
        assert!(!has_version("/volumes") && !has_version("/v1/x") && !has_version("/v.1/x"));
    }

    #[test]
    fn bridge_networks_allow_publishing() {
        let net = |name: &str, driver: &str| Network {
            name: Some(name.into()),
            driver: Some(driver.into()),
            ..Network::default()
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
