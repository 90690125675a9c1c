//! The trigger-filter glob (`cutover-pipeline::glob`): the pattern on the
//! first line, the text to match on the second.
#![no_main]

use cutover_pipeline::glob::Glob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, subject) = text.split_once('\n').unwrap_or((text, "refs/heads/main"));
    if let Ok(g) = Glob::new(pattern) {
        let _ = g.matches(subject);
    }
});
