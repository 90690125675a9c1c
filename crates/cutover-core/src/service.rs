//! A service's own status: kept running, or being deleted.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A name that is not one of [`ServiceStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service status {0:?}")]
pub struct UnknownServiceStatus(pub String);

/// Whether a service runs or is being deleted, as ECS reports a service's
/// `status`; stored and sent under the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceStatus {
    /// `ACTIVE`: kept at its desired count.
    Active,
    /// `DRAINING`: delete requested; its tasks are stopping, then the
    /// service row goes.
    Draining,
}

impl ServiceStatus {
    /// Every status.
    pub const ALL: [ServiceStatus; 2] = [ServiceStatus::Active, ServiceStatus::Draining];

    /// The wire and stored name (`ACTIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Active => "ACTIVE",
            ServiceStatus::Draining => "DRAINING",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<ServiceStatus> {
        s.parse().ok()
    }
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceStatus {
    type Err = UnknownServiceStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownServiceStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for status in ServiceStatus::ALL {
            assert_eq!(status.as_str().parse::<ServiceStatus>(), Ok(status));
            assert_eq!(ServiceStatus::parse(status.as_str()), Some(status));
            assert_eq!(status.to_string(), status.as_str());
        }
        assert_eq!(
            "Active".parse::<ServiceStatus>().unwrap_err().to_string(),
            "unknown service status \"Active\""
        );
    }
}
