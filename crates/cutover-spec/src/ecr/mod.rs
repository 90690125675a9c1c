//! Amazon ECR's documents and rules, without IO: repository names,
//! lifecycle policies ([`lifecycle`]: the policy text, read and checked as
//! PutLifecyclePolicy does) and their evaluation ([`evaluate`]: the one
//! function behind a preview and a run), and the stack's
//! `imageRepositories:` entries ([`ImageRepositorySpec`]).
//!
//! ```
//! use cutover_spec::ecr::{ImageInfo, evaluate, parse_lifecycle_policy};
//! let policy = parse_lifecycle_policy("policy.json", r#"{"rules": [{"rulePriority": 1,
//!     "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
//!     "action": {"type": "expire"}}]}"#).unwrap().value;
//! let images = [
//!     ImageInfo { digest: "sha256:old", tags: &[], pushed_at_ms: 1_000 },
//!     ImageInfo { digest: "sha256:new", tags: &[], pushed_at_ms: 2_000 },
//! ];
//! let expired = evaluate(&policy, &images, 3_000);
//! assert_eq!(expired.len(), 1);
//! assert_eq!((expired[0].digest.as_str(), expired[0].rule_priority), ("sha256:old", 1));
//! ```

pub mod evaluate;
pub mod lifecycle;

pub use evaluate::{Expiry, ImageInfo, evaluate};
pub use lifecycle::{LifecyclePolicy, parse_lifecycle_policy};

use serde::{Deserialize, Serialize};

/// Whether `name` is a repository name ECR accepts: 2 to 256 characters
/// matching ECR's model pattern (`RepositoryName`):
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
/// that is `/`-separated components of lowercase letters and digits joined
/// by `.`, `_`, `__` or runs of `-`.
pub fn is_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len()) && name.split('/').all(is_component)
}

fn is_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// An image repository's tag mutability. These are the values of ECR's
/// `ImageTagMutability` that Cutover supports, spelled as in the model
/// (`MUTABLE`, `IMMUTABLE`); the `*_WITH_EXCLUSION` values, which need
/// exclusion filters, are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TagMutability {
    /// A tag can be pushed again with other content (ECR's default).
    #[default]
    Mutable,
    /// Pushing an existing tag with other content is refused.
    Immutable,
}

impl TagMutability {
    /// The value as ECR spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TagMutability::Mutable => "MUTABLE",
            TagMutability::Immutable => "IMMUTABLE",
        }
    }

    /// Reads ECR's name (as stored): `MUTABLE` or `IMMUTABLE`.
    pub fn parse(s: &str) -> Option<TagMutability> {
        match s {
            "MUTABLE" => Some(TagMutability::Mutable),
            "IMMUTABLE" => Some(TagMutability::Immutable),
            _ => None,
        }
    }
}

/// `imageScanningConfiguration` (ECR's shape of the same name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanningConfiguration {
    /// Scan each image when it is pushed.
    #[serde(default)]
    pub scan_on_push: bool,
}

/// One entry of the stack's `imageRepositories:` (keyed by repository
/// name): what CreateRepository, PutImageTagMutability,
/// PutImageScanningConfiguration and PutLifecyclePolicy would set, plus
/// Cutover's own `anonymousPull`. Applying it is the control plane's job.
///
/// ```yaml
/// imageRepositories:
///   web:
///     imageTagMutability: IMMUTABLE
///     imageScanningConfiguration: {scanOnPush: true}
///     anonymousPull: false
///     lifecyclePolicy:
///       rules:
///         - rulePriority: 1
///           selection: {tagStatus: untagged, countType: sinceImagePushed, countUnit: days, countNumber: 14}
///           action: {type: expire}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageRepositorySpec {
    /// `MUTABLE` (default) or `IMMUTABLE`.
    #[serde(default)]
    pub image_tag_mutability: TagMutability,
    /// Scan on push (default off).
    #[serde(default)]
    pub image_scanning_configuration: ScanningConfiguration,
    /// The lifecycle policy, as a mapping (checked as PutLifecyclePolicy
    /// checks its text); [`LifecyclePolicy::to_json_text`] gives ECR's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<LifecyclePolicy>,
    /// Whether anyone may pull without credentials (Cutover's own; default
    /// false, as ECR never allows it).
    #[serde(default)]
    pub anonymous_pull: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr_pattern() {
        for ok in [
            "web", "ab", "team/web", "a.b", "a_b", "a__b", "a---b", "x/y/z-1", "0",
        ]
        .iter()
        .filter(|n| n.len() >= 2)
        {
            assert!(is_repository_name(ok), "{ok}");
        }
        for bad in [
            "w",
            "Web",
            "-web",
            "web-",
            "a___b",
            "a..b",
            "a._b",
            "/web",
            "web/",
            "a//b",
            "we b",
            "wéb",
            &"a".repeat(257),
        ] {
            assert!(!is_repository_name(bad), "{bad}");
        }
        assert!(is_repository_name(&"a".repeat(256)));
    }

    #[test]
    fn tag_mutability_reads_ecr_values_only() {
        let read = |s: &str| serde_json::from_value::<TagMutability>(serde_json::json!(s));
        assert_eq!(read("IMMUTABLE").unwrap(), TagMutability::Immutable);
        assert_eq!(read("MUTABLE").unwrap().as_str(), "MUTABLE");
        assert!(read("IMMUTABLE_WITH_EXCLUSION").is_err());
        assert!(read("immutable").is_err());
    }
}
