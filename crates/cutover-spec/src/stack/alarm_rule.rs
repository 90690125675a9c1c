//! Composite alarm rules, CloudWatch style:
//! `ALARM("web-5xx") OR (ALARM(web-latency) AND NOT OK(web-healthy))`.
//!
//! Functions `ALARM(name)`, `OK(name)`, `INSUFFICIENT_DATA(name)` (the name
//! double-quoted with `\"` and `\\` escaped, or bare up to the closing
//! parenthesis), constants `TRUE` and `FALSE`, operators `NOT`, `AND`, `OR`
//! (in that order of precedence, `AND` and `OR` left-associative) and
//! parentheses. Keywords are upper case. A rule is at most
//! [`MAX_RULE_LEN`] characters (CloudWatch's limit) and nests at most
//! [`MAX_DEPTH`] levels of parentheses and `NOT`s.
//!
//! This is the one grammar and AST of the workspace: `apply` validates
//! stack files with it, and `cutover-deploy`'s composite alarm evaluates
//! the [`AlarmRule`] it returns. [`AlarmState`] is the one alarm-state enum.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// CloudWatch's limit on the length of an `AlarmRule`, in characters.
pub const MAX_RULE_LEN: usize = 10_240;

/// Deepest nesting of parentheses and `NOT`s accepted.
pub const MAX_DEPTH: usize = 64;

/// The state of an alarm, named as CloudWatch names it (`OK`, `ALARM`,
/// `INSUFFICIENT_DATA`) in rules, the store and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlarmState {
    /// `OK`: the condition is not met.
    #[serde(rename = "OK")]
    Ok,
    /// `ALARM`: the condition is met.
    #[serde(rename = "ALARM")]
    Alarm,
    /// `INSUFFICIENT_DATA`: not enough data to decide (the initial state).
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// Every state.
    pub const ALL: [AlarmState; 3] = [
        AlarmState::Ok,
        AlarmState::Alarm,
        AlarmState::InsufficientData,
    ];

    /// The CloudWatch name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the alarm states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown alarm state {0:?}, expected OK, ALARM or INSUFFICIENT_DATA")]
pub struct UnknownAlarmState(pub String);

impl FromStr for AlarmState {
    type Err = UnknownAlarmState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlarmState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownAlarmState(s.to_string()))
    }
}

/// A parsed composite alarm rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmRule {
    /// `TRUE` or `FALSE`.
    Const(bool),
    /// `ALARM(name)`, `OK(name)` or `INSUFFICIENT_DATA(name)`: true when the alarm is in that state.
    State {
        /// The state tested.
        state: AlarmState,
        /// The alarm tested.
        alarm: String,
    },
    /// `NOT rule`.
    Not(Box<AlarmRule>),
    /// `left AND right`.
    And(Box<AlarmRule>, Box<AlarmRule>),
    /// `left OR right`.
    Or(Box<AlarmRule>, Box<AlarmRule>),
}

impl AlarmRule {
    /// Every alarm the rule tests, in order of appearance (with repeats).
    pub fn alarm_names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            AlarmRule::Const(_) => {}
            AlarmRule::State { alarm, .. } => out.push(alarm),
            AlarmRule::Not(r) => r.collect(out),
            AlarmRule::And(a, b) | AlarmRule::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    /// Whether the rule holds, given each alarm's state.
    pub fn evaluate(&self, state_of: &dyn Fn(&str) -> AlarmState) -> bool {
        match self {
            AlarmRule::Const(b) => *b,
            AlarmRule::State { state, alarm } => state_of(alarm) == *state,
            AlarmRule::Not(r) => !r.evaluate(state_of),
            AlarmRule::And(a, b) => a.evaluate(state_of) && b.evaluate(state_of),
            AlarmRule::Or(a, b) => a.evaluate(state_of) || b.evaluate(state_of),
        }
    }
}

