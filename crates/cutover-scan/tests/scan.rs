//! End-to-end tests of the scanner: layers built here (tar, gzip, zstd),
//! every inventory source, whiteouts, OSV import from a directory and a zip,
//! the database file, and findings.

use std::io::{Cursor, Write};

use cutover_scan::fixtures::{
    LayerBuilder, build_bdb, build_go_binary, build_jar, build_rpm_header, dpkg_paragraph,
    osv_record,
};
use cutover_scan::{
    AdvisoryDb, DbBuilder, Inventory, Limits, ScanError, Severity, SeverityCounts, import_dir,
    import_zip, scan, scan_with,
};

const HIGH: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"; // 7.5
const DEBIAN: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";

fn names(inv: &Inventory) -> Vec<String> {
    inv.packages
        .iter()
        .map(|p| format!("{} {}@{}", p.ecosystem, p.name, p.version))
        .collect()
}

fn base_layer(openssl: &str) -> LayerBuilder {
    let mut l = LayerBuilder::new();
    l.dir("etc")
        .file("etc/os-release", DEBIAN.as_bytes(), 0o644);
    let status = dpkg_paragraph("libssl3", openssl, Some("openssl"))
        + &dpkg_paragraph("bash", "5.2.15-2+b2", None);
    l.file("var/lib/dpkg/status", status.as_bytes(), 0o644);
    l
}

fn db_with(records: &[String]) -> AdvisoryDb {
    let mut b = DbBuilder::new();
    for r in records {
        assert!(b.add(&cutover_scan::osv::parse_record(r.as_bytes()).unwrap()));
    }
    b.build()
}

fn openssl_advisory() -> String {
    osv_record(
        "DSA-5532-1",
        "CVE-2023-5678",
        "Debian:12",
        "openssl",
        "3.0.11-1~deb12u2",
        HIGH,
    )
}

#[test]
fn a_vulnerable_package_gives_a_high_finding_and_the_fixed_one_none() {
    let db = db_with(&[openssl_advisory()]);
    let vulnerable = scan([Cursor::new(base_layer("3.0.11-1~deb12u1").gzip())]).unwrap();
    assert_eq!(
        vulnerable
            .distro
            .as_ref()
            .unwrap()
            .ecosystem
            .as_ref()
            .unwrap()
            .to_string(),
        "Debian:12"
    );
    let findings = db.matches(&vulnerable);
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = &findings[0];
    assert_eq!(f.name, "CVE-2023-5678");
    assert_eq!(f.advisory_id, "DSA-5532-1");
    assert_eq!(
        (f.package_name.as_str(), f.package_version.as_str()),
        ("libssl3", "3.0.11-1~deb12u1")
    );
    assert_eq!(f.fixed_version.as_deref(), Some("3.0.11-1~deb12u2"));
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.cvss.as_ref().unwrap().score, 7.5);
    assert_eq!(f.ecosystem, "Debian:12");
    let counts = SeverityCounts::of(&findings);
    assert_eq!(serde_json::to_string(&counts).unwrap(), r#"{"HIGH":1}"#);
    assert_eq!(counts.at_or_above("HIGH".parse().unwrap()), 1);
    assert_eq!(counts.at_or_above(Severity::Critical), 0);

    let fixed = scan([Cursor::new(base_layer("3.0.11-1~deb12u2").zstd())]).unwrap();
    assert!(db.matches(&fixed).is_empty());
}

#[test]
fn a_whiteout_removes_a_vulnerable_package() {
    let db = db_with(&[osv_record(
        "GHSA-1",
        "CVE-2021-1",
        "npm",
        "lodash",
        "4.17.21",
        HIGH,
    )]);
    let mut lower = LayerBuilder::new();
    lower.file(
        "app/node_modules/lodash/package.json",
        br#"{"name":"lodash","version":"4.17.20"}"#,
        0o644,
    );
    lower.file(
        "srv/node_modules/lodash/package.json",
        br#"{"name":"lodash","version":"4.17.19"}"#,
        0o644,
    );
    let lower = lower.tar();
    let before = scan([Cursor::new(lower.clone())]).unwrap();
    assert_eq!(db.matches(&before).len(), 2);

    let mut upper = LayerBuilder::new();
    upper.whiteout("app/node_modules/lodash").opaque("srv");
    let after = scan([Cursor::new(lower.clone()), Cursor::new(upper.tar())]).unwrap();
    assert!(after.packages.is_empty(), "{:?}", names(&after));

    // A later layer overwriting the file replaces its packages.
    let mut upgrade = LayerBuilder::new();
    upgrade.file(
        "app/node_modules/lodash/package.json",
        br#"{"name":"lodash","version":"4.17.21"}"#,
        0o644,
    );
    let after = scan([Cursor::new(lower), Cursor::new(upgrade.gzip())]).unwrap();
    assert_eq!(names(&after), ["npm lodash@4.17.19", "npm lodash@4.17.21"]);
    assert_eq!(db.matches(&after).len(), 1);
}

