//! OSV records (<https://ossf.github.io/osv-schema/>) as typed serde
//! structs, and their import from a directory of JSON files or from OSV's
//! per-ecosystem `all.zip`. A malformed record is skipped with a note; it
//! never stops an import.

use std::io::{Read, Seek};
use std::path::Path;

use serde::Deserialize;

use crate::error::ScanError;

/// The largest single record read (bigger ones are skipped with a note).
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// One OSV record; fields this scanner does not use are not kept.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvRecord {
    /// `GHSA-...`, `CVE-...`, `DSA-...`, ...
    pub id: String,
    /// RFC 3339 time of the last change.
    #[serde(default)]
    pub modified: Option<String>,
    /// Set when the record was withdrawn; such records are ignored.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Other ids of the same vulnerability (CVE ids among them).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Longer description (used for the summary when there is none).
    #[serde(default)]
    pub details: Option<String>,
    /// CVSS vectors of the whole record.
    #[serde(default)]
    pub severity: Vec<OsvSeverity>,
    /// The affected packages.
    #[serde(default)]
    pub affected: Vec<OsvAffected>,
    /// Links.
    #[serde(default)]
    pub references: Vec<OsvReference>,
    /// Database-specific data; only a `severity` rating is read.
    #[serde(default, deserialize_with = "lenient")]
    pub database_specific: Option<SpecificRating>,
}

/// A `severity` entry: a type (`CVSS_V3`, `CVSS_V4`, ...) and a vector.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvSeverity {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector (or, for `Ubuntu`, a rating word).
    pub score: String,
}

/// One `affected` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvAffected {
    /// The package; entries without one are ignored.
    #[serde(default)]
    pub package: Option<OsvPackage>,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<OsvRange>,
    /// Explicitly affected versions.
    #[serde(default)]
    pub versions: Vec<String>,
    /// CVSS vectors for this package only.
    #[serde(default)]
    pub severity: Vec<OsvSeverity>,
    /// Ecosystem-specific data; Debian's `urgency` and a `severity` are read.
    #[serde(default, deserialize_with = "lenient")]
    pub ecosystem_specific: Option<SpecificRating>,
    /// Database-specific data; a `severity` is read.
    #[serde(default, deserialize_with = "lenient")]
    pub database_specific: Option<SpecificRating>,
}

/// The affected package's ecosystem and name.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvPackage {
    /// `Debian:12`, `npm`, ...
    pub ecosystem: String,
    /// The name (source package name for Linux distributions).
    pub name: String,
}

/// The kind of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RangeKind {
    /// Versions in the ecosystem's own ordering.
    Ecosystem,
    /// Semantic versions.
    Semver,
    /// Git commits (not matched: images hold versions, not commits).
    Git,
    /// Anything newer.
    #[serde(other)]
    Other,
}

/// A range: events in version order.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvRange {
    /// ECOSYSTEM, SEMVER or GIT.
    #[serde(rename = "type")]
    pub kind: RangeKind,
    /// The events.
    #[serde(default)]
    pub events: Vec<OsvEvent>,
}

/// One event: exactly one field is set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OsvEvent {
    /// Affected from this version (`0`: from the start).
    pub introduced: Option<String>,
    /// Fixed in this version.
    pub fixed: Option<String>,
    /// Affected up to and including this version.
    pub last_affected: Option<String>,
    /// Upper limit of the range.
    pub limit: Option<String>,
}

/// A reference link.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvReference {
    /// `ADVISORY`, `WEB`, `FIX`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The address.
    pub url: String,
}

/// The rating fields read from `database_specific` / `ecosystem_specific`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SpecificRating {
    /// GHSA's `HIGH`, `MODERATE`, ...
    #[serde(default, deserialize_with = "lenient")]
    pub severity: Option<String>,
    /// Debian's urgency (`low`, `medium`, `high`, `unimportant`).
    #[serde(default, deserialize_with = "lenient")]
    pub urgency: Option<String>,
}

/// Deserialises `T`, or `None` when the value has another shape: the
/// `*_specific` objects are free-form, and a surprise there must not cost
/// the whole record.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient<T> {
        Known(T),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Lenient::<T>::deserialize(d)? {
        Lenient::Known(t) => Some(t),
        Lenient::Other(_) => None,
    })
}

/// Parses one record.
pub fn parse_record(bytes: &[u8]) -> Result<OsvRecord, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// What an import read.
#[derive(Debug, Default)]
pub struct Imported {
    /// The records that parsed.
    pub records: Vec<OsvRecord>,
    /// One line per file skipped (malformed, too big, unreadable).
    pub notes: Vec<String>,
}

impl Imported {
    fn push(&mut self, name: &str, bytes: &[u8]) {
        match parse_record(bytes) {
            Ok(r) => self.records.push(r),
            Err(e) => self
                .notes
                .push(format!("{name}: skipped, not an OSV record: {e}")),
        }
    }
}

/// Reads every `*.json` file under `dir` (recursively; symbolic links are not
/// followed), and every `*.zip` there as an OSV `all.zip`.
pub fn import_dir(dir: &Path) -> Result<Imported, ScanError> {
    let mut out = Imported::default();
    let mut stack = vec![dir.to_path_buf()];
    let io = |path: &Path, e| ScanError::Io {
        path: path.display().to_string(),
        source: e,
    };
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .map_err(|e| io(&d, e))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            let name = path.display().to_string();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && name.ends_with(".json") {
                let file = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
                let mut bytes = Vec::new();
                file.take(MAX_RECORD_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| io(&path, e))?;
                if bytes.len() as u64 > MAX_RECORD_BYTES {
                    out.notes.push(format!(
                        "{name}: skipped, larger than {MAX_RECORD_BYTES} bytes"
                    ));
                } else {
                    out.push(&name, &bytes);
                }
            } else if ft.is_file() && name.ends_with(".zip") {
                let file = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
                let inner = import_zip(std::io::BufReader::new(file))?;
                out.records.extend(inner.records);
                out.notes
                    .extend(inner.notes.into_iter().map(|n| format!("{name}: {n}")));
            }
        }
    }
    Ok(out)
}

/// Reads every `*.json` member of a zip archive (OSV's `all.zip`).
pub fn import_zip<R: Read + Seek>(reader: R) -> Result<Imported, ScanError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| ScanError::Zip(e.to_string()))?;
    let mut out = Imported::default();
    let mut bytes = Vec::new();
    for i in 0..zip.len() {
        let mut member = match zip.by_index(i) {
            Ok(m) => m,
            Err(e) => {
                out.notes.push(format!("member {i}: skipped: {e}"));
                continue;
            }
        };
        let name = member.name().to_string();
        if !member.is_file() || !name.ends_with(".json") {
            continue;
        }
        bytes.clear();
        // The declared size can lie; the read is capped either way.
        if let Err(e) = (&mut member)
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut bytes)
        {
            out.notes.push(format!("{name}: skipped: {e}"));
            continue;
        }
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            out.notes.push(format!(
                "{name}: skipped, larger than {MAX_RECORD_BYTES} bytes"
            ));
            continue;
        }
        out.push(&name, &bytes);
    }
    Ok(out)
}
