//! Deployment-window cron: the expression on the first line, the time zone
//! on the second (absent: none); then is_open and next_open at a few
//! instants, which must agree.
#![no_main]

use cutover_pipeline::cron::DeploymentWindow;
use libfuzzer_sys::fuzz_target;

/// 2024-06-03 00:00 UTC and a few instants around it and far away.
const INSTANTS: [u64; 5] = [
    1_717_372_800_000,
    1_711_846_800_000,
    1_729_990_800_000,
    0,
    253_402_300_799_000,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expr, tz) = match text.split_once('\n') {
        Some((e, t)) => (e, Some(t)),
        None => (text, None),
    };
    let Ok(window) = DeploymentWindow::new(expr, tz) else {
        return;
    };
    for now in INSTANTS {
        let open = window.is_open(now);
        let next = window.next_open(now);
        if open {
            assert_eq!(next, Some(now), "open now, so it opens now");
        }
        if let Some(at) = next {
            assert!(at >= now, "next_open went back in time");
            assert!(window.is_open(at), "next_open({now}) = {at} is closed");
        }
    }
});
