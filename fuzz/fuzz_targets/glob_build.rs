//! The buildspec glob (`cutover-build::glob`): the pattern on the first
//! line, a path to match on the second.
#![no_main]

use cutover_build::glob::Pattern;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, path) = text.split_once('\n').unwrap_or((text, "a/b/c.txt"));
    if let Ok(p) = Pattern::new(pattern) {
        let _ = p.matches(path);
        let _ = p.selects(path);
        let _ = p.literal_prefix();
        let _ = p.is_absolute();
    }
});
