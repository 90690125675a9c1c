//! A small JSON parser (RFC 8259) that records the position of every value
//! and key, with syntax errors that say what was expected and where.

use super::{Entry, Node, Pos, SyntaxError, Value};

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        src: text.strip_prefix('\u{feff}').unwrap_or(text),
        i: 0,
        line: 1,
        column: 1,
        depth: 0,
    };
    p.skip_ws();
    if p.peek().is_none() {
        return Err(p.error("the document is empty, expected a JSON value"));
    }
    let node = p.value()?;
    p.skip_ws();
    if let Some(c) = p.peek_char() {
        return Err(p.error(&format!(
            "unexpected {} after the end of the JSON value",
            describe(c)
        )));
    }
    Ok(node)
}

struct Parser<'t> {
    src: &'t str,
    i: usize,
    line: usize,
    column: usize,
    depth: usize,
}

fn describe(c: char) -> String {
    match c {
        '\n' => "end of line".to_owned(),
        c if c.is_control() => format!("character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

impl Parser<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn error(&self, message: &str) -> SyntaxError {
        SyntaxError {
            pos: self.pos(),
            message: message.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.i).copied()
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.i..].chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek_char() {
            self.i += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.bump();
        }
    }

    fn unexpected(&self, expected: &str) -> SyntaxError {
        match self.peek_char() {
            None => self.error(&format!("unexpected end of input, expected {expected}")),
            Some(c) => self.error(&format!("expected {expected}, found {}", describe(c))),
        }
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        let pos = self.pos();
        let value = match self.peek() {
            Some(b'{') => self.object()?,
            Some(b'[') => self.array()?,
            Some(b'"') => Value::Str(self.string()?),
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            Some(b'\'') => return Err(self.error("strings must use double quotes in JSON")),
            _ => return Err(self.unexpected("a JSON value")),
        };
        Ok(Node::new(pos, value))
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.bump();
        self.skip_ws();
        Ok(())
    }

    fn object(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        let mut entries = Vec::new();
        if self.peek() == Some(b'}') {
            self.bump();
            self.depth -= 1;
            return Ok(Value::Map(entries));
        }
        loop {
            let key_pos = self.pos();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a double-quoted key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.unexpected("`:` after the key"));
            }
            self.bump();
            self.skip_ws();
            let value = self.value()?;
            entries.push(Entry {
                key: Node::new(key_pos, Value::Str(key)),
                value,
            });
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    let comma = self.pos();
                    self.bump();
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        return Err(SyntaxError {
                            pos: comma,
                            message: "trailing comma before `}` is not allowed in JSON".to_owned(),
                        });
                    }
                }
                Some(b'}') => {
                    self.bump();
                    self.depth -= 1;
                    return Ok(Value::Map(entries));
                }
                Some(b'"') => {
                    return Err(self.error("expected `,` or `}`, found `\"` (missing comma?)"));
                }
                _ => return Err(self.unexpected("`,` or `}`")),
            }
        }
    }

    fn array(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.bump();
            self.depth -= 1;
            return Ok(Value::Seq(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    let comma = self.pos();
                    self.bump();
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        return Err(SyntaxError {
                            pos: comma,
                            message: "trailing comma before `]` is not allowed in JSON".to_owned(),
                        });
                    }
                }
                Some(b']') => {
                    self.bump();
                    self.depth -= 1;
                    return Ok(Value::Seq(items));
                }
                Some(b'"' | b'{' | b'[') => {
                    return Err(self.unexpected("`,` or `]` (missing comma?)"));
                }
                _ => return Err(self.unexpected("`,` or `]`")),
            }
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, SyntaxError> {
        if self.src[self.i..].starts_with(word) {
            for _ in 0..word.len() {
                self.bump();
            }
            Ok(value)
        } else {
            Err(self.unexpected("a JSON value"))
        }
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        let start = self.i;
        let start_pos = self.pos();
        let digits = |p: &mut Self| {
            let mut n = 0;
            while let Some(b'0'..=b'9') = p.peek() {
                p.bump();
                n += 1;
            }
            n
        };
        if self.peek() == Some(b'-') {
            self.bump();
        }
        let int_start = self.i;
        if digits(self) == 0 {
            return Err(self.unexpected("a digit"));
        }
        if self.src.as_bytes()[int_start] == b'0' && self.i - int_start > 1 {
            return Err(SyntaxError {
                pos: start_pos,
                message: "numbers must not have leading zeros in JSON".to_owned(),
            });
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            is_float = true;
            self.bump();
            if digits(self) == 0 {
                return Err(self.unexpected("a digit after the decimal point"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            is_float = true;
            self.bump();
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            if digits(self) == 0 {
                return Err(self.unexpected("a digit in the exponent"));
            }
        }
        let text = &self.src[start..self.i];
        if !is_float
            && let Ok(n) = text.parse::<i128>()
            && n >= i128::from(i64::MIN)
            && n <= i128::from(u64::MAX)
        {
            return Ok(Value::Int(n));
        }
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.error("invalid number"))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let open = self.pos();
        self.bump(); // the opening quote
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_char() else {
                return Err(SyntaxError {
                    pos: open,
                    message: "unterminated string".to_owned(),
                });
            };
            match c {
                '"' => {
                    self.bump();
                    return Ok(out);
                }
                '\\' => {
                    self.bump();
                    out.push(self.escape()?);
                }
                c if (c as u32) < 0x20 => {
                    return Err(
                        self.error(&format!("{} inside a string must be escaped", describe(c)))
                    );
                }
                c => {
                    out.push(c);
                    self.bump();
                }
            }
        }
    }

    fn escape(&mut self) -> Result<char, SyntaxError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.bump();
                let hi = self.hex4()?;
                if (0xD800..0xDC00).contains(&hi) {
                    if !self.src[self.i..].starts_with("\\u") {
                        return Err(self.error("unpaired surrogate in \\u escape"));
                    }
                    self.bump();
                    self.bump();
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(self.error("unpaired surrogate in \\u escape"));
                    }
                    let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"));
                }
                return char::from_u32(hi)
                    .ok_or_else(|| self.error("unpaired surrogate in \\u escape"));
            }
            _ => {
                return Err(self
                    .unexpected("an escape sequence (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"));
            }
        };
        self.bump();
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self
                .peek_char()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.unexpected("four hexadecimal digits after \\u"))?;
            v = v * 16 + d;
            self.bump();
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        let e = parse(text).unwrap_err();
        format!("{}:{}: {}", e.pos.line, e.pos.column, e.message)
    }

    #[test]
    fn values_and_positions() {
        let n =
            parse("{\n  \"a\": [1, -2, 3.5, \"x\\u00e9\\ud83d\\ude00\", true, null]\n}").unwrap();
        let Value::Map(entries) = &n.value else {
            panic!()
        };
        assert_eq!(entries[0].key.pos, Pos { line: 2, column: 3 });
        let Value::Seq(items) = &entries[0].value.value else {
            panic!()
        };
        assert_eq!(
            items[1].pos,
            Pos {
                line: 2,
                column: 12
            }
        );
        assert!(matches!(items[1].value, Value::Int(-2)));
        assert!(matches!(&items[3].value, Value::Str(s) if s == "xé😀"));
    }

    #[test]
    fn big_numbers() {
        assert!(
            matches!(parse("18446744073709551615").unwrap().value, Value::Int(n) if n == i128::from(u64::MAX))
        );
        assert!(matches!(
            parse("18446744073709551616").unwrap().value,
            Value::Float(_)
        ));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            err("{\"a\": 1,}"),
            "1:8: trailing comma before `}` is not allowed in JSON"
        );
        assert_eq!(
            err("{\"a\": 1 \"b\": 2}"),
            "1:9: expected `,` or `}`, found `\"` (missing comma?)"
        );
        assert_eq!(
            err("{\"a\": 01}"),
            "1:7: numbers must not have leading zeros in JSON"
        );
        assert_eq!(
            err("{'a': 1}"),
            "1:2: expected a double-quoted key, found `'`"
        );
        assert_eq!(
            err("[1, 2"),
            "1:6: unexpected end of input, expected `,` or `]`"
        );
        assert_eq!(err("\"abc"), "1:1: unterminated string");
        assert_eq!(
            err("{} x"),
            "1:4: unexpected `x` after the end of the JSON value"
        );
        assert_eq!(
            err("  "),
            "1:3: the document is empty, expected a JSON value"
        );
        assert_eq!(
            err(&"[".repeat(200)),
            "1:129: nesting deeper than 128 levels"
        );
    }
}
