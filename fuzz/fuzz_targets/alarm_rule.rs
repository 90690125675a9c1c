//! Composite alarm rules: the stack's parser (`cutover-spec`) and the
//! evaluator's (`cutover-deploy`). A rule the stack accepts must be one the
//! evaluator can run, or the alarm would be applied but never evaluated.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let spec = cutover_spec::stack::parse_alarm_rule(text);
    let deploy = cutover_deploy::alarm::parse_rule(text);
    if let Ok(rule) = &spec {
        let _ = rule.alarm_names();
        let _ = rule.evaluate(&|_| cutover_spec::stack::AlarmState::Alarm);
        assert!(
            deploy.is_ok(),
            "the stack accepts {text:?} but the evaluator refuses it: {:?}",
            deploy.err()
        );
    }
});