#[test]
fn every_inventory_source() {
    let apk = "P:libcrypto3\nV:3.1.4-r5\no:openssl\n\nP:musl\nV:1.2.4-r2\n\n";
    let rpmdb = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpmdb.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO Packages (blob) VALUES (?1)",
            [build_rpm_header("curl", "7.76.1", "26.el9", None)],
        )
        .unwrap();
        drop(conn);
        std::fs::read(&path).unwrap()
    };
    let pom = b"groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n";
    let jar = build_jar(&[(
        "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
        pom,
    )]);
    let go = build_go_binary(
        "go1.20.1",
        "path\tex.com/x\nmod\tex.com/x\t(devel)\t\ndep\tgolang.org/x/text\tv0.3.7\th1:a\n",
        1000,
    );
    let mut l = LayerBuilder::new();
    l.file("lib/apk/db/installed", apk.as_bytes(), 0o644)
        .file("var/lib/rpm/rpmdb.sqlite", &rpmdb, 0o644)
        .file(
            "usr/lib/sysimage/rpm/Packages",
            &build_bdb(&[build_rpm_header("bash", "4.4.20", "4.el8_6", None)], 4096),
            0o644,
        )
        .file(
            "var/lib/dpkg/status.d/tzdata",
            b"Package: tzdata\nVersion: 2024a-0+deb12u1\n",
            0o644,
        )
        .file(
            "var/lib/dpkg/status.d/python3.11",
            b"Package: python3.11\nVersion: 3.11.2-6\n",
            0o644,
        )
        .file(
            "var/lib/dpkg/status.d/python3.11.md5sums",
            b"abc  usr/bin/python3.11\n",
            0o644,
        )
        .file(
            "app/package-lock.json",
            br#"{"lockfileVersion":3,"packages":{"node_modules/minimist":{"version":"1.2.5"}}}"#,
            0o644,
        )
        .file(
            "usr/lib/python3/site-packages/PyYAML-5.3.1.dist-info/METADATA",
            b"Name: PyYAML\nVersion: 5.3.1\n\n",
            0o644,
        )
        .file(
            "app/poetry.lock",
            b"[[package]]\nname = \"jinja2\"\nversion = \"2.11.2\"\n",
            0o644,
        )
        .file(
            "app/Pipfile.lock",
            br#"{"default":{"django":{"version":"==3.2.1"}}}"#,
            0o644,
        )
        .file("app/requirements.txt", b"flask==1.0\n", 0o644)
        .file(
            "app/Cargo.lock",
            b"[[package]]\nname = \"time\"\nversion = \"0.1.43\"\nsource = \"registry+x\"\n",
            0o644,
        )
        .file(
            "app/Gemfile.lock",
            b"GEM\n  specs:\n    rack (2.2.3)\n",
            0o644,
        )
        .file("app/lib/app.jar", &jar, 0o644)
        .file("usr/local/bin/x", &go, 0o755)
        .file("usr/local/bin/script", b"#!/bin/sh\n", 0o755);
    let inv = scan([Cursor::new(l.zstd())]).unwrap();
    let got = names(&inv);
    for want in [
        "Alpine libcrypto3@3.1.4-r5",
        "Rocky Linux curl@7.76.1-26.el9",
        "Rocky Linux bash@4.4.20-4.el8_6",
        "Debian tzdata@2024a-0+deb12u1",
        "Debian python3.11@3.11.2-6",
        "npm minimist@1.2.5",
        "PyPI PyYAML@5.3.1",
        "PyPI jinja2@2.11.2",
        "PyPI django@3.2.1",
        "PyPI flask@1.0",
        "crates.io time@0.1.43",
        "RubyGems rack@2.2.3",
        "Maven org.apache.logging.log4j:log4j-core@2.14.1",
        "Go stdlib@1.20.1",
        "Go golang.org/x/text@v0.3.7",
    ] {
        assert!(got.contains(&want.to_string()), "missing {want} in {got:?}");
    }
    // Without os-release, OS packages are kept but said to be unmatched.
    assert!(
        inv.notes
            .iter()
            .any(|n| n.contains("no known distribution")),
        "{:?}",
        inv.notes
    );
}

