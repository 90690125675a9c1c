//! Cutover's image scanner: reads an OCI image's layers without running or
//! unpacking them, inventories the packages inside (OS package databases,
//! language lockfiles and manifests, Go binaries, Java archives), and
//! matches them against OSV advisories with each ecosystem's version
//! ordering.
//!
//! ```no_run
//! use cutover_scan::{AdvisoryDb, DbBuilder, Severity, SeverityCounts, import_dir, scan_paths};
//! # fn main() -> Result<(), cutover_scan::ScanError> {
//! let mut builder = DbBuilder::new();
//! for record in import_dir("osv/".as_ref())?.records {
//!     builder.add(&record);
//! }
//! let db = builder.build();
//! db.save("advisories.db".as_ref())?;
//! let db = AdvisoryDb::load("advisories.db".as_ref())?; // at server start
//! let inventory = scan_paths(&["layer0.tar.gz", "layer1.tar.zst"])?;
//! let findings = db.matches(&inventory);
//! let counts = SeverityCounts::of(&findings);
//! let gate_fails = counts.at_or_above(Severity::High) > 0;
//! # Ok(()) }
//! ```
//!
//! Nothing here does network IO; files are read only where a function takes
//! a path. Hostile input (corrupt layers, huge or truncated files, path
//! traversal, malformed JSON) gives an error or a note, never a panic or
//! unbounded memory.

mod advisory;
mod db;
mod ecosystem;
mod error;
mod finding;
pub mod fixtures;
pub mod inventory;
mod layers;
pub mod osv;
mod severity;
mod targuard;
pub mod version;

pub use advisory::{Advisory, Affected, Event};
pub use db::{AdvisoryDb, DbBuilder};
pub use ecosystem::{Ecosystem, EcosystemKind, UnsupportedEcosystem};
pub use error::ScanError;
pub use finding::{Finding, SeverityCounts};
pub use inventory::{Distro, Inventory, Package, SourcePackage};
pub use layers::{Limits, scan, scan_paths, scan_with};
pub use osv::{Imported, OsvRecord, import_dir, import_zip};
pub use severity::{CvssScore, Severity, UnknownSeverity, score_vector};
