//! Access keys and the account id, as AWS writes them: the key id
//! (`AKIA` + 16 characters of `A-Z2-7` for a long-lived key, `ASIA` for a
//! short-lived one), the 40-character secret, the 12-digit account id, and
//! IAM's key status.
//!
//! Randomness is an argument (bytes the caller drew from the OS), like time
//! in every pure crate.

use serde::{Deserialize, Serialize};

/// Whether a key may sign requests (IAM's `StatusType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum AccessKeyStatus {
    /// It may.
    Active,
    /// It may not (kept, but refused).
    Inactive,
}

impl AccessKeyStatus {
    /// IAM's name, also the stored one.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKeyStatus::Active => "Active",
            AccessKeyStatus::Inactive => "Inactive",
        }
    }
}

/// A status that is not one of [`AccessKeyStatus`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown access key status {0:?}")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for AccessKeyStatus {
    type Err = UnknownStatus;
    fn from_str(text: &str) -> Result<AccessKeyStatus, UnknownStatus> {
        match text {
            "Active" => Ok(AccessKeyStatus::Active),
            "Inactive" => Ok(AccessKeyStatus::Inactive),
            other => Err(UnknownStatus(other.to_string())),
        }
    }
}

/// How long a key is meant to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An operator's key (`AKIA...`).
    LongLived,
    /// A build's or a hook's key (`ASIA...`), revoked when its owner ends.
    ShortLived,
}

/// RFC 4648's base32 alphabet, which AWS's key ids use.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// The secret's alphabet: base64's, as AWS's secrets.
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Random bytes a new key needs.
pub const KEY_RANDOM_BYTES: usize = 16 + 40;

/// A new key id and secret from `random` (at least [`KEY_RANDOM_BYTES`]).
pub fn new_key(kind: KeyKind, random: &[u8; KEY_RANDOM_BYTES]) -> (String, String) {
    let prefix = match kind {
        KeyKind::LongLived => "AKIA",
        KeyKind::ShortLived => "ASIA",
    };
    let mut id = String::from(prefix);
    id.extend(
        random[..16]
            .iter()
            .map(|b| BASE32[(b % 32) as usize] as char),
    );
    let secret = random[16..]
        .iter()
        .map(|b| BASE64[(b % 64) as usize] as char)
        .collect();
    (id, secret)
}

/// A 12-digit account id from 8 random bytes, never starting with 0.
pub fn new_account_id(random: [u8; 8]) -> String {
    let n = u64::from_le_bytes(random) % 900_000_000_000 + 100_000_000_000;
    n.to_string()
}

/// Whether `text` could be an access key id (the shape only), so that
/// anything else is refused before a lookup.
pub fn looks_like_key_id(text: &str) -> bool {
    (16..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_aws_keys() {
        let random = [7u8; KEY_RANDOM_BYTES];
        let (id, secret) = new_key(KeyKind::LongLived, &random);
        assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
        assert!(id[4..].bytes().all(|b| BASE32.contains(&b)));
        assert_eq!(secret.len(), 40);
        assert!(looks_like_key_id(&id));
        let (id, _) = new_key(KeyKind::ShortLived, &random);
        assert!(id.starts_with("ASIA"));
        assert!(!looks_like_key_id("AKIA/../x"));
    }

    #[test]
    fn account_ids_have_twelve_digits() {
        for seed in [[0u8; 8], [255u8; 8], [1, 2, 3, 4, 5, 6, 7, 8]] {
            let id = new_account_id(seed);
            assert_eq!(id.len(), 12, "{id}");
            assert!(!id.starts_with('0'));
        }
    }

    #[test]
    fn statuses_read_back() {
        assert_eq!("Active".parse(), Ok(AccessKeyStatus::Active));
        assert!("active".parse::<AccessKeyStatus>().is_err());
    }
}
