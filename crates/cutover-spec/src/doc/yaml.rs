//! YAML into a [`Node`] tree, from the events of `saphyr-parser` (YAML 1.2),
//! keeping the line and column of every node and key.
//!
//! Plain scalars are resolved with the YAML 1.2 core schema (`true`, `null`,
//! `12`, `0x1f`, `1.5`, `.inf`); `yes`/`no` stay strings here and are read as
//! booleans only where a boolean is expected (see [`crate::de`]). Anchors and
//! aliases are expanded, with a bound on the size of the expansion. Tags
//! other than the core ones (`!!str`, `!!int`, ...) are refused: Cutover has
//! no meaning for `!Ref` or `!Sub`.

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span, Tag};

use super::{Entry, Node, Pos, SyntaxError, Value};

/// Upper bound on nodes created, counting alias expansion ("billion laughs").
const MAX_NODES: usize = 1_000_000;

pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut b = Builder::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SyntaxError {
            pos: pos(*e.marker()),
            message: e.info().to_owned(),
        })?;
        b.event(event, span)?;
    }
    Ok(b.root
        .unwrap_or(Node::new(Pos { line: 1, column: 1 }, Value::Null)))
}

fn pos(m: Marker) -> Pos {
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<Node>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node)>,
    root: Option<Node>,
    documents: usize,
    nodes: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let at = pos(span.start);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(SyntaxError {
                        pos: at,
                        message: "expected a single YAML document, found a second one".to_owned(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = scalar(&text, style, tag.as_deref(), at)?;
                self.add(node, anchor)?;
            }
            Event::SequenceStart(anchor, tag) => {
                check_collection_tag(tag.as_deref(), "seq", at)?;
                self.stack.push(Frame::Seq {
                    pos: at,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, tag) => {
                check_collection_tag(tag.as_deref(), "map", at)?;
                self.stack.push(Frame::Map {
                    pos: at,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => {
                        (Node::new(pos, Value::Seq(items)), anchor)
                    }
                    Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) => (Node::new(pos, Value::Map(merge_keys(entries)?)), anchor),
                    None => return Ok(()),
                };
                self.add(node, anchor)?;
            }
            Event::Alias(id) => {
                let Some((_, node)) = self.anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(SyntaxError {
                        pos: at,
                        message: "alias to an unknown anchor".to_owned(),
                    });
                };
                let node = node.clone();
                self.add(node, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn add(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        self.nodes += count(&node);
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos: node.pos,
                message: format!("the document expands to more than {MAX_NODES} values (aliases)"),
            });
        }
        if anchor != 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => entries.push(Entry {
                    key: k,
                    value: node,
                }),
                None => *key = Some(key_node(node)?),
            },
        }
        Ok(())
    }
}

/// Applies YAML merge keys (`<<: *defaults`, `<<: [*a, *b]`), as CodeBuild
/// and most YAML 1.1 readers do: the merged mappings' entries are inserted
/// where `<<` stands, unless the mapping names that key itself (or an
/// earlier merged mapping did). Merged values keep their own positions.
fn merge_keys(entries: Vec<Entry>) -> Result<Vec<Entry>, SyntaxError> {
    if !entries.iter().any(|e| e.name() == "<<") {
        return Ok(entries);
    }
    let explicit: Vec<String> = entries
        .iter()
        .filter(|e| e.name() != "<<")
        .map(|e| e.name().to_owned())
        .collect();
    let mut merged: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        if e.name() != "<<" {
            out.push(e);
            continue;
        }
        let sources = match e.value.value {
            Value::Map(m) => vec![m],
            Value::Seq(items) => items
                .into_iter()
                .map(|n| match n.value {
                    Value::Map(m) => Ok(m),
                    _ => Err(n.pos),
                })
                .collect::<Result<_, _>>()
                .map_err(|pos| SyntaxError {
                    pos,
                    message: "a merge key (<<) takes a mapping or a list of mappings".to_owned(),
                })?,
            _ => {
                return Err(SyntaxError {
                    pos: e.value.pos,
                    message: "a merge key (<<) takes a mapping or a list of mappings".to_owned(),
                });
            }
        };
        for entry in sources.into_iter().flatten() {
            let name = entry.name().to_owned();
            if !explicit.contains(&name) && !merged.contains(&name) {
                merged.push(name);
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// Nodes in a subtree; an alias copies a whole subtree.
fn count(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|e| 1 + count(&e.value)).sum::<usize>(),
        _ => 1,
    }
}

/// Keys are kept as strings: `200:` becomes the key `"200"`.
fn key_node(node: Node) -> Result<Node, SyntaxError> {
    let text = match (&node.value, &node.plain) {
        (Value::Str(s), _) => s.clone(),
        (Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_), Some(raw)) => raw.clone(),
        (Value::Int(n), None) => n.to_string(),
        (Value::Float(f), None) => f.to_string(),
        (Value::Bool(b), None) => b.to_string(),
        (Value::Null, None) => String::new(),
        (Value::Seq(_) | Value::Map(_), _) => {
            return Err(SyntaxError {
                pos: node.pos,
                message: "a mapping key must be a scalar, not a list or a mapping".to_owned(),
            });
        }
    };
    Ok(Node::new(node.pos, Value::Str(text)))
}

fn check_collection_tag(tag: Option<&Tag>, core: &str, at: Pos) -> Result<(), SyntaxError> {
    match tag {
        None => Ok(()),
        Some(t) if t.is_yaml_core_schema() && t.suffix == core => Ok(()),
        Some(t) => Err(unsupported_tag(t, at)),
    }
}

