//! Version orderings, one per ecosystem family, behind [`compare`].
//!
//! OSV ranges are evaluated with the ordering of the package's ecosystem:
//! dpkg (Debian, Ubuntu), apk (Alpine), rpm (Red Hat family, SUSE), semver
//! (npm, crates.io, Go), PEP 440 (PyPI), Maven and RubyGems. Semver and
//! PEP 440 use well-kept crates; the others are short hand-written
//! algorithms (see ARCHITECTURE.md for why).

mod apk;
mod dpkg;
mod gem;
mod maven;
mod rpm;

use std::cmp::Ordering;

pub use apk::compare as apk_compare;
pub use dpkg::compare as dpkg_compare;
pub use gem::compare as gem_compare;
pub use maven::compare as maven_compare;
pub use rpm::compare as rpm_compare;

/// Which ordering an ecosystem uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionScheme {
    /// Debian's `epoch:upstream-revision`.
    Dpkg,
    /// Alpine's apk versions.
    Apk,
    /// rpm's `rpmvercmp` with epoch and release.
    Rpm,
    /// Semantic versioning (a leading `v` is allowed, as Go writes it).
    Semver,
    /// PEP 440.
    Pep440,
    /// Maven's ComparableVersion.
    Maven,
    /// RubyGems' `Gem::Version`.
    Gem,
}

/// Compares two versions with an ordering; `None` when either does not parse
/// (for orderings that can refuse a version: semver and PEP 440).
pub fn compare(ordering: VersionScheme, a: &str, b: &str) -> Option<Ordering> {
    match ordering {
        VersionScheme::Dpkg => Some(dpkg::compare(a, b)),
        VersionScheme::Apk => Some(apk::compare(a, b)),
        VersionScheme::Rpm => Some(rpm::compare(a, b)),
        VersionScheme::Maven => Some(maven::compare(a, b)),
        VersionScheme::Gem => Some(gem::compare(a, b)),
        VersionScheme::Semver => {
            let pa = semver::Version::parse(a.strip_prefix('v').unwrap_or(a)).ok()?;
            let pb = semver::Version::parse(b.strip_prefix('v').unwrap_or(b)).ok()?;
            // Build metadata does not order versions (semver 2.0.0 §10).
            Some(pa.cmp_precedence(&pb))
        }
        VersionScheme::Pep440 => {
            let pa: pep440_rs::Version = a.trim().parse().ok()?;
            let pb: pep440_rs::Version = b.trim().parse().ok()?;
            Some(pa.cmp(&pb))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn check(o: VersionScheme, cases: &[(&str, &str, Ordering)]) {
        for (a, b, want) in cases {
            assert_eq!(compare(o, a, b), Some(*want), "{o:?}: {a} vs {b}");
            assert_eq!(compare(o, b, a), Some(want.reverse()), "{o:?}: {b} vs {a}");
        }
    }

    #[test]
    fn semver_with_go_prefix_and_prerelease() {
        check(
            VersionScheme::Semver,
            &[
                ("v1.2.3", "1.2.3", Equal),
                ("1.0.0-alpha", "1.0.0", Less),
                ("1.0.0-alpha.1", "1.0.0-alpha.beta", Less),
                ("1.0.0-rc.1", "1.0.0-beta.11", Greater),
                ("1.0.0+build1", "1.0.0+build2", Equal),
                ("v0.0.0-20210101000000-abcdef123456", "v0.1.0", Less),
            ],
        );
        assert_eq!(compare(VersionScheme::Semver, "not", "1.0.0"), None);
    }

    #[test]
    fn pep440_tricky_cases() {
        check(
            VersionScheme::Pep440,
            &[
                ("1.0.dev1", "1.0a1", Less),
                ("1.0a1", "1.0b1", Less),
                ("1.0rc1", "1.0", Less),
                ("1.0", "1.0.post1", Less),
                ("1.0", "1.0.0", Equal),
                ("1!0.1", "2.0", Greater),
                ("1.0+local", "1.0", Greater),
            ],
        );
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;

        const SCHEMES: [VersionScheme; 7] = [
            VersionScheme::Dpkg,
            VersionScheme::Apk,
            VersionScheme::Rpm,
            VersionScheme::Semver,
            VersionScheme::Pep440,
            VersionScheme::Maven,
            VersionScheme::Gem,
        ];

        fn version() -> impl Strategy<Value = String> {
            "[0-9]{1,3}([.~+_^:-]?([0-9]{1,2}|a|b|rc|p|alpha|beta|sp|r[0-9])){0,4}"
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Every ordering is reflexive, antisymmetric and transitive on
            /// version-like strings, and never panics on any string.
            #[test]
            fn orderings_are_total_orders(a in version(), b in version(), c in version(), junk in ".{0,24}") {
                for s in SCHEMES {
                    let _ = compare(s, &junk, &a);
                    let (Some(ab), Some(ba)) = (compare(s, &a, &b), compare(s, &b, &a)) else { continue };
                    prop_assert_eq!(compare(s, &a, &a), Some(Ordering::Equal), "{:?} {}", s, a);
                    prop_assert_eq!(ab, ba.reverse(), "{:?}: {} vs {}", s, a, b);
                    if let (Some(bc), Some(ac)) = (compare(s, &b, &c), compare(s, &a, &c))
                        && ab.is_le()
                        && bc.is_le()
                    {
                        prop_assert!(ac.is_le(), "{:?}: {} <= {} <= {} but {:?}", s, a, b, c, ac);
                    }
                }
            }
        }

        /// dpkg's own answers, where dpkg is installed (this project's
        /// machines are Debian): the hand-written ordering must agree.
        #[test]
        fn dpkg_agrees_with_dpkg_compare_versions() {
            let Ok(status) = std::process::Command::new("dpkg").arg("--version").output() else {
                eprintln!("dpkg not installed; cross-check not run");
                return;
            };
            assert!(status.status.success());
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let strategy =
                "[0-9]{1,2}(:)?[0-9a-z]{1,3}([.~+][0-9a-z~]{1,3}){0,3}(-[0-9a-z.~+]{1,4})?";
            let mut checked = 0;
            let suffixes = ["~", "~~", "~1", "+b1", ".0", "a", "-1", "-0", "1", "~rc1-1"];
            for i in 0..150 {
                let a = strategy.new_tree(&mut runner).unwrap().current();
                // Half the pairs are near neighbours, where `~` and revisions decide.
                let b = if i % 2 == 0 {
                    format!("{a}{}", suffixes[i / 2 % suffixes.len()])
                } else {
                    strategy.new_tree(&mut runner).unwrap().current()
                };
                let dpkg_lt = |x: &str, y: &str| {
                    std::process::Command::new("dpkg")
                        .args(["--compare-versions", x, "lt", y])
                        .status()
                        .map(|s| s.success())
                        .unwrap_or(false)
                };
                let valid = std::process::Command::new("dpkg")
                    .args(["--validate-version", &a])
                    .status()
                    .is_ok_and(|s| s.success())
                    && std::process::Command::new("dpkg")
                        .args(["--validate-version", &b])
                        .status()
                        .is_ok_and(|s| s.success());
                if !valid {
                    continue;
                }
                assert_eq!(dpkg_compare(&a, &b).is_lt(), dpkg_lt(&a, &b), "{a} < {b}");
                assert_eq!(dpkg_compare(&b, &a).is_lt(), dpkg_lt(&b, &a), "{b} < {a}");
                checked += 1;
            }
            assert!(checked >= 50, "only {checked} valid version pairs");
        }
    }
}
