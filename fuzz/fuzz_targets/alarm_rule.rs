//! Composite alarm rules: the stack's grammar (`cutover-spec`, what `apply`
//! accepts and the server evaluates) and the evaluator's own
//! (`cutover-deploy`). A rule written back as text reads back the same,
//! unless the parentheses the writer adds nest too deeply.
#![no_main]

use cutover_spec::stack::{AlarmState, parse_alarm_rule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rule) = parse_alarm_rule(text) {
        let _ = rule.alarm_names();
        let _ = rule.evaluate(&|_| AlarmState::Alarm);
        let written = rule.to_string();
        match parse_alarm_rule(&written) {
            Ok(again) => assert_eq!(again, rule, "{text:?} written as {written:?}"),
            Err(e) => assert!(e.message.contains("deeper than"), "{written:?}: {e}"),
        }
    }
    if let Ok(rule) = cutover_deploy::alarm::parse_rule(text) {
        let _ = rule.names();
        let written = rule.to_string();
        match cutover_deploy::alarm::parse_rule(&written) {
            Ok(again) => assert_eq!(again, rule, "{text:?} written as {written:?}"),
            Err(e) => assert!(e.message.contains("too deeply"), "{written:?}: {e}"),
        }
    }
});
