//! Masking secret values in a build's output, as a stream.
//!
//! Values resolved from `env.parameter-store` and `env.secrets-manager` are
//! replaced by `***` in the byte stream of the build's output, before it is
//! cut into lines, so a secret is masked however the build writes it: in
//! one write or split over many, across lines, or where a long line is
//! split. Each secret gives several patterns, as GitHub Actions does:
//!
//! - the value itself;
//! - each line of a multi-line value (lines of at least
//!   [`MIN_DERIVED`] bytes, a trailing `\r` removed);
//! - its base64, standard and URL-safe, at the three alignments a value can
//!   have in a longer base64 text (offsets 0, 1 and 2 of a 3-byte group),
//!   without the characters at either edge that depend on the neighbouring
//!   bytes;
//! - its percent-encoding (every byte but `A-Za-z0-9-._~`, upper-case hex),
//!   and the form-encoding variant with `+` for spaces;
//! - its single-quoted form as `set -x` prints it (`'` written `'\''`).
//!
//! Derived patterns shorter than [`MIN_DERIVED`] bytes are left out (they
//! would mask unrelated text); the value itself is masked whatever its
//! length, so a one-character secret masks that character everywhere.
//!
//! Matching is Aho-Corasick, leftmost-longest (so a secret containing
//! another is masked whole). [`MaskStream`] holds back the end of the output
//! only while it could still be the start of a pattern: bytes that cannot
//! begin a secret are released at once, so the log stays live. When the
//! output pauses ([`MaskStream::idle`]), complete matches among the held
//! bytes are masked and released even if a longer pattern could still have
//! continued them; only a proper prefix of a pattern stays held until more
//! output comes or the stream ends. The result does not depend on how the
//! output was cut into writes, except for those pauses.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// What a secret is replaced with.
const MASK: &[u8] = b"***";

/// The shortest derived pattern (line, encoding) that is masked.
pub(crate) const MIN_DERIVED: usize = 4;

struct Inner {
    matcher: AhoCorasick,
    /// The patterns, sorted, for prefix tests.
    sorted: Vec<Vec<u8>>,
    /// The longest pattern's length.
    longest: usize,
}

/// The secrets of one build, compiled.
#[derive(Clone, Default)]
pub(crate) struct Masker {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field(
                "patterns",
                &self.inner.as_ref().map_or(0, |i| i.sorted.len()),
            )
            .finish()
    }
}

impl Masker {
    /// A masker for `values` (empty values are ignored).
    pub(crate) fn new(values: impl IntoIterator<Item = String>) -> Masker {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for v in values {
            if !v.is_empty() {
                patterns.extend(patterns_of(v.as_bytes()));
            }
        }
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return Masker::default();
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("a few secrets always fit an Aho-Corasick automaton");
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        Masker {
            inner: Some(Arc::new(Inner {
                matcher,
                sorted: patterns,
                longest,
            })),
        }
    }

    /// `text` with every secret masked, as a whole.
    pub(crate) fn mask(&self, text: &str) -> String {
        if self.inner.is_none() {
            return text.to_owned();
        }
        let mut stream = self.stream();
        let mut out = Vec::with_capacity(text.len());
        stream.push(text.as_bytes(), &mut out);
        stream.finish(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A stream masker for one output stream.
    pub(crate) fn stream(&self) -> MaskStream {
        MaskStream {
            masker: self.clone(),
            held: Vec::new(),
        }
    }
}

/// Masks one output stream: bytes in, masked bytes out, holding back at
/// most the start of a possible secret.
#[derive(Debug)]
pub(crate) struct MaskStream {
    masker: Masker,
    held: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// More output may come: mask only what more output cannot change.
    Stream,
    /// The output paused: mask complete matches, hold only prefixes.
    Idle,
    /// The output ended: mask and release everything.
    End,
}

impl MaskStream {
    /// Feeds `chunk`; appends what can be released to `out`.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.masker.inner.is_none() {
            out.extend_from_slice(chunk);
            return;
        }
        self.held.extend_from_slice(chunk);
        self.drain(Mode::Stream, out);
    }

