//! RubyGems' `Gem::Version` ordering: segments split on `.` and at
//! digit/letter changes, a letter segment marks a pre-release (sorting before
//! any number), trailing zeros of the release and pre-release parts ignored.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Num(u64),
    Str(String),
}

fn canonical(v: &str) -> Vec<Seg> {
    let v = v.trim().replace('-', ".pre.");
    let mut segs = Vec::new();
    for part in v.split('.') {
        let mut cur = String::new();
        for c in part.chars() {
            if !cur.is_empty() && c.is_ascii_digit() != cur.chars().all(|d| d.is_ascii_digit()) {
                segs.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            segs.push(cur);
        }
    }
    let segs: Vec<Seg> = segs
        .into_iter()
        .map(|s| s.parse().map(Seg::Num).unwrap_or(Seg::Str(s)))
        .collect();
    // Drop trailing zeros of the release part and of the pre-release part.
    let split = segs
        .iter()
        .position(|s| matches!(s, Seg::Str(_)))
        .unwrap_or(segs.len());
    let (release, pre) = segs.split_at(split);
    let trim = |s: &[Seg]| {
        let mut v = s.to_vec();
        while v.last() == Some(&Seg::Num(0)) {
            v.pop();
        }
        v
    };
    let mut out = trim(release);
    out.extend(trim(pre));
    out
}

/// Compares two RubyGems versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (canonical(a), canonical(b));
    let zero = Seg::Num(0);
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero));
        let c = match (x, y) {
            (Seg::Num(x), Seg::Num(y)) => x.cmp(y),
            (Seg::Str(_), Seg::Num(_)) => Ordering::Less,
            (Seg::Num(_), Seg::Str(_)) => Ordering::Greater,
            (Seg::Str(x), Seg::Str(y)) => x.cmp(y),
        };
        if c.is_ne() {
            return c;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::*;

    #[test]
    fn gem_tricky_cases() {
        for (a, b, want) in [
            ("1.0", "1", Equal),
            ("1.0.a", "1.0", Less),
            ("1.0.a1", "1.0.a2", Less),
            ("1.0.rc1", "1.0.beta2", Greater),
            ("1.9.3", "1.10", Less),
            ("1.13.10", "1.13.9", Greater),
            ("2.0.0.pre", "1.9.9", Greater),
            ("1.0.0-1", "1.0.0", Less),
            ("7.0.8.1", "7.0.8", Greater),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
