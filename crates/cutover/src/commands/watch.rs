//! Following a deployment live on the server's feed: lifecycle events and
//! history lines as they happen, and a progress bar of the production
//! traffic split.

use crate::client::Client;
use crate::feed::Feed;
use crate::output::wire;
use cutover_api::deployments::Deployment;
use cutover_api::stream::{StreamEvent, Topic};
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
    /// The ending of a finished deployment.
    pub(crate) fn of(deployment: Deployment) -> Ending {
        Ending {
            status: deployment.status,
            rolled_back: deployment.rolled_back_by.is_some(),
            deployment,
        }
    }

    /// Succeeded without a rollback.
    pub(crate) fn ok(&self) -> bool {
        self.status == DeploymentStatus::Succeeded && !self.rolled_back
    }
}

/// Follows the deployment on the live feed, printing each new history
/// line, until it finishes. `prefix` starts every printed line (the demo
/// indents).
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
    let mut feed = Feed::new(client, Topic::Deployment(id.to_string()));
    let mut seen = HashSet::new();
    loop {
        let d = next_deployment(&mut feed).await?;
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
            return Ok(Ending::of(d));
        }
    }
}

/// Follows the deployment on the live feed, printing nothing, until it
/// finishes.
pub(crate) async fn follow_quietly(client: &Client, id: &str) -> anyhow::Result<Ending> {
    let mut feed = Feed::new(client, Topic::Deployment(id.to_string()));
    loop {
        let d = next_deployment(&mut feed).await?;
        if d.finished_at.is_some() {
            return Ok(Ending::of(d));
        }
    }
}

/// The deployment's next snapshot on its feed.
pub(crate) async fn next_deployment(feed: &mut Feed<'_>) -> anyhow::Result<Deployment> {
    feed.next_of(|e| match e {
        StreamEvent::Deployment(d) => Some(*d),
        _ => None,
    })
    .await
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
