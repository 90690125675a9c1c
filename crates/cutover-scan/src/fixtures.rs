//! Builders of synthetic inputs (tar layers, rpm headers, Go binaries,
//! jars, OSV records) for this crate's tests, the server's tests and the
//! benchmark. Writing goes to memory only.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

pub use crate::inventory::{build_bdb, build_go_binary, build_jar, build_rpm_header};

/// Builds one layer as a tar stream in memory.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder::new()
    }
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> LayerBuilder {
        LayerBuilder {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(0);
        h
    }

    /// Adds a regular file with a mode (`0o644`, `0o755`).
    pub fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, data.len() as u64, mode);
        let _ = self.tar.append_data(&mut h, path, data);
        self
    }

    /// Adds a file of `size` bytes of filler read from `data` repeated.
    pub fn filler(&mut self, path: &str, size: u64, data: &[u8]) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, size, 0o644);
        let reader = std::io::Read::take(std::io::Read::chain(data, std::io::repeat(0)), size);
        let _ = self.tar.append_data(&mut h, path, reader);
        self
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, 0, 0o755);
        let _ = self.tar.append_data(&mut h, path, std::io::empty());
        self
    }

    /// Deletes `path` of lower layers (an OCI `.wh.` whiteout).
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let wh = match path.rsplit_once('/') {
            Some((d, f)) => format!("{d}/.wh.{f}"),
            None => format!(".wh.{path}"),
        };
        self.file(&wh, b"", 0o644)
    }

    /// Hides everything lower layers have under `dir` (an opaque whiteout).
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"", 0o644)
    }

    /// Adds a symbolic or hard link.
    pub fn link(&mut self, path: &str, target: &str, hard: bool) -> &mut Self {
        let kind = if hard {
            tar::EntryType::Link
        } else {
            tar::EntryType::Symlink
        };
        let mut h = Self::header(kind, 0, 0o777);
        let _ = self.tar.append_link(&mut h, path, target);
        self
    }

    /// Adds a file whose name is written raw (up to 100 bytes), unchecked:
    /// for hostile names such as `../../etc/passwd`.
    pub fn raw_name(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, data.len() as u64, 0o644);
        let n = name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
        h.set_cksum();
        let _ = self.tar.append(&h, data);
        self
    }

    /// The uncompressed tar.
    pub fn tar(self) -> Vec<u8> {
        self.tar.into_inner().unwrap_or_default()
    }

    /// The tar, gzip-compressed (fastest level).
    pub fn gzip(self) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        let _ = enc.write_all(&self.tar());
        enc.finish().unwrap_or_default()
    }

    /// The tar, zstd-compressed.
    pub fn zstd(self) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(
            &self.tar()[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        )
    }
}

/// An OSV record (as JSON) affecting one package below a fixed version,
/// with a CVSS v3.1 vector and a CVE alias.
pub fn osv_record(
    id: &str,
    cve: &str,
    ecosystem: &str,
    package: &str,
    fixed: &str,
    vector: &str,
) -> String {
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2024-01-01T00:00:00Z",
        "aliases": [cve],
        "summary": format!("{package}: a vulnerability fixed in {fixed}"),
        "severity": [{"type": "CVSS_V3", "score": vector}],
        "affected": [{
            "package": {"ecosystem": ecosystem, "name": package},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
        }],
        "references": [{"type": "ADVISORY", "url": format!("https://example.invalid/{id}")}]
    })
    .to_string()
}

/// A dpkg status paragraph for an installed package.
pub fn dpkg_paragraph(name: &str, version: &str, source: Option<&str>) -> String {
    let mut p = format!(
        "Package: {name}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nVersion: {version}\n"
    );
    if let Some(s) = source {
        p.push_str(&format!("Source: {s}\n"));
    }
    p.push_str("Description: a package\n more text\n\n");
    p
}