fn unsupported_tag(tag: &Tag, at: Pos) -> SyntaxError {
    let shown = if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else {
        tag.to_string()
    };
    SyntaxError {
        pos: at,
        message: format!("unsupported YAML tag {shown}"),
    }
}

fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, at: Pos) -> Result<Node, SyntaxError> {
    if let Some(tag) = tag {
        if !tag.is_yaml_core_schema() {
            return Err(unsupported_tag(tag, at));
        }
        let resolved = resolve_plain(text);
        let value = match (tag.suffix.as_str(), resolved) {
            ("str", _) => Value::Str(text.to_owned()),
            ("null", v @ Value::Null)
            | ("bool", v @ Value::Bool(_))
            | ("int", v @ Value::Int(_))
            | ("float", v @ Value::Float(_)) => v,
            ("float", Value::Int(n)) => Value::Float(n as f64),
            (other, _) => {
                return Err(SyntaxError {
                    pos: at,
                    message: format!("{} is not a valid !!{other}", super::quote(text)),
                });
            }
        };
        return Ok(Node::new(at, value));
    }
    if style != ScalarStyle::Plain {
        return Ok(Node::new(at, Value::Str(text.to_owned())));
    }
    Ok(Node {
        pos: at,
        value: resolve_plain(text),
        plain: Some(text.to_owned()),
    })
}

/// The YAML 1.2 core schema for plain scalars.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let int = if let Some(hex) = text.strip_prefix("0x") {
        i128::from_str_radix(hex, 16)
            .ok()
            .filter(|_| !hex.starts_with(['+', '-']))
    } else if let Some(oct) = text.strip_prefix("0o") {
        i128::from_str_radix(oct, 8)
            .ok()
            .filter(|_| !oct.starts_with(['+', '-']))
    } else if is_decimal_int(text) {
        text.parse::<i128>().ok()
    } else {
        None
    };
    if let Some(n) = int {
        if n >= i128::from(i64::MIN) && n <= i128::from(u64::MAX) {
            return Value::Int(n);
        }
        return Value::Float(n as f64);
    }
    if is_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(text.to_owned())
}

fn is_decimal_int(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = all_digits(int)
        && frac.is_none_or(all_digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema() {
        assert!(matches!(resolve_plain("0.0"), Value::Float(f) if f == 0.0));
        assert!(matches!(resolve_plain("12"), Value::Int(12)));
        assert!(matches!(resolve_plain("-12"), Value::Int(-12)));
        assert!(matches!(resolve_plain("0x1f"), Value::Int(31)));
        assert!(matches!(resolve_plain("1e3"), Value::Float(f) if f == 1000.0));
        assert!(matches!(resolve_plain(".5"), Value::Float(f) if f == 0.5));
        assert!(matches!(resolve_plain("yes"), Value::Str(_)));
        assert!(matches!(resolve_plain("80a"), Value::Str(_)));
        assert!(matches!(resolve_plain("1.2.3"), Value::Str(_)));
        assert!(matches!(resolve_plain("127.0.0.1:80"), Value::Str(_)));
        assert!(matches!(resolve_plain("~"), Value::Null));
    }

    #[test]
    fn merge_keys_are_applied() {
        let n =
            parse("d: &d {a: 1, b: 2}\ne: &e {c: 3}\nx:\n  <<: [*d, *e]\n  b: 9\ny: {<<: *d}\n")
                .unwrap();
        let x = &n.entry("x").unwrap().value;
        let names: Vec<&str> = match &x.value {
            Value::Map(entries) => entries.iter().map(Entry::name).collect(),
            _ => panic!(),
        };
        assert_eq!(names, ["a", "c", "b"]);
        assert!(matches!(x.entry("b").unwrap().value.value, Value::Int(9)));
        // A merged value is located where it is written.
        assert_eq!(
            x.entry("a").unwrap().value.pos,
            Pos {
                line: 1,
                column: 11
            }
        );
        assert!(n.entry("y").unwrap().value.entry("b").is_some());
        let e = parse("x: {<<: 3}\n").unwrap_err();
        assert_eq!(
            e.message,
            "a merge key (<<) takes a mapping or a list of mappings"
        );
    }

    #[test]
    fn positions() {
        let n = parse("a:\n  b: 1\n  c: [x, 'y']\nd: &x {e: 2}\nf: *x\n").unwrap();
        let a = n.entry("a").unwrap();
        assert_eq!(a.key.pos, Pos { line: 1, column: 1 });
        assert_eq!(a.value.pos, Pos { line: 2, column: 3 });
        let c = a.value.entry("c").unwrap();
        let Value::Seq(items) = &c.value.value else {
            panic!()
        };
        assert_eq!(
            items[1].pos,
            Pos {
                line: 3,
                column: 10
            }
        );
        assert!(items[1].plain.is_none());
        let f = n.entry("f").unwrap();
        assert!(f.value.entry("e").is_some());
    }

    #[test]
    fn errors() {
        let e = parse("a: !Ref x\n").unwrap_err();
        assert_eq!(
            (e.pos.line, e.message.as_str()),
            (1, "unsupported YAML tag !Ref")
        );
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(
            e.message,
            "expected a single YAML document, found a second one"
        );
        let e = parse("[1, 2]: x\n").unwrap_err();
        assert_eq!(
            e.message,
            "a mapping key must be a scalar, not a list or a mapping"
        );
    }
}
