//! The path patterns of a buildspec (`artifacts.files`, `exclude-paths`,
//! `reports.*.files`, `cache.paths`) and the file walk they are matched
//! against.
//!
//! Syntax, as CodeBuild documents it: `*` matches any characters within one
//! path segment, `?` one character, `[abc]`/`[a-z]`/`[!a]` a character class,
//! and a `**` segment any number of segments (including none). A pattern
//! that names a directory takes every file under it (`dist`, `scripts/**`).
//! Matching is pure and works on `/`-separated relative paths; only
//! [`walk_files`] touches the file system. The matcher is `globset`'s; a
//! pattern is normalised to its syntax first (`./` and empty segments
//! dropped, a `**` inside a segment read as `*`, braces literal).

use std::io;
use std::path::{Path, PathBuf};

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// The pattern is empty (or only `./`).
    #[error("empty pattern")]
    Empty,
    /// A `[` without its `]`.
    #[error("unclosed character class in {pattern:?}")]
    UnclosedClass {
        /// The pattern as written.
        pattern: String,
    },
    /// Any other mistake `globset` finds (an invalid range in a class).
    #[error("invalid pattern {pattern:?}: {reason}")]
    Invalid {
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
}

/// A compiled path pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    absolute: bool,
    /// The segments, normalised (no `.` or empty ones) and in `globset`'s syntax.
    segs: Vec<String>,
    matcher: globset::GlobMatcher,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

impl Pattern {
    /// Compiles `text`. A leading `./` is ignored; a leading `/` makes the
    /// pattern absolute (only meaningful for `cache.paths`).
    pub fn new(text: &str) -> Result<Pattern, GlobError> {
        let absolute = text.starts_with('/');
        let mut segs: Vec<String> = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                "**" => {
                    if segs.last().map(String::as_str) != Some("**") {
                        segs.push("**".to_owned());
                    }
                }
                _ => segs.push(translate_segment(part, text)?),
            }
        }
        if segs.is_empty() && !absolute {
            return Err(GlobError::Empty);
        }
        let matcher = globset::GlobBuilder::new(&segs.join("/"))
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| GlobError::Invalid {
                pattern: text.to_owned(),
                reason: e.kind().to_string(),
            })?
            .compile_matcher();
        Ok(Pattern {
            text: text.to_owned(),
            absolute,
            segs,
            matcher,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern starts with `/`.
    pub fn is_absolute(&self) -> bool {
        self.absolute
    }

    /// The leading segments without wildcards, as a relative path: where a
    /// walk for this pattern may start (`/root/.m2/**/*` gives `root/.m2`).
    pub fn literal_prefix(&self) -> PathBuf {
        let mut out = PathBuf::new();
        for seg in &self.segs {
            match unescape_literal(seg) {
                Some(name) => out.push(name),
                None => break,
            }
        }
        out
    }

    /// Whether the file at `path` (relative, `/`-separated; for an absolute
    /// pattern, relative to `/`) is selected: the pattern matches the path
    /// itself or one of its parent directories.
    pub fn selects(&self, path: &str) -> bool {
        let parts = parts(path);
        (1..=parts.len()).any(|n| self.matcher.is_match(parts[..n].join("/")))
    }

    /// Whether the pattern matches exactly `path`, not a parent of it.
    pub fn matches(&self, path: &str) -> bool {
        self.matcher.is_match(parts(path).join("/"))
    }
}

fn parts(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect()
}

/// One segment (not `**`) in `globset`'s syntax: `*` runs become one `*`
/// (a `**` inside a segment stays within it), braces and commas are
/// literal, a class must be closed.
fn translate_segment(part: &str, whole: &str) -> Result<String, GlobError> {
    let mut out = String::with_capacity(part.len() + 4);
    let mut chars = part.chars().peekable();
    let mut last_star = false;
    while let Some(c) = chars.next() {
        let star = c == '*';
        match c {
            '*' if last_star => {}
            '*' | '?' => out.push(c),
            '\\' => escape(chars.next().unwrap_or('\\'), &mut out),
            '[' => {
                out.push('[');
                if let Some(n @ ('!' | '^')) = chars.peek().copied() {
                    chars.next();
                    out.push(if n == '^' { '!' } else { n });
                }
                let mut first = true;
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    out.push(c);
                }
                if !closed {
                    return Err(GlobError::UnclosedClass {
                        pattern: whole.to_owned(),
                    });
                }
                out.push(']');
            }
            c => escape(c, &mut out),
        }
        last_star = star;
    }
    Ok(out)
}

