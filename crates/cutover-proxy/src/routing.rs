//! The compiled, immutable form of a configuration (a snapshot swapped atomically as a whole),
//! rule matching and the choice of a target.
//!
//! Choosing a target for a weighted forward:
//! 1. Among the groups with a non-zero weight, those with at least one routable target
//!    (`healthy` and not draining) share the traffic in proportion to their weights,
//!    renormalised over those groups; within a group targets take turns (round robin).
//! 2. When none of them has a routable target, the forward fails open like ALB: it picks among
//!    their targets in `initial` or `unhealthy` state, never a draining one.
//! 3. When there is no such target at all (empty or fully draining groups), the proxy answers
//!    503 itself, counts it in `HTTPCode_ELB_5XX_Count` and logs it: traffic is never
//!    black-holed silently. A group with weight 0 never receives traffic.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Uri};

use crate::config::{ActionConfig, ConditionConfig, ListenerConfig, ProxyConfig};
use crate::headers::Cidr;
use crate::metrics::Counters;
use crate::target::Target;

/// A configuration compiled for the request path.
pub(crate) struct Snapshot {
    /// Version acknowledged to the control plane.
    pub(crate) version: u64,
    /// The configuration it was compiled from.
    pub(crate) config: Arc<ProxyConfig>,
    /// Listeners in configuration order.
    pub(crate) listeners: Vec<ListenerRt>,
    /// Target groups by name.
    pub(crate) groups: HashMap<String, Arc<GroupRt>>,
}

impl Snapshot {
    /// The listener called `name`.
    #[inline]
    pub(crate) fn listener(&self, name: &str) -> Option<&ListenerRt> {
        self.listeners.iter().find(|l| &*l.name == name)
    }
}

/// A compiled listener.
pub(crate) struct ListenerRt {
    pub(crate) name: Arc<str>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) default_action: Action,
    pub(crate) counters: Arc<Counters>,
    pub(crate) limits: ListenerLimits,
}

/// A listener's connection limits and request rules, compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListenerLimits {
    pub(crate) max_connections: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_line_bytes: usize,
    pub(crate) merge_slashes: bool,
    pub(crate) trusted: Vec<Cidr>,
}

impl ListenerLimits {
    pub(crate) fn compile(l: &ListenerConfig) -> Self {
        ListenerLimits {
            max_connections: l.max_connections.map_or(usize::MAX, |n| n as usize),
            header_timeout: l.request_header_timeout(),
            idle_timeout: l.idle_timeout(),
            max_header_bytes: l.max_header_bytes() as usize,
            max_line_bytes: l.max_header_line_bytes() as usize,
            merge_slashes: l.merge_slashes(),
            trusted: l
                .trusted_proxies
                .iter()
                .filter_map(|c| Cidr::parse(c).ok())
                .collect(),
        }
    }

    /// Whether `ip` is a trusted proxy.
    #[inline]
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        !self.trusted.is_empty() && self.trusted.iter().any(|c| c.contains(ip))
    }
}

impl ListenerRt {
    /// The action (and the guard, if the rule has one) for a request whose normalised match
    /// path is `path` from `peer`: the first rule whose conditions all match, else the default.
    ///
    /// `query` is the request target's query (if any), `host` the request's host as
    /// [`request_host`] finds it; `headers` is hyper's map or the HTTP/1 fast path's parsed head.
    pub(crate) fn route(
        &self,
        path: &str,
        query: Option<&str>,
        host: &str,
        headers: &(impl HeaderLookup + ?Sized),
        peer: IpAddr,
    ) -> (&Action, Option<&Guard>) {
        let req = RequestView {
            path,
            query,
            host,
            peer,
        };
        for rule in &self.rules {
            if rule.conditions.iter().all(|c| c.matches(&req, headers)) {
                return (&rule.action, rule.guard.as_deref());
            }
        }
        (&self.default_action, None)
    }
}

/// A request's header fields as rule conditions read them.
pub(crate) trait HeaderLookup {
    /// Whether any field named `name` has a value for which `f` holds.
    fn any_value(&self, name: &http::HeaderName, f: impl FnMut(&[u8]) -> bool) -> bool;
}

