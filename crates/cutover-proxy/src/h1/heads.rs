//! The heads of the HTTP/1 fast path ([`super::fast`]): which requests it takes and what the
//! target receives, and what the client receives of a target's response head.
//!
//! Both heads are read by `httparse` (into uninitialised field arrays: initialising them was a
//! 2-3 KiB fill per message) and written out as the target's or client's own field lines,
//! copied in runs of consecutive kept lines when every line ends in CRLF ([`copy_fields`]),
//! else field by field.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::Arc;

use crate::headers::{self, HOP_BY_HOP, UNTRUSTED_REPLACED};
use crate::normalize;
use crate::proxy::{ConnCtx, push_request_id};
use crate::routing::{Action, GroupRt, ListenerRt};

/// Request fields at most.
const MAX_REQUEST_FIELDS: usize = 64;
/// Response fields at most (hyper's default).
const MAX_RESPONSE_FIELDS: usize = 100;
/// The longest response head read (hyper's default buffer limit).
pub(super) const MAX_RESPONSE_HEAD: usize = 8192 + 4096 * 100;

/// What the request's head decided.
pub(super) struct Plan<'s> {
    pub(super) groups: &'s [(Arc<GroupRt>, u32)],
    pub(super) head: bool,
    pub(super) idempotent: bool,
    pub(super) close: bool,
}

/// Why a head gave no plan.
pub(super) enum Parse {
    /// More bytes are needed.
    Partial,
    /// Not for this path.
    Fallback,
}

/// Host values up to this long are remembered once valid.
const HOST_CACHE_LEN: usize = 64;

thread_local! {
    /// The last valid `Host` values seen by this worker: checking one allocates (`http`'s
    /// authority parser takes owned bytes), and clients send the same few.
    static VALID_HOSTS: RefCell<[(u8, [u8; HOST_CACHE_LEN]); 4]> =
        const { RefCell::new([(0, [0; HOST_CACHE_LEN]); 4]) };
}

/// [`headers::valid_host_bytes`], remembered for the last four short values.
fn valid_host_cached(h: &[u8]) -> bool {
    if h.is_empty() || h.len() > HOST_CACHE_LEN {
        return headers::valid_host_bytes(h);
    }
    VALID_HOSTS.with_borrow_mut(|cache| {
        if cache
            .iter()
            .any(|(n, v)| usize::from(*n) == h.len() && &v[..h.len()] == h)
        {
            return true;
        }
        if !headers::valid_host_bytes(h) {
            return false;
        }
        cache.rotate_right(1);
        cache[0].0 = h.len() as u8;
        cache[0].1[..h.len()].copy_from_slice(h);
        true
    })
}

/// RFC 3986 `pchar`, `/` and `?`: the request-target bytes this path forwards as they are.
fn target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/?".contains(&b)
}

/// Reads a complete request head and, when this path may serve it, routes it and writes the
/// head the target receives into `out`. Returns the plan and the head's length.
pub(super) fn plan<'s>(
    buf: &[u8],
    ctx: &ConnCtx,
    listener: &'s ListenerRt,
    out: &mut Vec<u8>,
) -> Result<(Plan<'s>, usize), Parse> {
    // Uninitialised: an initialised array costs a 2 KiB fill per request.
    let mut fields = [const { MaybeUninit::uninit() }; MAX_REQUEST_FIELDS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut req,
        buf,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(Parse::Partial),
        Err(_) => return Err(Parse::Fallback),
    };
    let limits = &listener.limits;
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Err(Parse::Fallback);
    };
    if method == "CONNECT"
        || head_len > limits.max_header_bytes
        || target.len() > limits.max_line_bytes
        || !target.starts_with('/')
        || !target.bytes().all(target_byte)
        || limits.trusts(ctx.peer_ip)
    {
        return Err(Parse::Fallback);
    }
    let mut host = None;
    let mut close = false;
    let mut has_id = false;
    for f in req.headers.iter() {
        let name = f.name;
        if name.len() + 2 + f.value.len() > limits.max_line_bytes {
            return Err(Parse::Fallback);
        }
        if name.eq_ignore_ascii_case("host") {
            if host.replace(f.value).is_some() {
                return Err(Parse::Fallback);
            }
        } else if name.eq_ignore_ascii_case("connection") {
            let v = f.value.trim_ascii();
            if v.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !v.eq_ignore_ascii_case(b"keep-alive") {
                return Err(Parse::Fallback);
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if f.value.trim_ascii() != b"0" {
                return Err(Parse::Fallback);
            }
        } else if name.eq_ignore_ascii_case("expect")
            || HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        {
            return Err(Parse::Fallback);
        } else if name.eq_ignore_ascii_case("x-request-id") {
            has_id = true;
        }
    }
    let host = match host {
        Some(h) if valid_host_cached(h) => std::str::from_utf8(h).ok(),
        _ => None,
    }
    .ok_or(Parse::Fallback)?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    match normalize::normalize(path, limits.merge_slashes) {
        Ok(n)
            if matches!(
                (&n.forward, &n.matched),
                (std::borrow::Cow::Borrowed(_), std::borrow::Cow::Borrowed(_))
            ) => {}
        _ => return Err(Parse::Fallback),
    }
    let (Action::Forward(groups), None) =
        listener.route(path, query, host, &*req.headers, ctx.peer_ip)
    else {
        return Err(Parse::Fallback);
    };

    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    copy_fields(
        &buf[..head_len],
        req.headers,
        |n| {
            !(n.eq_ignore_ascii_case("connection")
                || UNTRUSTED_REPLACED.iter().any(|h| n.eq_ignore_ascii_case(h)))
        },
        out,
    );
    push_field(out, b"x-forwarded-for", ctx.client_ip.as_bytes());
    push_field(out, b"x-forwarded-proto", b"http");
    push_field(out, b"x-forwarded-port", ctx.port.as_bytes());
    if !has_id {
        out.extend_from_slice(b"x-request-id: ");
        push_request_id(out, &ctx.shared.id_prefix);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let plan = Plan {
        groups,
        head: method == "HEAD",
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        ),
        close,
    };
    Ok((plan, head_len))
}

