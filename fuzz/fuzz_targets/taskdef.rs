//! ECS task definitions (`taskdef.json`, `describe-task-definition` output).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cutover_spec::parse_task_definition("taskdef.json", text);
    }
});
