//! CodePipeline V2 definitions, in JSON and in YAML (`cutover-pipeline`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cutover_pipeline::parse_pipeline("pipeline.json", text);
        let _ = cutover_pipeline::parse_pipeline("pipeline.yaml", text);
    }
});
