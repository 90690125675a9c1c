//! The advisory database: compiled OSV records, saved to and loaded from
//! one compact file, with a content version that changes exactly when the
//! data does (the server compares it to decide on rescans). Matching an
//! inventory against it gives findings.
//!
//! In memory the records stay encoded (postcard), back to back in one
//! buffer, the file's payload as it was read; only an index from
//! (ecosystem, package name) to record numbers is built at load. A record
//! is decoded when a package of an image names it, so 100k advisories cost
//! about the file's size in memory, not a tree of 1.5M small allocations.

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// File header: name and format version.
const MAGIC: &[u8; 8] = b"CUTOSV\0\x02";

/// One advisory with its affected packages, as encoded in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    advisory: Advisory,
    affected: Vec<Affected>,
}

/// An in-memory advisory database.
///
/// Payload layout (all integers little-endian u32): the record count `n`,
/// `n + 1` offsets into the blob, then the blob of postcard-encoded records
/// sorted by id. The file is the magic, the payload's SHA-256, the payload.
#[derive(Debug, Default)]
pub struct AdvisoryDb {
    payload: Vec<u8>,
    blob_start: usize,
    offsets: Vec<u32>,
    index: HashMap<(Ecosystem, String), Vec<u32>>,
    version: String,
}

/// Collects records (later ones replace earlier ones of the same id) and
/// builds an [`AdvisoryDb`].
#[derive(Debug, Default)]
pub struct DbBuilder {
    records: BTreeMap<String, Record>,
    skipped: usize,
}

impl DbBuilder {
    /// An empty builder.
    pub fn new() -> DbBuilder {
        DbBuilder::default()
    }

    /// A builder holding everything `db` holds, to import more into.
    pub fn from_db(db: &AdvisoryDb) -> DbBuilder {
        let records = (0..db.len())
            .filter_map(|i| db.record(i))
            .map(|r| (r.advisory.id.clone(), r))
            .collect();
        DbBuilder {
            records,
            skipped: 0,
        }
    }

    /// Adds a record; a withdrawn record removes an earlier one of the same
    /// id. Returns whether the record is kept (it has a supported package).
    pub fn add(&mut self, record: &OsvRecord) -> bool {
        match compile(record) {
            Some((advisory, affected)) => {
                self.records
                    .insert(record.id.clone(), Record { advisory, affected });
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
        let n = self.records.len();
        let mut blob = Vec::new();
        let mut offsets = Vec::with_capacity(n + 1);
        for record in self.records.values() {
            offsets.push(blob.len() as u32);
            // Encoding plain data into a Vec cannot fail.
            let _ = postcard::to_io(record, &mut blob);
        }
        offsets.push(blob.len() as u32);
        let mut payload = Vec::with_capacity(4 * (n + 2) + blob.len());
        payload.extend_from_slice(&(n as u32).to_le_bytes());
        for o in &offsets {
            payload.extend_from_slice(&o.to_le_bytes());
        }
        payload.extend_from_slice(&blob);
        let digest = hex::encode(Sha256::digest(&payload));
        // Built from valid records, so it decodes.
        AdvisoryDb::from_payload(payload, digest).unwrap_or_default()
    }
}

impl AdvisoryDb {
    fn from_payload(payload: Vec<u8>, version: String) -> Result<AdvisoryDb, ScanError> {
        let bad = |m: &str| ScanError::Database(format!("corrupt ({m})"));
        let word = |i: usize| {
            payload
                .get(i * 4..i * 4 + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let n = word(0).ok_or_else(|| bad("truncated"))? as usize;
        if n.checked_add(2)
            .and_then(|x| x.checked_mul(4))
            .is_none_or(|x| x > payload.len())
        {
            return Err(bad("record count"));
        }
        let offsets: Vec<u32> = (1..=n + 1).filter_map(word).collect();
        let blob_start = 4 * (n + 2);
        let blob_len = payload.len() - blob_start;
        if offsets.windows(2).any(|w| w[0] > w[1])
            || offsets.last().is_some_and(|&l| l as usize != blob_len)
        {
            return Err(bad("offsets"));
        }
        let mut db = AdvisoryDb {
            payload,
            blob_start,
            offsets,
            index: HashMap::new(),
            version,
        };
        let mut index: HashMap<(Ecosystem, String), Vec<u32>> = HashMap::new();
        for i in 0..n {
            let record = db.record(i).ok_or_else(|| bad("record"))?;
            for a in record.affected {
                let hits = index.entry((a.ecosystem, a.name)).or_default();
                if hits.last() != Some(&(i as u32)) {
                    hits.push(i as u32);
                }
            }
        }
        index.shrink_to_fit();
        db.index = index;
        Ok(db)
    }

    fn record(&self, i: usize) -> Option<Record> {
        let (start, end) = (
            *self.offsets.get(i)? as usize,
            *self.offsets.get(i + 1)? as usize,
        );
        let bytes = self
            .payload
            .get(self.blob_start + start..self.blob_start + end)?;
        postcard::from_bytes(bytes).ok()
    }

    /// The content version: a SHA-256 of the data, in hex. Equal data gives
    /// an equal version whatever order the records were imported in.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// How many advisories it holds.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The advisory with an id.
    pub fn get(&self, id: &str) -> Option<Advisory> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let r = self.record(mid)?;
            match r.advisory.id.as_str().cmp(id) {
                std::cmp::Ordering::Equal => return Some(r.advisory),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    /// Writes the database: the magic, the payload's SHA-256, the payload.
    /// Written to a temporary file beside `path` and renamed over it.
    pub fn save(&self, path: &Path) -> Result<(), ScanError> {
        let io = |e| ScanError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        tmp.write_all(MAGIC).map_err(io)?;
        tmp.write_all(&Sha256::digest(&self.payload)).map_err(io)?;
        tmp.write_all(&self.payload).map_err(io)?;
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
        AdvisoryDb::from_payload(payload.to_vec(), hex::encode(digest))
    }

    /// The findings for an inventory: every package checked against the
    /// advisories of its ecosystem and name (OS packages by their source
    /// package, as distributions publish advisories). One finding per
    /// advisory and package, sorted by severity (highest first), then name.
    pub fn matches(&self, inventory: &Inventory) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        let mut seen = HashSet::new();
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
                let Some(record) = self.record(i as usize) else {
                    continue;
                };
                let adv = &record.advisory;
                for a in record
                    .affected
                    .iter()
                    .filter(|a| a.ecosystem == key.0 && a.name == key.1)
                {
                    let Some(fixed) = affects(a, version) else {
                        continue;
                    };
                    if !seen.insert((i, &p.name, &p.version)) {
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
