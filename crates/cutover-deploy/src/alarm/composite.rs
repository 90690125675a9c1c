//! Composite alarms: a rule over other alarms' states, ALARM when it holds
//! and OK when it does not. The rule is `cutover-spec`'s [`AlarmRule`]
//! (parsed by [`parse_alarm_rule`](super::parse_alarm_rule), the grammar
//! stack files are validated with); this module only evaluates it.

use serde::{Deserialize, Serialize};

use super::{AlarmRule, AlarmState, Transition};

/// A composite alarm: a rule over other alarms' states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompositeAlarm {
    name: String,
    rule: AlarmRule,
    state: AlarmState,
}

impl CompositeAlarm {
    /// A composite alarm in INSUFFICIENT_DATA until first evaluated.
    pub fn new(name: impl Into<String>, rule: AlarmRule) -> Self {
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
    pub fn rule(&self) -> &AlarmRule {
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
