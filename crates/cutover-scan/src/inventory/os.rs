//! Operating-system package databases: dpkg's `status` and `status.d/`,
//! apk's `installed`, and `os-release` for the distribution.

use crate::ecosystem::{Ecosystem, EcosystemKind};

use super::{Distro, Package, SourcePackage};

/// The fields of each RFC 822-style paragraph (dpkg) or `K:value` block
/// (apk), with continuation lines dropped.
fn paragraphs(text: &str, sep: char) -> impl Iterator<Item = Vec<(&str, &str)>> {
    text.split("\n\n").map(move |para| {
        para.lines()
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(sep))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect()
    })
}

fn field<'a>(fields: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .filter(|v| !v.is_empty())
}

/// dpkg's status file (`require_status`: only `install ok installed`
/// packages count) or a distroless `status.d/` file (no Status field).
pub(super) fn dpkg(text: &str, path: &str, require_status: bool) -> Vec<Package> {
    let text = text.replace("\r\n", "\n");
    paragraphs(&text, ':')
        .filter_map(|f| {
            if require_status {
                let status = field(&f, "Status")?;
                if status.split_whitespace().last() != Some("installed") {
                    return None;
                }
            }
            let name = field(&f, "Package")?;
            let version = field(&f, "Version")?;
            let source = field(&f, "Source").map(|s| match s.split_once(' ') {
                Some((n, v)) => SourcePackage {
                    name: n.to_string(),
                    version: Some(
                        v.trim()
                            .trim_start_matches('(')
                            .trim_end_matches(')')
                            .to_string(),
                    ),
                },
                None => SourcePackage {
                    name: s.to_string(),
                    version: None,
                },
            });
            Some(Package {
                ecosystem: Ecosystem::lang(EcosystemKind::Debian),
                name: name.to_string(),
                version: version.to_string(),
                source,
                path: path.to_string(),
            })
        })
        .collect()
}

/// apk's `lib/apk/db/installed`: `P:` name, `V:` version, `o:` origin.
pub(super) fn apk(text: &str, path: &str) -> Vec<Package> {
    let text = text.replace("\r\n", "\n");
    paragraphs(&text, ':')
        .filter_map(|f| {
            let name = field(&f, "P")?;
            Some(Package {
                ecosystem: Ecosystem::lang(EcosystemKind::Alpine),
                name: name.to_string(),
                version: field(&f, "V")?.to_string(),
                source: field(&f, "o")
                    .filter(|o| *o != name)
                    .map(|o| SourcePackage {
                        name: o.to_string(),
                        version: None,
                    }),
                path: path.to_string(),
            })
        })
        .collect()
}

/// Reads `os-release` and names the OSV ecosystem of its release.
pub fn parse_os_release(text: &str) -> Distro {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches(['"', '\'']).to_string())
        })
    };
    let id = get("ID").unwrap_or_default();
    let version_id = get("VERSION_ID").filter(|v| !v.is_empty());
    let major = version_id
        .as_deref()
        .map(|v| v.split('.').next().unwrap_or(v).to_string());
    let (kind, release) = match id.as_str() {
        "debian" => (Some(EcosystemKind::Debian), major),
        "ubuntu" => (Some(EcosystemKind::Ubuntu), version_id.clone()),
        "alpine" => (
            Some(EcosystemKind::Alpine),
            version_id
                .as_deref()
                .map(|v| format!("v{}", v.split('.').take(2).collect::<Vec<_>>().join("."))),
        ),
        "rocky" => (Some(EcosystemKind::RockyLinux), major),
        "almalinux" => (Some(EcosystemKind::AlmaLinux), major),
        _ => (None, None),
    };
    let ecosystem = match (kind, release) {
        (Some(kind), Some(release)) => Some(Ecosystem {
            kind,
            release: Some(release),
        }),
        _ => None,
    };
    Distro {
        id,
        version_id,
        pretty_name: get("PRETTY_NAME"),
        ecosystem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_only_installed_with_source() {
        let status = "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\nSource: openssl\nDescription: x\n multi\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\nSource: bash (5.2.15-2)\n";
        let p = dpkg(status, "var/lib/dpkg/status", true);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source.as_ref().unwrap().name, "openssl");
        assert_eq!(
            p[1].source.as_ref().unwrap().version.as_deref(),
            Some("5.2.15-2")
        );
    }

    #[test]
    fn apk_installed() {
        let db = "C:Q1abc=\nP:libcrypto3\nV:3.1.4-r5\no:openssl\n\nP:musl\nV:1.2.4_git20230717-r4\no:musl\n";
        let p = apk(db, "lib/apk/db/installed");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source.as_ref().unwrap().name, "openssl");
        assert!(p[1].source.is_none());
    }

    #[test]
    fn os_release_ecosystems() {
        let d = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        assert_eq!(d.ecosystem.unwrap().to_string(), "Debian:12");
        let a = parse_os_release("ID=alpine\nVERSION_ID=3.19.1\n");
        assert_eq!(a.ecosystem.unwrap().to_string(), "Alpine:v3.19");
        let u = parse_os_release("ID=ubuntu\nVERSION_ID=\"22.04\"\n");
        assert_eq!(u.ecosystem.unwrap().to_string(), "Ubuntu:22.04");
        assert!(parse_os_release("ID=debian\n").ecosystem.is_none());
    }
}
