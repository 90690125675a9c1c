//! Following a deployment live: lifecycle events and history lines as they
//! happen, and a progress bar of the production traffic split.

use crate::client::Client;
use crate::output::s;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// How a followed deployment ended.
pub(crate) struct Ending {
    pub(crate) status: String,
    pub(crate) rolled_back: bool,
    pub(crate) deployment: Value,
}

impl Ending {
    /// Succeeded without a rollback.
    pub(crate) fn ok(&self) -> bool {
        self.status == "Succeeded" && !self.rolled_back
    }
}

/// Polls the deployment every 200 ms, printing each new history line, until
/// it finishes. `prefix` starts every printed line (the demo indents).
pub(crate) async fn follow(client: &Client, id: &str, prefix: &str) -> anyhow::Result<Ending> {
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{prefix}{{spinner}} traffic [{{bar:30.green/blue}}] {{pos:>3}}% to the new revision  {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▉ "),
    );
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if tty {
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut seen = HashSet::new();
    loop {
        let v = client.get(&format!("/v1/deployments/{id}")).await?;
        let d = &v["deployment"];
        for e in d["events"].as_array().into_iter().flatten() {
            if seen.insert(e["id"].as_i64().unwrap_or_default()) {
                let line = format!("{prefix}{}  {}", clock(&e["at"]), s(&e["message"]));
                if tty {
                    bar.println(line);
                } else {
                    println!("{line}");
                }
            }
        }
        let pct = d["traffic"]["prodGreenPercent"].as_u64().unwrap_or(0);
        bar.set_position(pct);
        let current = d["lifecycle"]
            .as_array()
            .and_then(|l| l.iter().rev().find(|e| e["status"] == "InProgress"))
            .map(|e| s(&e["event"]))
            .unwrap_or_default();
        bar.set_message(format!("{} {current}", s(&d["status"])));
        if d["finishedAt"].is_u64() {
            bar.finish_and_clear();
            return Ok(Ending {
                status: s(&d["status"]),
                rolled_back: d["rolledBackBy"].is_string(),
                deployment: d.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `HH:MM:SS.mmm` (UTC) of a Unix-ms timestamp.
pub(crate) fn clock(v: &Value) -> String {
    let ms = v.as_u64().unwrap_or(0);
    let secs = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_shows_milliseconds() {
        assert_eq!(clock(&Value::from(3_723_004u64)), "01:02:03.004");
    }
}
