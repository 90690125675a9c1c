//! Java archives: `META-INF/maven/**/pom.properties` inside a jar, war or
//! ear, and inside the jars nested in it (Spring Boot's `BOOT-INF/lib/`),
//! one level deep. Every member read is capped.

use std::io::{Cursor, Read};

use super::{Parsed, lang};

/// The largest member read from an archive (a nested jar included).
const MAX_MEMBER: u64 = 64 << 20;

/// Reads a Java archive's Maven metadata.
pub(super) fn read(bytes: &[u8], path: &str) -> Parsed {
    let mut out = Parsed::default();
    walk(bytes, path, 0, &mut out);
    out
}

fn walk(bytes: &[u8], path: &str, depth: u8, out: &mut Parsed) {
    let mut zip = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(z) => z,
        Err(e) => {
            out.notes
                .push(format!("{path}: not a readable archive: {e}"));
            return;
        }
    };
    for i in 0..zip.len() {
        let Ok(mut member) = zip.by_index(i) else {
            continue;
        };
        let name = member.name().to_string();
        let pom = name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties");
        let nested = depth == 0 && name.ends_with(".jar");
        if !pom && !nested {
            continue;
        }
        let mut buf = Vec::new();
        if (&mut member)
            .take(MAX_MEMBER + 1)
            .read_to_end(&mut buf)
            .is_err()
            || buf.len() as u64 > MAX_MEMBER
        {
            out.notes
                .push(format!("{path}!{name}: unreadable or too large, skipped"));
            continue;
        }
        let inner = format!("{path}!{name}");
        if pom {
            out.packages
                .extend(lang::pom_properties(&String::from_utf8_lossy(&buf), &inner));
        } else {
            walk(&buf, &inner, depth + 1, out);
        }
    }
}

/// Builds a jar (a zip) of named members, for tests and benchmarks.
pub fn build_jar(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in members {
        // Writing to memory cannot fail.
        let _ = w.start_file(*name, zip::write::SimpleFileOptions::default());
        let _ = w.write_all(data);
    }
    w.finish().map(Cursor::into_inner).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_jars_one_level() {
        let pom = b"groupId=org.yaml\nartifactId=snakeyaml\nversion=1.33\n";
        let inner = build_jar(&[("META-INF/maven/org.yaml/snakeyaml/pom.properties", pom)]);
        let outer = build_jar(&[("BOOT-INF/lib/snakeyaml-1.33.jar", &inner), ("x.txt", b"x")]);
        let p = read(&outer, "app.jar");
        assert_eq!(p.packages.len(), 1);
        assert_eq!(p.packages[0].name, "org.yaml:snakeyaml");
        assert!(!read(b"PK\x03\x04garbage", "bad.jar").notes.is_empty());
    }
}
