//! Finds the line and column of a field path (`listeners[0].defaultAction.forward[1].weight`)
//! in a YAML or JSON text, so semantic errors found after deserialization are located too.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub col: usize,
}

/// Returns where the value at `path` starts, or `None` when the text does not parse or the
/// path is absent.
pub(crate) fn locate(text: &str, path: &str) -> Option<Location> {
    let mut index = Indexer {
        target: path,
        stack: Vec::new(),
        found: None,
    };
    Parser::new_from_str(text).load(&mut index, false).ok()?;
    index.found
}

/// One open collection while walking events.
enum Frame {
    /// A mapping; `key` is the key whose value comes next (`None`: a key comes next).
    Map { path: String, key: Option<String> },
    /// A sequence and the index of its next item.
    Seq { path: String, next: usize },
}

struct Indexer<'a> {
    target: &'a str,
    stack: Vec<Frame>,
    found: Option<Location>,
}

impl Indexer<'_> {
    /// The path of the value that starts now, or `None` when a mapping key starts now.
    fn value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key }) => {
                let k = key.take()?;
                Some(if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                })
            }
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        if self.found.is_none() && path == self.target {
            self.found = Some(Location {
                line: mark.line(),
                col: mark.col() + 1,
            });
        }
    }
}

impl MarkedEventReceiver for Indexer<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => match self.value_path() {
                Some(p) => self.record(&p, mark),
                None => {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(value);
                    }
                }
            },
            Event::Alias(_) => {
                if let Some(p) = self.value_path() {
                    self.record(&p, mark);
                }
            }
            Event::MappingStart(..) => {
                let path = self.value_path().unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path().unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}
