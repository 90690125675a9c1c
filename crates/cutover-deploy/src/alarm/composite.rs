//! Composite alarm rules (`AlarmRule`): `ALARM(name)`, `OK(name)`,
//! `INSUFFICIENT_DATA(name)` (the name bare or in double quotes, `\"` and
//! `\\` escaped inside quotes), `TRUE`, `FALSE`, `NOT`, `AND`, `OR` and
//! parentheses. Keywords are upper case. Precedence: `NOT` binds tightest,
//! then `AND`, then `OR`; `AND` and `OR` associate to the left, so
//! `NOT a AND b OR c` is `((NOT a) AND b) OR c`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AlarmState, Transition};

/// CloudWatch's limit on the length of an `AlarmRule`.
pub const MAX_RULE_LEN: usize = 10_240;

/// Deepest nesting of parentheses and `NOT`s accepted.
pub const MAX_DEPTH: usize = 100;

/// A parsed composite alarm rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    /// `TRUE`.
    True,
    /// `FALSE`.
    False,
    /// `ALARM(name)`, `OK(name)` or `INSUFFICIENT_DATA(name)`: the alarm is
    /// in `state`.
    Is {
        /// The state tested.
        state: AlarmState,
        /// The alarm's name.
        alarm: String,
    },
    /// `NOT rule`.
    Not(Box<Rule>),
    /// `left AND right`.
    And(Box<Rule>, Box<Rule>),
    /// `left OR right`.
    Or(Box<Rule>, Box<Rule>),
}

impl Rule {
    /// The rule's value, given each alarm's state.
    pub fn evaluate(&self, state_of: &dyn Fn(&str) -> AlarmState) -> bool {
        match self {
            Self::True => true,
            Self::False => false,
            Self::Is { state, alarm } => state_of(alarm) == *state,
            Self::Not(rule) => !rule.evaluate(state_of),
            Self::And(a, b) => a.evaluate(state_of) && b.evaluate(state_of),
            Self::Or(a, b) => a.evaluate(state_of) || b.evaluate(state_of),
        }
    }

    /// The alarms the rule names, sorted, without duplicates.
    pub fn names(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.collect_names(&mut out);
        out
    }

    fn collect_names<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Self::True | Self::False => {}
            Self::Is { alarm, .. } => {
                out.insert(alarm);
            }
            Self::Not(rule) => rule.collect_names(out),
            Self::And(a, b) | Self::Or(a, b) => {
                a.collect_names(out);
                b.collect_names(out);
            }
        }
    }
}

impl fmt::Display for Rule {
    /// Fully parenthesized, names quoted: parses back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::True => f.write_str("TRUE"),
            Self::False => f.write_str("FALSE"),
            Self::Is { state, alarm } => {
                let escaped = alarm.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "{}(\"{escaped}\")", state.as_str())
            }
            Self::Not(rule) => write!(f, "NOT ({rule})"),
            Self::And(a, b) => write!(f, "({a}) AND ({b})"),
            Self::Or(a, b) => write!(f, "({a}) OR ({b})"),
        }
    }
}

/// Why a rule did not parse, and where (byte offset into the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at offset {offset}")]
pub struct RuleError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong, lower case.
    pub message: String,
}

