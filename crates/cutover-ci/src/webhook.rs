//! Push webhooks from GitHub, GitLab and Gitea: signature checks and the
//! push payload.
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the body
//!   with the repository's secret.
//! - Gitea (and Forgejo): `X-Gitea-Signature: <hex>`, the same HMAC.
//! - GitLab: `X-Gitlab-Token: <secret>`, compared in constant time.
//!
//! All three send a push payload with `ref` (`refs/heads/<branch>` or
//! `refs/tags/<tag>`), `before`, `after` and `commits[]` listing `added`,
//! `modified` and `removed` paths, which is all a trigger needs.
//!
//! A signed payload is still not trusted to name what is built: `before`
//! and `after` must be commit ids (40 hexadecimal digits, or 64 for a
//! SHA-256 repository) and the ref a plain git ref name, or the delivery is
//! refused before git sees them. The delivery id ([`delivery_id`]) lets a
//! replay be recognised. For a repository that is not declared, or has no
//! secret, [`verify_unknown`] spends the same work as a real check, so the
//! answer (and its timing) does not tell which repositories exist.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No signature or token header of a known forge.
    #[error(
        "no X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token header: cannot verify the webhook"
    )]
    Unsigned,
    /// The signature or token does not match the secret.
    #[error("the {header} header does not match the repository's webhook secret")]
    BadSignature {
        /// The header checked.
        header: &'static str,
    },
    /// The body is not a push payload.
    #[error("not a push payload: {0}")]
    Payload(String),
}

/// Checks the request's signature or token against `secret`; returns the
/// forge it came from.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<&'static str, WebhookError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(sig) = header("x-hub-signature-256") {
        let hex_sig = sig.strip_prefix("sha256=").unwrap_or("");
        return hmac_ok(secret, body, hex_sig).then_some("github").ok_or(
            WebhookError::BadSignature {
                header: "X-Hub-Signature-256",
            },
        );
    }
    if let Some(sig) = header("x-gitea-signature") {
        return hmac_ok(secret, body, sig)
            .then_some("gitea")
            .ok_or(WebhookError::BadSignature {
                header: "X-Gitea-Signature",
            });
    }
    if let Some(token) = header("x-gitlab-token") {
        // GitLab sends the shared secret itself, not a signature of the
        // body. Compare digests so the comparison takes the same time
        // whatever the lengths.
        use sha2::Digest as _;
        let (given, expected) = (sha2::Sha256::digest(token), sha2::Sha256::digest(secret));
        return bool::from(given.as_slice().ct_eq(expected.as_slice()))
            .then_some("gitlab")
            .ok_or(WebhookError::BadSignature {
                header: "X-Gitlab-Token",
            });
    }
    Err(WebhookError::Unsigned)
}

/// The check for a repository that does not exist or has no secret: the
/// same work as [`verify`] against a dummy secret, and always a refusal.
pub fn verify_unknown(headers: &HeaderMap, body: &[u8]) -> WebhookError {
    const DUMMY: &str = "cutover-webhook-dummy-secret-000000000000";
    match verify(headers, body, DUMMY) {
        Err(e) => e,
        Ok(_) => WebhookError::BadSignature {
            header: "signature",
        },
    }
}

/// The forge's id of this delivery, if it sent one: `X-GitHub-Delivery`,
/// `X-Gitlab-Event-UUID` (or `X-Gitlab-Webhook-UUID`), `X-Gitea-Delivery`
/// or `X-Gogs-Delivery`. Ids longer than 128 bytes or with characters
/// other than letters, digits, `-`, `_` and `.` are ignored.
pub fn delivery_id(headers: &HeaderMap) -> Option<String> {
    [
        "x-github-delivery",
        "x-gitlab-event-uuid",
        "x-gitlab-webhook-uuid",
        "x-gitea-delivery",
        "x-gogs-delivery",
    ]
    .iter()
    .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
    .map(str::trim)
    .find(|id| {
        !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    })
    .map(str::to_string)
}

