//! Reading typed values out of a `serde_yaml::Value` tree, with field paths
//! and located diagnostics.
//!
//! serde_yaml forgets where a value came from once it is parsed, so every
//! diagnostic is located afterwards through [`SourceMap`] (from
//! `cutover-spec`), which finds the line and column of a field path in the
//! original text. The [`Reader`] collects every error and warning in one pass,
//! so that a user sees all the mistakes in a buildspec at once.

use cutover_spec::diag::{Diagnostic, SourceMap};
use serde_yaml::{Mapping, Value};

/// A field path as diagnostics write it: `phases.build.commands[2]`,
/// `reports["arn:aws:codebuild:...:report-group/x"].files`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldPath(String);

impl FieldPath {
    /// The whole document.
    pub(crate) fn root() -> FieldPath {
        FieldPath(String::new())
    }

    /// The field `key` of this mapping.
    pub(crate) fn key(&self, key: &str) -> FieldPath {
        let mut s = self.0.clone();
        if is_word(key) {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(key);
        } else {
            s.push('[');
            s.push_str(&quote(key));
            s.push(']');
        }
        FieldPath(s)
    }

    /// The item `index` of this list.
    pub(crate) fn index(&self, index: usize) -> FieldPath {
        FieldPath(format!("{}[{index}]", self.0))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_word(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `s` as a double-quoted string, the way values are quoted in messages.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How a value is named in "expected X, found Y" messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// The text of a scalar key (`1:` and `true:` are keys too).
pub(crate) fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Collects the diagnostics of one file while its values are read.
pub(crate) struct Reader {
    map: SourceMap,
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Reader {
    pub(crate) fn new(file: &str, text: &str) -> Reader {
        Reader {
            map: SourceMap::new(file, text),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, path: &FieldPath, message: impl Into<String>) {
        let d = self.map.error(path.as_str(), message);
        self.errors.push(d);
    }

    pub(crate) fn warn(&mut self, path: &FieldPath, message: impl Into<String>) {
        let d = self.map.warning(path.as_str(), message);
        self.warnings.push(d);
    }

    fn expected(&mut self, path: &FieldPath, what: &str, found: &Value) {
        self.error(path, format!("expected {what}, found {}", describe(found)));
    }

    /// A mapping; `None` (and no error) for an empty value, an error for
    /// anything else.
    pub(crate) fn mapping<'v>(
        &mut self,
        value: &'v Value,
        path: &FieldPath,
    ) -> Option<&'v Mapping> {
        match value {
            Value::Mapping(m) => Some(m),
            Value::Null => None,
            other => {
                self.expected(path, "a mapping", other);
                None
            }
        }
    }

    /// The entries of a mapping with string keys, in document order.
    pub(crate) fn entries<'v>(
        &mut self,
        map: &'v Mapping,
        path: &FieldPath,
    ) -> Vec<(String, &'v Value)> {
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            match key_text(k) {
                Some(name) => out.push((name, v)),
                None => self.error(
                    path,
                    format!("expected a name as key, found {}", describe(k)),
                ),
            }
        }
        out
    }

    /// Warns about keys this mapping does not know: `unsupported` ones are
    /// AWS features Cutover ignores, any other is probably a typo.
    pub(crate) fn check_keys(
        &mut self,
        entries: &[(String, &Value)],
        path: &FieldPath,
        known: &[&str],
        unsupported: &[&str],
    ) {
        for (name, _) in entries {
            if known.contains(&name.as_str()) {
                continue;
            }
            let at = path.key(name);
            if unsupported.contains(&name.as_str()) {
                self.warn(
                    &at,
                    format!("{} is not supported by cutover, ignored", quote(name)),
                );
            } else {
                let message = match suggest(name, known) {
                    Some(s) => format!(
                        "unknown field {}, ignored (did you mean {}?)",
                        quote(name),
                        quote(s)
                    ),
                    None => format!("unknown field {}, ignored", quote(name)),
                };
                self.warn(&at, message);
            }
        }
    }

    /// A scalar as text: strings as written, numbers and booleans in their
    /// canonical form (`PORT: 8080`, `CI: true`).
    pub(crate) fn string(&mut self, value: &Value, path: &FieldPath) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.expected(path, "a string", other);
                None
            }
        }
    }

    /// A list of strings; a single string stands for a list of one
    /// (`files: imagedefinitions.json` is common). Empty items (`- ` or
    /// `- # comment`) are skipped with a warning.
    pub(crate) fn strings(&mut self, value: &Value, path: &FieldPath) -> Vec<String> {
        match value {
            Value::Null => Vec::new(),
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let at = path.index(i);
                    if item.is_null() {
                        self.warn(&at, "empty item, ignored");
                    } else if let Some(s) = self.string(item, &at) {
                        out.push(s);
                    }
                }
                out
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                self.string(value, path).into_iter().collect()
            }
            other => {
                self.expected(path, "a list of strings", other);
                Vec::new()
            }
        }
    }

    /// A boolean: YAML `true`/`false`, or the YAML 1.1 words AWS documents
    /// (`yes`/`no`, `on`/`off`, `y`/`n`), in any case, quoted or not.
    pub(crate) fn boolean(&mut self, value: &Value, path: &FieldPath) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match parse_bool(s) {
                Some(b) => Some(b),
                None => {
                    self.expected(path, "yes or no", value);
                    None
                }
            },
            other => {
                self.expected(path, "yes or no", other);
                None
            }
        }
    }

    /// A mapping of names to string values, in document order.
    pub(crate) fn string_map(&mut self, value: &Value, path: &FieldPath) -> Vec<(String, String)> {
        let Some(map) = self.mapping(value, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, v) in self.entries(map, path) {
            let at = path.key(&name);
            if v.is_null() {
                // `KEY:` with no value: AWS reads it as the empty string.
                out.push((name, String::new()));
            } else if let Some(s) = self.string(v, &at) {
                out.push((name, s));
            }
        }
        out
    }
}

/// Reads YAML 1.1 and 1.2 booleans written as text.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "on" => Some(true),
        "no" | "n" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// The known name closest to `name`, when it is close enough to be a typo.
pub(crate) fn suggest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_written_like_cutover_spec_writes_them() {
        let p = FieldPath::root()
            .key("phases")
            .key("build")
            .key("commands")
            .index(2);
        assert_eq!(p.as_str(), "phases.build.commands[2]");
        let p = FieldPath::root()
            .key("reports")
            .key("arn:aws:x/y")
            .key("files");
        assert_eq!(p.as_str(), r#"reports["arn:aws:x/y"].files"#);
    }

    #[test]
    fn booleans_of_yaml_1_1() {
        for yes in ["yes", "Yes", "YES", "on", "true", "y"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes}");
        }
        for no in ["no", "No", "off", "false", "n"] {
            assert_eq!(parse_bool(no), Some(false), "{no}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let known = ["commands", "finally", "on-failure"];
        assert_eq!(suggest("comands", &known), Some("commands"));
        assert_eq!(suggest("finaly", &known), Some("finally"));
        assert_eq!(suggest("run-as", &known), None);
    }
}
