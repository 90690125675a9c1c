//! A document tree that remembers where every value and key came from.
//!
//! JSON and YAML text is first parsed into a [`Node`] tree (see [`json`] and
//! [`yaml`]); typed values are then read from the tree by [`crate::de`], and
//! semantic checks find the line and column of any field by its [`Path`].
//! Keeping the positions in the tree, rather than in the parser's error, is
//! what lets errors found after deserialization (a duplicate container name,
//! an unknown alarm) point at the right place too.

pub(crate) mod json;
pub(crate) mod yaml;

use std::fmt;

use crate::diag::Diagnostic;

pub use crate::check::{Document, Sink};

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

/// One value of the document and where it starts.
#[derive(Debug, Clone)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// The value.
    pub value: Value,
    /// The source text of a YAML plain (unquoted) scalar, so that a field
    /// typed as a string can take `200` or `yes` as written and `on`/`off`
    /// can be read as booleans. `None` for JSON and quoted YAML scalars.
    pub plain: Option<String>,
}

/// The value of a [`Node`].
#[derive(Debug, Clone)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Integers in `i64::MIN..=u64::MAX`.
    Int(i128),
    /// Other numbers.
    Float(f64),
    /// Text.
    Str(String),
    /// A sequence (list, array).
    Seq(Vec<Node>),
    /// Entries in document order; a duplicate key is reported and dropped.
    Map(Vec<Entry>),
}

/// A key and its value in a mapping.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Always a [`Value::Str`] node: non-string scalar keys are converted.
    pub key: Node,
    /// The value.
    pub value: Node,
}

impl Entry {
    /// The key's text.
    pub fn name(&self) -> &str {
        match &self.key.value {
            Value::Str(s) => s,
            _ => "",
        }
    }
}

impl Node {
    pub(crate) fn new(pos: Pos, value: Value) -> Node {
        Node {
            pos,
            value,
            plain: None,
        }
    }

    /// The entry named `key` when this node is a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.name() == key),
            _ => None,
        }
    }

    /// Where `path` points: the position of the value and, when the last
    /// step is a key that exists, of that key. A path that leaves the
    /// document (a defaulted field) resolves to its deepest existing ancestor.
    pub(crate) fn locate(&self, path: &Path) -> Located {
        let mut node = self;
        let mut key = None;
        for seg in &path.0 {
            let next = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(_)) => node.entry(k).map(|e| (&e.value, Some(e.key.pos))),
                (Seg::Index(i), Value::Seq(items)) => items.get(*i).map(|n| (n, None)),
                _ => None,
            };
            match next {
                Some((n, k)) => {
                    node = n;
                    key = k;
                }
                None => {
                    return Located {
                        value: node.pos,
                        key: None,
                    };
                }
            }
        }
        Located {
            value: node.pos,
            key,
        }
    }

    /// The node at `path`, if the document has it.
    pub fn get(&self, path: &Path) -> Option<&Node> {
        let mut node = self;
        for seg in &path.0 {
            node = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(_)) => &node.entry(k)?.value,
                (Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The node at `path`, mutably.
    pub(crate) fn get_mut(&mut self, path: &Path) -> Option<&mut Node> {
        let mut node = self;
        for seg in &path.0 {
            node = match (seg, &mut node.value) {
                (Seg::Key(k), Value::Map(entries)) => {
                    &mut entries.iter_mut().find(|e| e.name() == k)?.value
                }
                (Seg::Index(i), Value::Seq(items)) => items.get_mut(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The node as a JSON value (positions dropped). Integers outside the
    /// 64-bit ranges and non-finite floats, which JSON cannot hold, become
    /// floats and `null`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(n) => {
                if let Ok(u) = u64::try_from(*n) {
                    J::from(u)
                } else if let Ok(i) = i64::try_from(*n) {
                    J::from(i)
                } else {
                    serde_json::Number::from_f64(*n as f64).map_or(J::Null, J::Number)
                }
            }
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.name().to_owned(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// Mutable access to the mapping entries of this node, if it is one.
    pub(crate) fn entries_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }
}

/// The result of [`Node::locate`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    pub(crate) value: Pos,
    pub(crate) key: Option<Pos>,
}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `containerDefinitions[0].portMappings[0].containerPort`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<Seg>);

impl Path {
    /// The whole document.
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// The path of field `key` of the mapping at this path.
    pub fn key(&self, key: &str) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Path(segs)
    }

    /// The path of element `index` of the sequence at this path.
    pub fn index(&self, index: usize) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Path(segs)
    }

    /// The last key of the path (`containerPort` of
    /// `portMappings[0].containerPort`), if it ends with a key.
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl Path {
    /// Reads a path as [`Path`]'s `Display` writes it:
    /// `services.web.loadBalancer`, `containerDefinitions[0].name`,
    /// `deploymentConfigs["CodeDeployDefault.X"]`. `None` if malformed.
    pub fn parse(text: &str) -> Option<Path> {
        let mut segs = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('[') {
                if r.starts_with('"') {
                    // A JSON string, then `]`.
                    let mut de = serde_json::Deserializer::from_str(r).into_iter::<String>();
                    let key = de.next()?.ok()?;
                    rest = r[de.byte_offset()..].strip_prefix(']')?;
                    segs.push(Seg::Key(key));
                } else {
                    let (n, r) = r.split_once(']')?;
                    segs.push(Seg::Index(n.parse().ok()?));
                    rest = r;
                }
            } else {
                let r = if segs.is_empty() {
                    rest
                } else {
                    rest.strip_prefix('.')?
                };
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end == 0 {
                    return None;
                }
                segs.push(Seg::Key(r[..end].to_owned()));
                rest = &r[end..];
            }
            if rest.starts_with('.') && rest.len() == 1 {
                return None;
            }
        }
        Some(Path(segs))
    }
}