/// Whether `id` is a full commit id: 40 hex digits (SHA-1) or 64 (SHA-256).
pub fn is_commit_id(id: &str) -> bool {
    matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `name` (after `refs/heads/` or `refs/tags/`) is a ref name git
/// accepts and that cannot be read as an option or a revision expression.
fn is_ref_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && !name.contains("/.")
        && name
            .bytes()
            .all(|b| b > b' ' && b != 0x7f && !b"~^:?*[\\".contains(&b))
}

fn hmac_ok(secret: &str, body: &[u8], hex_sig: &str) -> bool {
    let Ok(expected) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// HMAC-SHA256 of `body` as lower-case hex (what GitHub and Gitea send).
#[cfg(test)]
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A push, as the webhook described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The branch pushed to, for a branch push.
    pub branch: Option<String>,
    /// The tag pushed, for a tag push.
    pub tag: Option<String>,
    /// The commit before (`None` for a new ref).
    pub before: Option<String>,
    /// The new commit (`None` when the ref was deleted).
    pub after: Option<String>,
    /// Paths the pushed commits touched, deduplicated, sorted.
    pub changed_files: Vec<String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    commits: Vec<PayloadCommit>,
}

#[derive(Deserialize)]
struct PayloadCommit {
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
}

fn is_zero(id: &Option<String>) -> bool {
    id.as_deref()
        .is_none_or(|s| s.is_empty() || s.bytes().all(|b| b == b'0'))
}

