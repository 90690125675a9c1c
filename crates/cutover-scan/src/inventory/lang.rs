//! Language package manifests and lockfiles: npm, Python, Cargo, RubyGems
//! and Maven's `pom.properties`. Each parser reads one file's bytes; a
//! malformed file gives a note, not an error.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::ecosystem::{Ecosystem, EcosystemKind};

use super::{Package, Parsed};

fn pkg(kind: EcosystemKind, name: &str, version: &str, path: &str) -> Package {
    Package {
        ecosystem: Ecosystem::lang(kind),
        name: name.trim().to_string(),
        version: version.trim().to_string(),
        source: None,
        path: path.to_string(),
    }
}

#[derive(Deserialize)]
struct NpmLock {
    /// v2/v3: `node_modules/a/node_modules/b` → entry.
    #[serde(default)]
    packages: BTreeMap<String, NpmEntry>,
    /// v1: name → entry, nested.
    #[serde(default)]
    dependencies: BTreeMap<String, NpmV1Entry>,
}

#[derive(Deserialize)]
struct NpmEntry {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    link: bool,
}

#[derive(Deserialize)]
struct NpmV1Entry {
    version: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, NpmV1Entry>,
}

/// `package-lock.json`, lockfile versions 1, 2 and 3.
pub(super) fn npm_lock(bytes: &[u8], path: &str) -> Parsed {
    let lock: NpmLock = match serde_json::from_slice(bytes) {
        Ok(l) => l,
        Err(e) => return Parsed::note(path, format_args!("not a package-lock.json: {e}")),
    };
    let mut out = Vec::new();
    if !lock.packages.is_empty() {
        for (key, e) in &lock.packages {
            let Some(at) = key.rfind("node_modules/") else {
                continue;
            };
            if e.link {
                continue;
            }
            let name = e
                .name
                .clone()
                .unwrap_or_else(|| key[at + "node_modules/".len()..].to_string());
            if let Some(v) = &e.version {
                out.push(pkg(EcosystemKind::Npm, &name, v, path));
            }
        }
    } else {
        // v1: walk the nested tree without recursion (a hostile depth cannot overflow).
        let mut stack: Vec<(&String, &NpmV1Entry)> = lock.dependencies.iter().collect();
        while let Some((name, e)) = stack.pop() {
            if let Some(v) = e.version.as_deref().filter(|v| !v.contains(':')) {
                out.push(pkg(EcosystemKind::Npm, name, v, path));
            }
            stack.extend(e.dependencies.iter());
        }
    }
    Parsed {
        packages: out,
        ..Parsed::default()
    }
}

#[derive(Deserialize)]
struct PackageJson {
    name: Option<String>,
    version: Option<String>,
}

/// `node_modules/NAME/package.json`: an installed npm package.
pub(super) fn npm_package_json(bytes: &[u8], path: &str) -> Parsed {
    match serde_json::from_slice::<PackageJson>(bytes) {
        Ok(PackageJson {
            name: Some(n),
            version: Some(v),
        }) => Parsed {
            packages: vec![pkg(EcosystemKind::Npm, &n, &v, path)],
            ..Parsed::default()
        },
        Ok(_) => Parsed::default(),
        Err(e) => Parsed::note(path, format_args!("not a package.json: {e}")),
    }
}

/// A `*.dist-info/METADATA` or `*.egg-info/PKG-INFO`: `Name:` and `Version:`
/// in the header block.
pub(super) fn python_metadata(text: &str, path: &str) -> Vec<Package> {
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name.get_or_insert(v.trim());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version.get_or_insert(v.trim());
        }
    }
    match (name, version) {
        (Some(n), Some(v)) => vec![pkg(EcosystemKind::PyPi, n, v, path)],
        _ => Vec::new(),
    }
}

#[derive(Deserialize)]
struct TomlLock {
    #[serde(default)]
    package: Vec<TomlLockPackage>,
}

#[derive(Deserialize)]
struct TomlLockPackage {
    name: String,
    version: String,
    source: Option<toml::Value>,
}

/// `poetry.lock` or `Cargo.lock`: `[[package]]` tables. For Cargo only
/// packages with a `source` (from a registry or git) count: path packages
/// are the project's own crates.
pub(super) fn toml_lock(text: &str, path: &str, kind: EcosystemKind) -> Parsed {
    let lock: TomlLock = match toml::from_str(text) {
        Ok(l) => l,
        Err(e) => return Parsed::note(path, format_args!("not a lockfile: {e}")),
    };
    let packages = lock
        .package
        .iter()
        .filter(|p| kind != EcosystemKind::CratesIo || p.source.is_some())
        .map(|p| pkg(kind, &p.name, &p.version, path))
        .collect();
    Parsed {
        packages,
        ..Parsed::default()
    }
}

#[derive(Deserialize)]
struct PipfileLock {
    #[serde(default)]
    default: BTreeMap<String, PipfileEntry>,
    #[serde(default)]
    develop: BTreeMap<String, PipfileEntry>,
}

#[derive(Deserialize)]
struct PipfileEntry {
    version: Option<String>,
}

