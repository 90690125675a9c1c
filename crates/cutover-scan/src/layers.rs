//! Reading an image's layers: each a tar stream, plain or compressed with
//! gzip or zstd (told apart by magic bytes), applied in order with OCI
//! whiteouts (`.wh.NAME` deletes, `.wh..wh..opq` makes a directory opaque).
//!
//! Nothing is unpacked to disk and no layer is held in memory: entries
//! stream past, and only the files [`crate::inventory`] cares about are read
//! (each up to [`Limits::max_file_bytes`]) and parsed at once; the view of
//! the image keeps only what each file contributed, keyed by path, so a
//! whiteout or overwrite in a later layer removes it. Symbolic links are
//! never followed (names are read as written), so link loops cannot occur;
//! names with `..` are skipped with a note; tar extension entries (long
//! names, PAX headers) over 1 MiB are refused ([`crate::targuard`]).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use tar::EntryType;

use crate::error::ScanError;
use crate::inventory::{Inventory, Kind, Parsed, assemble, classify, parse, scan_go_binary};
use crate::targuard::TarGuard;

/// Bounds on what one scan reads into memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest file read into memory to parse (package databases,
    /// lockfiles, jars). Larger ones are skipped with a note.
    pub max_file_bytes: u64,
    /// The most notes kept (the rest are counted).
    pub max_notes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 64 << 20,
            max_notes: 1000,
        }
    }
}

/// Opens a layer: gzip and zstd are detected by their magic bytes,
/// anything else is read as a plain tar.
fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 << 10, r);
    let head = br.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(br))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let dec = ruzstd::decoding::StreamingDecoder::new(br)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Box::new(dec)
    } else {
        Box::new(br)
    })
}

/// A tar name made relative, with `.` parts and duplicate slashes removed;
/// `None` for names that climb out with `..` or name the root.
fn normalize(raw: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The image as seen through the layers applied so far.
struct View {
    files: BTreeMap<String, Parsed>,
    notes: Vec<String>,
    dropped_notes: usize,
    limits: Limits,
}

impl View {
    fn note(&mut self, msg: String) {
        if self.notes.len() < self.limits.max_notes {
            self.notes.push(msg);
        } else {
            self.dropped_notes += 1;
        }
    }

    /// Removes `path` and everything under it (from lower layers).
    fn remove_tree(&mut self, path: &str) {
        self.files.remove(path);
        self.remove_children(path);
    }

    fn remove_children(&mut self, dir: &str) {
        let prefix = format!("{dir}/");
        let doomed: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.files.remove(&k);
        }
    }

    fn apply<R: Read>(&mut self, layer: usize, reader: R) -> Result<(), ScanError> {
        let err = |e: io::Error| ScanError::Layer {
            layer,
            message: e.to_string(),
        };
        let mut archive = tar::Archive::new(TarGuard::new(decompress(reader).map_err(err)?));
        let mut added: BTreeMap<String, Parsed> = BTreeMap::new();
        for entry in archive.entries().map_err(err)? {
            let mut entry = entry.map_err(err)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = normalize(&raw) else {
                if !matches!(raw.trim_matches('/'), "" | ".") {
                    self.note(format!(
                        "layer {layer}: entry {raw:?} climbs out of the root, skipped"
                    ));
                }
                continue;
            };
            let (dir, file) = match path.rsplit_once('/') {
                Some((d, f)) => (Some(d), f),
                None => (None, path.as_str()),
            };
            if let Some(hidden) = file.strip_prefix(".wh.") {
                if hidden == ".wh..opq" {
                    match dir {
                        Some(d) => self.remove_children(d),
                        None => self.files.clear(),
                    }
                } else {
                    let target =
                        dir.map_or_else(|| hidden.to_string(), |d| format!("{d}/{hidden}"));
                    self.remove_tree(&target);
                }
                continue;
            }
            let ty = entry.header().entry_type();
            if ty == EntryType::Directory {
                self.files.remove(&path);
                continue;
            }
            self.remove_tree(&path);
            let mode = entry.header().mode().unwrap_or(0);
            let Some(kind) = classify(&path, mode) else {
                continue;
            };
            match ty {
                EntryType::Regular | EntryType::Continuous => {}
                EntryType::Link => {
                    // A hard link shares its target's content, read earlier.
                    let target = entry
                        .link_name_bytes()
                        .and_then(|t| normalize(&String::from_utf8_lossy(&t)));
                    if let Some(p) =
                        target.and_then(|t| added.get(&t).or_else(|| self.files.get(&t)).cloned())
                    {
                        added.insert(path, p);
                    }
                    continue;
                }
                _ => continue,
            }
            if kind == Kind::Executable {
                let parsed = scan_go_binary(&mut entry, &path).map_err(err)?;
                if !parsed.packages.is_empty() || !parsed.notes.is_empty() {
                    added.insert(path, parsed);
                }
                continue;
            }
            let size = entry.header().size().unwrap_or(u64::MAX);
            let max = self.limits.max_file_bytes;
            if size > max {
                self.note(format!(
                    "{path}: {size} bytes, larger than the {max}-byte limit, not read"
                ));
                continue;
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
            (&mut entry)
                .take(max + 1)
                .read_to_end(&mut bytes)
                .map_err(err)?;
            added.insert(path.clone(), parse(kind, &path, &bytes));
        }
        // Read to the end, so a truncated or corrupt compressed stream (its
        // trailer and checksum come after the tar's end) is an error.
        io::copy(&mut archive.into_inner().into_inner(), &mut io::sink()).map_err(err)?;
        self.files.extend(added);
        Ok(())
    }
}

/// Scans an image given its layers in order (base first) with the default
/// limits. A layer that is not a readable (compressed) tar is an error.
pub fn scan<R: Read>(layers: impl IntoIterator<Item = R>) -> Result<Inventory, ScanError> {
    scan_with(layers, &Limits::default())
}

/// [`scan`] with explicit limits.
pub fn scan_with<R: Read>(
    layers: impl IntoIterator<Item = R>,
    limits: &Limits,
) -> Result<Inventory, ScanError> {
    let mut view = View {
        files: BTreeMap::new(),
        notes: Vec::new(),
        dropped_notes: 0,
        limits: limits.clone(),
    };
    for (i, layer) in layers.into_iter().enumerate() {
        view.apply(i, layer)?;
    }
    let mut notes = view.notes;
    if view.dropped_notes > 0 {
        notes.push(format!("{} more notes not kept", view.dropped_notes));
    }
    Ok(assemble(view.files, notes))
}

/// [`scan`] of layer files named by path (blobs in a registry's store).
pub fn scan_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Inventory, ScanError> {
    let files = paths
        .iter()
        .map(|p| {
            std::fs::File::open(p.as_ref()).map_err(|e| ScanError::Io {
                path: p.as_ref().display().to_string(),
                source: e,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    scan(files)
}