    /// The output paused: releases everything but a possible start of a
    /// secret.
    pub(crate) fn idle(&mut self, out: &mut Vec<u8>) {
        self.drain(Mode::Idle, out);
    }

    /// The output ended: releases everything.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        self.drain(Mode::End, out);
    }

    /// Whether held bytes include a line end (a line is waiting).
    pub(crate) fn holds_newline(&self) -> bool {
        self.held.contains(&b'\n')
    }

    fn drain(&mut self, mode: Mode, out: &mut Vec<u8>) {
        let Some(inner) = self.masker.inner.clone() else {
            out.append(&mut self.held);
            return;
        };
        let buf = &self.held;
        let limit = match mode {
            Mode::Stream => inner.release_point(buf),
            Mode::Idle | Mode::End => buf.len(),
        };
        let mut pos = 0;
        for m in inner.matcher.find_iter(buf.as_slice()) {
            if m.start() >= limit {
                break;
            }
            out.extend_from_slice(&buf[pos..m.start()]);
            out.extend_from_slice(MASK);
            pos = m.end();
        }
        let keep = match mode {
            Mode::Stream => pos.max(limit),
            Mode::Idle => pos + inner.release_point(&buf[pos..]),
            Mode::End => buf.len(),
        };
        out.extend_from_slice(&buf[pos..keep]);
        self.held.drain(..keep);
    }
}

impl Inner {
    /// The first position of `buf` from which the rest is a proper prefix
    /// of some pattern (`buf.len()` if none): what is before it can be
    /// masked and released, since no pattern starting there reaches past
    /// the end of `buf`.
    fn release_point(&self, buf: &[u8]) -> usize {
        let from = buf.len().saturating_sub(self.longest.saturating_sub(1));
        (from..buf.len())
            .find(|&i| self.is_proper_prefix(&buf[i..]))
            .unwrap_or(buf.len())
    }

    fn is_proper_prefix(&self, s: &[u8]) -> bool {
        let i = self.sorted.partition_point(|p| p.as_slice() <= s);
        self.sorted.get(i).is_some_and(|p| p.starts_with(s))
    }
}

/// Every pattern of one secret value.
fn patterns_of(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![value.to_vec()];
    let mut derived: Vec<Vec<u8>> = Vec::new();
    if value.contains(&b'\n') {
        for line in value.split(|&b| b == b'\n') {
            derived.push(line.strip_suffix(b"\r").unwrap_or(line).to_vec());
        }
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3 {
            derived.push(base64_core(value, offset, engine));
        }
    }
    derived.push(percent_encode(value, false));
    derived.push(percent_encode(value, true));
    if value.contains(&b'\'') {
        let mut quoted = Vec::with_capacity(value.len() + 8);
        for &b in value {
            if b == b'\'' {
                quoted.extend_from_slice(br"'\''");
            } else {
                quoted.push(b);
            }
        }
        derived.push(quoted);
    }
    out.extend(derived.into_iter().filter(|p| p.len() >= MIN_DERIVED));
    out
}

/// The base64 characters that depend only on `value` when it starts at
/// byte `offset` (0, 1 or 2) of a 3-byte group of a longer text.
fn base64_core(value: &[u8], offset: usize, engine: &GeneralPurpose) -> Vec<u8> {
    let mut data = vec![0u8; offset];
    data.extend_from_slice(value);
    let encoded = engine.encode(&data).into_bytes();
    // Character c covers bits [6c, 6c + 6) of the text; the value's bits
    // are [8 * offset, 8 * (offset + len)).
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + value.len())) / 6;
    if end <= first {
        return Vec::new();
    }
    encoded[first..end].to_vec()
}