/// `Pipfile.lock`: `default` and `develop`, versions written `==1.2.3`.
pub(super) fn pipfile_lock(bytes: &[u8], path: &str) -> Parsed {
    let lock: PipfileLock = match serde_json::from_slice(bytes) {
        Ok(l) => l,
        Err(e) => return Parsed::note(path, format_args!("not a Pipfile.lock: {e}")),
    };
    let packages = lock
        .default
        .iter()
        .chain(&lock.develop)
        .filter_map(|(n, e)| {
            Some(pkg(
                EcosystemKind::PyPi,
                n,
                e.version.as_deref()?.strip_prefix("==")?,
                path,
            ))
        })
        .collect();
    Parsed {
        packages,
        ..Parsed::default()
    }
}

/// `requirements*.txt`: only exact pins (`name==version`, extras and
/// environment markers stripped) name an installed version.
pub(super) fn requirements(text: &str, path: &str) -> Vec<Package> {
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?.split(';').next()?.trim();
            let (name, version) = l.split_once("==")?;
            let name = name.split('[').next()?.trim();
            let version = version.split_whitespace().next()?.trim_end_matches('\\');
            (!name.is_empty() && !version.is_empty() && !version.contains('*'))
                .then(|| pkg(EcosystemKind::PyPi, name, version, path))
        })
        .collect()
}

/// `Gemfile.lock`: the `specs:` of the `GEM` section, `    name (version)`
/// at four spaces (six-space lines are their dependencies).
pub(super) fn gemfile_lock(text: &str, path: &str) -> Vec<Package> {
    let mut in_gem = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_gem = line.trim() == "GEM";
            continue;
        }
        if !in_gem || !line.starts_with("    ") || line.starts_with("     ") {
            continue;
        }
        let Some((name, rest)) = line.trim().split_once(" (") else {
            continue;
        };
        let version = rest.trim_end_matches(')');
        // `nokogiri (1.15.4-x86_64-linux)`: the platform is not part of the version.
        let version = version.split_once('-').map_or(version, |(v, _)| v);
        out.push(pkg(EcosystemKind::RubyGems, name, version, path));
    }
    out
}

/// Maven's `META-INF/maven/GROUP/ARTIFACT/pom.properties`.
pub(super) fn pom_properties(text: &str, path: &str) -> Option<Package> {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim())
        })
    };
    let (g, a, v) = (get("groupId")?, get("artifactId")?, get("version")?);
    Some(pkg(EcosystemKind::Maven, &format!("{g}:{a}"), v, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &[Package]) -> Vec<String> {
        let mut v: Vec<String> = p
            .iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn npm_lock_v1_v2_v3() {
        let v1 = br#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}},"local":{"version":"file:../x"}}}"#;
        assert_eq!(names(&npm_lock(v1, "p").packages), ["a@1.0.0", "b@2.0.0"]);
        let v3 = br#"{"lockfileVersion":3,"packages":{"":{"name":"app","version":"0.1.0"},"node_modules/@s/c":{"version":"3.0.0"},"node_modules/a/node_modules/d":{"version":"4.0.0"},"node_modules/l":{"link":true}}}"#;
        assert_eq!(
            names(&npm_lock(v3, "p").packages),
            ["@s/c@3.0.0", "d@4.0.0"]
        );
        assert!(!npm_lock(b"{not json", "p").notes.is_empty());
    }

    #[test]
    fn python_sources() {
        let m = python_metadata(
            "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n\nName: not-this\n",
            "p",
        );
        assert_eq!(names(&m), ["Jinja2@3.1.2"]);
        let r = requirements(
            "# c\nrequests[socks]==2.31.0 ; python_version>'3'\nflask>=2\nurllib3==1.26.* \n",
            "p",
        );
        assert_eq!(names(&r), ["requests@2.31.0"]);
        let p = pipfile_lock(
            br#"{"_meta":{},"default":{"django":{"version":"==4.2.1"}},"develop":{"x":{}}}"#,
            "p",
        );
        assert_eq!(names(&p.packages), ["django@4.2.1"]);
        let poetry = toml_lock(
            "[[package]]\nname = \"pyyaml\"\nversion = \"5.3.1\"\n",
            "p",
            EcosystemKind::PyPi,
        );
        assert_eq!(names(&poetry.packages), ["pyyaml@5.3.1"]);
    }

    #[test]
    fn cargo_gem_maven() {
        let c = "version = 3\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
        assert_eq!(
            names(&toml_lock(c, "p", EcosystemKind::CratesIo).packages),
            ["smallvec@1.6.0"]
        );
        let g = "GEM\n  remote: https://rubygems.org/\n  specs:\n    nokogiri (1.15.4-x86_64-linux)\n      racc (~> 1.4)\n    rack (2.2.3)\n\nPLATFORMS\n  ruby\n";
        assert_eq!(
            names(&gemfile_lock(g, "p")),
            ["nokogiri@1.15.4", "rack@2.2.3"]
        );
        let m = pom_properties(
            "#x\ngroupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n",
            "p",
        )
        .unwrap();
        assert_eq!(m.name, "org.apache.logging.log4j:log4j-core");
    }
}
