//! Diagnostics: what is wrong, in which file, at which line and column, and
//! at which field path.
//!
//! Every parser of this crate returns either [`Parsed`] (a value and its
//! warnings) or [`SpecError`] (all the errors found, plus the warnings).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::doc::{self, Format, Node, Path, Pos};

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is refused.
    Error,
    /// The file is accepted, but something in it is ignored or suspicious.
    Warning,
}

/// One located problem in a file.
///
/// Displays as `taskdef.json:14:7: containerDefinitions[0].portMappings[0].containerPort: expected an integer, found "80a"`;
/// the line and column are left out when unknown (`file: path: message`), and
/// so is the path when the problem concerns the whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file name as given by the caller.
    pub file: String,
    /// 1-based line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column, counted in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The field path, e.g. `containerDefinitions[0].portMappings[0].containerPort`;
    /// empty for the whole document.
    pub path: String,
    /// What is wrong, in lower case, without a trailing period.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn error(
        file: &str,
        pos: Option<Pos>,
        path: &Path,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(Severity::Error, file, pos, path, message)
    }

    pub(crate) fn warning(
        file: &str,
        pos: Option<Pos>,
        path: &Path,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(Severity::Warning, file, pos, path, message)
    }

    fn new(
        severity: Severity,
        file: &str,
        pos: Option<Pos>,
        path: &Path,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            file: file.to_owned(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The diagnostic with its severity, compiler style:
    /// `stack.yaml:3:5: warning: services.web.foo: unknown field "foo", ignored`.
    pub fn with_severity(&self) -> impl fmt::Display + '_ {
        WithSeverity(self)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, severity: bool) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if severity {
            f.write_str(match self.severity {
                Severity::Error => "error: ",
                Severity::Warning => "warning: ",
            })?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }

    fn sort_key(&self) -> (usize, usize) {
        (self.line.unwrap_or(0), self.column.unwrap_or(0))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

struct WithSeverity<'a>(&'a Diagnostic);

impl fmt::Display for WithSeverity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, true)
    }
}

/// Finds the line and column of a field path in a file, so that errors
/// found outside this crate (a stack naming a runtime the server lacks, a
/// task definition family that is not registered) are located too.
///
/// ```
/// # use cutover_spec::diag::SourceMap;
/// let map = SourceMap::new("stack.yaml", "services:\n  web:\n    runtime: docker\n");
/// let d = map.error("services.web.runtime", "runtime \"docker\" is not available on this server");
/// assert_eq!(d.to_string(), "stack.yaml:3:14: services.web.runtime: runtime \"docker\" is not available on this server");
/// ```
#[derive(Debug, Clone)]
pub struct SourceMap {
    file: String,
    /// `None` when the text does not parse: nothing can be located then.
    root: Option<Node>,
}

impl SourceMap {
    /// Parses `text` (JSON for `*.json`, YAML otherwise) to locate paths in it.
    pub fn new(file: &str, text: &str) -> SourceMap {
        SourceMap {
            file: file.to_owned(),
            root: doc::parse(Format::for_file(file), text).ok(),
        }
    }

    /// The line and column of the value at `path` (a path as diagnostics
    /// write it), or of its nearest ancestor present in the file.
    pub fn position(&self, path: &str) -> Option<(usize, usize)> {
        let root = self.root.as_ref()?;
        let pos = root.locate(&Path::parse(path)?).value;
        Some((pos.line, pos.column))
    }

    /// The parsed text as a [`Document`](crate::doc::Document), to read
    /// typed values out of it with located errors; `None` when the text did
    /// not parse. Duplicate keys are not reported again.
    pub fn document(&self) -> Option<crate::check::Document<'_>> {
        let root = self.root.clone()?;
        Some(crate::check::Document::from_parts(
            &self.file,
            Format::for_file(&self.file),
            root,
        ))
    }

    /// An error about the value at `path`.
    pub fn error(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        self.diagnostic(Severity::Error, path, message.into())
    }

    /// A warning about the value at `path`.
    pub fn warning(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        self.diagnostic(Severity::Warning, path, message.into())
    }

    fn diagnostic(&self, severity: Severity, path: &str, message: String) -> Diagnostic {
        let pos = self.position(path);
        Diagnostic {
            severity,
            file: self.file.clone(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            path: path.to_owned(),
            message,
        }
    }
}

/// A successfully parsed file and the warnings about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// The value read from the file.
    pub value: T,
    /// Problems that did not prevent reading it (unknown AWS fields, ...).
    pub warnings: Vec<Diagnostic>,
}

/// A file that was refused: every error found in one pass, in document order.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", render(&self.diagnostics))]
pub struct SpecError {
    /// The errors (never empty), sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Warnings found on the way, sorted by position.
    pub warnings: Vec<Diagnostic>,
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sorts by position, keeping the order of discovery for equal positions.
pub(crate) fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(Diagnostic::sort_key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_map() {
        let map = SourceMap::new(
            "taskdef.json",
            "{\"containerDefinitions\": [{\"name\": \"web\"}]}",
        );
        assert_eq!(map.position("containerDefinitions[0].name"), Some((1, 36)));
        // A field that is not written: its nearest ancestor.
        assert_eq!(map.position("containerDefinitions[0].image"), Some((1, 27)));
        assert_eq!(map.position("not a [path"), None);
        let broken = SourceMap::new("taskdef.json", "{");
        assert_eq!(
            broken.error("family", "x").to_string(),
            "taskdef.json: family: x"
        );
    }

    #[test]
    fn display() {
        let path = Path::root()
            .key("containerDefinitions")
            .index(0)
            .key("image");
        let d = Diagnostic::error("t.json", Some(Pos { line: 3, column: 7 }), &path, "missing");
        assert_eq!(
            d.to_string(),
            "t.json:3:7: containerDefinitions[0].image: missing"
        );
        assert_eq!(
            d.with_severity().to_string(),
            "t.json:3:7: error: containerDefinitions[0].image: missing"
        );
        let d = Diagnostic::warning("t.json", None, &Path::root(), "too big");
        assert_eq!(d.to_string(), "t.json: too big");
        assert_eq!(d.with_severity().to_string(), "t.json: warning: too big");
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"severity": "warning", "file": "t.json", "path": "", "message": "too big"})
        );
    }
}