impl fmt::Display for AlarmRule {
    /// The rule, fully parenthesized, with quoted names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlarmRule::Const(true) => f.write_str("TRUE"),
            AlarmRule::Const(false) => f.write_str("FALSE"),
            AlarmRule::State { state, alarm } => {
                // The grammar's own escapes (`\"`, `\\`), so the text parses
                // back to the same name, control characters included.
                let escaped = alarm.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "{}(\"{escaped}\")", state.as_str())
            }
            AlarmRule::Not(r) => write!(f, "NOT {r}"),
            AlarmRule::And(a, b) => write!(f, "({a} AND {b})"),
            AlarmRule::Or(a, b) => write!(f, "({a} OR {b})"),
        }
    }
}

/// Why a rule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRuleError {
    /// 1-based character position in the rule.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for AlarmRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.position, self.message)
    }
}

impl std::error::Error for AlarmRuleError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Quoted(String),
    End,
}

/// Parses a composite alarm rule.
pub fn parse_alarm_rule(text: &str) -> Result<AlarmRule, AlarmRuleError> {
    // Bytes bound characters: the count is only taken when it may matter.
    if text.len() > MAX_RULE_LEN && text.chars().count() > MAX_RULE_LEN {
        return Err(err(
            MAX_RULE_LEN + 1,
            &format!("rule longer than {MAX_RULE_LEN} characters"),
        ));
    }
    let mut p = RuleParser {
        chars: text.chars().collect(),
        i: 0,
        depth: 0,
    };
    let rule = p.or()?;
    match p.next()? {
        (Tok::End, _) => Ok(rule),
        (Tok::Close, at) => Err(err(
            at,
            "unbalanced parentheses: `)` without a matching `(`",
        )),
        (t, at) => Err(err(
            at,
            &format!(
                "expected AND, OR or the end of the rule, found {}",
                show(&t)
            ),
        )),
    }
}

fn err(position: usize, message: &str) -> AlarmRuleError {
    AlarmRuleError {
        position,
        message: message.to_owned(),
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Open => "`(`".to_owned(),
        Tok::Close => "`)`".to_owned(),
        Tok::Word(w) => format!("`{w}`"),
        Tok::Quoted(q) => crate::doc::quote(q),
        Tok::End => "the end of the rule".to_owned(),
    }
}

struct RuleParser {
    chars: Vec<char>,
    i: usize,
    depth: usize,
}

impl RuleParser {
    fn skip_ws(&mut self) {
        while self.chars.get(self.i).is_some_and(|c| c.is_whitespace()) {
            self.i += 1;
        }
    }