impl HeaderLookup for HeaderMap {
    fn any_value(&self, name: &http::HeaderName, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        self.get_all(name).iter().any(|v| f(v.as_bytes()))
    }
}

impl HeaderLookup for [httparse::Header<'_>] {
    fn any_value(&self, name: &http::HeaderName, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        let name = name.as_str();
        self.iter()
            .any(|h| h.name.eq_ignore_ascii_case(name) && f(h.value))
    }
}

/// What conditions other than header conditions read.
struct RequestView<'a> {
    path: &'a str,
    query: Option<&'a str>,
    host: &'a str,
    peer: IpAddr,
}

/// A compiled rule.
pub(crate) struct Rule {
    pub(crate) conditions: Vec<Condition>,
    /// What runs before the action; `None` (no cost) for most rules.
    pub(crate) guard: Option<Box<Guard>>,
    pub(crate) action: Action,
}

/// A rule's authorizer and throttle, run in that order before its action.
pub(crate) struct Guard {
    pub(crate) authorizer: Option<crate::jwt::Authorizer>,
    pub(crate) throttle: Option<crate::throttle::Throttle>,
}

/// A compiled target group.
pub(crate) struct GroupRt {
    pub(crate) name: Arc<str>,
    pub(crate) targets: Vec<Arc<Target>>,
    pub(crate) counters: Arc<Counters>,
    /// Time to response headers, and the longest silence within a response body.
    pub(crate) response_timeout: Duration,
    next: AtomicUsize,
}

impl GroupRt {
    pub(crate) fn new(
        name: &str,
        targets: Vec<Arc<Target>>,
        counters: Arc<Counters>,
        response_timeout: Duration,
    ) -> Self {
        GroupRt {
            name: name.into(),
            targets,
            counters,
            response_timeout,
            next: AtomicUsize::new(0),
        }
    }

    fn any(&self, ok: impl Fn(&Target) -> bool) -> bool {
        self.targets.iter().any(|t| ok(t))
    }

    /// The next target (round robin) accepted by `ok`.
    fn pick(&self, ok: impl Fn(&Target) -> bool) -> Option<&Arc<Target>> {
        let n = self.targets.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.targets[(start + i) % n])
            .find(|t| ok(t))
    }
}

/// A compiled action.
pub(crate) enum Action {
    Forward(Vec<(Arc<GroupRt>, u32)>),
    Fixed {
        status: http::StatusCode,
        content_type: HeaderValue,
        body: Bytes,
    },
    Redirect {
        status: http::StatusCode,
        protocol: Option<String>,
        host: Option<String>,
        port: Option<u16>,
        path: Option<String>,
        query: Option<String>,
    },
}

/// Picks a target for a forward, skipping `tried` (targets that already failed to connect).
pub(crate) fn choose<'a>(
    groups: &'a [(Arc<GroupRt>, u32)],
    tried: &[usize],
) -> Option<(&'a Arc<GroupRt>, Arc<Target>)> {
    let fresh = |t: &Target| !tried.contains(&(t as *const Target as usize));
    let routable = |t: &Target| t.routable() && fresh(t);
    let open = |t: &Target| t.fail_open_candidate() && fresh(t);
    for ok in [&routable as &dyn Fn(&Target) -> bool, &open] {
        let total: u32 = groups
            .iter()
            .filter(|(g, w)| *w > 0 && g.any(ok))
            .map(|(_, w)| w)
            .sum();
        if total == 0 {
            continue;
        }
        let mut r = random_below(total);
        for (g, w) in groups {
            if *w == 0 || !g.any(ok) {
                continue;
            }
            if r < *w {
                return g.pick(ok).map(|t| (g, t.clone()));
            }
            r -= w;
        }
    }
    None
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(&h as *const _ as usize);
        h.finish() | 1
    });
}

/// A uniform integer in `0..n` from a thread-local xorshift generator.
fn random_below(n: u32) -> u32 {
    RNG.with(|c| {
        let mut x = c.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.set(x);
        (((x >> 32) * n as u64) >> 32) as u32
    })
}

