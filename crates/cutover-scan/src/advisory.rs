//! The compact, compiled form of an OSV record the database keeps, and the
//! evaluation of its ranges against an installed version.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::ecosystem::Ecosystem;
use crate::osv::{OsvAffected, OsvRecord, OsvSeverity, RangeKind, SpecificRating};
use crate::severity::{CvssScore, Severity, score_vector};
use crate::version::{VersionScheme, compare};

/// The longest summary kept (the rest of an OSV `details` is not).
const MAX_SUMMARY: usize = 240;

/// An advisory as the database keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// The record's id.
    pub id: String,
    /// Its aliases.
    pub aliases: Vec<String>,
    /// A one-line summary.
    pub summary: String,
    /// The severity of the record as a whole.
    pub severity: Severity,
    /// The CVSS score it came from, if any.
    pub cvss: Option<CvssScore>,
    /// Where to read more.
    pub uri: String,
}

impl Advisory {
    /// The finding's name: the CVE id where the record or an alias has one,
    /// as ECR basic scanning names findings; else the record's id.
    pub fn name(&self) -> &str {
        std::iter::once(&self.id)
            .chain(&self.aliases)
            .find(|a| a.starts_with("CVE-"))
            .unwrap_or(&self.id)
    }
}

/// One event of a range, in the ecosystem's version ordering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Affected from here (`0`: from the start).
    Introduced(String),
    /// Not affected from here.
    Fixed(String),
    /// Affected up to and including here.
    LastAffected(String),
    /// Nothing at or above this is affected.
    Limit(String),
}

/// One affected package of an advisory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// The ecosystem.
    pub ecosystem: Ecosystem,
    /// The package name, normalised for the ecosystem.
    pub name: String,
    /// Explicitly affected versions.
    pub versions: Vec<String>,
    /// Ranges (ECOSYSTEM and SEMVER ones; GIT ranges are dropped).
    pub ranges: Vec<Vec<Event>>,
    /// A severity for this package only (Debian's urgency, a per-package vector).
    pub severity: Option<(Severity, Option<CvssScore>)>,
}

fn rating(specific: Option<&SpecificRating>) -> Option<Severity> {
    let s = specific?;
    s.severity
        .as_deref()
        .and_then(Severity::from_rating)
        .or_else(|| s.urgency.as_deref().and_then(Severity::from_rating))
}

/// The best CVSS score among vectors: v3.1/v3.0 first (as ECR reports), then v4.
fn best_cvss(severity: &[OsvSeverity]) -> Option<CvssScore> {
    let pick = |kind: &str| {
        severity
            .iter()
            .filter(|s| s.kind == kind)
            .find_map(|s| score_vector(&s.score))
    };
    pick("CVSS_V3").or_else(|| pick("CVSS_V4"))
}

fn compile_affected(a: &OsvAffected) -> Option<Affected> {
    let package = a.package.as_ref()?;
    let ecosystem: Ecosystem = package.ecosystem.parse().ok()?;
    let ranges: Vec<Vec<Event>> = a
        .ranges
        .iter()
        .filter(|r| matches!(r.kind, RangeKind::Ecosystem | RangeKind::Semver))
        .map(|r| {
            r.events
                .iter()
                .filter_map(|e| {
                    e.introduced
                        .clone()
                        .map(Event::Introduced)
                        .or_else(|| e.fixed.clone().map(Event::Fixed))
                        .or_else(|| e.last_affected.clone().map(Event::LastAffected))
                        .or_else(|| e.limit.clone().map(Event::Limit))
                })
                .collect()
        })
        .collect();
    if ranges.is_empty() && a.versions.is_empty() {
        return None;
    }
    let severity = best_cvss(&a.severity)
        .map(|c| (Severity::from_score(c.score), Some(c)))
        .or_else(|| {
            rating(a.ecosystem_specific.as_ref())
                .or_else(|| rating(a.database_specific.as_ref()))
                .map(|s| (s, None))
        });
    Some(Affected {
        name: ecosystem.normalize_name(&package.name),
        ecosystem,
        versions: a.versions.clone(),
        ranges,
        severity,
    })
}

/// Compiles a record; `None` for withdrawn records and records with no
/// affected package in a supported ecosystem.
pub(crate) fn compile(record: &OsvRecord) -> Option<(Advisory, Vec<Affected>)> {
    if record.withdrawn.is_some() {
        return None;
    }
    let affected: Vec<Affected> = record
        .affected
        .iter()
        .filter_map(compile_affected)
        .collect();
    if affected.is_empty() {
        return None;
    }
    let cvss = best_cvss(&record.severity);
    let severity = cvss
        .as_ref()
        .map(|c| Severity::from_score(c.score))
        .or_else(|| rating(record.database_specific.as_ref()))
        .unwrap_or(Severity::Undefined);
    let text = record
        .summary
        .as_deref()
        .or(record.details.as_deref())
        .unwrap_or("");
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let summary = match line.char_indices().nth(MAX_SUMMARY) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    };
    let uri = record
        .references
        .iter()
        .find(|r| r.kind == "ADVISORY")
        .map(|r| r.url.clone())
        .unwrap_or_else(|| format!("https://osv.dev/vulnerability/{}", record.id));
    let advisory = Advisory {
        id: record.id.clone(),
        aliases: record.aliases.clone(),
        summary,
        severity,
        cvss,
        uri,
    };
    Some((advisory, affected))
}

