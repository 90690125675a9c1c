//! The rpm database in its Berkeley DB form (`var/lib/rpm/Packages`: CentOS
//! 7 and 8, RHEL 8, Rocky and Alma 8, Amazon Linux 2): a hash database whose
//! values are rpm header blobs, stored on overflow pages. Read by walking
//! every hash page for off-page values and following their overflow
//! chains, as go-rpmdb does; every page number, offset and chain is
//! bounds-checked, so a corrupt file yields fewer headers, never a panic.

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_HASH: u8 = 13;
const H_OFFPAGE: u8 = 3;
/// The largest header blob assembled from an overflow chain.
const MAX_VALUE: usize = 16 << 20;

struct Db<'a> {
    bytes: &'a [u8],
    page_size: usize,
    last_page: u32,
    big_endian: bool,
}

impl Db<'_> {
    fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        })
    }

    fn u16_at(&self, b: &[u8], at: usize) -> Option<u16> {
        let w: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(w)
        } else {
            u16::from_le_bytes(w)
        })
    }

    fn page(&self, n: u32) -> Option<&[u8]> {
        let start = (n as usize).checked_mul(self.page_size)?;
        self.bytes.get(start..start.checked_add(self.page_size)?)
    }

    /// Follows an overflow chain from `first`, concatenating its pages' data.
    fn overflow(&self, first: u32) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut n = first;
        let mut steps = 0u32;
        while n != 0 {
            steps += 1;
            if steps > self.last_page.saturating_add(1) || out.len() > MAX_VALUE {
                return None; // a cycle, or absurdly long
            }
            let page = self.page(n)?;
            let next = self.u32_at(page, 16)?;
            let data = if next == 0 {
                let used = usize::from(self.u16_at(page, 22)?);
                page.get(PAGE_HEADER..PAGE_HEADER + used)?
            } else {
                page.get(PAGE_HEADER..)?
            };
            out.extend_from_slice(data);
            n = next;
        }
        Some(out)
    }
}

/// The header blobs of a Berkeley DB hash database; `None` when the file
/// is not one. Unreadable values are counted in the second field.
pub(crate) fn values(bytes: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let magic_le = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?);
    let big_endian = match magic_le {
        HASH_MAGIC => false,
        m if m.swap_bytes() == HASH_MAGIC => true,
        _ => return None,
    };
    let mut db = Db {
        bytes,
        page_size: 0,
        last_page: 0,
        big_endian,
    };
    db.page_size = db.u32_at(bytes, 20)? as usize;
    db.last_page = db.u32_at(bytes, 32)?;
    if !(512..=65536).contains(&db.page_size) {
        return None;
    }
    let mut out = Vec::new();
    let mut bad = 0;
    for n in 0..=db.last_page {
        let Some(page) = db.page(n) else { break };
        if !matches!(page[25], P_HASH_UNSORTED | P_HASH) {
            continue;
        }
        let entries = usize::from(db.u16_at(page, 20).unwrap_or(0));
        // Entries come in key/value pairs; the values are the odd ones.
        for i in (1..entries).step_by(2) {
            let Some(at) = db.u16_at(page, PAGE_HEADER + 2 * i) else {
                break;
            };
            let at = usize::from(at);
            if page.get(at) != Some(&H_OFFPAGE) {
                continue;
            }
            match db.u32_at(page, at + 4).and_then(|first| db.overflow(first)) {
                Some(v) => out.push(v),
                None => bad += 1,
            }
        }
    }
    Some((out, bad))
}

/// Builds a little-endian Berkeley DB hash file holding `blobs` (for tests):
/// page 0 metadata, page 1 a hash page of key/value pairs, then each value
/// on a chain of overflow pages.
pub fn build_bdb(blobs: &[Vec<u8>], page_size: usize) -> Vec<u8> {
    let body = page_size - PAGE_HEADER;
    let chains: Vec<usize> = blobs
        .iter()
        .map(|b| b.len().div_ceil(body).max(1))
        .collect();
    let pages = 2 + chains.iter().sum::<usize>();
    let mut out = vec![0u8; pages * page_size];
    let put32 =
        |out: &mut Vec<u8>, at: usize, v: u32| out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put16 =
        |out: &mut Vec<u8>, at: usize, v: u16| out[at..at + 2].copy_from_slice(&v.to_le_bytes());
    put32(&mut out, 12, HASH_MAGIC);
    put32(&mut out, 20, page_size as u32);
    put32(&mut out, 32, (pages - 1) as u32);
    let hash = page_size;
    out[hash + 25] = P_HASH;
    put16(&mut out, hash + 20, (blobs.len() * 2) as u16);
    let mut next_page = 2;
    let mut item_at = page_size; // items grow down from the page's end
    for (i, (blob, &n)) in blobs.iter().zip(&chains).enumerate() {
        // Key: a 4-byte record number (H_KEYDATA = 1).
        item_at -= 5;
        out[hash + item_at] = 1;
        put32(&mut out, hash + item_at + 1, i as u32 + 1);
        put16(&mut out, hash + PAGE_HEADER + 4 * i, item_at as u16);
        item_at -= 12;
        out[hash + item_at] = H_OFFPAGE;
        put32(&mut out, hash + item_at + 4, next_page as u32);
        put32(&mut out, hash + item_at + 8, blob.len() as u32);
        put16(&mut out, hash + PAGE_HEADER + 4 * i + 2, item_at as u16);
        for (k, chunk) in blob.chunks(body).enumerate() {
            let p = (next_page + k) * page_size;
            out[p + 25] = 7;
            let next = if k + 1 < n {
                (next_page + k + 1) as u32
            } else {
                0
            };
            put32(&mut out, p + 16, next);
            put16(&mut out, p + 22, chunk.len() as u16);
            out[p + PAGE_HEADER..p + PAGE_HEADER + chunk.len()].copy_from_slice(chunk);
        }
        next_page += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_across_overflow_chains_and_survives_corruption() {
        let blobs: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; 300 + 700 * usize::from(i)])
            .collect();
        let db = build_bdb(&blobs, 512);
        let (got, bad) = values(&db).unwrap();
        assert_eq!((got, bad), (blobs.clone(), 0));
        assert!(values(b"not a database at all, not at all").is_none());
        // A chain pointing at itself is cut, not followed forever.
        let mut cyclic = db.clone();
        let p = 2 * 512;
        cyclic[p + 16..p + 20].copy_from_slice(&2u32.to_le_bytes());
        let (_, bad) = values(&cyclic).unwrap();
        assert_eq!(bad, 1);
        for i in (0..db.len()).step_by(7) {
            let mut c = db.clone();
            c[i] ^= 0xa5;
            let _ = values(&c);
        }
    }
}
