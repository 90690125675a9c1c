//! Following a deployment live: lifecycle events and history lines as they
//! happen, and a progress bar of the production traffic split.

use crate::client::Client;
use crate::output::wire;
use cutover_api::deployments::{Deployment, DeploymentEnvelope};
use cutover_deploy::bluegreen::{DeploymentStatus, EventStatus};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::time::Duration;

/// How a followed deployment ended.
pub(crate) struct Ending {
    pub(crate) status: DeploymentStatus,
    pub(crate) rolled_back: bool,
    pub(crate) deployment: Deployment,
}

impl Ending {
    /// Succeeded without a rollback.
    pub(crate) fn ok(&self) -> bool {
        self.status == DeploymentStatus::Succeeded && !self.rolled_back
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
        let v: DeploymentEnvelope = client.get(&format!("/v1/deployments/{id}")).await?;
        let d = v.deployment;
        for e in d.events.iter().flatten() {
            if seen.insert(e.id) {
                let line = format!("{prefix}{}  {}", clock(e.at), e.message);
                if tty {
                    bar.println(line);
                } else {
                    println!("{line}");
                }
            }
        }
        let bg = d.blue_green.as_ref();
        let pct = bg.map_or(0, |bg| bg.traffic.prod_green_percent);
        bar.set_position(u64::from(pct));
        let current = bg
            .and_then(|bg| {
                bg.lifecycle
                    .iter()
                    .rev()
                    .find(|e| e.status == EventStatus::InProgress)
            })
            .map(|e| e.event.to_string())
            .unwrap_or_default();
        bar.set_message(format!("{} {current}", wire(&d.status)));
        if d.finished_at.is_some() {
            bar.finish_and_clear();
            return Ok(Ending {
                status: d.status,
                rolled_back: d.rolled_back_by.is_some(),
                deployment: d,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `HH:MM:SS.mmm` (UTC) of a Unix-ms timestamp.
pub(crate) fn clock(ms: u64) -> String {
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
        assert_eq!(clock(3_723_004), "01:02:03.004");
    }
}