/// Whether `version` is affected; when it is, the fixed version of the range
/// that matched, if any.
pub(crate) fn affects(a: &Affected, version: &str) -> Option<Option<String>> {
    let scheme = a.ecosystem.kind.scheme();
    let cmp = |x: &str, y: &str| compare(scheme, x, y);
    if a.versions
        .iter()
        .any(|v| cmp(v, version) == Some(Ordering::Equal) || v == version)
    {
        return Some(fixed_after(a, scheme, version));
    }
    // A version the ordering cannot read is in no range.
    cmp(version, version)?;
    for events in &a.ranges {
        if in_range(events, scheme, version) {
            return Some(fixed_in(events, scheme, version));
        }
    }
    None
}

/// OSV's evaluation: of the events at or below the version (a
/// `last_affected` only strictly below it), the greatest decides; on a tie
/// the one that ends the range wins. A `limit` at or below excludes.
fn in_range(events: &[Event], scheme: VersionScheme, version: &str) -> bool {
    let cmp = |x: &str, y: &str| compare(scheme, x, y);
    let below = |v: &str, strict: bool| {
        cmp(v, version).is_some_and(|o| o.is_lt() || (!strict && o.is_eq()))
    };
    if events
        .iter()
        .any(|e| matches!(e, Event::Limit(l) if below(l, false)))
    {
        return false;
    }
    let applicable = events.iter().filter_map(|e| match e {
        Event::Introduced(v) if v == "0" || below(v, false) => Some((v.as_str(), true)),
        Event::Fixed(v) if below(v, false) => Some((v.as_str(), false)),
        Event::LastAffected(v) if below(v, true) => Some((v.as_str(), false)),
        _ => None,
    });
    applicable
        .max_by(|(x, on_x), (y, on_y)| {
            let by_version = match (*x == "0", *y == "0") {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => cmp(x, y).unwrap_or(Ordering::Equal),
            };
            // `true` (on) sorts below `false` (off) on a tie.
            by_version.then(on_y.cmp(on_x))
        })
        .is_some_and(|(_, on)| on)
}

fn fixed_in(events: &[Event], scheme: VersionScheme, version: &str) -> Option<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Fixed(v) if compare(scheme, v, version).is_some_and(Ordering::is_gt) => Some(v),
            _ => None,
        })
        .min_by(|x, y| compare(scheme, x, y).unwrap_or(Ordering::Equal))
        .cloned()
}

fn fixed_after(a: &Affected, scheme: VersionScheme, version: &str) -> Option<String> {
    a.ranges
        .iter()
        .find_map(|events| fixed_in(events, scheme, version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecosystem::EcosystemKind;

    fn affected(kind: EcosystemKind, ranges: Vec<Vec<Event>>, versions: &[&str]) -> Affected {
        Affected {
            ecosystem: Ecosystem::lang(kind),
            name: "p".into(),
            versions: versions.iter().map(|v| v.to_string()).collect(),
            ranges,
            severity: None,
        }
    }

    use Event::*;
    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn ranges_introduced_fixed_last_affected_limit() {
        let a = affected(
            EcosystemKind::Npm,
            vec![
                vec![Introduced(s("0")), Fixed(s("1.2.0"))],
                vec![Introduced(s("2.0.0")), LastAffected(s("2.3.0"))],
                vec![
                    Introduced(s("3.0.0")),
                    Fixed(s("3.1.0")),
                    Introduced(s("3.2.0")),
                    Limit(s("3.5.0")),
                ],
            ],
            &["9.9.9"],
        );
        assert_eq!(affects(&a, "1.1.9"), Some(Some(s("1.2.0"))));
        assert_eq!(affects(&a, "1.2.0"), None);
        assert_eq!(affects(&a, "2.3.0"), Some(None));
        assert_eq!(affects(&a, "2.3.1"), None);
        assert_eq!(affects(&a, "3.0.5"), Some(Some(s("3.1.0"))));
        assert_eq!(affects(&a, "3.1.5"), None);
        assert_eq!(affects(&a, "3.3.0"), Some(None));
        assert_eq!(affects(&a, "3.5.0"), None);
        assert_eq!(affects(&a, "9.9.9"), Some(None));
        assert_eq!(affects(&a, "not-a-version"), None);
    }

    #[test]
    fn debian_ranges_use_dpkg_order() {
        let mut a = affected(
            EcosystemKind::Debian,
            vec![vec![Introduced(s("0")), Fixed(s("3.0.11-1~deb12u2"))]],
            &[],
        );
        a.ecosystem.release = Some(s("12"));
        assert!(affects(&a, "3.0.11-1~deb12u1").is_some());
        assert!(affects(&a, "3.0.11-1~deb12u2").is_none());
        assert!(affects(&a, "3.0.11-1").is_none());
    }
}
