//! The Distribution Spec's grammar for repository names, tags and
//! digests. Anything else is refused before it can become a path or a
//! query: a name that breaks the grammar is `NAME_INVALID`.

use std::sync::LazyLock;

use regex::Regex;

use crate::error::{ErrorCode, RegistryError, Result};

/// The spec's `<name>` (path components joined by `/`).
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("the spec's name grammar compiles")
});

/// The spec's `<reference>` as a tag.
static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("the spec's tag grammar compiles")
});

/// The longest name accepted (distribution's limit, ECR's is 256).
pub const MAX_NAME: usize = 255;

/// A checked repository name.
pub fn check_name(name: &str) -> Result<&str> {
    if name.len() > MAX_NAME || !NAME.is_match(name) {
        let shown: String = name.chars().take(64).collect();
        return Err(RegistryError::refused(
            ErrorCode::NameInvalid,
            format!("invalid repository name {shown:?}"),
        ));
    }
    Ok(name)
}

/// A `sha256:<64 lowercase hex>` digest, the only algorithm stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Reads a digest; another algorithm is `UNSUPPORTED`, a malformed one
    /// `DIGEST_INVALID`.
    pub fn parse(s: &str) -> Result<Digest> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(invalid_digest(s));
        };
        if algorithm != "sha256" {
            return Err(RegistryError::refused(
                ErrorCode::Unsupported,
                format!(
                    "digest algorithm {:?} is not supported; use sha256",
                    truncate(algorithm)
                ),
            ));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid_digest(s));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `hash`, a finished SHA-256.
    pub fn from_sha256(hash: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn invalid_digest(s: &str) -> RegistryError {
    RegistryError::refused(
        ErrorCode::DigestInvalid,
        format!("invalid digest {:?}", truncate(s)),
    )
}

/// What a manifest request names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag.
    Tag(String),
    /// A digest.
    Digest(Digest),
}

impl Reference {
    /// Reads a reference: a digest if it has a `:`, else a tag.
    pub fn parse(s: &str) -> Result<Reference> {
        if s.contains(':') {
            return Digest::parse(s).map(Reference::Digest);
        }
        if !TAG.is_match(s) {
            return Err(RegistryError::refused(
                ErrorCode::TagInvalid,
                format!("invalid tag {:?}", truncate(s)),
            ));
        }
        Ok(Reference::Tag(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_and_nothing_else_passes() {
        for good in ["web", "team/web", "a.b_c__d--e/f0", "x/y/z"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "../etc",
            "a/../b",
            "a//b",
            "/a",
            "a/",
            "A",
            "a\0b",
            "a%2e",
            "a b",
            long.as_str(),
            "a._b",
            ".a",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn references_are_tags_or_sha256_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            Reference::parse(&d).unwrap(),
            Reference::Digest(Digest(d.clone()))
        );
        assert_eq!(
            Reference::parse("v1.0_x-y").unwrap(),
            Reference::Tag("v1.0_x-y".into())
        );
        assert!(Reference::parse(".hidden").is_err());
        assert!(Reference::parse(&"t".repeat(129)).is_err());
        assert!(Digest::parse("sha256:ABC").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(matches!(
            Digest::parse(&format!("sha512:{}", "a".repeat(128))),
            Err(RegistryError::Refused {
                code: ErrorCode::Unsupported,
                ..
            })
        ));
    }
}
