//! CodeDeploy AppSpec files for ECS, in YAML and in JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for file in ["appspec.yaml", "appspec.json"] {
            if let Ok(parsed) = cutover_spec::parse_appspec(file, text) {
                let service = parsed.value.target_service();
                let _ = service.properties.task_definition_target();
                let _ = parsed
                    .value
                    .hook(cutover_spec::LifecycleEvent::AfterAllowTraffic);
            }
        }
    }
});
