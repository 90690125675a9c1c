//! Admin API authentication: where the bearer token comes from, reading a token file safely,
//! and checking an `Authorization` header.
//!
//! Rules:
//! - the token in force is, in this order: the file given with `--admin-token-file`
//!   (`CUTOVER_PROXY_TOKEN_FILE`), the environment variable `CUTOVER_PROXY_TOKEN`, the
//!   configuration's `adminToken`. The first two are fixed for the life of the process: no
//!   configuration change can replace or clear them: an admin `PUT` carrying a different
//!   `adminToken` while one of them is in force is refused, and a reloaded file carrying one is
//!   applied with that key ignored and a warning;
//! - a token file must be a regular file of at most 64 KiB, not readable or writable by group or
//!   others (like ssh keys), holding one token (trailing whitespace trimmed) of visible ASCII;
//! - an admin address that is not loopback is refused unless a token is in force;
//! - the `Bearer` scheme is matched case-insensitively (RFC 7235) and the token compared in
//!   constant time.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use subtle::ConstantTimeEq as _;

/// Largest token file read.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// Where the fixed token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// `--admin-token-file` / `CUTOVER_PROXY_TOKEN_FILE`.
    File,
    /// `CUTOVER_PROXY_TOKEN`.
    Env,
}

impl TokenSource {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            TokenSource::File => "--admin-token-file",
            TokenSource::Env => "CUTOVER_PROXY_TOKEN",
        }
    }
}

/// A token usable in an `Authorization` header: non-empty visible ASCII without spaces.
pub(crate) fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("the token must not be empty".into());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token must be visible ASCII without spaces".into());
    }
    Ok(())
}

/// Reads a token file (see the module rules); the error names the file.
pub(crate) fn read_token_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(path)
        .map_err(|e| format!("cannot read the token file {shown}: {e}"))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read the token file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("the token file {shown} is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the token file {shown} is accessible by group or others (mode {mode:04o}); \
             make it private with chmod 600"
        ));
    }
    let mut text = String::new();
    (&mut f)
        .take(MAX_TOKEN_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the token file {shown}: {e}"))?;
    if text.len() as u64 > MAX_TOKEN_FILE {
        return Err(format!("the token file {shown} is larger than 64 KiB"));
    }
    let token = text.trim_end();
    check_token(token).map_err(|m| format!("the token file {shown}: {m}"))?;
    Ok(token.to_owned())
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    /// `O_NONBLOCK`: opening a FIFO must not wait for a writer.
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NONBLOCK)
    }
}

/// Opens a file that must be regular, without blocking on FIFOs, and reads at most `limit`
/// bytes; used for certificates and keys too.
pub(crate) fn read_regular_file(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut out = Vec::new();
    (&mut f).take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Whether the `Authorization` header value carries `token` with the `Bearer` scheme (any
/// case), compared in constant time.
pub(crate) fn bearer_matches(header: Option<&[u8]>, token: &str) -> bool {
    let Some(value) = header else { return false };
    let value = value.trim_ascii();
    let Some(space) = value.iter().position(|&b| b == b' ') else {
        return false;
    };
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return false;
    }
    bool::from(rest.trim_ascii().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for h in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER s3cret",
            "Bearer   s3cret ",
        ] {
            assert!(bearer_matches(Some(h.as_bytes()), "s3cret"), "{h}");
        }
        for h in ["Bearer s3cre", "Basic s3cret", "Bearers3cret", "s3cret", ""] {
            assert!(!bearer_matches(Some(h.as_bytes()), "s3cret"), "{h}");
        }
        assert!(!bearer_matches(None, "s3cret"));
    }

    fn write(dir: &Path, mode: u32, text: &str) -> std::path::PathBuf {
        let p = dir.join("token");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn token_files_must_be_private_regular_and_non_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), 0o600, "s3cret\n");
        assert_eq!(read_token_file(&p).unwrap(), "s3cret");
        let p = write(dir.path(), 0o640, "s3cret\n");
        let e = read_token_file(&p).unwrap_err();
        assert!(
            e.contains("accessible by group or others (mode 0640)"),
            "{e}"
        );
        let p = write(dir.path(), 0o600, "\n");
        let e = read_token_file(&p).unwrap_err();
        assert!(e.ends_with("the token must not be empty"), "{e}");
        let e = read_token_file(&dir.path().join("absent")).unwrap_err();
        assert!(e.starts_with("cannot read the token file"), "{e}");
        let e = read_token_file(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn regular_files_are_read_with_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![b'x'; 100]).unwrap();
        assert_eq!(read_regular_file(&p, 100).unwrap().len(), 100);
        let e = read_regular_file(&p, 99).unwrap_err();
        assert!(e.to_string().contains("larger than 99 bytes"), "{e}");
        let started = std::time::Instant::now();
        let e = read_regular_file(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
