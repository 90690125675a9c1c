//! The advisory database: compiled OSV records indexed by (ecosystem,
//! package name), saved to and loaded from one compact file, with a content
//! version that changes exactly when the data does (the server compares it
//! to decide on rescans). Matching an inventory against it gives findings.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::advisory::{Advisory, Affected, affects, compile};
use crate::ecosystem::Ecosystem;
use crate::error::ScanError;
use crate::finding::Finding;
use crate::inventory::Inventory;
use crate::osv::OsvRecord;

const MAGIC: &[u8; 8] = b"CUTOSV\0\x01";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    advisories: Vec<Advisory>,
    affected: Vec<Affected>,
}

/// An in-memory advisory database.
#[derive(Debug, Default)]
pub struct AdvisoryDb {
    data: Data,
    index: HashMap<(Ecosystem, String), Vec<u32>>,
    version: String,
}

/// Collects records (later ones replace earlier ones of the same id) and
/// builds an [`AdvisoryDb`].
#[derive(Debug, Default)]
pub struct DbBuilder {
    records: BTreeMap<String, (Advisory, Vec<Affected>)>,
    skipped: usize,
}

impl DbBuilder {
    /// An empty builder.
    pub fn new() -> DbBuilder {
        DbBuilder::default()
    }

    /// A builder holding everything `db` holds, to import more into.
    pub fn from_db(db: &AdvisoryDb) -> DbBuilder {
        let mut b = DbBuilder::new();
        let mut per: Vec<Vec<Affected>> = vec![Vec::new(); db.data.advisories.len()];
        for a in &db.data.affected {
            per[a.advisory as usize].push(a.clone());
        }
        for (adv, affected) in db.data.advisories.iter().zip(per) {
            b.records.insert(adv.id.clone(), (adv.clone(), affected));
        }
        b
    }

    /// Adds a record; withdrawn records remove an earlier one of the same id.
    /// Returns whether the record is kept (it has a supported package).
    pub fn add(&mut self, record: &OsvRecord) -> bool {
        match compile(record, 0) {
            Some(compiled) => {
                self.records.insert(record.id.clone(), compiled);
                true
            }
            None => {
                self.records.remove(&record.id);
                self.skipped += 1;
                false
            }
        }
    }

    /// How many records were not kept (withdrawn or of unsupported ecosystems).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Builds the database, records in id order.
    pub fn build(self) -> AdvisoryDb {
        let mut data = Data::default();
        for (i, (_, (adv, affected))) in self.records.into_iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            data.advisories.push(adv);
            data.affected
                .extend(affected.into_iter().map(|a| Affected { advisory: i, ..a }));
        }
        let payload = postcard::to_stdvec(&data).unwrap_or_default();
        AdvisoryDb::from_data(data, hex::encode(Sha256::digest(&payload)))
    }
}

impl AdvisoryDb {
    fn from_data(data: Data, version: String) -> AdvisoryDb {
        let mut index: HashMap<(Ecosystem, String), Vec<u32>> = HashMap::new();
        for (i, a) in data.affected.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            index
                .entry((a.ecosystem.clone(), a.name.clone()))
                .or_default()
                .push(i);
        }
        AdvisoryDb {
            data,
            index,
            version,
        }
    }

    /// The content version: a SHA-256 of the data, in hex. Equal data gives
    /// an equal version whatever order the records were imported in.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// How many advisories it holds.
    pub fn len(&self) -> usize {
        self.data.advisories.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.data.advisories.is_empty()
    }

    /// The advisory with an id.
    pub fn get(&self, id: &str) -> Option<&Advisory> {
        self.data
            .advisories
            .binary_search_by(|a| a.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.data.advisories[i])
    }

    /// Writes the database: a magic header, the content version, then the
    /// postcard-encoded data. Written to a temporary file and renamed.
    pub fn save(&self, path: &Path) -> Result<(), ScanError> {
        let io = |e| ScanError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let payload =
            postcard::to_stdvec(&self.data).map_err(|e| ScanError::Database(e.to_string()))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        tmp.write_all(MAGIC).map_err(io)?;
        tmp.write_all(&Sha256::digest(&payload)).map_err(io)?;
        tmp.write_all(&payload).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Reads a database written by [`AdvisoryDb::save`], checking its
    /// header and digest.
    pub fn load(path: &Path) -> Result<AdvisoryDb, ScanError> {
        let bytes = std::fs::read(path).map_err(|e| ScanError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        AdvisoryDb::from_bytes(&bytes)
    }

    /// Decodes a saved database from memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<AdvisoryDb, ScanError> {
        let bad = |m: &str| ScanError::Database(m.to_string());
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| bad("not a cutover advisory database of this version (bad header)"))?;
        if rest.len() < 32 {
            return Err(bad("truncated"));
        }
        let (digest, payload) = rest.split_at(32);
        if Sha256::digest(payload).as_slice() != digest {
            return Err(bad("corrupt (digest mismatch)"));
        }
        let data: Data = postcard::from_bytes(payload).map_err(|e| bad(&e.to_string()))?;
        let n = data.advisories.len();
        if data.affected.iter().any(|a| a.advisory as usize >= n) {
            return Err(bad("corrupt (dangling advisory index)"));
        }
        Ok(AdvisoryDb::from_data(data, hex::encode(digest)))
    }

    /// The findings for an inventory: every package checked against the
    /// advisories of its ecosystem and name (OS packages by their source
    /// package, as distributions publish advisories). One finding per
    /// advisory and package, sorted by severity (highest first), then name.
    pub fn matches(&self, inventory: &Inventory) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for p in &inventory.packages {
            let (name, version) = match &p.source {
                Some(src) => (
                    src.name.as_str(),
                    src.version.as_deref().unwrap_or(&p.version),
                ),
                None => (p.name.as_str(), p.version.as_str()),
            };
            let key = (p.ecosystem.clone(), p.ecosystem.normalize_name(name));
            let Some(hits) = self.index.get(&key) else {
                continue;
            };
            for &i in hits {
                let a = &self.data.affected[i as usize];
                let Some(fixed) = affects(a, version) else {
                    continue;
                };
                let adv = &self.data.advisories[a.advisory as usize];
                if !seen.insert((a.advisory, &p.name, &p.version)) {
                    continue;
                }
                let (severity, cvss) = match &a.severity {
                    Some((s, c)) if adv.cvss.is_none() || c.is_some() => (*s, c.clone()),
                    _ => (adv.severity, adv.cvss.clone()),
                };
                out.push(Finding {
                    name: adv.name().to_string(),
                    advisory_id: adv.id.clone(),
                    aliases: adv.aliases.clone(),
                    package_name: p.name.clone(),
                    package_version: p.version.clone(),
                    ecosystem: p.ecosystem.to_string(),
                    fixed_version: fixed,
                    severity,
                    cvss,
                    summary: adv.summary.clone(),
                    uri: adv.uri.clone(),
                    path: p.path.clone(),
                });
            }
        }
        out.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.package_name.cmp(&b.package_name))
        });
        out
    }
}