/// Appends the lines of `fields` (parsed from `head`, a whole head) whose name `keep` accepts,
/// as the peer wrote them: runs of consecutive kept lines are copied at once. When a line does
/// not end in CRLF (httparse also accepts a bare LF, which is not passed on) every kept field
/// is written as `name: value` instead.
fn copy_fields(
    head: &[u8],
    fields: &[httparse::Header<'_>],
    keep: impl Fn(&str) -> bool,
    out: &mut Vec<u8>,
) {
    let base = head.as_ptr() as usize;
    let start = |f: &httparse::Header<'_>| (f.name.as_ptr() as usize).wrapping_sub(base);
    // A field's line ends where the next one starts; the last one before the final CRLF.
    let last_end = head.len().saturating_sub(2);
    let crlf_lines = fields.iter().enumerate().all(|(i, f)| {
        let end = fields.get(i + 1).map_or(last_end, start);
        start(f) < end && (2..=head.len()).contains(&end) && head[end - 2..end] == *b"\r\n"
    });
    if !crlf_lines {
        for f in fields.iter().filter(|f| keep(f.name)) {
            push_field(out, f.name.as_bytes(), f.value);
        }
        return;
    }
    let mut run = None;
    for f in fields {
        if keep(f.name) {
            run.get_or_insert(start(f));
        } else if let Some(r) = run.take() {
            out.extend_from_slice(&head[r..start(f)]);
        }
    }
    if let Some(r) = run {
        out.extend_from_slice(&head[r..last_end]);
    }
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (`HEAD`, 204, 304).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the target closes.
    UntilClose,
}

/// A response head read from a target and rewritten for the client into `out`.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) len: usize,
    pub(super) framing: Framing,
    /// The target's connection may carry another request once the body ended.
    pub(super) reusable: bool,
}

/// Why a response head could not be used.
pub(super) enum BadHead {
    /// More bytes are needed.
    Partial,
    /// A `1xx` interim response of this many bytes, dropped (as hyper's client drops them).
    Interim(usize),
    /// Malformed, too large, or a `101` to a request that asked for no upgrade.
    Invalid(&'static str),
}

/// Reads a response head from `buf` and writes the client's version into `out`; `close`
/// makes it say `Connection: close`.
pub(super) fn response_head(
    buf: &[u8],
    head_method: bool,
    close: &mut bool,
    out: &mut Vec<u8>,
) -> Result<Head, BadHead> {
    let mut fields = [const { MaybeUninit::uninit() }; MAX_RESPONSE_FIELDS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => {
            return Err(BadHead::Partial);
        }
        Ok(httparse::Status::Partial) => return Err(BadHead::Invalid("response head too large")),
        Err(_) => return Err(BadHead::Invalid("malformed response head")),
    };
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(BadHead::Invalid("malformed response head"));
    };
    if status < 100 {
        // httparse takes any three digits; hyper's client refuses these.
        return Err(BadHead::Invalid("status code below 100"));
    }
    if status == 101 {
        return Err(BadHead::Invalid("101 to a request without an upgrade"));
    }
    if (100..200).contains(&status) {
        return Err(BadHead::Interim(len));
    }
    let fields = &*resp.headers;
    let connection = || {
        fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("connection"))
    };
    let mut reusable = version == 1 && !connection().any(|f| headers::has_token(f.value, b"close"));
    // Whether `Connection` names fields to remove (more than `keep-alive` or `close`).
    let names_fields = connection().any(|f| {
        f.value.split(|&b| b == b',').any(|t| {
            let t = t.trim_ascii();
            !t.eq_ignore_ascii_case(b"keep-alive") && !t.eq_ignore_ascii_case(b"close")
        })
    });
    let mut chunked = None;
    let mut length: Option<u64> = None;
    for f in fields {
        if f.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = f.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if f.name.eq_ignore_ascii_case("content-length") {
            for v in f.value.split(|&b| b == b',') {
                let n = std::str::from_utf8(v.trim_ascii())
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(BadHead::Invalid("invalid Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(BadHead::Invalid("conflicting Content-Length"));
                }
                length = Some(n);
            }
        }
    }
    let framing = if head_method || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), l) => {
                // Both framings: the target's connection is in doubt (RFC 9112 6.3).
                reusable &= l.is_none();
                Framing::Chunked
            }
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    if framing == Framing::UntilClose {
        reusable = false;
        *close = true;
    }
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    // httparse reads exactly three digits.
    out.extend_from_slice(&[
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]);
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\r\n");
    // The framing fields are written from `framing`, never copied: the client must delimit
    // the body exactly as the proxy passes it on (`Transfer-Encoding` is hop-by-hop already).
    let dropped = |n: &str| {
        n.eq_ignore_ascii_case("connection")
            || n.eq_ignore_ascii_case("content-length")
            || HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h))
            || (names_fields && connection().any(|c| headers::has_token(c.value, n.as_bytes())))
    };
    copy_fields(&buf[..len], fields, |n| !dropped(n), out);
    let length = match framing {
        Framing::Length(n) => Some(n),
        // A HEAD or 304 response's length describes the body it does not carry.
        Framing::Empty => length,
        Framing::Chunked | Framing::UntilClose => None,
    };
    if let Some(n) = length {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if *close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Head {
        status,
        len,
        framing,
        reusable,
    })
}
