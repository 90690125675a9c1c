//! The path patterns of a buildspec (`artifacts.files`, `exclude-paths`,
//! `reports.*.files`, `cache.paths`) and the file walk they are matched
//! against.
//!
//! Syntax, as CodeBuild documents it: `*` matches any characters within one
//! path segment, `?` one character, `[abc]`/`[a-z]`/`[!a]` a character class,
//! and a `**` segment any number of segments (including none). A pattern
//! that names a directory takes every file under it (`dist`, `scripts/**`).
//! Matching is pure and works on `/`-separated relative paths; only
//! [`walk_files`] touches the file system.

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Star,
    One,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// `**`
    AnyDirs,
    Part(Vec<Tok>),
}

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    absolute: bool,
    segs: Vec<Seg>,
}

impl Pattern {
    /// Compiles `text`. A leading `./` is ignored; a leading `/` makes the
    /// pattern absolute (only meaningful for `cache.paths`).
    pub fn new(text: &str) -> Result<Pattern, GlobError> {
        let absolute = text.starts_with('/');
        let mut segs = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                "**" => {
                    if segs.last() != Some(&Seg::AnyDirs) {
                        segs.push(Seg::AnyDirs);
                    }
                }
                _ => segs.push(Seg::Part(compile_segment(part, text)?)),
            }
        }
        if segs.is_empty() && !absolute {
            return Err(GlobError::Empty);
        }
        Ok(Pattern {
            text: text.to_owned(),
            absolute,
            segs,
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
            match seg {
                Seg::Part(toks) if toks.iter().all(|t| matches!(t, Tok::Lit(_))) => {
                    out.push(
                        toks.iter()
                            .map(|t| match t {
                                Tok::Lit(c) => *c,
                                _ => unreachable!("checked above"),
                            })
                            .collect::<String>(),
                    );
                }
                _ => break,
            }
        }
        out
    }

    /// Whether the file at `path` (relative, `/`-separated; for an absolute
    /// pattern, relative to `/`) is selected: the pattern matches the path
    /// itself or one of its parent directories.
    pub fn selects(&self, path: &str) -> bool {
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        (1..=parts.len()).any(|n| match_segs(&self.segs, &parts[..n]))
    }

    /// Whether the pattern matches exactly `path`, not a parent of it.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        match_segs(&self.segs, &parts)
    }
}

fn compile_segment(part: &str, whole: &str) -> Result<Vec<Tok>, GlobError> {
    let mut toks = Vec::new();
    let mut chars = part.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                // `a**b` is two stars in one segment: the same as one.
                if toks.last() != Some(&Tok::Star) {
                    toks.push(Tok::Star);
                }
            }
            '?' => toks.push(Tok::One),
            '\\' => toks.push(Tok::Lit(chars.next().unwrap_or('\\'))),
            '[' => {
                let negated = matches!(chars.peek(), Some('!' | '^'));
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                let mut first = true;
                while let Some(c) = chars.next() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    if chars.peek() == Some(&'-') {
                        let mut look = chars.clone();
                        look.next();
                        match look.peek() {
                            Some(&end) if end != ']' => {
                                chars.next();
                                chars.next();
                                ranges.push((c, end));
                                continue;
                            }
                            _ => {}
                        }
                    }
                    ranges.push((c, c));
                }
                if !closed {
                    return Err(GlobError::UnclosedClass {
                        pattern: whole.to_owned(),
                    });
                }
                toks.push(Tok::Class { negated, ranges });
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

fn match_segs(segs: &[Seg], parts: &[&str]) -> bool {
    match segs.split_first() {
        None => parts.is_empty(),
        Some((Seg::AnyDirs, rest)) => {
            (0..=parts.len()).any(|skip| match_segs(rest, &parts[skip..]))
        }
        Some((Seg::Part(toks), rest)) => match parts.split_first() {
            Some((part, more)) => {
                let chars: Vec<char> = part.chars().collect();
                match_toks(toks, &chars) && match_segs(rest, more)
            }
            None => false,
        },
    }
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    match toks.split_first() {
        None => s.is_empty(),
        Some((Tok::Star, rest)) => (0..=s.len()).any(|skip| match_toks(rest, &s[skip..])),
        Some((tok, rest)) => match s.split_first() {
            None => false,
            Some((c, more)) => {
                let ok = match tok {
                    Tok::Lit(l) => l == c,
                    Tok::One => true,
                    Tok::Class { negated, ranges } => {
                        ranges.iter().any(|(a, b)| (a..=b).contains(&c)) != *negated
                    }
                    Tok::Star => unreachable!("handled above"),
                };
                ok && match_toks(rest, more)
            }
        },
    }
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
