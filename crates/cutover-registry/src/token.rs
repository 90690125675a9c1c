//! Registry authorization tokens, as ECR's GetAuthorizationToken hands
//! them out: the password of user `AWS`, valid for 12 hours.
//!
//! A token is `<key id>.<expiry ms>.<hex HMAC-SHA256(secret, "cutover-registry:<key id>.<expiry>")>`:
//! no state per token, the installation's secret (kept in the store's
//! settings by the server's key ring) verifies it, and the key id lets a
//! rotated secret refuse old tokens by name.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// How long a token is valid (ECR's 12 hours).
pub const TOKEN_TTL_MS: u64 = 12 * 60 * 60 * 1000;

/// The store setting holding the installation's token key.
pub const SETTING: &str = "registry.token_key";

/// The installation's token key, stored as the setting `<key id>:<hex secret>`.
#[derive(Debug)]
pub struct TokenKey {
    id: String,
    secret: SecretString,
}

impl TokenKey {
    /// A setting value for a new key from 36 random bytes.
    pub fn setting_value(random: &[u8; 36]) -> String {
        format!(
            "{}:{}",
            hex::encode(&random[..4]),
            hex::encode(&random[4..])
        )
    }

    /// Reads the setting; `None` if it is not a key.
    pub fn parse(value: &str) -> Option<TokenKey> {
        let (id, secret) = value.split_once(':')?;
        (!id.is_empty() && !id.contains('.') && secret.len() >= 64).then(|| TokenKey {
            id: id.to_string(),
            secret: SecretString::from(secret.to_string()),
        })
    }

    /// A token valid for [`TOKEN_TTL_MS`] from `now`.
    pub fn mint(&self, now: u64) -> String {
        mint(
            &self.id,
            self.secret.expose_secret().as_bytes(),
            now.saturating_add(TOKEN_TTL_MS),
        )
    }

    /// Whether `token` is one of this key's, valid at `now`.
    pub fn verify(&self, token: &str, now: u64) -> bool {
        verify(token, &self.id, self.secret.expose_secret().as_bytes(), now)
    }
}

fn mac(key_id: &str, secret: &[u8], expires_at: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("cutover-registry:{key_id}.{expires_at}").as_bytes());
    mac
}

/// A token valid until `expires_at` (ms).
pub fn mint(key_id: &str, secret: &[u8], expires_at: u64) -> String {
    let tag = mac(key_id, secret, expires_at).finalize().into_bytes();
    format!("{key_id}.{expires_at}.{}", hex::encode(tag))
}

/// Whether `token` was minted with this key and is valid at `now`. The
/// HMAC is compared in constant time.
pub fn verify(token: &str, key_id: &str, secret: &[u8], now: u64) -> bool {
    let mut parts = token.splitn(3, '.');
    let (Some(kid), Some(expiry), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(expires_at), Ok(tag)) = (expiry.parse::<u64>(), hex::decode(tag)) else {
        return false;
    };
    if kid != key_id || now >= expires_at || expires_at > now.saturating_add(TOKEN_TTL_MS) {
        return false;
    }
    mac(key_id, secret, expires_at).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_from_its_setting_mints_what_it_verifies() {
        let value = TokenKey::setting_value(&[7; 36]);
        let key = TokenKey::parse(&value).unwrap();
        assert!(key.verify(&key.mint(5), 5));
        let other = TokenKey::parse(&TokenKey::setting_value(&[8; 36])).unwrap();
        assert!(!other.verify(&key.mint(5), 5));
        assert!(TokenKey::parse("nokey").is_none() && TokenKey::parse("a:short").is_none());
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_only_with_its_key() {
        let t = mint("k1", b"secret", 1_000 + TOKEN_TTL_MS);
        assert!(verify(&t, "k1", b"secret", 1_000));
        assert!(verify(&t, "k1", b"secret", 999 + TOKEN_TTL_MS));
        assert!(!verify(&t, "k1", b"secret", 1_000 + TOKEN_TTL_MS));
        assert!(!verify(&t, "k1", b"other", 1_000));
        assert!(!verify(&t, "k2", b"secret", 1_000));
        let forged = t.replace(
            &format!(".{}.", 1_000 + TOKEN_TTL_MS),
            &format!(".{}.", 2_000 + TOKEN_TTL_MS),
        );
        assert!(!verify(&forged, "k1", b"secret", 1_000));
        for junk in [
            "",
            "k1",
            "k1.x.y",
            "k1.1.zz",
            "..",
            "k1.99999999999999999999999.00",
        ] {
            assert!(!verify(junk, "k1", b"secret", 1_000), "{junk:?}");
        }
    }
}