    /// The next token and its 1-based position.
    fn next(&mut self) -> Result<(Tok, usize), AlarmRuleError> {
        self.skip_ws();
        let at = self.i + 1;
        let Some(&c) = self.chars.get(self.i) else {
            return Ok((Tok::End, at));
        };
        self.i += 1;
        let tok = match c {
            '(' => Tok::Open,
            ')' => Tok::Close,
            '"' => {
                // `\"` and `\\` stand for `"` and `\` inside the quotes.
                let mut name = String::new();
                loop {
                    match self.chars.get(self.i) {
                        None => return Err(err(at, "unterminated quoted alarm name")),
                        Some('"') => break,
                        Some('\\') if matches!(self.chars.get(self.i + 1), Some('"' | '\\')) => {
                            name.push(self.chars[self.i + 1]);
                            self.i += 2;
                        }
                        Some(&c) => {
                            name.push(c);
                            self.i += 1;
                        }
                    }
                }
                self.i += 1;
                Tok::Quoted(name)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.i - 1;
                while self
                    .chars
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    self.i += 1;
                }
                Tok::Word(self.chars[start..self.i].iter().collect())
            }
            c => return Err(err(at, &format!("unexpected `{c}`"))),
        };
        Ok((tok, at))
    }

    fn peek_word(&mut self, word: &str) -> bool {
        let save = self.i;
        let found = matches!(self.next(), Ok((Tok::Word(w), _)) if w == word);
        if !found {
            self.i = save;
        }
        found
    }

    fn or(&mut self) -> Result<AlarmRule, AlarmRuleError> {
        let mut left = self.and()?;
        while self.peek_word("OR") {
            let right = self.and()?;
            left = AlarmRule::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<AlarmRule, AlarmRuleError> {
        let mut left = self.not()?;
        while self.peek_word("AND") {
            let right = self.not()?;
            left = AlarmRule::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<AlarmRule, AlarmRuleError> {
        self.skip_ws();
        let at = self.i + 1;
        if self.peek_word("NOT") {
            // Each NOT is a level of recursion, like a parenthesis.
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(err(
                    at,
                    &format!("NOT nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(AlarmRule::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<AlarmRule, AlarmRuleError> {
        let (tok, at) = self.next()?;
        match tok {
            Tok::Open => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(err(
                        at,
                        &format!("parentheses nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
                let inner = self.or()?;
                match self.next()? {
                    (Tok::Close, _) => {
                        self.depth -= 1;
                        Ok(inner)
                    }
                    (Tok::End, end) => Err(err(end, "unbalanced parentheses: missing `)`")),
                    (t, at) => Err(err(
                        at,
                        &format!("expected `)`, AND or OR, found {}", show(&t)),
                    )),
                }
            }
            Tok::Word(w) if w == "TRUE" => Ok(AlarmRule::Const(true)),
            Tok::Word(w) if w == "FALSE" => Ok(AlarmRule::Const(false)),
            Tok::Word(w) => {
                let state = match w.as_str() {
                    "ALARM" => AlarmState::Alarm,
                    "OK" => AlarmState::Ok,
                    "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
                    _ => {
                        return Err(err(
                            at,
                            &format!(
                                "unknown word `{w}`, expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or `(`"
                            ),
                        ));
                    }
                };
                let alarm = self.call_argument(&w)?;
                Ok(AlarmRule::State { state, alarm })
            }
            t => Err(err(
                at,
                &format!(
                    "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or `(`, found {}",
                    show(&t)
                ),
            )),
        }
    }

    /// `("name")` or `(name)` after a state function.
    fn call_argument(&mut self, function: &str) -> Result<String, AlarmRuleError> {
        match self.next()? {
            (Tok::Open, _) => {}
            (t, at) => {
                return Err(err(
                    at,
                    &format!("expected `(` after {function}, found {}", show(&t)),
                ));
            }
        }
        self.skip_ws();
        let at = self.i + 1;
        let name = if self.chars.get(self.i) == Some(&'"') {
            match self.next()? {
                (Tok::Quoted(q), _) => q,
                (_, at) => return Err(err(at, "expected a quoted alarm name")),
            }
        } else {
            let start = self.i;
            while self
                .chars
                .get(self.i)
                .is_some_and(|&c| c != ')' && c != '(')
            {
                self.i += 1;
            }
            self.chars[start..self.i]
                .iter()
                .collect::<String>()
                .trim()
                .to_owned()
        };
        if name.is_empty() {
            return Err(err(at, &format!("{function}() needs an alarm name")));
        }
        match self.next()? {
            (Tok::Close, _) => Ok(name),
            (Tok::End, end) => Err(err(end, "unbalanced parentheses: missing `)`")),
            (t, at) => Err(err(
                at,
                &format!("expected `)` after the alarm name, found {}", show(&t)),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        parse_alarm_rule(text).unwrap().to_string()
    }

    fn bad(text: &str) -> String {
        parse_alarm_rule(text).unwrap_err().to_string()
    }

    #[test]
    fn parses() {
        assert_eq!(
            ok(r#"ALARM("web-5xx") OR ALARM(web-latency)"#),
            r#"(ALARM("web-5xx") OR ALARM("web-latency"))"#
        );
        assert_eq!(
            ok("ALARM(a) OR ALARM(b) AND NOT OK(c)"),
            r#"(ALARM("a") OR (ALARM("b") AND NOT OK("c")))"#
        );
        assert_eq!(ok(r#"OK("say \"hi\" \\o/")"#), r#"OK("say \"hi\" \\o/")"#);
        assert_eq!(
            parse_alarm_rule(r#"OK("a\"b")"#).unwrap().alarm_names(),
            [r#"a"b"#]
        );
        assert_eq!(
            ok("(ALARM(a) OR TRUE) AND INSUFFICIENT_DATA( my alarm )"),
            r#"((ALARM("a") OR TRUE) AND INSUFFICIENT_DATA("my alarm"))"#
        );
    }

    #[test]
    fn evaluates() {
        let rule = parse_alarm_rule("ALARM(a) AND NOT OK(b)").unwrap();
        assert!(rule.evaluate(&|n| if n == "a" {
            AlarmState::Alarm
        } else {
            AlarmState::InsufficientData
        }));
        assert!(!rule.evaluate(&|_| AlarmState::Ok));
        assert_eq!(rule.alarm_names(), ["a", "b"]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            bad("ALARM(a"),
            "at character 8: unbalanced parentheses: missing `)`"
        );
        assert_eq!(
            bad("(ALARM(a) OR ALARM(b)"),
            "at character 22: unbalanced parentheses: missing `)`"
        );
        assert_eq!(
            bad("ALARM(a))"),
            "at character 9: unbalanced parentheses: `)` without a matching `(`"
        );
        assert_eq!(
            bad("ALARM(a) ALARM(b)"),
            "at character 10: expected AND, OR or the end of the rule, found `ALARM`"
        );
        assert_eq!(
            bad("alarm(a)"),
            "at character 1: unknown word `alarm`, expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or `(`"
        );
        assert_eq!(
            bad("ALARM()"),
            "at character 7: ALARM() needs an alarm name"
        );
        assert_eq!(
            bad("ALARM(a) AND"),
            "at character 13: expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or `(`, found the end of the rule"
        );
        assert_eq!(
            bad("ALARM(\"a)"),
            "at character 7: unterminated quoted alarm name"
        );
    }

    #[test]
    fn a_long_chain_of_not_is_an_error_not_a_stack_overflow() {
        // Each NOT recursed without a limit: 100,000 of them overflowed the
        // stack and aborted the process reading the stack file.
        // Such a rule is now refused for its length first; a chain within
        // the length limit still stops at the depth limit.
        let text = "NOT ".repeat(100_000) + "TRUE";
        assert!(bad(&text).contains("rule longer than 10240 characters"));
        let text = "NOT ".repeat(2_000) + "TRUE";
        assert_eq!(
            bad(&text),
            "at character 257: NOT nested deeper than 64 levels"
        );
        let ok_depth = "NOT ".repeat(64) + "TRUE";
        assert!(parse_alarm_rule(&ok_depth).is_ok());
        // Parentheses and NOT share the limit.
        let mixed = "NOT (".repeat(40) + "TRUE" + &")".repeat(40);
        assert!(bad(&mixed).contains("deeper than 64 levels"));
    }

    #[test]
    fn a_written_rule_reads_back_the_same() {
        // Found by fuzzing: names were written with JSON escapes (\u0007),
        // which the grammar does not read.
        for text in [
            "OK(\"s\u{7}\0(a) o/\")",
            r#"ALARM("a\"b\\c") OR NOT OK( tab\there )"#,
        ] {
            let rule = parse_alarm_rule(text).unwrap();
            assert_eq!(parse_alarm_rule(&rule.to_string()).unwrap(), rule, "{text}");
        }
    }

    // The cases below were `cutover-deploy`'s own parser's tests, moved
    // here when its parser was removed in favour of this one.

    fn states(name: &str) -> AlarmState {
        match name {
            "cpu" | "5xx errors" => AlarmState::Alarm,
            "mem" => AlarmState::Ok,
            _ => AlarmState::InsufficientData,
        }
    }

    #[test]
    fn evaluates_by_precedence_and_reads_back_what_it_writes() {
        let cases = [
            ("ALARM(cpu)", true),
            ("ALARM(\"cpu\")", true),
            ("OK(mem)", true),
            ("INSUFFICIENT_DATA(disk)", true),
            ("ALARM(\"5xx errors\") AND OK(mem)", true),
            ("ALARM(mem) OR ALARM(disk)", false),
            ("NOT ALARM(mem)", true),
            ("TRUE AND FALSE", false),
            ("ALARM(mem) AND ALARM(cpu) OR TRUE", true),
            // NOT > AND > OR: (NOT cpu AND mem) OR FALSE
            ("NOT ALARM(cpu) AND ALARM(mem) OR FALSE", false),
            ("NOT (ALARM(cpu) AND OK(mem))", false),
            ("TRUE OR TRUE AND FALSE", true),
            ("(TRUE OR TRUE) AND FALSE", false),
            ("  ( ALARM( cpu ) )  ", true),
            ("NOT NOT TRUE", true),
        ];
        for (text, expected) in cases {
            let rule = parse_alarm_rule(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rule.evaluate(&states), expected, "{text}");
            let again = parse_alarm_rule(&rule.to_string()).unwrap();
            assert_eq!(again, rule, "display of {text} does not parse back");
        }
    }

    #[test]
    fn precedence_builds_the_expected_tree() {
        use AlarmRule::{And, Const, Not, Or};
        let rule = parse_alarm_rule("NOT TRUE AND FALSE OR TRUE").unwrap();
        let expected = Or(
            Box::new(And(
                Box::new(Not(Box::new(Const(true)))),
                Box::new(Const(false)),
            )),
            Box::new(Const(true)),
        );
        assert_eq!(rule, expected);
    }

    #[test]
    fn names_come_in_order_of_appearance() {
        let rule = parse_alarm_rule(
            r#"ALARM("a \"q\"") AND (OK(b) OR NOT INSUFFICIENT_DATA(c)) OR ALARM(b)"#,
        )
        .unwrap();
        assert_eq!(rule.alarm_names(), ["a \"q\"", "b", "c", "b"]);
    }

    #[test]
    fn errors_carry_positions() {
        let cases = [
            (
                "",
                1,
                "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or `(`, found the end of the rule",
            ),
            ("ALARM(cpu", 10, "unbalanced parentheses: missing `)`"),
            ("ALARM()", 7, "ALARM() needs an alarm name"),
            ("ALARM(\"\")", 7, "ALARM() needs an alarm name"),
            ("ALARM(\"cpu)", 7, "unterminated quoted alarm name"),
            (
                "ALARM(cpu) AND",
                15,
                "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or `(`, found the end of the rule",
            ),
            (
                "ALARM(cpu) XOR OK(mem)",
                12,
                "expected AND, OR or the end of the rule, found `XOR`",
            ),
            (
                "alarm(cpu)",
                1,
                "unknown word `alarm`, expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or `(`",
            ),
            ("(TRUE", 6, "unbalanced parentheses: missing `)`"),
            ("ALARM cpu", 7, "expected `(` after ALARM, found `cpu`"),
            (
                "ALARMS(cpu)",
                1,
                "unknown word `ALARMS`, expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or `(`",
            ),
        ];
        for (text, position, message) in cases {
            let e = parse_alarm_rule(text).unwrap_err();
            assert_eq!(
                (e.position, e.message.as_str()),
                (position, message),
                "{text}"
            );
        }
        // A backslash before anything but `"` or `\` is itself (the
        // evaluator's old parser refused it; the stack always accepted it).
        let rule = parse_alarm_rule(r#"ALARM("a\x")"#).unwrap();
        assert_eq!(rule.alarm_names(), [r"a\x"]);
    }

    #[test]
    fn a_rule_longer_than_cloudwatch_allows_is_refused() {
        let long = format!("TRUE{}", " OR TRUE".repeat(2_000));
        assert_eq!(
            bad(&long),
            "at character 10241: rule longer than 10240 characters"
        );
        // Characters, not bytes: 10,240 two-byte characters are allowed.
        let name = "é".repeat(MAX_RULE_LEN - "OK()".len());
        let rule = parse_alarm_rule(&format!("OK({name})")).unwrap();
        assert_eq!(rule.alarm_names(), [name.as_str()]);
        let deep = format!("{}TRUE{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(
            bad(&deep),
            "at character 65: parentheses nested deeper than 64 levels"
        );
    }

    #[test]
    fn states_read_and_write_their_cloudwatch_names() {
        for state in AlarmState::ALL {
            assert_eq!(state.as_str().parse::<AlarmState>(), Ok(state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::json!(state.as_str())
            );
            assert_eq!(state.to_string(), state.as_str());
        }
        assert_eq!(
            "Alarm".parse::<AlarmState>().unwrap_err().to_string(),
            "unknown alarm state \"Alarm\", expected OK, ALARM or INSUFFICIENT_DATA"
        );
    }
}
