//! Maven's version ordering, after `ComparableVersion`: items split on `.`,
//! `-` and digit/letter transitions; numbers compare numerically and sort
//! after qualifiers; known qualifiers order `alpha` < `beta` < `milestone` <
//! `rc` = `cr` < `snapshot` < release (`""`, `ga`, `final`, `release`) <
//! `sp`, and unknown qualifiers after those, alphabetically; trailing
//! "null" items (`0`, release) are ignored.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Num(String),
    Qual(String),
}

fn qual_rank(q: &str) -> (u8, &str) {
    match q {
        "alpha" | "a" => (0, ""),
        "beta" | "b" => (1, ""),
        "milestone" | "m" => (2, ""),
        "rc" | "cr" => (3, ""),
        "snapshot" => (4, ""),
        "" | "ga" | "final" | "release" => (5, ""),
        "sp" => (6, ""),
        other => (7, other),
    }
}

fn is_null(item: &Item) -> bool {
    match item {
        Item::Num(n) => n.is_empty(),
        Item::Qual(q) => qual_rank(q).0 == 5,
    }
}

/// Drops trailing zero numbers, as Maven does before each `-` sublist.
fn trim_nulls(out: &mut Vec<Item>) {
    while matches!(out.last(), Some(Item::Num(n)) if n.is_empty()) && out.len() > 1 {
        out.pop();
    }
}

fn items(v: &str) -> Vec<Item> {
    let v = v.trim().to_ascii_lowercase();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut digits = false;
    let flush = |cur: &mut String, digits: bool, out: &mut Vec<Item>| {
        if digits {
            out.push(Item::Num(cur.trim_start_matches('0').to_string()));
        } else {
            out.push(Item::Qual(std::mem::take(cur)));
        }
        cur.clear();
    };
    for c in v.chars() {
        if c == '.' || c == '-' || c == '_' {
            flush(&mut cur, digits, &mut out);
            if c != '.' {
                trim_nulls(&mut out);
            }
            digits = false;
        } else if !cur.is_empty() && c.is_ascii_digit() != digits {
            flush(&mut cur, digits, &mut out);
            if digits {
                trim_nulls(&mut out);
            }
            digits = c.is_ascii_digit();
            cur.push(c);
        } else {
            if cur.is_empty() {
                digits = c.is_ascii_digit();
            }
            cur.push(c);
        }
    }
    flush(&mut cur, digits, &mut out);
    while out.last().is_some_and(is_null) {
        out.pop();
    }
    out
}

fn cmp_item(a: Option<&Item>, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (Some(Item::Num(n)), None) => {
            if n.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Some(Item::Qual(q)), None) => qual_rank(q).cmp(&(5, "")),
        (None, Some(y)) => cmp_item(Some(y), None).reverse(),
        (Some(Item::Num(x)), Some(Item::Num(y))) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        (Some(Item::Num(_)), Some(Item::Qual(_))) => Ordering::Greater,
        (Some(Item::Qual(_)), Some(Item::Num(_))) => Ordering::Less,
        (Some(Item::Qual(x)), Some(Item::Qual(y))) => qual_rank(x).cmp(&qual_rank(y)),
    }
}

/// Compares two Maven versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (items(a), items(b));
    (0..a.len().max(b.len()))
        .map(|i| cmp_item(a.get(i), b.get(i)))
        .find(|c| c.is_ne())
        .unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::*;

    #[test]
    fn maven_tricky_cases() {
        for (a, b, want) in [
            ("1.0", "1", Equal),
            ("1.0.0", "1.ga", Equal),
            ("1-final", "1", Equal),
            ("1.0-alpha1", "1.0", Less),
            ("1.0-alpha1", "1.0-beta1", Less),
            ("1.0-rc1", "1.0-cr1", Equal),
            ("1.0-SNAPSHOT", "1.0", Less),
            ("1.0-rc1", "1.0-SNAPSHOT", Less),
            ("1.0", "1.0-sp1", Less),
            ("1.0-sp1", "1.0.1", Less),
            ("2.12.7.1", "2.12.7", Greater),
            ("1.0a1", "1.0-alpha-1", Equal),
            ("1.10", "1.9", Greater),
            ("2.17.0", "2.17.1", Less),
            ("1.0-foo", "1.0-sp", Greater),
            ("1.0-alpha1", "1-alpha1", Equal),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
