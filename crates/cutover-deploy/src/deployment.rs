//! What a stored deployment is: its [`DeploymentKind`] and the engine state
//! it carries ([`DeploymentEngine`]), with the names the store and the API
//! use for kinds and [`DeploymentStatus`]es.
//!
//! The kind is implied by the engine: a blue/green deployment always has
//! its engine's state, a rolling update and a rollback record have none, so
//! a row can never claim one kind and carry another's state.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::bluegreen::{BlueGreen, DeploymentStatus};

/// A name that is not one the enum knows (a stored value from elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    /// What was being read (`deployment kind`, `deployment status`).
    pub what: &'static str,
    /// The value found.
    pub value: String,
}

/// The kind of a deployment, named as in the store and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentKind {
    /// `BLUE_GREEN`: CodeDeploy-style, driven by [`BlueGreen`].
    BlueGreen,
    /// `ROLLING`: an ECS rolling update; the service's reconcile loop
    /// replaces tasks and the driver watches.
    Rolling,
    /// `ROLLBACK`: the record of an automatic rollback, which the
    /// rolled-back deployment performed as one traffic flip.
    Rollback,
}

impl DeploymentKind {
    /// Every kind.
    pub const ALL: [DeploymentKind; 3] = [
        DeploymentKind::BlueGreen,
        DeploymentKind::Rolling,
        DeploymentKind::Rollback,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentKind::BlueGreen => "BLUE_GREEN",
            DeploymentKind::Rolling => "ROLLING",
            DeploymentKind::Rollback => "ROLLBACK",
        }
    }
}

impl fmt::Display for DeploymentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeploymentKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeploymentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "deployment kind",
                value: s.to_string(),
            })
    }
}

impl DeploymentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [DeploymentStatus; 8] = [
        DeploymentStatus::Created,
        DeploymentStatus::Queued,
        DeploymentStatus::InProgress,
        DeploymentStatus::Baking,
        DeploymentStatus::Ready,
        DeploymentStatus::Succeeded,
        DeploymentStatus::Failed,
        DeploymentStatus::Stopped,
    ];

    /// CodeDeploy's name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Created => "Created",
            DeploymentStatus::Queued => "Queued",
            DeploymentStatus::InProgress => "InProgress",
            DeploymentStatus::Baking => "Baking",
            DeploymentStatus::Ready => "Ready",
            DeploymentStatus::Succeeded => "Succeeded",
            DeploymentStatus::Failed => "Failed",
            DeploymentStatus::Stopped => "Stopped",
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeploymentStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeploymentStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "deployment status",
                value: s.to_string(),
            })
    }
}

/// A deployment's engine state, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeploymentEngine {
    /// A blue/green deployment and its engine's whole state.
    BlueGreen(Box<BlueGreen>),
    /// A rolling update (no engine state: the store's tasks are its state).
    Rolling,
    /// A rollback record (no engine state).
    Rollback,
}

impl DeploymentEngine {
    /// The kind this state belongs to.
    pub fn kind(&self) -> DeploymentKind {
        match self {
            DeploymentEngine::BlueGreen(_) => DeploymentKind::BlueGreen,
            DeploymentEngine::Rolling => DeploymentKind::Rolling,
            DeploymentEngine::Rollback => DeploymentKind::Rollback,
        }
    }

    /// The blue/green engine, if this is one.
    pub fn blue_green(&self) -> Option<&BlueGreen> {
        match self {
            DeploymentEngine::BlueGreen(bg) => Some(bg),
            _ => None,
        }
    }
}

impl From<BlueGreen> for DeploymentEngine {
    fn from(bg: BlueGreen) -> Self {
        DeploymentEngine::BlueGreen(Box::new(bg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_read_back_their_names_and_serde_agrees() {
        for kind in DeploymentKind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        for status in DeploymentStatus::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(
            "blue_green"
                .parse::<DeploymentKind>()
                .unwrap_err()
                .to_string(),
            "unknown deployment kind \"blue_green\""
        );
        assert_eq!(
            "Done".parse::<DeploymentStatus>().unwrap_err().to_string(),
            "unknown deployment status \"Done\""
        );
    }

    #[test]
    fn the_kind_follows_the_engine() {
        assert_eq!(DeploymentEngine::Rolling.kind(), DeploymentKind::Rolling);
        assert_eq!(DeploymentEngine::Rollback.kind(), DeploymentKind::Rollback);
        assert!(DeploymentEngine::Rolling.blue_green().is_none());
    }
}
