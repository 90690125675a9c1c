//! What an image holds: its distribution and its packages, OS and language
//! ones. [`classify`] says which files the scanner reads; each parser
//! module turns one such file into packages.

mod bdb;
mod gobin;
mod jar;
mod lang;
mod os;
mod rpm;

use serde::{Deserialize, Serialize};

use crate::ecosystem::{Ecosystem, EcosystemKind};

pub use bdb::build_bdb;
pub use gobin::build_go_binary;
pub use jar::build_jar;
pub use os::parse_os_release;
pub use rpm::build_header as build_rpm_header;

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    /// The ecosystem; for OS packages, the distribution's (`Debian:12`) once known.
    pub ecosystem: Ecosystem,
    /// The name (binary package for OS packages; `group:artifact` for Maven).
    pub name: String,
    /// The installed version.
    pub version: String,
    /// The source package, where the package database names one (dpkg's
    /// `Source:`, apk's origin): distributions publish advisories by it.
    pub source: Option<SourcePackage>,
    /// The file it was found in.
    pub path: String,
}

/// A source package's name, and version where it differs from the binary's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourcePackage {
    /// The name.
    pub name: String,
    /// The version, when it differs from the binary package's (binNMUs).
    pub version: Option<String>,
}

/// The distribution an image is based on, from `etc/os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    /// `ID` (`debian`, `alpine`, ...).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.19.1`), when there is one.
    pub version_id: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// The OSV ecosystem its packages are matched in (`Debian:12`,
    /// `Alpine:v3.19`); `None` for a distribution or release OSV has no name for.
    pub ecosystem: Option<Ecosystem>,
}

/// The result of a scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// The distribution, if the image has an os-release file.
    pub distro: Option<Distro>,
    /// The packages, sorted and without duplicates.
    pub packages: Vec<Package>,
    /// Files skipped or partly read, and why (never fatal).
    pub notes: Vec<String>,
}

/// The kinds of files the scanner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    OsRelease,
    DpkgStatus,
    DpkgStatusD,
    ApkInstalled,
    RpmSqlite,
    RpmBerkeley,
    NpmLock,
    NpmPackageJson,
    PythonMetadata,
    PoetryLock,
    PipfileLock,
    Requirements,
    CargoLock,
    GemfileLock,
    PomProperties,
    Jar,
    /// An executable: read if it is an ELF file with Go build info.
    Executable,
}

/// Which kind of file a (normalised, relative) path is, if any; `mode` is
/// the tar entry's permission bits.
pub(crate) fn classify(path: &str, mode: u32) -> Option<Kind> {
    let file = path.rsplit('/').next().unwrap_or(path);
    let parent = path.rsplit('/').nth(1).unwrap_or("");
    Some(match path {
        "etc/os-release" | "usr/lib/os-release" => Kind::OsRelease,
        "var/lib/dpkg/status" => Kind::DpkgStatus,
        "lib/apk/db/installed" => Kind::ApkInstalled,
        "var/lib/rpm/rpmdb.sqlite" | "usr/lib/sysimage/rpm/rpmdb.sqlite" => Kind::RpmSqlite,
        "var/lib/rpm/Packages" | "usr/lib/sysimage/rpm/Packages" => Kind::RpmBerkeley,
        _ if path.starts_with("var/lib/dpkg/status.d/") && !file.ends_with(".md5sums") => {
            Kind::DpkgStatusD
        }
        _ if file == "package-lock.json" && !path.contains("node_modules/") => Kind::NpmLock,
        _ if file == "package.json" && is_node_module_dir(path) => Kind::NpmPackageJson,
        _ if file == "METADATA" && parent.ends_with(".dist-info") => Kind::PythonMetadata,
        _ if file == "PKG-INFO" && parent.ends_with(".egg-info") => Kind::PythonMetadata,
        _ if file == "poetry.lock" => Kind::PoetryLock,
        _ if file == "Pipfile.lock" => Kind::PipfileLock,
        _ if file.starts_with("requirements") && file.ends_with(".txt") => Kind::Requirements,
        _ if file == "Cargo.lock" => Kind::CargoLock,
        _ if file == "Gemfile.lock" => Kind::GemfileLock,
        _ if file == "pom.properties" && path.contains("META-INF/maven/") => Kind::PomProperties,
        _ if [".jar", ".war", ".ear"].iter().any(|s| file.ends_with(s)) => Kind::Jar,
        _ if mode & 0o111 != 0 => Kind::Executable,
        _ => return None,
    })
}

