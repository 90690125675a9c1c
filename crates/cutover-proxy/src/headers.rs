//! Request checks and header rewriting on the way to a target.
//!
//! Refused before routing, never forwarded:
//! - `CONNECT`: 405 (the proxy is not a tunnel; `TRACE` is forwarded, as ALB does);
//! - a request target longer than `maxHeaderLineBytes`: 414; a header line (name, `: `, value)
//!   longer than it: 431 (the whole head above `maxHeaderBytes` gets 431 from the parser);
//! - more than one `Host` header, an HTTP/1.1 request without `Host`, or a `Host` that is not
//!   a valid `host[:port]`: 400 (RFC 9112 3.2, as nginx answers).
//!
//! When the request target is in absolute form (`GET http://a.example/ HTTP/1.1`) or carries
//! an HTTP/2 `:authority`, its authority wins over `Host` (RFC 9112 3.2.2): `Host` is set to it
//! for routing and forwarding.
//!
//! Hop-by-hop headers are removed: the fixed list and every header named in *any* `Connection`
//! header. `Host` is never removed that way (`Connection: host` keeps it).
//!
//! # Forwarding headers and trusted proxies
//! Each listener has a list of trusted client networks, `trustedProxies` (CIDRs, default
//! empty). For a client whose address is not in it (every client by default), the proxy
//! - removes the incoming `Forwarded`, `X-Real-IP` and `X-Forwarded-Host`;
//! - sets `X-Forwarded-For` to the client's address, discarding any incoming value;
//! - sets `X-Forwarded-Proto` (`http`/`https`) and `X-Forwarded-Port` (the listener's port).
//!
//! For a trusted client (another proxy in front of this one), the proxy
//! - keeps `Forwarded`, `X-Real-IP` and `X-Forwarded-Host` as received;
//! - appends the client's address to the incoming `X-Forwarded-For` (`a, b, client`);
//! - keeps an incoming `X-Forwarded-Proto` and `X-Forwarded-Port`, setting its own only when
//!   absent.
//!
//! So a target can trust the last `X-Forwarded-For` entry, and all of it when every hop is
//! trusted.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address (one host).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let (net, bits) = cutover_spec::gateway::parse_cidr(s)?;
        Ok(Cidr { net, bits })
    }

    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A request the proxy answers itself instead of forwarding.
pub(crate) type Refusal = (StatusCode, &'static str);

/// Applies the checks of the module documentation; sets `Host` from an absolute-form or
/// HTTP/2 authority.
pub(crate) fn check_request<B>(req: &mut Request<B>, max_line: usize) -> Result<(), Refusal> {
    if req.method() == Method::CONNECT {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not supported"));
    }
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > max_line {
        return Err((StatusCode::URI_TOO_LONG, "request target too long"));
    }
    for (name, value) in req.headers() {
        if name.as_str().len() + 2 + value.len() > max_line {
            return Err((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request header line too long",
            ));
        }
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err((StatusCode::BAD_REQUEST, "more than one Host header"));
    }
    match first {
        None if req.version() == Version::HTTP_11 => {
            return Err((StatusCode::BAD_REQUEST, "missing Host header"));
        }
        Some(h) if !valid_host(h) => {
            return Err((StatusCode::BAD_REQUEST, "invalid Host header"));
        }
        _ => {}
    }
    if let Some(authority) = req.uri().authority()
        && first.is_none_or(|h| h.as_bytes() != authority.as_str().as_bytes())
    {
        let v = HeaderValue::from_str(authority.as_str())
            .map_err(|_| (StatusCode::BAD_REQUEST, "invalid authority"))?;
        req.headers_mut().insert(header::HOST, v);
    }
    Ok(())
}

/// `host[:port]` without user information; empty is allowed (RFC 9110 7.2).
fn valid_host(h: &HeaderValue) -> bool {
    valid_host_bytes(h.as_bytes())
}

/// [`valid_host`] of a raw field value (the HTTP/1 fast path's).
pub(crate) fn valid_host_bytes(b: &[u8]) -> bool {
    b.is_empty() || (!b.contains(&b'@') && http::uri::Authority::try_from(b).is_ok())
}

/// The hop-by-hop fields removed from every forwarded message besides `Connection` and the
/// fields it names (lower case).
pub(crate) const HOP_BY_HOP: [&str; 7] = [
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "proxy-authenticate",
    "upgrade",
];

/// The fields a target receives from the proxy, never from an untrusted client (lower case):
/// the client's copies are removed, and the last three set by the proxy.
pub(crate) const UNTRUSTED_REPLACED: [&str; 6] = [
    "forwarded",
    "x-real-ip",
    "x-forwarded-host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
];

/// Whether the request (or response) asks for a protocol upgrade.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v.as_bytes(), b"upgrade"))
}