/// Parses an `AlarmRule`.
pub fn parse_rule(text: &str) -> Result<Rule, RuleError> {
    if text.len() > MAX_RULE_LEN {
        return Err(RuleError {
            offset: MAX_RULE_LEN,
            message: format!("rule longer than {MAX_RULE_LEN} characters"),
        });
    }
    let mut parser = Parser {
        text,
        pos: 0,
        depth: 0,
    };
    let rule = parser.or()?;
    parser.skip_ws();
    if parser.pos < text.len() {
        return Err(parser.error("expected AND, OR or the end of the rule"));
    }
    Ok(rule)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Parser<'_> {
    fn error(&self, message: &str) -> RuleError {
        RuleError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Consumes `keyword` when it comes next as a whole word.
    fn keyword(&mut self, keyword: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        let whole = rest.starts_with(keyword)
            && !rest[keyword.len()..]
                .chars()
                .next()
                .is_some_and(is_word_char);
        if whole {
            self.pos += keyword.len();
        }
        whole
    }

    fn expect(&mut self, c: char, message: &str) -> Result<(), RuleError> {
        self.skip_ws();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(message))
        }
    }

    fn enter(&mut self) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("rule nested too deeply"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Rule, RuleError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            let right = self.and()?;
            left = Rule::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Rule, RuleError> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            let right = self.not()?;
            left = Rule::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Rule, RuleError> {
        if self.keyword("NOT") {
            self.enter()?;
            let rule = self.not()?;
            self.depth -= 1;
            return Ok(Rule::Not(Box::new(rule)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Rule, RuleError> {
        self.skip_ws();
        if self.rest().starts_with('(') {
            self.enter()?;
            self.pos += 1;
            let rule = self.or()?;
            self.expect(')', "expected ')'")?;
            self.depth -= 1;
            return Ok(rule);
        }
        if self.keyword("TRUE") {
            return Ok(Rule::True);
        }
        if self.keyword("FALSE") {
            return Ok(Rule::False);
        }
        let state = if self.keyword("ALARM") {
            AlarmState::Alarm
        } else if self.keyword("OK") {
            AlarmState::Ok
        } else if self.keyword("INSUFFICIENT_DATA") {
            AlarmState::InsufficientData
        } else if self.rest().is_empty() {
            return Err(self.error("unexpected end of rule"));
        } else {
            return Err(self.error(
                "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '('",
            ));
        };
        self.expect('(', "expected '(' and an alarm name")?;
        let alarm = self.name()?;
        self.expect(')', "expected ')' after the alarm name")?;
        Ok(Rule::Is { state, alarm })
    }

    /// A quoted or bare alarm name.
    fn name(&mut self) -> Result<String, RuleError> {
        self.skip_ws();
        let start = self.pos;
        if self.rest().starts_with('"') {
            self.pos += 1;
            let mut name = String::new();
            let mut chars = self.rest().char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.pos += i + 1;
                        if name.is_empty() {
                            return Err(RuleError {
                                offset: start,
                                message: "empty alarm name".into(),
                            });
                        }
                        return Ok(name);
                    }
                    '\\' => match chars.next() {
                        Some((_, e @ ('"' | '\\'))) => name.push(e),
                        _ => {
                            self.pos += i;
                            return Err(self.error("invalid escape in alarm name"));
                        }
                    },
                    c => name.push(c),
                }
            }
            return Err(RuleError {
                offset: start,
                message: "unterminated alarm name".into(),
            });
        }
        let len = self
            .rest()
            .find(|c: char| c == ')' || c == '(' || c == '"' || c.is_whitespace())
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.error("expected an alarm name"));
        }
        let name = self.rest()[..len].to_string();
        self.pos += len;
        Ok(name)
    }
}

/// A composite alarm: a rule over other alarms' states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompositeAlarm {
    name: String,
    rule: Rule,
    state: AlarmState,
}

impl CompositeAlarm {
    /// A composite alarm in INSUFFICIENT_DATA until first evaluated.
    pub fn new(name: impl Into<String>, rule: Rule) -> Self {
        Self {
            name: name.into(),
            rule,
            state: AlarmState::InsufficientData,
        }
    }

    /// The alarm's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The current state.
    pub fn state(&self) -> AlarmState {
        self.state
    }

    /// Re-evaluates the rule (ALARM when true, OK when false) and returns
    /// the transition if the state changed.
    pub fn evaluate(
        &mut self,
        state_of: &dyn Fn(&str) -> AlarmState,
        now_sec: u64,
    ) -> Option<Transition> {
        let to = if self.rule.evaluate(state_of) {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        };
        if to == self.state {
            return None;
        }
        let from = std::mem::replace(&mut self.state, to);
        Some(Transition {
            from,
            to,
            reason: format!("rule {} is {}", self.rule, to == AlarmState::Alarm),
            at: now_sec,
        })
    }
}
