//! A reader between a layer's decompressor and the `tar` crate that
//! refuses tar extension entries (GNU long names and links, PAX headers)
//! larger than [`MAX_EXTENSION`]. The `tar` crate reads those entries whole
//! into memory, so without this a small gzip bomb declaring a 10 GB long
//! name would cost 10 GB. The guard follows entry boundaries from the
//! headers passing through (honouring a PAX `size` for the next entry);
//! on a layout it does not follow (old GNU sparse extension blocks) it
//! steps aside rather than misreading.

use std::io::{self, Read};

/// The largest extension entry let through.
pub(crate) const MAX_EXTENSION: u64 = 1 << 20;

pub(crate) struct TarGuard<R> {
    inner: R,
    /// Bytes of the current entry's data (rounded to 512) still to pass.
    remaining: u64,
    header: Vec<u8>,
    /// The contents of the PAX header being passed, to find `size=`.
    pax: Option<Vec<u8>>,
    pax_size: Option<u64>,
    off: bool,
}

impl<R: Read> TarGuard<R> {
    pub(crate) fn new(inner: R) -> TarGuard<R> {
        TarGuard {
            inner,
            remaining: 0,
            header: Vec::with_capacity(512),
            pax: None,
            pax_size: None,
            off: false,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    fn observe(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() && !self.off {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                if let Some(p) = &mut self.pax {
                    p.extend_from_slice(&buf[..n]);
                }
                self.remaining -= n as u64;
                buf = &buf[n..];
                if self.remaining == 0
                    && let Some(p) = self.pax.take()
                {
                    self.pax_size = pax_size(&p);
                }
                continue;
            }
            let n = (512 - self.header.len()).min(buf.len());
            self.header.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if self.header.len() == 512 {
                let h = std::mem::take(&mut self.header);
                self.header.reserve(512);
                self.on_header(&h)?;
            }
        }
        Ok(())
    }

    fn on_header(&mut self, h: &[u8]) -> io::Result<()> {
        if h.iter().all(|&b| b == 0) {
            return Ok(());
        }
        let kind = h[156];
        let Some(size) = header_size(&h[124..136]) else {
            self.off = true; // the tar crate will report it
            return Ok(());
        };
        let extension = matches!(kind, b'L' | b'K' | b'x' | b'g');
        if extension && size > MAX_EXTENSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("tar extension entry of {size} bytes (more than {MAX_EXTENSION})"),
            ));
        }
        if kind == b'S' && h[482] != 0 {
            self.off = true;
            return Ok(());
        }
        let size = if extension {
            size
        } else {
            self.pax_size.take().unwrap_or(size)
        };
        if kind == b'x' {
            self.pax = Some(Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
        }
        self.remaining = size.div_ceil(512).saturating_mul(512);
        if kind == b'x' && self.remaining == 0 {
            self.pax = None;
        }
        Ok(())
    }
}

/// A header's size field: octal text, or base-256 when the top bit is set.
fn header_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = 0;
        for &b in &field[4..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The `size` record of PAX extended header contents (`NN size=N\n`).
fn pax_size(p: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(p).lines().find_map(|l| {
        let (_, kv) = l.split_once(' ')?;
        kv.strip_prefix("size=")?.trim().parse().ok()
    })
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_name_tar(name_len: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        let name = format!("{}/file", "d".repeat(name_len));
        b.append_data(&mut h, name, &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn passes_normal_long_names_and_refuses_huge_ones() {
        let ok = long_name_tar(300);
        let mut out = Vec::new();
        TarGuard::new(&ok[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, ok);
        let mut ar = tar::Archive::new(TarGuard::new(&ok[..]));
        assert_eq!(ar.entries().unwrap().count(), 1);

        let huge = long_name_tar(MAX_EXTENSION as usize + 10);
        let err = TarGuard::new(&huge[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("extension entry"), "{err}");
    }

    #[test]
    fn follows_a_pax_size_for_the_next_entry() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("size", &b"1000"[..])]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        b.append_data(&mut h, "big", &[7u8; 1000][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        b.append_data(&mut h, "next", &b"hi"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let mut g = TarGuard::new(&bytes[..]);
        g.read_to_end(&mut Vec::new()).unwrap();
        assert!(!g.off && g.remaining == 0);
    }
}
