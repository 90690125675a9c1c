//! The server's own container engine pulling from this server's registry,
//! as ECS pulls from ECR with its task execution role: no operator login.
//!
//! - [`OwnRegistry`] is the engine's and the image resolver's
//!   [`PullCredentials`] source: for this registry's address it mints a
//!   registry token (the one `aws ecr get-login-password` gives) at each
//!   pull, so a pull never meets an expired login. Other registries fall
//!   back to the Docker client configuration.
//! - [`OwnRegistryResolver`] maps image names of AWS's form,
//!   `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]` with this
//!   installation's account id, to this registry before resolving them, so
//!   a task definition written for AWS runs unchanged (the pin records the
//!   name as written and the local reference it runs).
//!
//! Both are made before the listener and the key ring exist (the runtimes
//! are connected first) and are given them by [`OwnRegistry::attach`];
//! until then they answer nothing.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use cutover_docker::{ImageResolver, PinnedImage, PullCredentials, ResolveError};

use crate::aws::Aws;
use crate::clock::SharedClock;

/// This server's registry, once the listener and the key ring exist.
pub(crate) struct OwnRegistry {
    aws: OnceLock<Arc<Aws>>,
    clock: SharedClock,
}

impl OwnRegistry {
    pub(crate) fn new(clock: SharedClock) -> Arc<OwnRegistry> {
        Arc::new(OwnRegistry {
            aws: OnceLock::new(),
            clock,
        })
    }

    /// Gives the installation's AWS identity (its endpoint names the
    /// listener). Later calls are ignored.
    pub(crate) fn attach(&self, aws: Arc<Aws>) {
        let _ = self.aws.set(aws);
    }

    /// The registry's `HOST:PORT`.
    fn address(&self) -> Option<&str> {
        let e = &self.aws.get()?.endpoint;
        Some(
            e.strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .unwrap_or(e)
                .trim_end_matches('/'),
        )
    }

    /// Whether `registry` (`host[:port]`) is this server's registry: its
    /// address exactly, or, only when it listens on every address (which
    /// then includes loopback), a loopback name with its port. A server on
    /// 127.0.0.1:7070 does not count 127.0.0.2:7070 or [::1]:7070 as its
    /// own: another local user could listen there and collect the token.
    pub(crate) fn is_own(&self, registry: &str) -> bool {
        let Some(own) = self.address() else {
            return false;
        };
        if registry == own {
            return true;
        }
        let (Some((own_host, own_port)), Some((host, port))) =
            (split_host_port(own), split_host_port(registry))
        else {
            return false;
        };
        port == own_port && is_local(host) && is_unspecified(own_host)
    }

    /// `image` with an AWS-form registry of this installation's account
    /// replaced by this registry's address; `None` for any other name.
    pub(crate) fn aws_form(&self, image: &str) -> Option<String> {
        let aws = self.aws.get()?;
        let (registry, rest) = image.split_once('/')?;
        let account = aws_form_account(registry)?;
        if account != aws.keys.account() || rest.is_empty() {
            return None;
        }
        let own = self.address()?;
        // Listening on every address: the engine reaches it on loopback.
        let reachable = match split_host_port(own) {
            Some((host, port)) if is_unspecified(host) => {
                if host.contains(':') {
                    format!("[::1]:{port}")
                } else {
                    format!("127.0.0.1:{port}")
                }
            }
            _ => own.to_string(),
        };
        Some(format!("{reachable}/{rest}"))
    }
}

impl PullCredentials for OwnRegistry {
    fn credentials(&self, registry: &str) -> Option<(String, String)> {
        if !self.is_own(registry) {
            return None;
        }
        let aws = self.aws.get()?;
        Some((
            "AWS".to_string(),
            aws.keys.mint_registry_token(self.clock.now_ms()),
        ))
    }
}

/// The account of `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (also `.com.cn`).
fn aws_form_account(registry: &str) -> Option<&str> {
    let (account, rest) = registry.split_once(".dkr.ecr.")?;
    let (region, domain) = rest.split_once('.')?;
    let ok = account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && (domain == "amazonaws.com" || domain == "amazonaws.com.cn");
    ok.then_some(account)
}

fn split_host_port(a: &str) -> Option<(&str, &str)> {
    let (host, port) = a.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']'), port))
}

fn is_local(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_unspecified(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// An [`ImageResolver`] that maps AWS-form names to this registry first.
pub(crate) struct OwnRegistryResolver<R> {
    pub(crate) own: Arc<OwnRegistry>,
    pub(crate) inner: R,
}

#[async_trait]
impl<R: ImageResolver> ImageResolver for OwnRegistryResolver<R> {
    async fn resolve(&self, image: &str) -> Result<Option<PinnedImage>, ResolveError> {
        match self.own.aws_form(image) {
            Some(local) => self.inner.resolve(&local).await,
            None => self.inner.resolve(image).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_clock::Clock as _;

    #[test]
    fn aws_form_registries_are_recognised_strictly() {
        assert_eq!(
            aws_form_account("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            Some("123456789012")
        );
        assert_eq!(
            aws_form_account("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some("123456789012")
        );
        for bad in [
            "12345678901.dkr.ecr.us-east-1.amazonaws.com",
            "12345678901x.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
            "123456789012.dkr.ecr..amazonaws.com",
            "123456789012.dkr.ecr.US_EAST.amazonaws.com",
            "docker.io",
            "127.0.0.1:7070",
        ] {
            assert_eq!(aws_form_account(bad), None, "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_goes_only_to_this_listener_and_aws_names_of_this_account_map_to_it() {
        let h = crate::testing::Harness::start().await;
        let own = OwnRegistry::new(h.clock.clone());
        // Before the key ring is attached: nothing is answered.
        assert!(own.credentials("127.0.0.1:7070").is_none());
        own.attach(h.state.aws.clone());
        let (user, token) = own.credentials("127.0.0.1:7070").unwrap();
        assert_eq!(user, "AWS");
        assert!(
            h.state
                .aws
                .keys
                .verify_registry_token(&token, h.clock.now_ms())
        );
        // The listener is 127.0.0.1:7070: other loopback sockets on the
        // same port could be another user's.
        for other in [
            "127.0.0.2:7070",
            "localhost:7070",
            "[::1]:7070",
            "127.0.0.1:7071",
            "127.0.0.1:7070.evil.example",
            "registry.example:7070",
        ] {
            assert!(own.credentials(other).is_none(), "{other}");
        }
        let account = h.state.aws.keys.account().to_string();
        assert_eq!(
            own.aws_form(&format!("{account}.dkr.ecr.eu-west-1.amazonaws.com/web:1")),
            Some("127.0.0.1:7070/web:1".to_string())
        );
        assert_eq!(
            own.aws_form("000000000000.dkr.ecr.eu-west-1.amazonaws.com/web:1")
                .filter(|_| account != "000000000000"),
            None
        );
        assert_eq!(own.aws_form("docker.io/library/web:1"), None);
    }

    #[test]
    fn loopback_names_of_the_listener_port_are_the_own_registry() {
        assert!(is_local("localhost") && is_local("127.0.0.1") && is_local("::1"));
        assert!(!is_local("10.0.0.1") && !is_local("example.com"));
        assert_eq!(split_host_port("[::1]:7070"), Some(("::1", "7070")));
        assert!(is_unspecified("0.0.0.0") && !is_unspecified("127.0.0.1"));
    }
}
