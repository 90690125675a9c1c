//! [`HostPlan`]: one host deployment's planner, in place or blue/green,
//! behind one interface, so the driver and the store handle both the same
//! way. Inputs and effects are the blue/green planner's (the in-place ones
//! plus the data plane's traffic changes); an in-place plan never asks for
//! a traffic change.

use cutover_spec::stack::applications::HostConfig;
use serde::{Deserialize, Serialize};

use super::bluegreen::{BlueGreenHostEffect, BlueGreenHostInput, HostBlueGreen};
use super::inplace::HostDeployment;
use super::types::{EndReason, HostDeploymentStatus, HostInput, HostTarget};
use crate::time::Millis;

/// A host deployment's planner state.
///
/// Stored as the in-place planner's own JSON, or `{"blue_green": ...}`
/// (rows written before blue/green existed read as in place).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HostPlan {
    /// Blue/green onto replacement hosts.
    BlueGreen {
        /// The planner.
        blue_green: Box<HostBlueGreen>,
    },
    /// In place, in waves.
    InPlace(Box<HostDeployment>),
}

impl From<HostDeployment> for HostPlan {
    fn from(d: HostDeployment) -> HostPlan {
        HostPlan::InPlace(Box::new(d))
    }
}

impl From<HostBlueGreen> for HostPlan {
    fn from(d: HostBlueGreen) -> HostPlan {
        HostPlan::BlueGreen {
            blue_green: Box::new(d),
        }
    }
}

impl From<HostInput> for BlueGreenHostInput {
    fn from(i: HostInput) -> BlueGreenHostInput {
        BlueGreenHostInput::Host(i)
    }
}

impl HostPlan {
    /// The in-place planner, if it is one.
    pub fn in_place(&self) -> Option<&HostDeployment> {
        match self {
            HostPlan::InPlace(d) => Some(d),
            HostPlan::BlueGreen { .. } => None,
        }
    }

    /// The blue/green planner, if it is one.
    pub fn blue_green(&self) -> Option<&HostBlueGreen> {
        match self {
            HostPlan::BlueGreen { blue_green } => Some(blue_green),
            HostPlan::InPlace(_) => None,
        }
    }

    /// The status.
    pub fn status(&self) -> HostDeploymentStatus {
        match self {
            HostPlan::InPlace(d) => d.status(),
            HostPlan::BlueGreen { blue_green } => blue_green.status(),
        }
    }

    /// Why it ended, unless it succeeded or runs.
    pub fn reason(&self) -> Option<&EndReason> {
        match self {
            HostPlan::InPlace(d) => d.reason(),
            HostPlan::BlueGreen { blue_green } => blue_green.reason(),
        }
    }

    /// The configuration its hosts are deployed with (in place: all of
    /// them; blue/green: the replacement hosts).
    pub fn config(&self) -> HostConfig {
        match self {
            HostPlan::InPlace(d) => d.spec().config,
            HostPlan::BlueGreen { blue_green } => blue_green.spec().config,
        }
    }

    /// Every host of the deployment (blue/green: the replacement hosts,
    /// then the originals).
    pub fn targets(&self) -> Vec<&HostTarget> {
        match self {
            HostPlan::InPlace(d) => d.spec().hosts.iter().collect(),
            HostPlan::BlueGreen { blue_green } => {
                let s = blue_green.spec();
                s.replacements.iter().chain(&s.originals).collect()
            }
        }
    }

    /// When the driver must feed a `Tick`.
    pub fn next_wakeup(&self) -> Option<Millis> {
        match self {
            HostPlan::InPlace(d) => d.next_wakeup(),
            HostPlan::BlueGreen { blue_green } => blue_green.next_wakeup(),
        }
    }

    /// What was in flight, again, after a crash.
    pub fn resume(&self) -> Vec<BlueGreenHostEffect> {
        match self {
            HostPlan::InPlace(d) => d
                .resume()
                .into_iter()
                .map(BlueGreenHostEffect::Host)
                .collect(),
            HostPlan::BlueGreen { blue_green } => blue_green.resume(),
        }
    }

    /// Feeds one input at `now`; returns what to do (after persisting). An
    /// in-place plan ignores traffic acknowledgements.
    pub fn handle(&mut self, input: BlueGreenHostInput, now: Millis) -> Vec<BlueGreenHostEffect> {
        match (self, input) {
            (HostPlan::InPlace(d), BlueGreenHostInput::Host(i)) => d
                .handle(i, now)
                .into_iter()
                .map(BlueGreenHostEffect::Host)
                .collect(),
            (HostPlan::InPlace(_), BlueGreenHostInput::TrafficApplied { .. }) => Vec::new(),
            (HostPlan::BlueGreen { blue_green }, i) => blue_green.handle(i, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrafficRouting;
    use crate::hosts::bluegreen::HostBlueGreenSpec;
    use crate::hosts::types::{HostRollback, HostsSpec};

    fn config() -> HostConfig {
        HostConfig::predefined("CodeDeployDefault.AllAtOnce").unwrap()
    }

    #[test]
    fn an_in_place_row_reads_as_before_and_each_kind_round_trips() {
        let d = HostDeployment::new(HostsSpec {
            hosts: Vec::new(),
            config: config(),
            load_balanced: false,
            ignore_application_stop_failures: false,
            rollback: HostRollback::default(),
        });
        // What rows written before blue/green hold: the planner itself.
        let old = serde_json::to_string(&d).unwrap();
        let read: HostPlan = serde_json::from_str(&old).unwrap();
        assert_eq!(read, HostPlan::from(d));
        assert_eq!(serde_json::to_string(&read).unwrap(), old);
        let bg = HostPlan::from(HostBlueGreen::new(HostBlueGreenSpec {
            replacements: Vec::new(),
            originals: Vec::new(),
            config: config(),
            routing: TrafficRouting::AllAtOnce,
            termination_wait_ms: 0,
            stop_originals: true,
            rollback: HostRollback::default(),
        }));
        let json = serde_json::to_string(&bg).unwrap();
        assert!(json.starts_with(r#"{"blue_green":"#), "{json}");
        assert_eq!(serde_json::from_str::<HostPlan>(&json).unwrap(), bg);
        assert!(bg.blue_green().is_some() && bg.in_place().is_none());
    }
}