/// Whether the comma-separated `list` (a `Connection` value) holds `token`, ignoring case.
pub(crate) fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Removes hop-by-hop headers, those named in every `Connection` header included (never
/// `Host`); keeps `Connection: upgrade` and `Upgrade` when the message is an upgrade.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    if headers.contains_key(header::CONNECTION) {
        // Cloning a parsed value only bumps a reference count; the first one is kept out of a
        // Vec so the common single `Connection` header costs no allocation.
        let mut values = headers.get_all(header::CONNECTION).iter();
        let first = values.next().cloned();
        let more: Vec<HeaderValue> = values.cloned().collect();
        for v in first.iter().chain(&more) {
            for token in v.as_bytes().split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"host")
                    || (keep_upgrade && token.eq_ignore_ascii_case(b"upgrade"))
                {
                    continue;
                }
                // By `&str`, a header name is looked up without being allocated.
                if let Ok(name) = std::str::from_utf8(token) {
                    headers.remove(name);
                }
            }
        }
        if !keep_upgrade {
            headers.remove(header::CONNECTION);
        }
    }
    for name in HOP_BY_HOP {
        if name != "upgrade" {
            headers.remove(name);
        }
    }
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    } else {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// What the forwarding headers need to know about the downstream connection.
pub(crate) struct Peer<'a> {
    /// The client's address as a header value.
    pub(crate) ip: &'a HeaderValue,
    /// The listener's port as a header value.
    pub(crate) port: &'a HeaderValue,
    /// Whether the listener speaks TLS.
    pub(crate) tls: bool,
    /// Whether the client is in the listener's `trustedProxies`.
    pub(crate) trusted: bool,
}

