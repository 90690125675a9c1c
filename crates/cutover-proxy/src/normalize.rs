//! Path normalisation before rule matching, so a rule on `/admin*` sees `/admin` whatever
//! spelling the client used.
//!
//! [`normalize`] turns an origin-form path into:
//! - the **forwarded path**: `%XX` escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`)
//!   decoded and other escapes upper-cased (RFC 3986 6.2.2); dot segments resolved
//!   (RFC 3986 5.2.4), a segment counting as a dot segment when it is `.` or `..` once its
//!   `;parameters` are removed (`/..;/admin` climbs like `/../admin`, as Tomcat reads it);
//!   repeated slashes merged when the listener's `mergeSlashes` is on (the default). `%2F`
//!   stays encoded: it is never a separator. This is the path sent to the target, so the target
//!   and the rules agree on what was asked (nginx forwards its normalised URI the same way when
//!   `proxy_pass` carries a URI);
//! - the **match path**: the forwarded path with every segment's `;parameters` removed, and
//!   segments left empty by that removed, so `/;/admin` and `/admin;x=1` match `/admin*`.
//!
//! A path that climbs above the root (`/../x`) or holds a `%` not followed by two hexadecimal
//! digits is refused: the request gets 400 (a target could read such an escape differently). Paths are
//! case-sensitive and stay so. A path without `%`, `;`, dot segments or repeated slashes (the
//! usual case) is returned as is, without allocating.

use std::borrow::Cow;

/// The normalised forms of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Normalized<'a> {
    /// What is sent to the target.
    pub(crate) forward: Cow<'a, str>,
    /// What the rules match (parameters removed).
    pub(crate) matched: Cow<'a, str>,
}

/// Why a path is refused (the request gets 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadPath {
    /// The path climbs above the root (`/../x`).
    AboveRoot,
    /// A `%` not followed by two hexadecimal digits.
    BadEscape,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `path` may need changes: anything but plain segments separated by single slashes.
fn needs_work(p: &[u8], merge_slashes: bool) -> bool {
    let mut prev = 0u8;
    for (i, &b) in p.iter().enumerate() {
        match b {
            b'%' | b';' => return true,
            b'/' if merge_slashes && prev == b'/' => return true,
            b'.' if prev == b'/' => {
                // `/.` followed by `/`, `.` or the end may be a dot segment.
                match p.get(i + 1) {
                    None | Some(b'/') | Some(b'.') => return true,
                    _ => {}
                }
            }
            _ => {}
        }
        prev = b;
    }
    false
}

/// Normalises an origin-form path (see the module documentation). A path not starting with `/`
/// (`*`) is returned unchanged.
pub(crate) fn normalize(path: &str, merge_slashes: bool) -> Result<Normalized<'_>, BadPath> {
    let bytes = path.as_bytes();
    if !bytes.starts_with(b"/") || !needs_work(bytes, merge_slashes) {
        return Ok(Normalized {
            forward: Cow::Borrowed(path),
            matched: Cow::Borrowed(path),
        });
    }
    // 1. Decode unreserved escapes, upper-case the others.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            let c = h * 16 + l;
            if is_unreserved(c) {
                decoded.push(c);
            } else {
                decoded.push(b'%');
                decoded.push(bytes[i + 1].to_ascii_uppercase());
                decoded.push(bytes[i + 2].to_ascii_uppercase());
            }
            i += 3;
        } else if b == b'%' {
            return Err(BadPath::BadEscape);
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    // 2. Resolve dot segments and merge slashes over the segments after the leading `/`.
    let body = &decoded[1..];
    let mut out: Vec<&[u8]> = Vec::new();
    let segments: Vec<&[u8]> = body.split(|&b| b == b'/').collect();
    let last = segments.len() - 1;
    for (n, seg) in segments.iter().enumerate() {
        let name = strip_params(seg);
        match name {
            b"." => {
                if n == last {
                    out.push(b"");
                }
            }
            b".." => {
                if out.pop().is_none() {
                    return Err(BadPath::AboveRoot);
                }
                if n == last {
                    out.push(b"");
                }
            }
            b"" if merge_slashes && n != last && seg.is_empty() => {}
            _ => out.push(seg),
        }
    }
    if merge_slashes {
        // A kept trailing empty segment after another empty one (`/a//`) is one slash.
        while out.len() >= 2 && out[out.len() - 1].is_empty() && out[out.len() - 2].is_empty() {
            out.pop();
        }
    }
    let forward = join(out.iter().copied());
    let matched = if forward.contains(';') {
        // Segments reduced to nothing by removing their parameters go too (`/;/admin`), but
        // the trailing slash stays.
        let n = out.len();
        join(out.iter().enumerate().filter_map(|(k, s)| {
            let name = strip_params(s);
            (!(name.is_empty() && !s.is_empty() && k + 1 != n)).then_some(name)
        }))
    } else {
        forward.clone()
    };
    Ok(Normalized {
        forward: Cow::Owned(forward),
        matched: Cow::Owned(matched),
    })
}

