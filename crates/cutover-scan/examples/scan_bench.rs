//! The scanner's benchmark (run by `bench/scan.sh`).
//!
//! `scan_bench gen DIR`: writes a synthetic Debian-like image (a dpkg status
//! of 500 packages in the base layer, filler layers up to `IMAGE_MB`,
//! default 200 MB of tar content, gzip-compressed) and OSV advisory sets:
//! `debian.zip` (50k Debian:12 records, some affecting installed packages)
//! and `more.zip` (50k npm and PyPI records), then imports both and saves
//! `advisories.db` (100k advisories), timing each step.
//!
//! `scan_bench run DIR`: in a fresh process, loads `advisories.db` (time,
//! and resident memory before and after), then scans the image and matches
//! it (time), printing one `key value` line per measurement.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cutover_scan::fixtures::{LayerBuilder, dpkg_paragraph};
use cutover_scan::{AdvisoryDb, DbBuilder, SeverityCounts, import_zip, scan_paths};

const DEBIAN: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
const VECTORS: [&str; 4] = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N",
];

/// xorshift64*: deterministic filler without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Filler that compresses about as a distribution's files do (2-3x):
/// random words from a small vocabulary, with some random bytes.
fn filler(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 16);
    while out.len() < size {
        if rng.below(24) == 0 {
            for _ in 0..8 {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            let w = rng.below(4096);
            out.extend_from_slice(format!("sym_{w:x} ").as_bytes());
        }
    }
    out.truncate(size);
    out
}