impl fmt::Display for Path {
    /// Keys that are plain words (letters, digits, `_`, `-`) are joined with
    /// dots; any other key is written as `["key"]` so that the path stays
    /// unambiguous (`deploymentConfigs["CodeDeployDefault.ECSAllAtOnce"]`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) if is_word(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{}]", quote(k))?,
            }
        }
        Ok(())
    }
}

fn is_word(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `s` as a double-quoted JSON string, the way values are quoted in messages.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Which syntax a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (RFC 8259).
    Json,
    /// YAML 1.2 (with YAML 1.1 booleans where a boolean is expected).
    Yaml,
}

impl Format {
    /// JSON for `*.json` and for a template of a JSON file
    /// (`taskdef.json.tpl`, `appspec.json.j2`: its mistakes are told in
    /// JSON's words, not a YAML parser's), YAML otherwise (YAML also reads
    /// most JSON).
    pub fn for_file(file: &str) -> Format {
        let name = file.rsplit('/').next().unwrap_or(file).to_ascii_lowercase();
        if name.split('.').skip(1).any(|ext| ext == "json") {
            Format::Json
        } else {
            Format::Yaml
        }
    }

    /// What a mapping is called in messages.
    pub fn map_noun(self) -> &'static str {
        match self {
            Format::Json => "an object",
            Format::Yaml => "a mapping",
        }
    }

    /// What a sequence is called in messages.
    pub fn seq_noun(self) -> &'static str {
        match self {
            Format::Json => "an array",
            Format::Yaml => "a list",
        }
    }
}

/// A syntax error: the document could not be read at all.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

/// Parses `text` in `format` into a tree. Duplicate keys are not syntax
/// errors here; [`check_duplicate_keys`] reports them.
pub(crate) fn parse(format: Format, text: &str) -> Result<Node, SyntaxError> {
    match format {
        Format::Json => json::parse(text),
        Format::Yaml => yaml::parse(text),
    }
}

/// Reports every key that appears twice in one mapping (at the second
/// occurrence) and drops the later entries, so that checks can go on.
pub(crate) fn check_duplicate_keys(
    node: &mut Node,
    path: &Path,
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    match &mut node.value {
        Value::Map(entries) => {
            let mut seen: Vec<(String, Pos)> = Vec::new();
            entries.retain(|e| {
                let name = e.name();
                if let Some((_, first)) = seen.iter().find(|(k, _)| k == name) {
                    out.push(Diagnostic::error(
                        file,
                        Some(e.key.pos),
                        &path.key(name),
                        format!(
                            "duplicate key {}, first defined at line {}, column {}",
                            quote(name),
                            first.line,
                            first.column
                        ),
                    ));
                    false
                } else {
                    seen.push((name.to_owned(), e.key.pos));
                    true
                }
            });
            for e in entries.iter_mut() {
                let child = path.key(e.name());
                check_duplicate_keys(&mut e.value, &child, file, out);
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                check_duplicate_keys(item, &path.index(i), file, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn json_files_and_their_templates_are_read_as_json() {
        for (file, format) in [
            ("taskdef.json", Format::Json),
            ("dir/TASKDEF.JSON", Format::Json),
            ("taskdef.json.tpl", Format::Json),
            ("deploy/appspec.json.j2", Format::Json),
            ("appspec.yaml", Format::Yaml),
            ("buildspec.yml", Format::Yaml),
            ("json.d/stack.yaml", Format::Yaml),
            ("jsonnet.yaml", Format::Yaml),
        ] {
            assert_eq!(Format::for_file(file), format, "{file}");
        }
    }
    use super::*;

    #[test]
    fn paths_read_back() {
        let p = Path::root()
            .key("deploymentConfigs")
            .key("CodeDeployDefault.X")
            .key("trafficRouting")
            .key("items")
            .index(3)
            .index(0)
            .key("a-b");
        let text = p.to_string();
        assert_eq!(
            text,
            r#"deploymentConfigs["CodeDeployDefault.X"].trafficRouting.items[3][0].a-b"#
        );
        assert_eq!(Path::parse(&text), Some(p));
        assert_eq!(Path::parse(""), Some(Path::root()));
        assert_eq!(
            Path::parse("[2].name"),
            Some(Path::root().index(2).key("name"))
        );
        for bad in ["a..b", "a.", "a[x]", "a[1", ".a", r#"a["b"#] {
            assert_eq!(Path::parse(bad), None, "{bad}");
        }
    }
}
