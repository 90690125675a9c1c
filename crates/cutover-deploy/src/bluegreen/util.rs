//! Small helpers for history lines.

use super::Effect;
use crate::time::Millis;

/// Formats a duration for history lines: whole seconds as `90s`, else `1500ms`.
pub(super) fn duration(ms: Millis) -> String {
    if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

pub(super) fn push_event(out: &mut Vec<Effect>, message: String) {
    out.push(Effect::Event { message });
}