fn record(
    id: &str,
    eco: &str,
    name: &str,
    fixed: &str,
    sev: Option<&str>,
    urgency: &str,
) -> String {
    let severity = sev
        .map(|v| serde_json::json!([{"type": "CVSS_V3", "score": v}]))
        .unwrap_or(serde_json::json!([]));
    serde_json::json!({
        "schema_version": "1.6.0", "id": id, "modified": "2024-05-01T00:00:00Z",
        "aliases": [format!("CVE-2024-{}", &id[id.len() - 5..])],
        "summary": format!("{name}: memory corruption in a parser (synthetic advisory {id})"),
        "severity": severity,
        "affected": [{
            "package": {"ecosystem": eco, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            "ecosystem_specific": {"urgency": urgency}
        }],
        "references": [{"type": "ADVISORY", "url": format!("https://security-tracker.debian.org/tracker/{id}")}]
    })
    .to_string()
}

fn write_zip(
    path: &Path,
    records: impl Iterator<Item = (String, String)>,
) -> std::io::Result<usize> {
    let mut zip = zip::ZipWriter::new(BufWriter::new(File::create(path)?));
    let mut n = 0;
    for (name, body) in records {
        zip.start_file(
            format!("{name}.json"),
            zip::write::SimpleFileOptions::default(),
        )?;
        zip.write_all(body.as_bytes())?;
        n += 1;
    }
    zip.finish()?;
    Ok(n)
}

fn secs(t: Instant) -> String {
    format!("{:.3}", t.elapsed().as_secs_f64())
}

fn generate(dir: &Path, image_mb: usize) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // 500 installed packages: name i, source src-(i/2), version 1.(i%40).0-1.
    let installed: Vec<(String, String, String)> = (0..500)
        .map(|i| {
            (
                format!("pkg{i}"),
                format!("src{}", i / 2),
                format!("1.{}.0-{}", i % 40, 1 + i % 3),
            )
        })
        .collect();
    let status: String = installed
        .iter()
        .map(|(n, s, v)| dpkg_paragraph(n, v, Some(s)))
        .collect();
    let layer_bytes = image_mb * (1 << 20) / 4;
    let mut layers = Vec::new();
    for l in 0..4 {
        let mut b = LayerBuilder::new();
        if l == 0 {
            b.file("etc/os-release", DEBIAN.as_bytes(), 0o644);
            b.file("var/lib/dpkg/status", status.as_bytes(), 0o644);
        }
        let mut written = 0;
        let mut f = 0;
        while written < layer_bytes {
            let size = (64 << 10) + rng.below(2 << 20) as usize;
            let exec = f % 10 == 0;
            let mut data = filler(&mut rng, size);
            if exec {
                data[..4].copy_from_slice(b"\x7fELF");
            }
            let path = if exec {
                format!("usr/bin/tool{l}_{f}")
            } else {
                format!("usr/lib/x86_64-linux-gnu/lib{l}_{f}.so")
            };
            b.file(&path, &data, if exec { 0o755 } else { 0o644 });
            written += size;
            f += 1;
        }
        let path = dir.join(format!("layer{l}.tar.gz"));
        std::fs::write(&path, b.gzip())?;
        layers.push(path);
    }
    let compressed: u64 = layers
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!("image_tar_mb {image_mb}");
    println!(
        "image_compressed_mb {:.1}",
        compressed as f64 / (1 << 20) as f64
    );

    // 50k Debian records over 5,000 source names; the 250 installed sources
    // among them, half of their records fixed above the installed version.
    let t = Instant::now();
    let debian = (0..50_000u32).map(|i| {
        let src = i % 5000;
        let id = format!("DEBIAN-CVE-2024-{i:05}");
        let fixed = if src < 250 && i % 2 == 0 {
            "1.99.0-1".to_string()
        } else {
            "0.9.0-1".to_string()
        };
        let sev = (i % 3 != 0).then(|| VECTORS[(i % 4) as usize]);
        let urgency = ["low", "medium", "high", "unimportant"][(i % 4) as usize];
        (
            id.clone(),
            record(&id, "Debian:12", &format!("src{src}"), &fixed, sev, urgency),
        )
    });
    let n = write_zip(&dir.join("debian.zip"), debian)?;
    let more = (0..50_000u32).map(|i| {
        let (eco, name) = if i % 2 == 0 {
            ("npm", format!("js-pkg-{}", i % 9000))
        } else {
            ("PyPI", format!("py-pkg-{}", i % 9000))
        };
        let id = format!("GHSA-2024-{i:05}");
        (
            id.clone(),
            record(
                &id,
                eco,
                &name,
                "2.0.0",
                Some(VECTORS[(i % 4) as usize]),
                "medium",
            ),
        )
    });
    let m = write_zip(&dir.join("more.zip"), more)?;
    println!("osv_records {}", n + m);
    println!("osv_generate_s {}", secs(t));

    let t = Instant::now();
    let mut builder = DbBuilder::new();
    for zip in ["debian.zip", "more.zip"] {
        let imported = import_zip(BufReader::new(File::open(dir.join(zip))?))?;
        for r in &imported.records {
            builder.add(r);
        }
    }
    println!("import_s {}", secs(t));
    let t = Instant::now();
    let db = builder.build();
    println!("build_s {}", secs(t));
    let t = Instant::now();
    db.save(&dir.join("advisories.db"))?;
    println!("save_s {}", secs(t));
    println!("advisories {}", db.len());
    println!(
        "db_file_mb {:.1}",
        std::fs::metadata(dir.join("advisories.db"))?.len() as f64 / (1 << 20) as f64
    );
    Ok(())
}

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let before = rss_kb("VmRSS:");
    let t = Instant::now();
    let db = AdvisoryDb::load(&dir.join("advisories.db"))?;
    println!("load_s {}", secs(t));
    let after = rss_kb("VmRSS:");
    println!("advisories {}", db.len());
    println!("rss_before_load_mb {:.1}", before as f64 / 1024.0);
    println!("rss_after_load_mb {:.1}", after as f64 / 1024.0);
    println!(
        "rss_db_mb {:.1}",
        (after.saturating_sub(before)) as f64 / 1024.0
    );
    let layers: Vec<PathBuf> = (0..4)
        .map(|l| dir.join(format!("layer{l}.tar.gz")))
        .collect();
    let t = Instant::now();
    let inventory = scan_paths(&layers)?;
    let scanned = t.elapsed();
    let findings = db.matches(&inventory);
    println!("scan_s {:.3}", scanned.as_secs_f64());
    println!("scan_and_match_s {}", secs(t));
    println!("packages {}", inventory.packages.len());
    println!("findings {}", findings.len());
    println!(
        "severity_counts {}",
        serde_json::to_string(&SeverityCounts::of(&findings))?
    );
    println!("rss_peak_mb {:.1}", rss_kb("VmHWM:") as f64 / 1024.0);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let image_mb = std::env::var("IMAGE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("gen"), Some(dir)) => generate(Path::new(dir), image_mb),
        (Some("run"), Some(dir)) => run(Path::new(dir)),
        _ => Err("usage: scan_bench gen DIR | scan_bench run DIR".into()),
    }
}
