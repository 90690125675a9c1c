//! Findings (an advisory that applies to an installed package) and their
//! counts by severity, ECR's `findingSeverityCounts`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::severity::{CvssScore, Severity};

/// One vulnerability found in one package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The CVE id where the advisory has one, else the advisory's id (ECR's `name`).
    pub name: String,
    /// The OSV record's id.
    pub advisory_id: String,
    /// The record's aliases.
    pub aliases: Vec<String>,
    /// The installed package (the binary package for OS packages).
    pub package_name: String,
    /// Its installed version.
    pub package_version: String,
    /// OSV's ecosystem name (`Debian:12`).
    pub ecosystem: String,
    /// The first version that fixes it, if one is known.
    pub fixed_version: Option<String>,
    /// The severity.
    pub severity: Severity,
    /// The CVSS score and vector it came from, if any.
    pub cvss: Option<CvssScore>,
    /// One line about it.
    pub summary: String,
    /// Where to read more.
    pub uri: String,
    /// The file in the image the package was found in.
    pub path: String,
}

/// Findings counted by severity; serialises as ECR's
/// `findingSeverityCounts` (`{"HIGH": 2, "LOW": 1}`, absent severities left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeverityCounts(pub BTreeMap<Severity, u32>);

impl SeverityCounts {
    /// Counts findings.
    pub fn of(findings: &[Finding]) -> SeverityCounts {
        let mut m = BTreeMap::new();
        for f in findings {
            *m.entry(f.severity).or_insert(0) += 1;
        }
        SeverityCounts(m)
    }

    /// How many findings are at or above a severity (the `--fail-on` test).
    pub fn at_or_above(&self, threshold: Severity) -> u32 {
        self.0.range(threshold..).map(|(_, n)| n).sum()
    }
}
