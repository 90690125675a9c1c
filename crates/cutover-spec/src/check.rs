//! The shared machinery of every parser: a parsed [`Document`], and a
//! [`Sink`] that collects located diagnostics while the typed value is read
//! and then checked.
//!
//! Both are public (as `cutover_spec::doc::{Document, Sink}`) so that the
//! readers of other crates (buildspecs, pipelines, the proxy's `lb.yaml`)
//! report errors the same way as this crate's own files:
//!
//! ```
//! use cutover_spec::doc::{Document, Format, Path};
//! #[derive(Debug, serde::Deserialize)]
//! struct Listener { port: u16 }
//! let doc = Document::parse("lb.yaml", "port: 80a\n", Format::Yaml).unwrap();
//! let sink = doc.sink(true);
//! let value = sink.read::<Listener>(&Path::root());
//! let err = sink.finish(value).unwrap_err();
//! assert_eq!(err.to_string(), "lb.yaml:1:7: port: expected an integer, found \"80a\"");
//! ```

use std::cell::RefCell;
use std::fmt::Display;

use serde::de::DeserializeOwned;

use crate::diag::{self, Diagnostic, Parsed, SpecError};
use crate::doc::{self, Format, Node, Path, Pos};

/// A file parsed into a located tree.
pub struct Document<'a> {
    pub(crate) file: &'a str,
    pub(crate) format: Format,
    pub(crate) root: Node,
    /// Duplicate keys, found while parsing.
    early: Vec<Diagnostic>,
}

impl<'a> Document<'a> {
    /// Parses `text`; a syntax error refuses the file at once. `file` is used
    /// only in messages. Duplicate keys are recorded and reported by
    /// [`Sink::finish`].
    pub fn parse(file: &'a str, text: &str, format: Format) -> Result<Document<'a>, SpecError> {
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

    /// A document from an already parsed tree.
    pub(crate) fn from_parts(file: &'a str, format: Format, root: Node) -> Document<'a> {
        Document {
            file,
            format,
            root,
            early: Vec::new(),
        }
    }

    /// A sink for this document. `strict`: unknown keys are errors (Cutover's
    /// own files) rather than warnings (AWS files).
    pub fn sink(&self, strict: bool) -> Sink<'_> {
        Sink {
            file: self.file,
            format: self.format,
            strict,
            root: &self.root,
            errors: RefCell::new(self.early.clone()),
            warnings: RefCell::new(Vec::new()),
        }
    }

    /// The root of the located tree, for readers that walk it by hand.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The file name given to [`Document::parse`].
    pub fn file(&self) -> &str {
        self.file
    }

    /// The syntax the document was read as.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The value at `path` as JSON (positions dropped), if the document has it.
    pub fn to_json(&self, path: &Path) -> Option<serde_json::Value> {
        self.root.get(path).map(Node::to_json)
    }
}

/// Collects the diagnostics of one document.
pub struct Sink<'a> {
    pub(crate) file: &'a str,
    pub(crate) format: Format,
    pub(crate) strict: bool,
    pub(crate) root: &'a Node,
    errors: RefCell<Vec<Diagnostic>>,
    warnings: RefCell<Vec<Diagnostic>>,
}

impl Sink<'_> {
    /// Reads a `T` from the node at `path`, recording every error (each at
    /// the innermost value where it happened). `None` if the path is absent
    /// or any error was recorded.
    pub fn read<T: DeserializeOwned>(&self, path: &Path) -> Option<T> {
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
    pub fn error(&self, path: &Path, message: impl Into<String>) {
        let at = self.root.locate(path);
        self.error_at(path, at.value, message);
    }

    /// An error about the key at the end of `path` (a bad name), located at
    /// the key rather than at its value.
    pub fn error_key(&self, path: &Path, message: impl Into<String>) {
        let at = self.root.locate(path);
        self.error_at(path, at.key.unwrap_or(at.value), message);
    }

    /// A warning about the value at `path`.
    pub fn warning(&self, path: &Path, message: impl Into<String>) {
        let at = self.root.locate(path);
        self.warning_at(path, at.value, message);
    }

    /// Whether `path` is written in the document (as opposed to defaulted).
    pub fn has(&self, path: &Path) -> bool {
        self.root.get(path).is_some()
    }

    /// The keys of the mapping at `path`, in document order (empty if it is
    /// absent or not a mapping).
    pub fn keys(&self, path: &Path) -> Vec<String> {
        match self.root.get(path).map(|n| &n.value) {
            Some(crate::doc::Value::Map(entries)) => {
                entries.iter().map(|e| e.name().to_owned()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whether errors were recorded so far.
    pub fn has_errors(&self) -> bool {
        !self.errors.borrow().is_empty()
    }

    /// Checks `min <= value <= max`; `unit` follows the numbers (" seconds").
    pub fn range<T: PartialOrd + Display>(
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
    pub fn finish<T>(self, value: Option<T>) -> Result<Parsed<T>, SpecError> {
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
/// same letters in another case, or a small edit distance (Levenshtein, in
/// characters, from `strsim`: at most 1 for words of up to 3 characters, 2
/// up to 8, 3 beyond).
pub fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let w = word.to_lowercase();
    let limit = match w.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&w, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
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
        // The buildspec's phase keys: typos only.
        let phase = ["commands", "finally", "on-failure"];
        assert_eq!(suggest("comands", phase), Some("commands"));
        assert_eq!(suggest("finaly", phase), Some("finally"));
        assert_eq!(suggest("run-as", phase), None);
    }
}