/// Percent-encoding of every byte but the unreserved ones; with `form`,
/// spaces become `+`.
fn percent_encode(value: &[u8], form: bool) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b),
            b' ' if form => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn streamed(m: &Masker, chunks: &[&[u8]]) -> String {
        let mut s = m.stream();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn masks_every_occurrence_longest_first() {
        let m = Masker::new([
            "hunter2".to_owned(),
            "hunter2-extended".to_owned(),
            String::new(),
        ]);
        assert_eq!(m.mask("pw=hunter2 and hunter2-extended"), "pw=*** and ***");
        assert_eq!(m.mask("nothing here"), "nothing here");
        assert_eq!(Masker::new([]).mask("hunter2"), "hunter2");
    }

    #[test]
    fn base64_matches_a_real_encoder_at_every_alignment() {
        // `printf 'xhunter2' | base64` and friends, computed once by hand
        // with coreutils: the secret's core must appear in each.
        let m = Masker::new(["hunter2".to_owned()]);
        for encoded in [
            "aHVudGVyMg==",     // hunter2
            "eGh1bnRlcjI=",     // xhunter2
            "eHhodW50ZXIy",     // xxhunter2
            "eHh4aHVudGVyMgo=", // xxxhunter2\n
        ] {
            assert!(m.mask(encoded).contains("***"), "{encoded}");
        }
        assert_eq!(base64_core(b"Man", 0, &STANDARD_NO_PAD), b"TWFu");
        assert_eq!(base64_core(b"Ma", 0, &STANDARD_NO_PAD), b"TW");
        assert_eq!(base64_core(b"an", 1, &STANDARD_NO_PAD), b"Fu");
        assert_eq!(base64_core(&[0xfb, 0xff], 0, &URL_SAFE_NO_PAD), b"-_");
    }

    #[test]
    fn url_encoding_lines_and_shell_quoting() {
        let m = Masker::new(["p@ss w/rd".to_owned(), "it's".to_owned()]);
        assert_eq!(m.mask("u=p%40ss%20w%2Frd&x"), "u=***&x");
        assert_eq!(m.mask("u=p%40ss+w%2Frd&x"), "u=***&x");
        assert_eq!(m.mask(r"+ echo 'it'\''s'"), "+ echo '***'");
        let pem = Masker::new(["-----BEGIN KEY-----\nMIIEabc\n-----END KEY-----".to_owned()]);
        assert_eq!(pem.mask("line: MIIEabc\n"), "line: ***\n");
    }

    #[test]
    fn a_secret_split_over_writes_is_masked_and_innocent_text_flows() {
        let m = Masker::new(["hunter2".to_owned()]);
        assert_eq!(streamed(&m, &[b"pw=hun", b"ter2\n"]), "pw=***\n");
        let mut s = m.stream();
        let mut out = Vec::new();
        s.push(b"done\nhun", &mut out);
        // Released at once: what cannot start the secret.
        assert_eq!(out, b"done\n");
        s.idle(&mut out);
        assert_eq!(out, b"done\n", "a possible start stays held");
        s.push(b"gry\n", &mut out);
        assert_eq!(out, b"done\nhungry\n");
    }

    #[test]
    fn idle_releases_a_complete_match_a_longer_secret_might_extend() {
        let m = Masker::new(["abcd\nefgh".to_owned()]);
        let mut s = m.stream();
        let mut out = Vec::new();
        s.push(b"abcd\n", &mut out);
        assert!(out.is_empty());
        assert!(s.holds_newline());
        s.idle(&mut out);
        assert_eq!(out, b"***\n");
        s.push(b"efgh\n", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"***\n***\n");
    }

    proptest! {
        #[test]
        fn no_secret_survives_any_chunking(
            secret in "[a-z0-9'/+= ]{1,12}",
            before in "[a-z ]{0,20}",
            after in "[a-z ]{0,20}",
            cuts in proptest::collection::vec(0usize..60, 0..6),
        ) {
            let m = Masker::new([secret.clone()]);
            let text = format!("{before}{secret}{after}\n{before}{secret}");
            let bytes = text.as_bytes();
            let mut points: Vec<usize> = cuts.into_iter().filter(|&c| c <= bytes.len()).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&bytes[last..p]);
                last = p;
            }
            chunks.push(&bytes[last..]);
            let out = streamed(&m, &chunks);
            prop_assert!(!out.contains(&secret), "{out:?}");
            // The same result however the output was cut.
            prop_assert_eq!(out, m.mask(&text));
        }
    }
}
