//! An in-process [`DataPlane`] for tests: it derives the configuration from
//! the store exactly as the real one does, "applies" it by keeping it, and
//! answers health and metrics from what the test decides.
//!
//! - Every configuration it acknowledged is kept, so a test can read the
//!   traffic split at each step ([`FakeDataPlane::prod_weights`]).
//! - Every target is healthy.
//! - The metrics feed serves the seconds the test pushes.

use super::{DataPlane, DataPlaneError, LeftOut, derive};
use cutover_clock::SharedClock;
use cutover_proxy::api::{GroupHealth, HealthReport, StatusReport, TargetHealth};
use cutover_proxy::config::ProxyConfig;
use cutover_proxy::health::TargetState;
use cutover_proxy::metrics::{MetricsFeed, SecondBucket};
use cutover_store::Store;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    applied: Vec<ProxyConfig>,
    feed: Vec<SecondBucket>,
}

/// A data plane that lives in the test's memory.
pub(crate) struct FakeDataPlane {
    store: Arc<Store>,
    clock: SharedClock,
    left_out: LeftOut,
    state: Mutex<State>,
}

impl FakeDataPlane {
    pub(crate) fn new(store: Arc<Store>, clock: SharedClock) -> Arc<FakeDataPlane> {
        Arc::new(FakeDataPlane {
            store,
            clock,
            left_out: LeftOut::default(),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every configuration acknowledged so far (version = index + 1).
    pub(crate) fn applied(&self) -> Vec<ProxyConfig> {
        self.state().applied.clone()
    }

    /// The weights of the default action of `listener` in each applied
    /// configuration where it changed, as (target group, weight) lists.
    pub(crate) fn weights_history(&self, listener: &str) -> Vec<Vec<(String, u32)>> {
        let mut out: Vec<Vec<(String, u32)>> = Vec::new();
        for cfg in self.applied() {
            let Some(l) = cfg.listeners.iter().find(|l| l.name == listener) else {
                continue;
            };
            let weights: Vec<(String, u32)> = l
                .default_action
                .forward
                .iter()
                .flatten()
                .map(|w| (w.target_group.clone(), w.weight))
                .collect();
            if out.last() != Some(&weights) {
                out.push(weights);
            }
        }
        out
    }

    /// Appends a completed second to the metrics feed.
    pub(crate) fn push_second(&self, bucket: SecondBucket) {
        self.state().feed.push(bucket);
    }
}

#[async_trait::async_trait]
impl DataPlane for FakeDataPlane {
    async fn sync(&self) -> Result<u64, DataPlaneError> {
        let desired = derive(&self.store, &self.clock, &self.admin(), &self.left_out)
            .await
            .map_err(|e| DataPlaneError::Derive(format!("{e:#}")))?;
        let text =
            serde_json::to_string(&desired).map_err(|e| DataPlaneError::Derive(e.to_string()))?;
        let parsed = cutover_proxy::config::parse_json("desired.json", &text)
            .map_err(|e| DataPlaneError::Derive(e.to_string()))?;
        let mut st = self.state();
        if st.applied.last() != Some(&parsed) {
            st.applied.push(parsed);
        }
        Ok(st.applied.len() as u64)
    }

    async fn health(&self) -> Result<HealthReport, DataPlaneError> {
        let st = self.state();
        let Some(cfg) = st.applied.last() else {
            return Ok(HealthReport {
                version: 0,
                target_groups: Vec::new(),
            });
        };
        let target_groups = cfg
            .target_groups
            .iter()
            .map(|g| {
                let targets: Vec<TargetHealth> = g
                    .targets
                    .iter()
                    .map(|address| TargetHealth {
                        address: address.clone(),
                        state: TargetState::Healthy,
                        reason: String::new(),
                        in_flight: 0,
                    })
                    .collect();
                let healthy = targets
                    .iter()
                    .filter(|t| t.state == TargetState::Healthy)
                    .count();
                GroupHealth {
                    name: g.name.clone(),
                    healthy_host_count: healthy,
                    unhealthy_host_count: targets.len() - healthy,
                    targets,
                }
            })
            .collect();
        Ok(HealthReport {
            version: st.applied.len() as u64,
            target_groups,
        })
    }

    async fn status(&self) -> Result<StatusReport, DataPlaneError> {
        Ok(StatusReport {
            version: self.state().applied.len() as u64,
            uptime_seconds: 0,
            listeners: Vec::new(),
        })
    }

    async fn metrics_feed(&self, since_unix_sec: u64) -> Result<MetricsFeed, DataPlaneError> {
        Ok(MetricsFeed {
            seconds: self
                .state()
                .feed
                .iter()
                .filter(|b| b.time > since_unix_sec)
                .cloned()
                .collect(),
        })
    }

    fn admin(&self) -> String {
        "127.0.0.1:9".into()
    }
}
