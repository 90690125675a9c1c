//! Ecosystems as OSV names them (`Debian:12`, `Alpine:v3.19`, `npm`,
//! `PyPI`, ...), the version ordering each uses, and package-name
//! normalisation where an ecosystem treats names loosely (PyPI).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::version::VersionScheme;

/// The kind of an ecosystem, without its release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EcosystemKind {
    /// `Debian:N` (dpkg).
    Debian,
    /// `Ubuntu:NN.NN` (dpkg).
    Ubuntu,
    /// `Alpine:vN.N` (apk).
    Alpine,
    /// `Rocky Linux:N` (rpm).
    RockyLinux,
    /// `AlmaLinux:N` (rpm).
    AlmaLinux,
    /// `openSUSE` and `SUSE` releases (rpm).
    Suse,
    /// `npm`.
    Npm,
    /// `PyPI`.
    PyPi,
    /// `crates.io`.
    CratesIo,
    /// `Go` (module paths; the toolchain is `stdlib`).
    Go,
    /// `RubyGems`.
    RubyGems,
    /// `Maven` (`group:artifact`).
    Maven,
}

impl EcosystemKind {
    /// OSV's name for the kind.
    pub fn osv_name(self) -> &'static str {
        match self {
            EcosystemKind::Debian => "Debian",
            EcosystemKind::Ubuntu => "Ubuntu",
            EcosystemKind::Alpine => "Alpine",
            EcosystemKind::RockyLinux => "Rocky Linux",
            EcosystemKind::AlmaLinux => "AlmaLinux",
            EcosystemKind::Suse => "SUSE",
            EcosystemKind::Npm => "npm",
            EcosystemKind::PyPi => "PyPI",
            EcosystemKind::CratesIo => "crates.io",
            EcosystemKind::Go => "Go",
            EcosystemKind::RubyGems => "RubyGems",
            EcosystemKind::Maven => "Maven",
        }
    }

    /// The version ordering of the kind.
    pub fn scheme(self) -> VersionScheme {
        match self {
            EcosystemKind::Debian | EcosystemKind::Ubuntu => VersionScheme::Dpkg,
            EcosystemKind::Alpine => VersionScheme::Apk,
            EcosystemKind::RockyLinux | EcosystemKind::AlmaLinux | EcosystemKind::Suse => {
                VersionScheme::Rpm
            }
            EcosystemKind::Npm | EcosystemKind::CratesIo | EcosystemKind::Go => {
                VersionScheme::Semver
            }
            EcosystemKind::PyPi => VersionScheme::Pep440,
            EcosystemKind::RubyGems => VersionScheme::Gem,
            EcosystemKind::Maven => VersionScheme::Maven,
        }
    }

    /// Whether packages of this kind come from an operating system's database.
    pub fn is_os(self) -> bool {
        matches!(
            self.scheme(),
            VersionScheme::Dpkg | VersionScheme::Apk | VersionScheme::Rpm
        )
    }
}

/// An ecosystem with its release where OSV names one (`Debian:12`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ecosystem {
    /// The kind.
    pub kind: EcosystemKind,
    /// The release (`12`, `v3.19`), for operating systems.
    pub release: Option<String>,
}

impl Ecosystem {
    /// A language ecosystem, which has no release.
    pub fn lang(kind: EcosystemKind) -> Ecosystem {
        Ecosystem {
            kind,
            release: None,
        }
    }

    /// The form a package name is indexed under: PyPI names are
    /// case-insensitive with `-`, `_` and `.` equivalent (PEP 503); others are
    /// kept as written.
    pub fn normalize_name(&self, name: &str) -> String {
        match self.kind {
            EcosystemKind::PyPi => name
                .trim()
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c == '_' || c == '.' { '-' } else { c })
                .collect(),
            _ => name.trim().to_string(),
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.osv_name())?;
        if let Some(r) = &self.release {
            write!(f, ":{r}")?;
        }
        Ok(())
    }
}

/// An OSV ecosystem name this scanner does not match (`Packagist`, `GIT`, ...).
#[derive(Debug, thiserror::Error)]
#[error("unsupported ecosystem {0:?}")]
pub struct UnsupportedEcosystem(pub String);

impl FromStr for Ecosystem {
    type Err = UnsupportedEcosystem;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (base, release) = match s.split_once(':') {
            Some((b, r)) => (b, Some(r)),
            None => (s, None),
        };
        let kind = match base {
            "Debian" => EcosystemKind::Debian,
            "Ubuntu" => EcosystemKind::Ubuntu,
            "Alpine" => EcosystemKind::Alpine,
            "Rocky Linux" => EcosystemKind::RockyLinux,
            "AlmaLinux" => EcosystemKind::AlmaLinux,
            "SUSE" | "openSUSE" => EcosystemKind::Suse,
            "npm" => EcosystemKind::Npm,
            "PyPI" => EcosystemKind::PyPi,
            "crates.io" => EcosystemKind::CratesIo,
            "Go" => EcosystemKind::Go,
            "RubyGems" => EcosystemKind::RubyGems,
            "Maven" => EcosystemKind::Maven,
            _ => return Err(UnsupportedEcosystem(s.to_string())),
        };
        let release = if kind.is_os() {
            // `Ubuntu:22.04:LTS` and `Ubuntu:Pro:18.04:LTS` name the release 22.04/18.04.
            release.map(|r| match kind {
                EcosystemKind::Ubuntu => r
                    .split(':')
                    .find(|p| p.starts_with(|c: char| c.is_ascii_digit()))
                    .unwrap_or(r)
                    .to_string(),
                _ => r.to_string(),
            })
        } else {
            None
        };
        Ok(Ecosystem { kind, release })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osv_names_round_trip() {
        for name in [
            "Debian:12",
            "Alpine:v3.19",
            "npm",
            "PyPI",
            "crates.io",
            "Go",
            "Rocky Linux:9",
        ] {
            assert_eq!(name.parse::<Ecosystem>().unwrap().to_string(), name);
        }
        assert_eq!(
            "Ubuntu:22.04:LTS".parse::<Ecosystem>().unwrap().to_string(),
            "Ubuntu:22.04"
        );
        assert!("Packagist".parse::<Ecosystem>().is_err());
        let py = Ecosystem::lang(EcosystemKind::PyPi);
        assert_eq!(py.normalize_name("Zope.Interface_x"), "zope-interface-x");
    }
}
