//! The rpm database: rpm header blobs, parsed here by hand (the format is
//! small and stable; no crate reads it alone), from the SQLite form
//! (`rpmdb.sqlite`: Fedora 33+, RHEL 9, Rocky and Alma 9) or the Berkeley DB
//! form (`Packages`, read by [`super::bdb`]). NDB (`Packages.db`, SUSE) is
//! not read.

use crate::ecosystem::{Ecosystem, EcosystemKind};

use super::{Package, Parsed};

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;

/// The fields of one header blob the inventory needs.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Header {
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) epoch: Option<u32>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Parses a header blob as the database stores it: index count and data
/// length (big endian), 16-byte index entries (tag, type, offset, count),
/// then the data store. Every offset is bounds-checked.
pub(crate) fn parse_header(blob: &[u8]) -> Option<Header> {
    let il = be32(blob, 0)? as usize;
    let dl = be32(blob, 4)? as usize;
    let data_start = 8usize.checked_add(il.checked_mul(16)?)?;
    let data = blob.get(data_start..data_start.checked_add(dl)?)?;
    let mut h = Header::default();
    for i in 0..il {
        let e = 8 + i * 16;
        let (tag, ty, off) = (
            be32(blob, e)?,
            be32(blob, e + 4)?,
            be32(blob, e + 8)? as usize,
        );
        let string = || {
            let rest = data.get(off..)?;
            let end = memchr::memchr(0, rest)?;
            Some(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        match (tag, ty) {
            (TAG_NAME, TYPE_STRING) => h.name = string(),
            (TAG_VERSION, TYPE_STRING) => h.version = string(),
            (TAG_RELEASE, TYPE_STRING) => h.release = string(),
            (TAG_EPOCH, TYPE_INT32) => h.epoch = be32(data, off),
            _ => {}
        }
    }
    Some(h)
}

/// Reads a Berkeley DB `Packages` file.
pub(super) fn berkeley(bytes: &[u8], path: &str) -> Parsed {
    let Some((blobs, unreadable)) = super::bdb::values(bytes) else {
        return Parsed::note(
            path,
            "not a Berkeley DB hash database; rpm packages not inventoried",
        );
    };
    let (packages, bad) = from_blobs(blobs.iter().map(Vec::as_slice), path);
    let mut p = Parsed {
        packages,
        ..Parsed::default()
    };
    if bad + unreadable > 0 {
        p.notes.push(format!(
            "{path}: {} unreadable rpm headers skipped",
            bad + unreadable
        ));
    }
    p
}

/// Reads `rpmdb.sqlite`. SQLite reads only files, so the bytes go to a
/// private temporary file for the duration of the query.
pub(super) fn sqlite(bytes: &[u8], path: &str) -> Parsed {
    match packages(bytes, path) {
        Ok((packages, bad)) => {
            let mut p = Parsed {
                packages,
                ..Parsed::default()
            };
            if bad > 0 {
                p.notes
                    .push(format!("{path}: {bad} unreadable rpm headers skipped"));
            }
            p
        }
        Err(e) => Parsed::note(path, format_args!("unreadable rpm database: {e}")),
    }
}

fn packages(bytes: &[u8], path: &str) -> Result<(Vec<Package>, usize), Box<dyn std::error::Error>> {
    use std::io::Write;
    let mut tmp = tempfile::NamedTempFile::new()?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    let conn = rusqlite::Connection::open_with_flags(
        tmp.path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare("SELECT blob FROM Packages")?;
    let mut rows = stmt.query([])?;
    let mut blobs = Vec::new();
    while let Some(row) = rows.next()? {
        blobs.push(row.get::<_, Vec<u8>>(0)?);
    }
    Ok(from_blobs(blobs.iter().map(Vec::as_slice), path))
}

/// Packages from header blobs, and how many blobs were unreadable.
fn from_blobs<'a>(blobs: impl Iterator<Item = &'a [u8]>, path: &str) -> (Vec<Package>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for blob in blobs {
        let Some(Header {
            name: Some(name),
            version: Some(version),
            release,
            epoch,
        }) = parse_header(blob)
        else {
            bad += 1;
            continue;
        };
        if name == "gpg-pubkey" {
            continue;
        }
        let mut evr = match epoch {
            Some(e) if e > 0 => format!("{e}:{version}"),
            _ => version,
        };
        if let Some(r) = release {
            evr = format!("{evr}-{r}");
        }
        out.push(Package {
            // The release is filled in from os-release (Rocky, Alma, ...).
            ecosystem: Ecosystem::lang(EcosystemKind::RockyLinux),
            name,
            version: evr,
            source: None,
            path: path.to_string(),
        });
    }
    (out, bad)
}

/// Builds a header blob (for tests and benchmarks): string tags and an epoch.
pub fn build_header(name: &str, version: &str, release: &str, epoch: Option<u32>) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    let mut push = |tag: u32, ty: u32, bytes: &[u8]| {
        index.extend_from_slice(&tag.to_be_bytes());
        index.extend_from_slice(&ty.to_be_bytes());
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(bytes);
    };
    for (tag, s) in [
        (TAG_NAME, name),
        (TAG_VERSION, version),
        (TAG_RELEASE, release),
    ] {
        push(tag, TYPE_STRING, format!("{s}\0").as_bytes());
    }
    if let Some(e) = epoch {
        push(TAG_EPOCH, TYPE_INT32, &e.to_be_bytes());
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&((index.len() / 16) as u32).to_be_bytes());
    blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
    blob.extend_from_slice(&index);
    blob.extend_from_slice(&data);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_hostile_blobs() {
        let blob = build_header("openssl-libs", "3.0.7", "27.el9", Some(1));
        let h = parse_header(&blob).unwrap();
        assert_eq!(h.name.as_deref(), Some("openssl-libs"));
        assert_eq!(h.epoch, Some(1));
        for cut in 0..blob.len() {
            let _ = parse_header(&blob[..cut]);
        }
        assert!(parse_header(&[0xff; 8]).is_none());
        let mut huge = blob.clone();
        huge[8 + 8..8 + 12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header(&huge).unwrap().name.is_none());
    }

    #[test]
    fn sqlite_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rpmdb.sqlite");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)",
            [],
        )
        .unwrap();
        for b in [
            build_header("openssl-libs", "3.0.7", "24.el9", Some(1)),
            vec![1, 2, 3],
        ] {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [b])
                .unwrap();
        }
        drop(conn);
        let p = sqlite(&std::fs::read(&db).unwrap(), "var/lib/rpm/rpmdb.sqlite");
        assert_eq!(p.packages.len(), 1);
        assert_eq!(p.packages[0].version, "1:3.0.7-24.el9");
        assert_eq!(p.notes.len(), 1);
        assert!(!sqlite(b"garbage", "x").notes.is_empty());
    }
}