/// A compiled rule condition.
pub(crate) enum Condition {
    Path(Vec<String>),
    Host(Vec<String>),
    Header(http::HeaderName, Vec<String>),
    Query(Vec<(Option<String>, String)>),
    SourceIp(Vec<Cidr>),
}

impl Condition {
    pub(crate) fn compile(c: &ConditionConfig) -> Self {
        if let Some(p) = &c.path_pattern {
            Condition::Path(p.clone())
        } else if let Some(h) = &c.host {
            Condition::Host(h.iter().map(|s| s.to_ascii_lowercase()).collect())
        } else if let Some(h) = &c.http_header {
            let name =
                http::HeaderName::from_bytes(h.name.as_bytes()).unwrap_or(http::header::HOST);
            Condition::Header(
                name,
                h.values.iter().map(|s| s.to_ascii_lowercase()).collect(),
            )
        } else if let Some(nets) = &c.source_ip {
            Condition::SourceIp(nets.iter().filter_map(|n| Cidr::parse(n).ok()).collect())
        } else {
            let pairs = c.query_string.iter().flatten();
            Condition::Query(pairs.map(|q| (q.key.clone(), q.value.clone())).collect())
        }
    }

    fn matches(&self, req: &RequestView<'_>, headers: &(impl HeaderLookup + ?Sized)) -> bool {
        match self {
            Condition::SourceIp(nets) => nets.iter().any(|n| n.contains(req.peer)),
            Condition::Path(patterns) => patterns
                .iter()
                .any(|p| glob(p.as_bytes(), req.path.as_bytes(), false)),
            Condition::Host(patterns) => {
                let host = strip_port(req.host);
                patterns
                    .iter()
                    .any(|p| glob(p.as_bytes(), host.as_bytes(), true))
            }
            Condition::Header(name, patterns) => headers.any_value(name, |v| {
                patterns.iter().any(|p| glob(p.as_bytes(), v, true))
            }),
            Condition::Query(pairs) => {
                let query = req.query.unwrap_or("");
                query.split('&').filter(|s| !s.is_empty()).any(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    pairs.iter().any(|(pk, pv)| {
                        pk.as_deref().is_none_or(|pk| pk == k)
                            && glob(pv.as_bytes(), v.as_bytes(), false)
                    })
                })
            }
        }
    }
}

/// The request's host: the `Host` header, else the URI authority (HTTP/2).
pub(crate) fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> &'a str {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// `example.com:8080` -> `example.com`; `[::1]:80` -> `[::1]`.
pub(crate) fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

