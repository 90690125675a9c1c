//! Reading typed values out of `cutover-spec`'s located document tree, with
//! field paths and located diagnostics.
//!
//! The buildspec is walked by hand rather than deserialized, because its
//! rules are CodeBuild's (a single string stands for a list of one, YAML 1.1
//! booleans even when quoted, AWS features Cutover ignores are warnings).
//! Every diagnostic goes to the document's [`Sink`], which locates it by its
//! [`Path`] like every other file Cutover reads; the [`Reader`] collects
//! every error and warning in one pass, so that a user sees all the mistakes
//! in a buildspec at once.

use cutover_spec::doc::{Entry, Node, Path, Sink, Value};

pub(crate) use cutover_spec::doc::quote;

/// How a value is named in "expected X, found Y" messages.
pub(crate) fn describe(node: &Node) -> String {
    match &node.value {
        Value::Null => "nothing".to_owned(),
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => scalar_text(node).unwrap_or_default(),
        Value::Str(s) => quote(s),
        Value::Seq(_) => "a list".to_owned(),
        Value::Map(_) => "a mapping".to_owned(),
    }
}

/// A scalar as text: strings as written, numbers and booleans as written
/// when plain (`PORT: 8080`, `CI: true`), else in their canonical form.
pub(crate) fn scalar_text(node: &Node) -> Option<String> {
    match (&node.value, &node.plain) {
        (Value::Str(s), _) => Some(s.clone()),
        (Value::Bool(_) | Value::Int(_) | Value::Float(_), Some(raw)) => Some(raw.clone()),
        (Value::Bool(b), None) => Some(b.to_string()),
        (Value::Int(n), None) => Some(n.to_string()),
        (Value::Float(f), None) => Some(f.to_string()),
        _ => None,
    }
}

/// Collects the diagnostics of one file while its values are read.
pub(crate) struct Reader<'s> {
    sink: &'s Sink<'s>,
}

impl<'s> Reader<'s> {
    pub(crate) fn new(sink: &'s Sink<'s>) -> Reader<'s> {
        Reader { sink }
    }

    pub(crate) fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.sink.error(path, message);
    }

    pub(crate) fn warn(&mut self, path: &Path, message: impl Into<String>) {
        self.sink.warning(path, message);
    }

    fn expected(&mut self, path: &Path, what: &str, found: &Node) {
        self.error(path, format!("expected {what}, found {}", describe(found)));
    }

    /// The entries of a mapping, in document order; `None` (and no error)
    /// for an empty value, an error for anything else.
    pub(crate) fn mapping<'v>(&mut self, value: &'v Node, path: &Path) -> Option<&'v [Entry]> {
        match &value.value {
            Value::Map(entries) => Some(entries),
            Value::Null => None,
            _ => {
                self.expected(path, "a mapping", value);
                None
            }
        }
    }

    /// The entries of a mapping as `(name, value)`, in document order.
    pub(crate) fn entries<'v>(&mut self, map: &'v [Entry]) -> Vec<(String, &'v Node)> {
        map.iter()
            .map(|e| (e.name().to_owned(), &e.value))
            .collect()
    }

    /// Warns about keys this mapping does not know: `unsupported` ones are
    /// AWS features Cutover ignores, any other is probably a typo.
    pub(crate) fn check_keys(
        &mut self,
        entries: &[(String, &Node)],
        path: &Path,
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
                let message = match cutover_spec::suggest(name, known.iter().copied()) {
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

    /// A scalar as text: strings as written, numbers and booleans as written
    /// (`PORT: 8080`, `CI: true`).
    pub(crate) fn string(&mut self, value: &Node, path: &Path) -> Option<String> {
        match &value.value {
            Value::Str(_) | Value::Bool(_) | Value::Int(_) | Value::Float(_) => scalar_text(value),
            _ => {
                self.expected(path, "a string", value);
                None
            }
        }
    }

    /// A list of strings; a single string stands for a list of one
    /// (`files: imagedefinitions.json` is common). Empty items (`- ` or
    /// `- # comment`) are skipped with a warning.
    pub(crate) fn strings(&mut self, value: &Node, path: &Path) -> Vec<String> {
        match &value.value {
            Value::Null => Vec::new(),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let at = path.index(i);
                    if matches!(item.value, Value::Null) {
                        self.warn(&at, "empty item, ignored");
                    } else if let Some(s) = self.string(item, &at) {
                        out.push(s);
                    }
                }
                out
            }
            Value::Str(_) | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                self.string(value, path).into_iter().collect()
            }
            Value::Map(_) => {
                self.expected(path, "a list of strings", value);
                Vec::new()
            }
        }
    }

    /// A boolean: YAML `true`/`false`, or the YAML 1.1 words AWS documents
    /// (`yes`/`no`, `on`/`off`, `y`/`n`), in any case, quoted or not.
    pub(crate) fn boolean(&mut self, value: &Node, path: &Path) -> Option<bool> {
        match &value.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) => match parse_bool(s) {
                Some(b) => Some(b),
                None => {
                    self.expected(path, "yes or no", value);
                    None
                }
            },
            _ => {
                self.expected(path, "yes or no", value);
                None
            }
        }
    }

    /// A mapping of names to string values, in document order.
    pub(crate) fn string_map(&mut self, value: &Node, path: &Path) -> Vec<(String, String)> {
        let Some(map) = self.mapping(value, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, v) in self.entries(map) {
            let at = path.key(&name);
            if matches!(v.value, Value::Null) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
