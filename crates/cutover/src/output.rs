//! Printing results: aligned tables for people, the API's JSON for scripts.

use crate::cli::Output;
use serde::Serialize;
use std::fmt::Display;

pub(crate) use cutover_api::wire_name as wire;

/// Prints `value` (the server's answer) as JSON, or as a table of `rows`
/// with `headers`.
pub(crate) fn print<T: Serialize>(
    output: Output,
    value: &T,
    headers: &[&str],
    rows: Vec<Vec<String>>,
) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Table => print!("{}", table(headers, &rows)),
    }
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Prints `value` (the server's answer) as pretty JSON.
pub(crate) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// An optional field as display text ("-" when absent).
pub(crate) fn opt<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// An image digest in a table: `sha256:` and its first 12 hex digits (the
/// JSON output has it whole), or `-`.
pub(crate) fn short_digest(digest: Option<&str>) -> String {
    match digest {
        Some(d) => d.get(..19).unwrap_or(d).to_string(),
        None => "-".into(),
    }
}

/// A Unix-ms timestamp as an age ("3s", "5m", "2h", "4d"; "-" when absent).
pub(crate) fn age(at: Option<u64>, now_ms: u64) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let secs = now_ms.saturating_sub(at) / 1000;
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// The wall clock in Unix ms.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let t = table(
            &["NAME", "DESIRED"],
            &[
                vec!["web".into(), "2".into()],
                vec!["checkout".into(), "10".into()],
            ],
        );
        assert_eq!(t, "NAME      DESIRED\nweb       2\ncheckout  10\n");
    }

    #[test]
    fn ages_are_short() {
        let now = 10_000_000;
        assert_eq!(age(Some(now - 5_000), now), "5s");
        assert_eq!(age(Some(now - 600_000), now), "10m");
        assert_eq!(age(None, now), "-");
    }
}
