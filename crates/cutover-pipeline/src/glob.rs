//! Glob patterns as CodePipeline trigger filters use them, for branch names,
//! tag names and changed file paths:
//!
//! - `*` matches any run of characters except `/`;
//! - `**` matches any run of characters including `/`; `**/` also matches
//!   nothing, so `src/**/*.rs` matches `src/main.rs`;
//! - `?` matches one character except `/`;
//! - `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`) match one character of (or not of) a set;
//! - `\` makes the next character literal.

use std::fmt;

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Star,
    DoubleStar,
    /// `**/`: nothing, or anything ending with `/`.
    DoubleStarSlash,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

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
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    if chars.get(i + 2) == Some(&'/') {
                        tokens.push(Token::DoubleStarSlash);
                        i += 3;
                    } else {
                        tokens.push(Token::DoubleStar);
                        i += 2;
                    }
                    continue;
                }
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::One),
                '\\' => {
                    i += 1;
                    let c = *chars.get(i).ok_or_else(|| err("trailing backslash"))?;
                    tokens.push(Token::Literal(c));
                }
                '[' => {
                    let (token, next) = class(&chars, i + 1).ok_or_else(|| err("unclosed ["))?;
                    tokens.push(token);
                    i = next;
                    continue;
                }
                c => tokens.push(Token::Literal(c)),
            }
            i += 1;
        }
        Ok(Glob {
            source: pattern.to_owned(),
            tokens,
        })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let mut memo = vec![None; (self.tokens.len() + 1) * (text.len() + 1)];
        self.match_at(0, 0, &text, &mut memo)
    }

    fn match_at(&self, p: usize, t: usize, text: &[char], memo: &mut [Option<bool>]) -> bool {
        let key = p * (text.len() + 1) + t;
        if let Some(known) = memo[key] {
            return known;
        }
        let result = match self.tokens.get(p) {
            None => t == text.len(),
            Some(Token::Literal(c)) => {
                text.get(t) == Some(c) && self.match_at(p + 1, t + 1, text, memo)
            }
            Some(Token::One) => {
                text.get(t).is_some_and(|c| *c != '/') && self.match_at(p + 1, t + 1, text, memo)
            }
            Some(Token::Class { negated, ranges }) => {
                text.get(t).is_some_and(|c| {
                    *c != '/' && ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated
                }) && self.match_at(p + 1, t + 1, text, memo)
            }
            Some(Token::Star) => (t..=text.len())
                .take_while(|&end| end == t || text[end - 1] != '/')
                .any(|end| self.match_at(p + 1, end, text, memo)),
            Some(Token::DoubleStar) => {
                (t..=text.len()).any(|end| self.match_at(p + 1, end, text, memo))
            }
            Some(Token::DoubleStarSlash) => {
                self.match_at(p + 1, t, text, memo)
                    || (t + 1..=text.len())
                        .any(|end| text[end - 1] == '/' && self.match_at(p + 1, end, text, memo))
            }
        };
        memo[key] = Some(result);
        result
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Parses a class body starting after `[`; returns the token and the index after `]`.
fn class(chars: &[char], mut i: usize) -> Option<(Token, usize)> {
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *chars.get(i)?
        } else {
            c
        };
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']') {
            let hi = *chars.get(i + 2)?;
            ranges.push((lo, hi));
            i += 3;
        } else {
            ranges.push((lo, lo));
            i += 1;
        }
    }
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