/// Turns a request into what a target receives: origin-form target, HTTP/1.1, hop-by-hop
/// headers removed, forwarding headers per the trust rules above.
pub(crate) fn prepare_request<B>(req: &mut Request<B>, peer: &Peer<'_>, upgrade: bool) {
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if let Ok(u) = pq.parse::<Uri>() {
            *req.uri_mut() = u;
        }
    }
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    // Room for the forwarding headers and the request id at once, not one growth each.
    headers.reserve(4);
    strip_hop_by_hop(headers, upgrade);
    let proto = HeaderValue::from_static(if peer.tls { "https" } else { "http" });
    if peer.trusted {
        match headers.get(&X_FORWARDED_FOR) {
            Some(prev) => {
                let mut v = Vec::with_capacity(prev.len() + 2 + peer.ip.len());
                v.extend_from_slice(prev.as_bytes());
                v.extend_from_slice(b", ");
                v.extend_from_slice(peer.ip.as_bytes());
                if let Ok(v) = HeaderValue::from_bytes(&v) {
                    headers.insert(&X_FORWARDED_FOR, v);
                }
            }
            None => {
                headers.insert(&X_FORWARDED_FOR, peer.ip.clone());
            }
        }
        if !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(&X_FORWARDED_PROTO, proto);
        }
        if !headers.contains_key(&X_FORWARDED_PORT) {
            headers.insert(&X_FORWARDED_PORT, peer.port.clone());
        }
    } else {
        headers.remove(&FORWARDED);
        headers.remove(&X_REAL_IP);
        headers.remove(&X_FORWARDED_HOST);
        headers.insert(&X_FORWARDED_FOR, peer.ip.clone());
        headers.insert(&X_FORWARDED_PROTO, proto);
        headers.insert(&X_FORWARDED_PORT, peer.port.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn headers_named_in_every_connection_header_go_but_host_stays() {
        let mut h = HeaderMap::new();
        h.append(header::CONNECTION, HeaderValue::from_static("x-a"));
        h.append(header::CONNECTION, HeaderValue::from_static("x-b, host"));
        for n in ["x-a", "x-b", "x-c"] {
            h.insert(n, HeaderValue::from_static("1"));
        }
        h.insert(header::HOST, HeaderValue::from_static("app.example"));
        strip_hop_by_hop(&mut h, false);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, vec!["host", "x-c"]);
    }

    #[test]
    fn upgrade_headers_survive_an_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "upgrade");
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        let one = Cidr::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("ten/8").is_err());
    }

    fn req(lines: &[(&str, &str)], uri: &str, version: Version) -> Request<()> {
        let mut b = Request::get(uri).version(version);
        for (k, v) in lines {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn host_checks() {
        let ok = |r: &mut Request<()>| check_request(r, 8192);
        let mut r = req(&[("host", "a"), ("host", "b")], "/", Version::HTTP_11);
        assert_eq!(ok(&mut r).unwrap_err().0, 400);
        let mut r = req(&[], "/", Version::HTTP_11);
        assert_eq!(ok(&mut r).unwrap_err().1, "missing Host header");
        let mut r = req(&[], "/", Version::HTTP_10);
        assert!(ok(&mut r).is_ok(), "HTTP/1.0 needs no Host");
        let mut r = req(&[("host", "a@b")], "/", Version::HTTP_11);
        assert_eq!(ok(&mut r).unwrap_err().1, "invalid Host header");
        let mut r = req(
            &[("host", "evil.example")],
            "http://good.example/x",
            Version::HTTP_11,
        );
        ok(&mut r).unwrap();
        assert_eq!(r.headers()[header::HOST], "good.example");
        let mut r = Request::connect("a:443").body(()).unwrap();
        assert_eq!(ok(&mut r).unwrap_err().0, 405);
    }

    #[test]
    fn long_lines_are_refused() {
        let long = "x".repeat(9000);
        let mut r = req(&[("host", "a"), ("x-big", &long)], "/", Version::HTTP_11);
        assert_eq!(check_request(&mut r, 8192).unwrap_err().0, 431);
        let mut r = req(&[("host", "a")], &format!("/{long}"), Version::HTTP_11);
        assert_eq!(check_request(&mut r, 8192).unwrap_err().0, 414);
    }

    #[test]
    fn forwarding_headers_follow_trust() {
        let ip = HeaderValue::from_static("192.0.2.7");
        let port = HeaderValue::from_static("8080");
        let incoming = [
            ("x-forwarded-for", "10.9.9.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-host", "spoof.example"),
            ("x-real-ip", "10.9.9.9"),
            ("forwarded", "for=10.9.9.9"),
        ];
        let mut r = req(&incoming, "/", Version::HTTP_11);
        let peer = Peer {
            ip: &ip,
            port: &port,
            tls: false,
            trusted: false,
        };
        prepare_request(&mut r, &peer, false);
        let h = r.headers();
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-port"], "8080");
        for gone in ["x-forwarded-host", "x-real-ip", "forwarded"] {
            assert!(!h.contains_key(gone), "{gone}");
        }
        let mut r = req(&incoming, "/", Version::HTTP_11);
        let peer = Peer {
            trusted: true,
            ..peer
        };
        prepare_request(&mut r, &peer, false);
        let h = r.headers();
        assert_eq!(h["x-forwarded-for"], "10.9.9.9, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-port"], "443");
        assert_eq!(h["x-forwarded-host"], "spoof.example");
    }
}