/// Reads a push payload.
pub fn parse_push(body: &[u8]) -> Result<Push, WebhookError> {
    let p: Payload =
        serde_json::from_slice(body).map_err(|e| WebhookError::Payload(e.to_string()))?;
    let (branch, tag) = if let Some(b) = p.reference.strip_prefix("refs/heads/") {
        (Some(b.to_string()), None)
    } else if let Some(t) = p.reference.strip_prefix("refs/tags/") {
        (None, Some(t.to_string()))
    } else {
        return Err(WebhookError::Payload(format!(
            "ref {:?} is neither a branch nor a tag",
            p.reference
        )));
    };
    let name = branch.as_deref().or(tag.as_deref()).unwrap_or_default();
    if !is_ref_name(name) {
        return Err(WebhookError::Payload(format!(
            "ref {:?} is not a valid git ref name",
            p.reference
        )));
    }
    for (field, id) in [("before", &p.before), ("after", &p.after)] {
        if let Some(id) = id.as_deref().filter(|id| !id.is_empty())
            && !is_commit_id(id)
        {
            return Err(WebhookError::Payload(format!(
                "{field} {id:?} is not a commit id (40 or 64 hexadecimal digits)"
            )));
        }
    }
    let mut files: Vec<String> = p
        .commits
        .into_iter()
        .flat_map(|c| c.added.into_iter().chain(c.modified).chain(c.removed))
        .collect();
    files.sort();
    files.dedup();
    Ok(Push {
        branch,
        tag,
        before: (!is_zero(&p.before)).then_some(p.before).flatten(),
        after: (!is_zero(&p.after)).then_some(p.after).flatten(),
        changed_files: files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn github_signature_is_the_documented_hmac() {
        // The example from GitHub's "Validating webhook deliveries" page.
        let body = b"Hello, World!";
        let sig = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign("It's a Secret to Everybody", body), sig);
        let h = headers("x-hub-signature-256", &format!("sha256={sig}"));
        assert_eq!(verify(&h, body, "It's a Secret to Everybody"), Ok("github"));
        assert_eq!(
            verify(&h, b"Hello, World?", "It's a Secret to Everybody"),
            Err(WebhookError::BadSignature {
                header: "X-Hub-Signature-256"
            })
        );
        assert!(verify(&h, body, "another secret").is_err());
        let unprefixed = headers("x-hub-signature-256", sig);
        assert!(verify(&unprefixed, body, "It's a Secret to Everybody").is_err());
    }

    #[test]
    fn gitea_signs_without_prefix_and_gitlab_sends_the_token() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let h = headers("x-gitea-signature", &sign("s3", body));
        assert_eq!(verify(&h, body, "s3"), Ok("gitea"));
        assert!(verify(&headers("x-gitea-signature", "zz"), body, "s3").is_err());
        assert_eq!(
            verify(&headers("x-gitlab-token", "s3"), body, "s3"),
            Ok("gitlab")
        );
        assert!(verify(&headers("x-gitlab-token", "s4"), body, "s3").is_err());
        assert_eq!(
            verify(&HeaderMap::new(), body, "s3"),
            Err(WebhookError::Unsigned)
        );
    }

    #[test]
    fn push_payloads_give_ref_commits_and_changed_files() {
        let body =
            br#"{"ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000",
            "after": "abc1230000000000000000000000000000000001", "commits": [
              {"id": "1", "added": ["src/new.rs"], "modified": ["README.md"], "removed": []},
              {"id": "2", "added": [], "modified": ["README.md"], "removed": ["old.txt"]}],
            "repository": {"full_name": "me/app"}}"#;
        let push = parse_push(body).unwrap();
        assert_eq!(push.branch.as_deref(), Some("main"));
        assert_eq!(push.tag, None);
        assert_eq!(push.before, None);
        assert_eq!(
            push.after.as_deref(),
            Some("abc1230000000000000000000000000000000001")
        );
        assert_eq!(push.changed_files, ["README.md", "old.txt", "src/new.rs"]);
        let tag = parse_push(br#"{"ref": "refs/tags/v1.2"}"#).unwrap();
        assert_eq!(tag.tag.as_deref(), Some("v1.2"));
        let deleted = parse_push(
            br#"{"ref": "refs/heads/x", "before": "abc1230000000000000000000000000000000001", "after": "0000000000000000000000000000000000000000"}"#,
        )
        .unwrap();
        assert_eq!(deleted.after, None);
        assert!(matches!(
            parse_push(br#"{"ref": "refs/pull/1/head"}"#),
            Err(WebhookError::Payload(_))
        ));
        assert!(parse_push(b"{}").is_err());
    }

    #[test]
    fn commit_ids_and_ref_names_from_a_payload_are_checked() {
        let sha256 = "a".repeat(64);
        for ok in [
            r#"{"ref": "refs/heads/release/1.2", "after": "0123456789abcdef0123456789abcdef01234567"}"#.to_string(),
            format!(r#"{{"ref": "refs/heads/main", "before": "{sha256}"}}"#),
        ] {
            assert!(parse_push(ok.as_bytes()).is_ok(), "{ok}");
        }
        for bad in [
            r#"{"ref": "refs/heads/main", "before": "--output=/tmp/x"}"#,
            r#"{"ref": "refs/heads/main", "after": "HEAD~3"}"#,
            r#"{"ref": "refs/heads/main", "after": "abc123"}"#,
            r#"{"ref": "refs/heads/main", "after": "0123456789abcdef0123456789abcdef0123456g"}"#,
            r#"{"ref": "refs/heads/--upload-pack=x"}"#,
            r#"{"ref": "refs/heads/a..b"}"#,
            r#"{"ref": "refs/heads/main@{1}"}"#,
            r#"{"ref": "refs/tags/v1 x"}"#,
        ] {
            assert!(
                matches!(parse_push(bad.as_bytes()), Err(WebhookError::Payload(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn delivery_ids_of_every_forge() {
        for h in [
            "x-github-delivery",
            "x-gitlab-event-uuid",
            "x-gitlab-webhook-uuid",
            "x-gitea-delivery",
            "x-gogs-delivery",
        ] {
            assert_eq!(
                delivery_id(&headers(h, "72d3162e-cc78-11e3-81ab-4c9367dc0958")).as_deref(),
                Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
            );
        }
        assert_eq!(delivery_id(&HeaderMap::new()), None);
        assert_eq!(delivery_id(&headers("x-github-delivery", "a b")), None);
    }

    #[test]
    fn unknown_repositories_are_refused_like_bad_signatures() {
        let body = b"{}";
        let h = headers(
            "x-hub-signature-256",
            &format!("sha256={}", sign("s", body)),
        );
        assert_eq!(
            verify_unknown(&h, body),
            WebhookError::BadSignature {
                header: "X-Hub-Signature-256"
            }
        );
        assert_eq!(
            verify_unknown(&HeaderMap::new(), body),
            WebhookError::Unsigned
        );
    }
}
