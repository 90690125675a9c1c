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
}