/// Wildcard match: `*` matches any run (also empty), `?` exactly one byte.
pub(crate) fn glob(pattern: &[u8], text: &[u8], ignore_case: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len()
            && (pattern[p] == b'?' || (pattern[p] != b'*' && eq(pattern[p], text[t])))
        {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Compiles an action, resolving target groups by name in `groups`.
pub(crate) fn compile_action(a: &ActionConfig, groups: &HashMap<String, Arc<GroupRt>>) -> Action {
    if let Some(fwd) = &a.forward {
        return Action::Forward(
            fwd.iter()
                .filter_map(|wg| groups.get(&wg.target_group).map(|g| (g.clone(), wg.weight)))
                .collect(),
        );
    }
    if let Some(fr) = &a.fixed_response {
        return Action::Fixed {
            status: http::StatusCode::from_u16(fr.status_code).unwrap_or(http::StatusCode::OK),
            content_type: fr
                .content_type
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
                .unwrap_or(HeaderValue::from_static("text/plain")),
            body: Bytes::from(fr.message_body.clone().unwrap_or_default()),
        };
    }
    let r = a.redirect.clone().unwrap_or_default();
    Action::Redirect {
        status: r
            .status_code
            .as_ref()
            .and_then(|c| c.status())
            .and_then(|s| http::StatusCode::from_u16(s).ok())
            .unwrap_or(http::StatusCode::FOUND),
        protocol: r.protocol.map(|p| p.to_ascii_lowercase()),
        host: r.host,
        port: r.port,
        path: r.path,
        query: r.query,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn glob_matching() {
        assert!(glob(b"/api/*", b"/api/users", false));
        assert!(glob(b"/api/*", b"/api/", false));
        assert!(!glob(b"/api/*", b"/apix", false));
        assert!(glob(b"/v?/x", b"/v1/x", false));
        assert!(!glob(b"/v?/x", b"/v10/x", false));
        assert!(glob(b"*.example.com", b"www.EXAMPLE.com", true));
        assert!(!glob(b"*.example.com", b"www.EXAMPLE.com", false));
        assert!(glob(b"*a*b*", b"xxaxxbxx", false));
        assert!(!glob(b"*a*b", b"xxaxxbxx", false));
        assert!(glob(b"*", b"", false));
    }

    #[test]
    fn host_port_stripping() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    fn group(name: &str, healthy: &[bool]) -> Arc<GroupRt> {
        let m = Metrics::default();
        let targets = healthy
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let addr = format!("127.0.0.1:{}", 1000 + i);
                let t = Target::new(
                    name,
                    &addr,
                    addr.parse().unwrap(),
                    true,
                    m.target(name, &addr),
                    Default::default(),
                );
                if *h {
                    crate::health::HealthSink::report(
                        &*t,
                        crate::health::TargetState::Healthy,
                        "ok",
                        true,
                    );
                }
                t
            })
            .collect();
        Arc::new(GroupRt::new(
            name,
            targets,
            m.group(name),
            Duration::from_secs(60),
        ))
    }

    /// 100,000 draws at 80/20: each share is binomial with sd = sqrt(n p q) ~ 126 requests, so a
    /// tolerance of 1% of n (~8 sd) never fails by chance yet catches any real bias.
    #[test]
    fn weighted_distribution_matches_weights_within_one_percent() {
        let groups = vec![
            (group("blue", &[true, true]), 80),
            (group("green", &[true]), 20),
        ];
        let n = 100_000;
        let mut blue = 0;
        for _ in 0..n {
            let (g, _) = choose(&groups, &[]).unwrap();
            if &*g.name == "blue" {
                blue += 1;
            }
        }
        let share = blue as f64 / n as f64;
        assert!((share - 0.8).abs() < 0.01, "blue share {share}");
    }

    #[test]
    fn groups_without_routable_targets_are_skipped_and_weight_renormalised() {
        let groups = vec![(group("blue", &[false]), 80), (group("green", &[true]), 20)];
        for _ in 0..1000 {
            assert_eq!(&*choose(&groups, &[]).unwrap().0.name, "green");
        }
    }

    #[test]
    fn zero_weight_groups_never_get_traffic() {
        let groups = vec![(group("blue", &[true]), 1), (group("green", &[true]), 0)];
        for _ in 0..1000 {
            assert_eq!(&*choose(&groups, &[]).unwrap().0.name, "blue");
        }
    }

    #[test]
    fn fails_open_to_unhealthy_but_never_to_draining_or_empty() {
        let g = group("blue", &[false, false]);
        let groups = vec![(g.clone(), 1)];
        assert!(
            choose(&groups, &[]).is_some(),
            "fails open to initial targets"
        );
        let tried = [
            Arc::as_ptr(&g.targets[0]) as usize,
            Arc::as_ptr(&g.targets[1]) as usize,
        ];
        assert!(
            choose(&groups, &tried).is_none(),
            "tried targets are excluded"
        );
        let empty = vec![(group("green", &[]), 1)];
        assert!(choose(&empty, &[]).is_none());
    }

    #[test]
    fn round_robin_within_a_group() {
        let groups = vec![(group("blue", &[true, true, true]), 1)];
        let mut seen: Vec<String> = (0..6)
            .map(|_| choose(&groups, &[]).unwrap().1.address.to_string())
            .collect();
        seen.sort();
        seen.dedup_by(|a, b| a == b);
        assert_eq!(seen.len(), 3);
    }
}
