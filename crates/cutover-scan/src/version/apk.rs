//! Alpine's apk version ordering: dotted numbers, an optional letter,
//! `_suffix[N]` parts (`_alpha` < `_beta` < `_pre` < `_rc` < none < `_cvs` <
//! `_svn` < `_git` < `_hg` < `_p`) and a `-rN` package revision.

use std::cmp::Ordering;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Parsed {
    numbers: Vec<u64>,
    letter: u8,
    suffixes: Vec<(i8, u64)>,
    revision: u64,
}

fn suffix_rank(s: &str) -> i8 {
    match s {
        "alpha" => -4,
        "beta" => -3,
        "pre" => -2,
        "rc" => -1,
        "cvs" => 1,
        "svn" => 2,
        "git" => 3,
        "hg" => 4,
        "p" => 5,
        _ => 6,
    }
}

fn parse(v: &str) -> Parsed {
    let v = v.trim();
    let (v, revision) = match v.rsplit_once("-r") {
        Some((base, rev)) if rev.bytes().all(|b| b.is_ascii_digit()) => {
            (base, rev.parse().unwrap_or(u64::MAX))
        }
        _ => (v, 0),
    };
    let (main, suffix_part) = match v.split_once('_') {
        Some((m, s)) => (m, Some(s)),
        None => (v, None),
    };
    let mut letter = 0;
    let mut numbers = Vec::new();
    for part in main.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        numbers.push(digits.parse().unwrap_or(0));
        if let Some(c) = part[digits.len()..].bytes().next() {
            letter = c;
        }
    }
    let suffixes = suffix_part
        .map(|s| {
            s.split('_')
                .map(|p| {
                    let name: String = p.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
                    let n = p[name.len()..].parse().unwrap_or(0);
                    (suffix_rank(&name), n)
                })
                .collect()
        })
        .unwrap_or_default();
    Parsed {
        numbers,
        letter,
        suffixes,
        revision,
    }
}

/// Compares two apk versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (parse(a), parse(b));
    a.numbers
        .cmp(&b.numbers)
        .then(a.letter.cmp(&b.letter))
        .then_with(|| {
            // A missing suffix is a release: after pre-releases, before patches.
            let n = a.suffixes.len().max(b.suffixes.len());
            (0..n)
                .map(|i| {
                    let x = a.suffixes.get(i).copied().unwrap_or((0, 0));
                    let y = b.suffixes.get(i).copied().unwrap_or((0, 0));
                    x.cmp(&y)
                })
                .find(|c| c.is_ne())
                .unwrap_or(Ordering::Equal)
        })
        .then(a.revision.cmp(&b.revision))
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::*;

    #[test]
    fn apk_tricky_cases() {
        for (a, b, want) in [
            ("1.2.3-r0", "1.2.3-r1", Less),
            ("1.2.3_rc1-r0", "1.2.3-r0", Less),
            ("1.2.3_alpha", "1.2.3_beta", Less),
            ("1.2.3_p1-r0", "1.2.3-r5", Greater),
            ("1.2.10", "1.2.9", Greater),
            ("1.2a", "1.2", Greater),
            ("1.2a", "1.2b", Less),
            ("1.2", "1.2.1", Less),
            ("3.1.4-r5", "3.1.4-r10", Less),
            ("2.38.1_git20230101-r0", "2.38.1-r0", Greater),
            ("1.0", "1.0-r0", Equal),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
