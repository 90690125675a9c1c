//! The located-document layer of `cutover-spec` (JSON and YAML trees,
//! duplicate keys, the located deserializer), with no schema.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cutover_spec::read_document("doc.json", text);
        let _ = cutover_spec::read_document("doc.yaml", text);
    }
});
