//! Go binaries' build information: the `.go.buildinfo` blob (magic
//! `\xff Go buildinf:`, 16-byte aligned) that Go 1.18+ writes with inline,
//! length-prefixed version and module strings. Found by streaming the
//! executable and searching for the magic, so a binary is never held in
//! memory whole. Older pointer-based build info is noted, not read.

use std::io::{self, Read};

use crate::ecosystem::{Ecosystem, EcosystemKind};

use super::{Package, Parsed};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER: usize = 32;
/// Module information longer than this is not read.
const MAX_INFO: usize = 1 << 20;

/// Scans an executable's bytes; not an ELF file or no build info gives nothing.
pub(crate) fn scan<R: Read>(mut r: R, path: &str) -> io::Result<Parsed> {
    let mut buf = vec![0u8; 4];
    if r.read_exact(&mut buf).is_err() || buf != b"\x7fELF" {
        return Ok(Parsed::default());
    }
    let finder = memchr::memmem::Finder::new(MAGIC);
    let mut base = 0usize; // file offset of buf[0]
    let mut chunk = vec![0u8; 256 << 10];
    let found = loop {
        let n = r.read(&mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        let mut from = 0;
        let mut hit = None;
        while let Some(p) = finder.find(&buf[from..]) {
            if (base + from + p).is_multiple_of(16) {
                hit = Some(from + p);
                break;
            }
            from += p + 1;
        }
        if let Some(h) = hit {
            break Some(h);
        }
        if n == 0 {
            break None;
        }
        let keep = MAGIC.len() - 1;
        if buf.len() > keep {
            let drop = buf.len() - keep;
            buf.drain(..drop);
            base += drop;
        }
    };
    let Some(at) = found else {
        return Ok(Parsed::default());
    };
    buf.drain(..at);
    // Read what follows the header, up to the cap.
    let want = HEADER + 2 * 10 + 256 + MAX_INFO;
    while buf.len() < want {
        let len = (want - buf.len()).min(chunk.len());
        let n = r.read(&mut chunk[..len])?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(parse(&buf, path))
}

fn uvarint(b: &[u8]) -> Option<(usize, &[u8])> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((usize::try_from(v).ok()?, &b[i + 1..]));
        }
    }
    None
}

fn string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (n, rest) = uvarint(b)?;
    (rest.len() >= n).then(|| rest.split_at(n))
}

/// Parses a build-info blob starting at its magic.
pub(crate) fn parse(blob: &[u8], path: &str) -> Parsed {
    let Some(header) = blob.get(..HEADER) else {
        return Parsed::note(path, "truncated Go build info");
    };
    if header[15] & 2 == 0 {
        return Parsed::note(path, "Go build info from before Go 1.18 is not read");
    }
    let Some((version, rest)) = string(&blob[HEADER..]) else {
        return Parsed::note(path, "truncated Go build info");
    };
    let modinfo = string(rest).map(|(m, _)| m).unwrap_or_default();
    // Module info is framed by 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 {
        &modinfo[16..modinfo.len() - 16]
    } else {
        &[][..]
    };
    let mut packages = Vec::new();
    let go = |name: &str, version: &str| Package {
        ecosystem: Ecosystem::lang(EcosystemKind::Go),
        name: name.to_string(),
        version: version.to_string(),
        source: None,
        path: path.to_string(),
    };
    let version = String::from_utf8_lossy(version);
    if let Some(v) = version.strip_prefix("go") {
        let v = v.split([' ', '-']).next().unwrap_or(v);
        let v = if v.matches('.').count() == 1 {
            format!("{v}.0")
        } else {
            v.to_string()
        };
        packages.push(go("stdlib", &v));
    }
    for line in String::from_utf8_lossy(modinfo).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod" | "dep", module, version, ..] if *version != "(devel)" => {
                packages.push(go(module, version))
            }
            ["=>", module, version, ..] => {
                // A replacement applies to the dep before it.
                if let Some(last) = packages.last_mut().filter(|p| p.name != "stdlib") {
                    last.name = module.to_string();
                    last.version = version.to_string();
                }
            }
            _ => {}
        }
    }
    Parsed {
        packages,
        ..Parsed::default()
    }
}

/// Builds an ELF-looking file holding Go 1.18+ build info (for tests and
/// benchmarks): `pad` bytes of filler first.
pub fn build_go_binary(go_version: &str, modinfo: &str, pad: usize) -> Vec<u8> {
    let mut out = b"\x7fELF".to_vec();
    out.resize((4 + pad).next_multiple_of(16), 0);
    out.extend_from_slice(MAGIC);
    out.push(8);
    out.push(2);
    out.resize(out.len() + 16, 0);
    let mut put = |s: &[u8]| {
        let mut n = s.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(s);
    };
    put(go_version.as_bytes());
    let mut m = vec![b'0'; 16];
    m.extend_from_slice(modinfo.as_bytes());
    m.extend_from_slice(&[b'1'; 16]);
    put(&m);
    out.extend_from_slice(&[0u8; 64]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_modules_across_chunk_boundaries() {
        let info = "path\tex.com/app\nmod\tex.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.7.0\th1:x\ndep\tgithub.com/a/b\tv1.0.0\th1:y\n=>\tgithub.com/c/b\tv1.1.0\th1:z\n";
        for pad in [0, 100, (256 << 10) - 10, 600_000] {
            let bin = build_go_binary("go1.21", info, pad);
            let p = scan(&bin[..], "app").unwrap();
            let got: Vec<String> = p
                .packages
                .iter()
                .map(|p| format!("{}@{}", p.name, p.version))
                .collect();
            assert_eq!(
                got,
                [
                    "stdlib@1.21.0",
                    "golang.org/x/net@v0.7.0",
                    "github.com/c/b@v1.1.0"
                ],
                "pad {pad}"
            );
        }
        assert!(scan(&b"#!/bin/sh\n"[..], "s").unwrap().packages.is_empty());
        let bin = build_go_binary("go1.22.1", "x", 0);
        for cut in 0..bin.len() {
            let _ = scan(&bin[..cut], "cut");
        }
    }
}
