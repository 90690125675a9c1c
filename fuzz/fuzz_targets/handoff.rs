//! CodePipeline hand-off files: `imagedefinitions.json` and `imageDetail.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cutover_spec::parse_image_definitions("imagedefinitions.json", text);
        let _ = cutover_spec::parse_image_detail("imageDetail.json", text);
    }
});