/// `.../node_modules/NAME/package.json` or `.../node_modules/@scope/NAME/package.json`.
fn is_node_module_dir(path: &str) -> bool {
    let parts: Vec<&str> = path.rsplit('/').take(4).collect();
    match parts.as_slice() {
        [_, _, "node_modules", ..] => true,
        [_, _, scope, "node_modules"] => scope.starts_with('@'),
        _ => false,
    }
}

/// What one file contributed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    pub(crate) packages: Vec<Package>,
    pub(crate) distro: Option<Distro>,
    pub(crate) notes: Vec<String>,
}

impl Parsed {
    pub(crate) fn note(path: &str, msg: impl std::fmt::Display) -> Parsed {
        Parsed {
            notes: vec![format!("{path}: {msg}")],
            ..Parsed::default()
        }
    }
}

/// Parses a file of a kind other than `Executable` (which streams).
pub(crate) fn parse(kind: Kind, path: &str, bytes: &[u8]) -> Parsed {
    let text = || String::from_utf8_lossy(bytes);
    let packages = |v: Vec<Package>| Parsed {
        packages: v,
        ..Parsed::default()
    };
    match kind {
        Kind::OsRelease => Parsed {
            distro: Some(parse_os_release(&text())),
            ..Parsed::default()
        },
        Kind::DpkgStatus => packages(os::dpkg(&text(), path, true)),
        Kind::DpkgStatusD => packages(os::dpkg(&text(), path, false)),
        Kind::ApkInstalled => packages(os::apk(&text(), path)),
        Kind::RpmSqlite => rpm::sqlite(bytes, path),
        Kind::RpmBerkeley => rpm::berkeley(bytes, path),
        Kind::NpmLock => lang::npm_lock(bytes, path),
        Kind::NpmPackageJson => lang::npm_package_json(bytes, path),
        Kind::PythonMetadata => packages(lang::python_metadata(&text(), path)),
        Kind::PoetryLock => lang::toml_lock(&text(), path, EcosystemKind::PyPi),
        Kind::CargoLock => lang::toml_lock(&text(), path, EcosystemKind::CratesIo),
        Kind::PipfileLock => lang::pipfile_lock(bytes, path),
        Kind::Requirements => packages(lang::requirements(&text(), path)),
        Kind::GemfileLock => packages(lang::gemfile_lock(&text(), path)),
        Kind::PomProperties => packages(lang::pom_properties(&text(), path).into_iter().collect()),
        Kind::Jar => jar::read(bytes, path),
        Kind::Executable => Parsed::default(),
    }
}

pub(crate) use gobin::scan as scan_go_binary;

/// Builds the inventory from what the final view's files contributed:
/// the distribution from `etc/os-release` (else `usr/lib/os-release`), OS
/// packages put in its ecosystem, duplicates dropped.
pub(crate) fn assemble(
    files: impl IntoIterator<Item = (String, Parsed)>,
    mut notes: Vec<String>,
) -> Inventory {
    let mut distro: Option<(bool, Distro)> = None;
    let mut packages = Vec::new();
    for (path, p) in files {
        if let Some(d) = p.distro {
            let preferred = path == "etc/os-release";
            if distro.as_ref().is_none_or(|(pref, _)| preferred && !pref) {
                distro = Some((preferred, d));
            }
        }
        packages.extend(p.packages);
        notes.extend(p.notes);
    }
    let distro = distro.map(|(_, d)| d);
    let os_eco = distro.as_ref().and_then(|d| d.ecosystem.clone());
    let mut unplaced = 0;
    for p in packages.iter_mut().filter(|p| p.ecosystem.kind.is_os()) {
        match &os_eco {
            Some(e) if e.kind.scheme() == p.ecosystem.kind.scheme() => p.ecosystem = e.clone(),
            // Kept, but without a release it matches no advisory.
            _ => unplaced += 1,
        }
    }
    if unplaced > 0 {
        notes.push(format!(
            "{unplaced} OS packages have no known distribution release (os-release missing or unknown); they are not matched"
        ));
    }
    packages.sort();
    packages
        .dedup_by(|a, b| a.ecosystem == b.ecosystem && a.name == b.name && a.version == b.version);
    Inventory {
        distro,
        packages,
        notes,
    }
}
