//! Image references as the engines write them:
//! `[host[:port]/]path[:tag][@sha256:hex]`.
//!
//! Only references that name their registry host (the first component has a
//! `.` or a `:`, or is `localhost`) are registry references here: a short
//! name (`sample-app:v1`, `nginx`) is whatever the engine has under that
//! name, which the resolver leaves to the engine (see `resolve.rs`).

use std::fmt;

/// A registry reference, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `host[:port]`.
    pub registry: String,
    /// The repository path, e.g. `team/web`.
    pub repository: String,
    /// The tag, if written (`latest` is meant when neither tag nor digest is).
    pub tag: Option<String>,
    /// The digest, if written (`sha256:<64 hex>`).
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses `image`; `None` when it names no registry host or is not a
    /// well-formed reference (a path, a tarball, a short name).
    pub fn parse(image: &str) -> Option<Self> {
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) => {
                if !is_sha256_digest(digest) {
                    return None;
                }
                (rest, Some(digest.to_string()))
            }
            None => (image, None),
        };
        let (registry, path) = rest.split_once('/')?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return None;
        }
        if !registry.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[')
            || !registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return None;
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
                })
        };
        if !repository.split('/').all(component_ok) {
            return None;
        }
        if let Some(tag) = &tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return None;
            }
        }
        Some(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The tag to resolve: the written one, else `latest`.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// `host/repository@digest`: what a pinned task runs.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.registry, self.repository)
    }

    /// The registry's host without its port (brackets of an IPv6 literal
    /// removed).
    pub fn host(&self) -> &str {
        match self.registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => self.registry.split(':').next().unwrap_or(&self.registry),
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Whether `s` is `sha256:` followed by 64 lower-case hex digits.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn registry_references_parse() {
        let r = ImageReference::parse("127.0.0.1:5000/team/web:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "team/web", Some("v1"))
        );
        assert_eq!(r.host(), "127.0.0.1");
        assert_eq!(r.pinned(D), format!("127.0.0.1:5000/team/web@{D}"));
        let r = ImageReference::parse("localhost/web").unwrap();
        assert_eq!((r.tag_or_latest(), r.host()), ("latest", "localhost"));
        let r = ImageReference::parse(&format!("ghcr.io/a/b:1@{D}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.to_string(), format!("ghcr.io/a/b:1@{D}"));
        assert_eq!(
            ImageReference::parse("[::1]:5000/web:v1").unwrap().host(),
            "::1"
        );
    }

    #[test]
    fn short_names_paths_and_junk_are_not_registry_references() {
        for image in [
            "sample-app:v1",
            "nginx",
            "library/nginx:1",
            "/srv/images/app",
            "./app.tar",
            "host.io/UPPER:v1",
            "host.io/web:bad tag",
            "host.io/web@sha256:short",
            "host.io//web",
            "",
        ] {
            assert_eq!(ImageReference::parse(image), None, "{image}");
        }
    }
}