fn strip_params(seg: &[u8]) -> &[u8] {
    match seg.iter().position(|&b| b == b';') {
        Some(i) => &seg[..i],
        None => seg,
    }
}

fn join<'s>(segments: impl Iterator<Item = &'s [u8]>) -> String {
    let mut s = Vec::new();
    for seg in segments {
        s.push(b'/');
        s.extend_from_slice(seg);
    }
    if s.is_empty() {
        s.push(b'/');
    }
    // Only ASCII bytes were changed and the input was a valid `&str`.
    String::from_utf8(s).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(p: &str) -> String {
        normalize(p, true).unwrap().forward.into_owned()
    }
    fn matched(p: &str) -> String {
        normalize(p, true).unwrap().matched.into_owned()
    }

    #[test]
    fn plain_paths_are_borrowed() {
        for p in ["/", "/a/b", "/a/b/", "/a.b/c..d/.e", "/a?"] {
            let n = normalize(p, true).unwrap();
            assert!(matches!(n.forward, Cow::Borrowed(_)), "{p}");
            assert_eq!(n.forward, p);
        }
    }

    #[test]
    fn bypass_spellings_of_admin_normalise_to_admin() {
        for p in [
            "/%61dmin",
            "//admin",
            "/./admin",
            "/x/../admin",
            "/%2e/admin",
            "/x/%2E%2E/admin",
            "///admin",
        ] {
            assert_eq!(fwd(p), "/admin", "{p}");
            assert_eq!(matched(p), "/admin", "{p}");
        }
        for p in ["/;/admin", "/admin;x=1", "/x/..;/admin", "/;x/admin"] {
            assert_eq!(matched(p), "/admin", "{p}");
        }
        assert_eq!(fwd("/;/admin"), "/;/admin");
        assert_eq!(fwd("/x/..;/admin"), "/admin");
        assert_eq!(fwd("/ADMIN"), "/ADMIN", "paths stay case-sensitive");
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        for p in [
            "/..",
            "/../x",
            "/../../etc/passwd",
            "/a/../../b",
            "/%2e%2e/x",
            "/..;/x",
        ] {
            assert_eq!(normalize(p, true), Err(BadPath::AboveRoot), "{p}");
        }
    }

    #[test]
    fn rfc3986_dot_segments_and_slashes() {
        assert_eq!(fwd("/a/b/c/./../../g"), "/a/g");
        assert_eq!(fwd("/a/b/."), "/a/b/");
        assert_eq!(fwd("/a/b/.."), "/a/");
        assert_eq!(fwd("/a//b///"), "/a/b/");
        assert_eq!(
            fwd("/a/%2f/b"),
            "/a/%2F/b",
            "an encoded slash stays encoded"
        );
        assert_eq!(fwd("/%7euser/%41"), "/~user/A");
        assert_eq!(normalize("/a%zz", true), Err(BadPath::BadEscape));
        assert_eq!(normalize("/a%2", true), Err(BadPath::BadEscape));
        assert_eq!(normalize("/a//b", false).unwrap().forward, "/a//b");
        assert_eq!(normalize("/a//../b", false).unwrap().forward, "/a/b");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn path() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("/".to_owned()),
                    Just(".".to_owned()),
                    Just("..".to_owned()),
                    Just(";".to_owned()),
                    Just("%2e".to_owned()),
                    Just("%2F".to_owned()),
                    Just("%41".to_owned()),
                    Just("%".to_owned()),
                    "[a-z]{1,3}",
                ],
                0..12,
            )
            .prop_map(|parts| format!("/{}", parts.concat()))
        }

        proptest! {
            #[test]
            fn never_panics_and_is_idempotent(p in path(), merge in any::<bool>()) {
                if let Ok(n) = normalize(&p, merge) {
                    let again = normalize(&n.forward, merge).unwrap();
                    prop_assert_eq!(&again.forward, &n.forward);
                    prop_assert!(n.forward.starts_with('/'));
                    prop_assert!(n.matched.starts_with('/'));
                    let segments: Vec<&str> = n.matched.split('/').collect();
                    prop_assert!(!segments.contains(&".") && !segments.contains(&".."));
                    if merge {
                        prop_assert!(!n.forward.contains("//"), "{}", n.forward);
                    }
                }
            }

            #[test]
            fn arbitrary_strings_never_panic(p in "/[ -~]{0,40}", merge in any::<bool>()) {
                let _ = normalize(&p, merge);
            }
        }
    }
}