fn escape(c: char, out: &mut String) {
    if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | ',' | '\\') {
        out.push('\\');
    }
    out.push(c);
}

/// The name a translated segment stands for, if it has no wildcard.
fn unescape_literal(seg: &str) -> Option<String> {
    let mut out = String::with_capacity(seg.len());
    let mut chars = seg.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '*' | '?' | '[' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Every file under `root` (regular files and symlinks; symlinked
/// directories are not followed), as paths relative to `root`, sorted.
/// A missing `root` has no files.
pub fn walk_files(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    match std::fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => walk(root, Path::new(""), &mut out)?,
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort();
    Ok(out)
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let child = rel.join(entry.file_name());
        if kind.is_dir() {
            walk(root, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// `path` with `/` separators, as patterns see it.
pub fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::new(s).unwrap()
    }

    #[test]
    fn star_stays_within_a_segment() {
        assert!(p("*.jar").matches("app.jar"));
        assert!(!p("*.jar").matches("target/app.jar"));
        assert!(p("target/*.jar").matches("target/app.jar"));
        assert!(p("build/libs/*.jar").matches("build/libs/x-1.0.jar"));
        assert!(!p("*.jar").matches("app.jar.sha"));
        // `**` inside a segment stays within it; braces are literal.
        assert!(p("a**.jar").matches("ab.jar"));
        assert!(!p("a**.jar").matches("a/b.jar"));
        assert!(p("{a,b}.txt").matches("{a,b}.txt"));
        assert!(!p("{a,b}.txt").matches("a.txt"));
        assert!(p("dist//x/./*.js").matches("dist/x/y.js"));
    }

    #[test]
    fn double_star_spans_segments() {
        let all = p("**/*");
        assert!(all.matches("a"));
        assert!(all.matches("a/b/c.txt"));
        assert!(p("dist/**/*").matches("dist/x.js"));
        assert!(p("dist/**/*").matches("dist/a/b/x.js"));
        assert!(!p("dist/**/*").matches("src/x.js"));
        assert!(p("**/*.xml").matches("reports/junit/a.xml"));
        assert!(p("**/*.xml").matches("a.xml"));
        assert!(p("scripts/**").selects("scripts/deploy/run.sh"));
    }

    #[test]
    fn a_directory_pattern_selects_its_files() {
        assert!(p("dist").selects("dist/a/b.js"));
        assert!(!p("dist").matches("dist/a/b.js"));
        assert!(!p("dist").selects("distribution/a.js"));
        assert!(p("./appspec.yml").selects("appspec.yml"));
    }

    #[test]
    fn classes_and_single_characters() {
        assert!(p("report-?.xml").matches("report-1.xml"));
        assert!(!p("report-?.xml").matches("report-12.xml"));
        assert!(p("[a-c]*.txt").matches("b1.txt"));
        assert!(!p("[!a-c]*.txt").matches("b1.txt"));
        assert_eq!(
            Pattern::new("a[bc"),
            Err(GlobError::UnclosedClass {
                pattern: "a[bc".into()
            })
        );
        assert_eq!(Pattern::new("./"), Err(GlobError::Empty));
    }

    #[test]
    fn literal_prefix_of_absolute_patterns() {
        let m2 = p("/root/.m2/**/*");
        assert!(m2.is_absolute());
        assert_eq!(m2.literal_prefix(), PathBuf::from("root/.m2"));
        assert!(m2.selects("root/.m2/repository/x.jar"));
        assert_eq!(
            p("node_modules/**/*").literal_prefix(),
            PathBuf::from("node_modules")
        );
        assert_eq!(p("*.txt").literal_prefix(), PathBuf::new());
    }
}
