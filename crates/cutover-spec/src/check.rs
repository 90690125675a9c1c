//! The shared machinery of every parser: a parsed [`Document`], and a
//! [`Sink`] that collects located diagnostics while the typed value is read
//! and then checked.

use std::cell::RefCell;
use std::fmt::Display;

use serde::de::DeserializeOwned;

use crate::diag::{self, Diagnostic, Parsed, SpecError};
use crate::doc::{self, Format, Node, Path, Pos};

/// A file parsed into a located tree.
pub(crate) struct Document<'a> {
    pub(crate) file: &'a str,
    pub(crate) format: Format,
    pub(crate) root: Node,
    /// Duplicate keys, found while parsing.
    early: Vec<Diagnostic>,
}

impl<'a> Document<'a> {
    /// Parses `text`; a syntax error refuses the file at once.
    pub(crate) fn parse(
        file: &'a str,
        text: &str,
        format: Format,
    ) -> Result<Document<'a>, SpecError> {
        let mut root = doc::parse(format, text).map_err(|e| SpecError {
            diagnostics: vec![Diagnostic::error(
                file,
                Some(e.pos),
                &Path::root(),
                e.message,
            )],
            warnings: Vec::new(),
        })?;
        let mut early = Vec::new();
        doc::check_duplicate_keys(&mut root, &Path::root(), file, &mut early);
        Ok(Document {
            file,
            format,
            root,
            early,
        })
    }

    /// A sink for this document. `strict`: unknown keys are errors (Cutover's
    /// own files) rather than warnings (AWS files).
    pub(crate) fn sink(&self, strict: bool) -> Sink<'_> {
        Sink {
            file: self.file,
            format: self.format,
            strict,
            root: &self.root,
            errors: RefCell::new(self.early.clone()),
            warnings: RefCell::new(Vec::new()),
        }
    }
}

/// Collects the diagnostics of one document.
pub(crate) struct Sink<'a> {
    pub(crate) file: &'a str,
    pub(crate) format: Format,
    pub(crate) strict: bool,
    pub(crate) root: &'a Node,
    errors: RefCell<Vec<Diagnostic>>,
    warnings: RefCell<Vec<Diagnostic>>,
}

impl Sink<'_> {
    /// Reads a `T` from the node at `path`, recording every error.
    pub(crate) fn read<T: DeserializeOwned>(&self, path: &Path) -> Option<T> {
        let node = self.root.get(path)?;
        crate::de::read(node, path, self)
    }

    pub(crate) fn error_at(&self, path: &Path, pos: Pos, message: impl Into<String>) {
        self.errors
            .borrow_mut()
            .push(Diagnostic::error(self.file, Some(pos), path, message));
    }

    pub(crate) fn warning_at(&self, path: &Path, pos: Pos, message: impl Into<String>) {
        self.warnings
            .borrow_mut()
            .push(Diagnostic::warning(self.file, Some(pos), path, message));
    }

    /// An error about the value at `path` (or its nearest existing ancestor,
    /// when the value was defaulted).
    pub(crate) fn error(&self, path: &Path, message: impl Into<String>) {
        let at = self.root.locate(path);
        self.error_at(path, at.value, message);
    }

    /// An error about the key at the end of `path` (a bad name), located at
    /// the key rather than at its value.
    pub(crate) fn error_key(&self, path: &Path, message: impl Into<String>) {
        let at = self.root.locate(path);
        self.error_at(path, at.key.unwrap_or(at.value), message);
    }

    /// A warning about the value at `path`.
    pub(crate) fn warning(&self, path: &Path, message: impl Into<String>) {
        let at = self.root.locate(path);
        self.warning_at(path, at.value, message);
    }

    /// Whether `path` is written in the document (as opposed to defaulted).
    pub(crate) fn has(&self, path: &Path) -> bool {
        self.root.get(path).is_some()
    }

    /// Checks `min <= value <= max`; `unit` follows the numbers (" seconds").
    pub(crate) fn range<T: PartialOrd + Display>(
        &self,
        path: &Path,
        value: T,
        min: T,
        max: T,
        unit: &str,
    ) -> bool {
        let ok = value >= min && value <= max;
        if !ok {
            self.error(
                path,
                format!("must be between {min} and {max}{unit}, found {value}"),
            );
        }
        ok
    }

    /// The value if no error was recorded, else every error.
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<Parsed<T>, SpecError> {
        let mut errors = self.errors.into_inner();
        let mut warnings = self.warnings.into_inner();
        diag::sort(&mut errors);
        diag::sort(&mut warnings);
        match value {
            Some(value) if errors.is_empty() => Ok(Parsed { value, warnings }),
            _ => {
                if errors.is_empty() {
                    // A value could not be read yet nothing was recorded: never
                    // expected, but a refusal must always say why.
                    errors.push(Diagnostic::error(
                        self.file,
                        None,
                        &Path::root(),
                        "could not be read",
                    ));
                }
                Err(SpecError {
                    diagnostics: errors,
                    warnings,
                })
            }
        }
    }
}

/// The candidate closest to `word`, if it is close enough to be a typo:
/// same letters in another case, or a small edit distance.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let w = word.to_lowercase();
    let limit = match w.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, counted in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `[A-Za-z0-9_-]{1,max}`: the names AWS allows for families and containers.
pub(crate) fn is_aws_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let fields = [
            "runtime",
            "desiredCount",
            "taskDefinition",
            "loadBalancer",
            "deployment",
        ];
        assert_eq!(suggest("desiredcount", fields), Some("desiredCount"));
        assert_eq!(suggest("desired_count", fields), Some("desiredCount"));
        assert_eq!(suggest("loadbalancer", fields), Some("loadBalancer"));
        assert_eq!(suggest("deploy", fields), None);
        assert_eq!(suggest("replicas", fields), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
