//! Severity of a finding with ECR's names, and its derivation from a CVSS
//! vector (v3.0, v3.1 and v4.0 base scores, computed by the RustSec `cvss`
//! crate) or from an advisory's own rating.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A finding's severity, as ECR basic scanning names it. Ordered
/// `Undefined` < `Informational` < `Low` < `Medium` < `High` < `Critical`, so
/// `severity >= Severity::High` is the `--fail-on HIGH` test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// No rating could be derived.
    Undefined,
    /// CVSS 0.0, or a rating below low (Debian's `unimportant`).
    Informational,
    /// CVSS 0.1–3.9.
    Low,
    /// CVSS 4.0–6.9.
    Medium,
    /// CVSS 7.0–8.9.
    High,
    /// CVSS 9.0–10.0.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 6] = [
        Severity::Undefined,
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// ECR's name: `CRITICAL`, `HIGH`, ..., `UNDEFINED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Undefined => "UNDEFINED",
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// The band a CVSS base score falls in.
    pub fn from_score(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::Informational,
        }
    }

    /// An advisory's own word for its severity: GHSA's `database_specific.severity`
    /// (`MODERATE` is medium), Debian's urgency (`unimportant`, `low`, `medium`,
    /// `high`, with `*` marks), or ECR's names. `None` for anything else
    /// (`not yet assigned`, `end-of-life`).
    pub fn from_rating(rating: &str) -> Option<Severity> {
        let r = rating
            .trim()
            .trim_end_matches('*')
            .trim()
            .to_ascii_lowercase();
        Some(match r.as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "unimportant" | "informational" | "negligible" | "none" => Severity::Informational,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of ECR's.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown severity {0:?} (expected CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL or UNDEFINED)"
)]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownSeverity(s.to_string()))
    }
}

/// A CVSS base score with the vector it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvssScore {
    /// The base score, 0.0–10.0.
    pub score: f64,
    /// The vector as the advisory wrote it (`CVSS:3.1/AV:N/...`).
    pub vector: String,
}

/// Scores a CVSS v3.x or v4.0 vector; `None` when it does not parse
/// (CVSS v2 vectors, which OSV writes without a prefix, are not scored).
pub fn score_vector(vector: &str) -> Option<CvssScore> {
    let parsed: cvss::Cvss = vector.trim().parse().ok()?;
    let score = parsed.score();
    score.is_finite().then(|| CvssScore {
        score,
        vector: vector.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_scores_follow_the_spec() {
        // Log4Shell, CVE-2021-44228: 10.0.
        let s = score_vector("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H").unwrap();
        assert_eq!(s.score, 10.0);
        assert_eq!(Severity::from_score(s.score), Severity::Critical);
        // CVE-2014-0160 (Heartbleed) as NVD scores it in 3.x: 7.5.
        let s = score_vector("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N").unwrap();
        assert_eq!(s.score, 7.5);
        assert_eq!(Severity::from_score(s.score), Severity::High);
        let s = score_vector("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N").unwrap();
        assert_eq!(s.score, 1.8);
    }

    #[test]
    fn v4_scores() {
        let s = score_vector("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
            .unwrap();
        assert_eq!(s.score, 9.3);
        assert!(score_vector("AV:N/AC:L/Au:N/C:P/I:P/A:P").is_none());
        assert!(score_vector("CVSS:3.1/garbage").is_none());
    }

    #[test]
    fn names_and_order() {
        assert_eq!("high".parse::<Severity>().unwrap(), Severity::High);
        assert!("severe".parse::<Severity>().is_err());
        assert!(
            Severity::Critical > Severity::High && Severity::Informational > Severity::Undefined
        );
        assert_eq!(Severity::from_rating("MODERATE"), Some(Severity::Medium));
        assert_eq!(
            Severity::from_rating("unimportant"),
            Some(Severity::Informational)
        );
        assert_eq!(Severity::from_rating("not yet assigned"), None);
        assert_eq!(Severity::from_score(0.0), Severity::Informational);
    }
}
