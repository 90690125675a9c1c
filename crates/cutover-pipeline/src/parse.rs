//! Reading a pipeline declaration: JSON (or YAML) text to [`Pipeline`], with
//! every problem reported as a [`Diagnostic`] naming the file, line, column
//! and field path, like every other file Cutover reads.
//!
//! Two shapes are accepted: the output of `aws codepipeline get-pipeline`
//! (`{"pipeline": {...}, "metadata": {...}}`, metadata ignored) and a bare
//! pipeline object. Type errors come from serde (the first one, with its
//! path); unknown fields are warnings; then [`crate::validate`] checks the
//! structure and reports every semantic error at once. Positions are found
//! through [`SourceMap`] by field path.

use std::fmt::Write as _;

use cutover_spec::diag::{Diagnostic, Parsed, Severity, SourceMap, SpecError};
use serde_json::Value;

use crate::model::Pipeline;

/// Parses a pipeline file: JSON, or YAML when `file` ends in `.yaml`/`.yml`.
///
/// `file` is used only in messages.
pub fn parse_pipeline(file: &str, text: &str) -> Result<Parsed<Pipeline>, SpecError> {
    let map = SourceMap::new(file, text);
    let value = if file.ends_with(".yaml") || file.ends_with(".yml") {
        // The located document layer: linear in the nesting depth, where
        // libyaml (serde_yaml) took seconds on 40 KB of nested flow
        // mappings (found by fuzzing).
        cutover_spec::read_document(file, text)?.value
    } else {
        serde_json::from_str::<Value>(text).map_err(|e| {
            syntax_error(
                file,
                Some((e.line(), e.column())),
                strip_location(&e.to_string()),
            )
        })?
    };
    parse_pipeline_value(file, &map, "", &value)
}

/// Parses a pipeline already read as a value, e.g. one entry of
/// `pipelines:` in `stack.yaml`. `prefix` is the field path of `value` in
/// that file (e.g. `pipelines.web`), used to locate problems through `map`.
pub fn parse_pipeline_value(
    file: &str,
    map: &SourceMap,
    prefix: &str,
    value: &Value,
) -> Result<Parsed<Pipeline>, SpecError> {
    let mut report = Report {
        file: file.to_owned(),
        map,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let (prefix, body) = match value.as_object() {
        Some(obj) if obj.contains_key("pipeline") => {
            for key in obj.keys() {
                if key != "pipeline" && key != "metadata" {
                    report.warning(
                        &FieldPath::from(prefix).key(key),
                        format!("unknown field {}, ignored", quote(key)),
                    );
                }
            }
            (FieldPath::from(prefix).key("pipeline"), &obj["pipeline"])
        }
        _ => (FieldPath::from(prefix), value),
    };
    let mut ignored = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| ignored.push(ignored_path(&path));
    let de = serde_ignored::Deserializer::new(body, &mut record);
    let result: Result<Pipeline, _> = serde_path_to_error::deserialize(de);
    for rel in ignored {
        let last = rel.last_key().unwrap_or_default().to_owned();
        report.warning(
            &prefix.join(&rel),
            format!("unknown field {}, ignored", quote(&last)),
        );
    }
    match result {
        Ok(pipeline) => {
            crate::validate::validate(&pipeline, &prefix, &mut report);
            report.finish(pipeline)
        }
        Err(e) => {
            let mut path = prefix.clone();
            for seg in e.path().iter() {
                path = match seg {
                    serde_path_to_error::Segment::Seq { index } => path.index(*index),
                    serde_path_to_error::Segment::Map { key } => path.key(key),
                    serde_path_to_error::Segment::Enum { variant } => path.key(variant),
                    serde_path_to_error::Segment::Unknown => path,
                };
            }
            report.error(&path, e.into_inner().to_string());
            Err(report.into_error())
        }
    }
}

fn syntax_error(file: &str, pos: Option<(usize, usize)>, message: String) -> SpecError {
    SpecError {
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            file: file.to_owned(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            path: String::new(),
            message,
        }],
        warnings: Vec::new(),
    }
}

/// Drops serde_json's " at line L column C" (the diagnostic says it already).
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> FieldPath {
    use serde_ignored::Path as P;
    match path {
        P::Root => FieldPath::default(),
        P::Seq { parent, index } => ignored_path(parent).index(*index),
        P::Map { parent, key } => ignored_path(parent).key(key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

/// `s` as a JSON string, the way values are quoted in messages.
pub(crate) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A field path as diagnostics write it: `stages[1].actions[0].name`; keys
/// that are not plain words are written `["key"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath {
    text: String,
    last_key: Option<String>,
}

impl FieldPath {
    fn from(prefix: &str) -> FieldPath {
        FieldPath {
            text: prefix.to_owned(),
            last_key: None,
        }
    }

    /// The path of field `key` of this object.
    pub(crate) fn key(&self, key: &str) -> FieldPath {
        let mut text = self.text.clone();
        let word = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if word {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(key);
        } else {
            let _ = write!(text, "[{}]", quote(key));
        }
        FieldPath {
            text,
            last_key: Some(key.to_owned()),
        }
    }

    /// The path of element `i` of this array.
    pub(crate) fn index(&self, i: usize) -> FieldPath {
        FieldPath {
            text: format!("{}[{i}]", self.text),
            last_key: self.last_key.clone(),
        }
    }

    fn join(&self, rel: &FieldPath) -> FieldPath {
        let text = if self.text.is_empty() {
            rel.text.clone()
        } else if rel.text.is_empty() || rel.text.starts_with('[') {
            format!("{}{}", self.text, rel.text)
        } else {
            format!("{}.{}", self.text, rel.text)
        };
        FieldPath {
            text,
            last_key: rel.last_key.clone().or_else(|| self.last_key.clone()),
        }
    }

    fn last_key(&self) -> Option<&str> {
        self.last_key.as_deref()
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

/// Collects diagnostics, locating each through the source map.
pub(crate) struct Report<'a> {
    file: String,
    map: &'a SourceMap,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Report<'_> {
    /// Records an error about the value at `path`.
    pub(crate) fn error(&mut self, path: &FieldPath, message: impl Into<String>) {
        let d = self.diagnostic(Severity::Error, path, message.into());
        self.errors.push(d);
    }

    /// Records a warning about the value at `path`.
    pub(crate) fn warning(&mut self, path: &FieldPath, message: impl Into<String>) {
        let d = self.diagnostic(Severity::Warning, path, message.into());
        self.warnings.push(d);
    }

    fn diagnostic(&self, severity: Severity, path: &FieldPath, message: String) -> Diagnostic {
        let pos = self.map.position(path.as_str());
        Diagnostic {
            severity,
            file: self.file.clone(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            path: path.as_str().to_owned(),
            message,
        }
    }

    fn into_error(mut self) -> SpecError {
        sort(&mut self.errors);
        sort(&mut self.warnings);
        SpecError {
            diagnostics: self.errors,
            warnings: self.warnings,
        }
    }

    fn finish<T>(mut self, value: T) -> Result<Parsed<T>, SpecError> {
        if self.errors.is_empty() {
            sort(&mut self.warnings);
            Ok(Parsed {
                value,
                warnings: self.warnings,
            })
        } else {
            Err(self.into_error())
        }
    }
}

/// Sorts by position; the sort is stable, so equal positions keep the order of discovery.
fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| (d.line.unwrap_or(0), d.column.unwrap_or(0)));
}