#[test]
fn osv_import_from_a_directory_and_a_zip() {
    let dir = tempfile::tempdir().unwrap();
    let osv = dir.path().join("osv");
    std::fs::create_dir_all(osv.join("nested")).unwrap();
    std::fs::write(osv.join("a.json"), openssl_advisory()).unwrap();
    std::fs::write(
        osv.join("nested/b.json"),
        osv_record("PYSEC-1", "CVE-2020-1", "PyPI", "PyYAML", "5.4", HIGH),
    )
    .unwrap();
    std::fs::write(osv.join("bad.json"), "{\"id\": 3").unwrap();
    let mut withdrawn: serde_json::Value = serde_json::from_str(&osv_record(
        "GHSA-w",
        "CVE-2000-1",
        "npm",
        "x",
        "1.0.0",
        HIGH,
    ))
    .unwrap();
    withdrawn["withdrawn"] = "2024-01-02T00:00:00Z".into();
    std::fs::write(osv.join("w.json"), withdrawn.to_string()).unwrap();
    std::fs::write(
        osv.join("other.json"),
        osv_record("X-1", "CVE-2000-2", "Packagist", "y", "1", HIGH),
    )
    .unwrap();

    let imported = import_dir(&osv).unwrap();
    assert_eq!(imported.records.len(), 4);
    assert_eq!(imported.notes.len(), 1, "{:?}", imported.notes);
    let mut b = DbBuilder::new();
    let kept = imported.records.iter().filter(|r| b.add(r)).count();
    assert_eq!((kept, b.skipped()), (2, 2));
    let from_dir = b.build();

    // The same records in an all.zip.
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in [
        ("DSA-5532-1.json", openssl_advisory()),
        (
            "PYSEC-1.json",
            osv_record("PYSEC-1", "CVE-2020-1", "PyPI", "PyYAML", "5.4", HIGH),
        ),
    ] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.start_file("junk.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"[1,2,").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let imported = import_zip(Cursor::new(bytes)).unwrap();
    assert_eq!((imported.records.len(), imported.notes.len()), (2, 1));
    let mut b = DbBuilder::new();
    for r in imported.records.iter().rev() {
        b.add(r);
    }
    let from_zip = b.build();
    // Same data, other import order: same content version.
    assert_eq!(from_dir.version(), from_zip.version());
    assert!(import_zip(Cursor::new(b"not a zip".to_vec())).is_err());

    // A name written loosely still matches (PEP 503).
    let mut l = LayerBuilder::new();
    l.file(
        "usr/lib/python3/dist-packages/pyyaml-5.3.1.dist-info/METADATA",
        b"Name: pyyaml\nVersion: 5.3.1\n",
        0o644,
    );
    let inv = scan([Cursor::new(l.tar())]).unwrap();
    assert_eq!(from_zip.matches(&inv)[0].name, "CVE-2020-1");
}

#[test]
fn the_database_file_round_trips_and_detects_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("advisories.db");
    let db = db_with(&[openssl_advisory()]);
    db.save(&path).unwrap();
    let loaded = AdvisoryDb::load(&path).unwrap();
    assert_eq!(loaded.version(), db.version());
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded.get("DSA-5532-1").unwrap().name(), "CVE-2023-5678");
    let inv = scan([Cursor::new(base_layer("3.0.11-1").tar())]).unwrap();
    assert!(loaded.matches(&inv).is_empty());

    // More data: another version.
    let mut b = DbBuilder::from_db(&loaded);
    b.add(
        &cutover_scan::osv::parse_record(
            osv_record("GHSA-2", "CVE-2", "npm", "a", "1.0.0", HIGH).as_bytes(),
        )
        .unwrap(),
    );
    assert_ne!(b.build().version(), db.version());
    assert_eq!(DbBuilder::from_db(&loaded).build().version(), db.version());

    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    assert!(matches!(
        AdvisoryDb::from_bytes(&bytes),
        Err(ScanError::Database(_))
    ));
    for cut in [0, 5, 20, 45] {
        assert!(AdvisoryDb::from_bytes(&bytes[..cut]).is_err());
    }
}

#[test]
fn hostile_layers_give_errors_or_notes() {
    // Truncated gzip: an error, not a panic.
    let gz = base_layer("1").gzip();
    for cut in [1, 10, gz.len() / 2, gz.len() - 4] {
        assert!(
            scan([Cursor::new(gz[..cut].to_vec())]).is_err(),
            "cut {cut}"
        );
    }
    let zst = base_layer("1").zstd();
    assert!(scan([Cursor::new(zst[..zst.len() / 2].to_vec())]).is_err());
    // Path traversal: skipped with a note; the file is not taken as /etc/os-release.
    let mut l = LayerBuilder::new();
    l.raw_name(b"../../etc/os-release", DEBIAN.as_bytes());
    l.link("etc/os-release", "/etc/os-release", false);
    l.link("loop", "loop", false);
    let inv = scan([Cursor::new(l.tar())]).unwrap();
    assert!(inv.distro.is_none());
    assert!(
        inv.notes.iter().any(|n| n.contains("climbs out")),
        "{:?}",
        inv.notes
    );
    // A file over the limit is not read.
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    let inv = scan_with([Cursor::new(base_layer("1").tar())], &limits).unwrap();
    assert!(
        inv.notes.iter().any(|n| n.contains("larger than")),
        "{:?}",
        inv.notes
    );
    // Malformed JSON in a lockfile: a note.
    let mut l = LayerBuilder::new();
    l.file("app/package-lock.json", b"{\"packages\": [[[[", 0o644);
    assert_eq!(scan([Cursor::new(l.tar())]).unwrap().notes.len(), 1);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = scan([Cursor::new(bytes.clone())]);
            let _ = AdvisoryDb::from_bytes(&bytes);
            let _ = import_zip(Cursor::new(bytes));
        }

        #[test]
        fn corrupted_layers_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), gzip in any::<bool>()) {
            let l = base_layer("3.0.11-1");
            let mut bytes = if gzip { l.gzip() } else { l.tar() };
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            let _ = scan([Cursor::new(bytes)]);
        }
    }
}
