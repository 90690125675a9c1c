//! Composite alarm rules: the one grammar (`cutover-spec`), which `apply`
//! validates with and `cutover-deploy`'s composite alarm evaluates. A rule
//! written back as text reads back the same, unless the parentheses the
//! writer adds nest too deeply.
#![no_main]

use cutover_deploy::alarm::CompositeAlarm;
use cutover_spec::stack::{AlarmState, parse_alarm_rule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rule) = parse_alarm_rule(text) {
        let _ = rule.alarm_names();
        let holds = rule.evaluate(&|_| AlarmState::Alarm);
        let written = rule.to_string();
        match parse_alarm_rule(&written) {
            Ok(again) => assert_eq!(again, rule, "{text:?} written as {written:?}"),
            Err(e) => assert!(
                e.message.contains("deeper than") || e.message.contains("longer than"),
                "{written:?}: {e}"
            ),
        }
        let mut composite = CompositeAlarm::new("fuzz", rule);
        let to = composite
            .evaluate(&|_| AlarmState::Alarm, 1)
            .map(|t| t.to)
            .unwrap_or(AlarmState::InsufficientData);
        let expected = if holds {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        };
        assert_eq!(to, expected, "{text:?}");
    }
});
