//! The proxy's configuration, in YAML (`lb.yaml`) and in JSON (the admin API
//! and the persisted state).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = [
        cutover_proxy::config::parse("lb.yaml", text),
        cutover_proxy::config::parse_json("config.json", text),
    ];
    for config in parsed.iter().flatten() {
        let _ = config.used_groups();
    }
});
