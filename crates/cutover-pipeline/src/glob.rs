//! Glob patterns as CodePipeline trigger filters use them, for branch names,
//! tag names and changed file paths:
//!
//! - `*` matches any run of characters except `/`;
//! - `**` matches any run of characters including `/`; `**/` also matches
//!   nothing, so `src/**/*.rs` matches `src/main.rs`;
//! - `?` matches one character except `/`;
//! - `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`) match one character of (or not of) a set;
//! - `\` makes the next character literal; `{`, `}` and `,` are literal.
//!
//! Matching is `globset`'s; a pattern is translated to its syntax first, so
//! that the rules above hold (a `**` inside a segment, `release-**`, still
//! crosses `/`, and braces are not alternations).

use std::fmt;

/// A compiled glob pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    source: String,
    matcher: globset::GlobMatcher,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.source == other.source
    }
}

impl Eq for Glob {}

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob \"{pattern}\": {reason}")]
pub struct GlobError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let err = |reason| GlobError {
            pattern: pattern.to_owned(),
            reason,
        };
        let translated = translate(pattern).map_err(err)?;
        let glob = globset::GlobBuilder::new(&translated)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| {
                err(match e.kind() {
                    globset::ErrorKind::UnclosedClass => "unclosed [",
                    globset::ErrorKind::InvalidRange(..) => "invalid range in [",
                    globset::ErrorKind::DanglingEscape => "trailing backslash",
                    _ => "not a glob",
                })
            })?;
        Ok(Glob {
            source: pattern.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The pattern in `globset`'s syntax.
fn translate(pattern: &str) -> Result<String, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let starts_segment = i == 0 || chars[i - 1] == '/';
                let ends_segment = chars.get(i + 2).is_none_or(|c| *c == '/');
                if starts_segment && ends_segment {
                    out.push_str("**");
                } else {
                    // Any run of characters, `/` included: none, or some with a `/`.
                    out.push_str("{*,*/**/*}");
                }
                i += 2;
                continue;
            }
            '\\' => {
                i += 1;
                let c = *chars.get(i).ok_or("trailing backslash")?;
                escape(c, &mut out);
            }
            '[' => {
                let (class, next) = class(&chars, i + 1).ok_or("unclosed [")?;
                out.push_str(&class);
                i = next;
                continue;
            }
            c @ ('*' | '?') => out.push(c),
            c => escape(c, &mut out),
        }
        i += 1;
    }
    Ok(out)
}

fn escape(c: char, out: &mut String) {
    if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | ',' | '\\') {
        out.push('\\');
    }
    out.push(c);
}

/// Reads a class body starting after `[` (`]` first is literal, `\` escapes);
/// returns it in `globset`'s syntax and the index after `]`.
fn class(chars: &[char], mut i: usize) -> Option<(String, usize)> {
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *chars.get(i)?
        } else {
            c
        };
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']') {
            ranges.push((lo, *chars.get(i + 2)?));
            i += 3;
        } else {
            ranges.push((lo, lo));
            i += 1;
        }
    }
    // globset reads `]` as a member only first, and `-` only last.
    let mut out = String::from(if negated { "[!" } else { "[" });
    if ranges.contains(&(']', ']')) {
        out.push(']');
    }
    for (lo, hi) in &ranges {
        match (lo, hi) {
            (']', ']') | ('-', '-') => {}
            (lo, hi) if lo == hi => out.push(*lo),
            (lo, hi) => {
                out.push(*lo);
                out.push('-');
                out.push(*hi);
            }
        }
    }
    if ranges.contains(&('-', '-')) {
        out.push('-');
    }
    out.push(']');
    Some((out, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).unwrap().matches(text)
    }

    #[test]
    fn stars() {
        assert!(m("main", "main"));
        assert!(!m("main", "mainline"));
        assert!(m("release-*", "release-1.2"));
        assert!(!m("release-*", "release-1/hotfix"));
        assert!(m("feature/**", "feature/a/b"));
        assert!(m("src/**", "src/a/b.rs"));
        assert!(m("src/**/*.rs", "src/main.rs"));
        assert!(m("src/**/*.rs", "src/a/b/main.rs"));
        assert!(!m("src/**/*.rs", "src/a/b/main.go"));
        assert!(m("**/*.md", "README.md"));
        assert!(m("**", "anything/at/all"));
        assert!(m("*", ""));
        // `**` inside a segment crosses `/` too; braces are literal.
        assert!(m("release-**", "release-1/hotfix"));
        assert!(m("a**b", "ab"));
        assert!(m("a**b", "a/x/yb"));
        assert!(!m("a**b", "a/x/yc"));
        assert!(m("{a,b}", "{a,b}"));
        assert!(!m("{a,b}", "a"));
    }

    #[test]
    fn one_and_classes() {
        assert!(m("v?", "v1"));
        assert!(!m("v?", "v10"));
        assert!(!m("a?b", "a/b"));
        assert!(m("v[0-9].*", "v1.2"));
        assert!(!m("v[0-9].*", "vx.2"));
        assert!(m("v[!0-9]", "vx"));
        assert!(!m("v[^0-9]", "v1"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(!m("[!]a]", "]"));
        assert!(m("[!]a]", "b"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            Glob::new("v[0-9").unwrap_err().to_string(),
            "invalid glob \"v[0-9\": unclosed ["
        );
        assert!(Glob::new("a\\").is_err());
    }
}
