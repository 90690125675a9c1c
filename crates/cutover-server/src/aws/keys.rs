//! The key ring: every access key the AWS protocols accept, cached in
//! memory so that verifying a signature costs no store call, and written
//! through to the store (the store first, then the cache, so a key the
//! cache knows is always stored).
//!
//! The server is the only writer of the `access_keys` table, so the cache
//! cannot go stale: operators' keys change through `/v1/access-keys`,
//! short-lived keys through [`KeyRing::issue`] and [`KeyRing::revoke`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cutover_aws::keys::{AccessKeyStatus, KEY_RANDOM_BYTES, KeyKind, new_account_id, new_key};
use cutover_store::Store;
use cutover_store::access_keys::{self, AccessKeyRow};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// What the cache keeps of a key.
#[derive(Debug, Clone)]
struct Entry {
    secret: SecretString,
    name: String,
    status: AccessKeyStatus,
    expires_at: Option<u64>,
    /// Issued to a build or a hook (it has an owner), not an operator's.
    issued: bool,
}

/// The settings key of the account id.
const ACCOUNT_SETTING: &str = "aws.account_id";

/// A short-lived key handed to a build or a hook.
#[derive(Debug, Clone)]
pub(crate) struct IssuedKey {
    pub(crate) id: String,
    pub(crate) secret: SecretString,
}

/// Every usable key, and the installation's account id.
#[derive(Debug)]
pub(crate) struct KeyRing {
    store: Arc<Store>,
    account: String,
    keys: RwLock<HashMap<String, Entry>>,
    registry: cutover_registry::token::TokenKey,
}

impl KeyRing {
    /// Loads the keys and the account id (chosen at random, once, the
    /// first time).
    pub(crate) async fn load(store: Arc<Store>) -> Result<KeyRing, cutover_store::StoreError> {
        let mut seed = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let candidate = new_account_id(seed);
        let mut random = [0u8; 36];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let registry_candidate = cutover_registry::token::TokenKey::setting_value(&random);
        let (account, rows, registry) = store
            .call(move |c| {
                let account = access_keys::setting_or_insert(c, ACCOUNT_SETTING, &candidate)?;
                let registry = access_keys::setting_or_insert(
                    c,
                    cutover_registry::token::SETTING,
                    &registry_candidate,
                )?;
                Ok((account, access_keys::list(c)?, registry))
            })
            .await?;
        let registry = cutover_registry::token::TokenKey::parse(&registry).ok_or_else(|| {
            cutover_store::StoreError::Conflict(format!(
                "the setting {} is not a registry token key",
                cutover_registry::token::SETTING
            ))
        })?;
        let keys = rows
            .into_iter()
            .map(|r| (r.id.clone(), entry(&r)))
            .collect();
        Ok(KeyRing {
            store,
            account,
            keys: RwLock::new(keys),
            registry,
        })
    }

    /// A registry authorization token (the password of user `AWS`), valid
    /// for 12 hours from `now`: what ECR's GetAuthorizationToken returns,
    /// base64-encoded after `AWS:`.
    pub(crate) fn mint_registry_token(&self, now: u64) -> String {
        self.registry.mint(now)
    }

    /// Whether `token` is a registry token this installation minted that
    /// is still valid at `now` (the HMAC compared in constant time).
    pub(crate) fn verify_registry_token(&self, token: &str, now: u64) -> bool {
        self.registry.verify(token, now)
    }

    /// The 12-digit account id of every ARN.
    pub(crate) fn account(&self) -> &str {
        &self.account
    }

    /// The secret of key `id` if it may sign at `now`.
    pub(crate) fn secret_if_usable(&self, id: &str, now: u64) -> Option<String> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let e = keys.get(id)?;
        let usable = e.status == AccessKeyStatus::Active && e.expires_at.is_none_or(|t| now < t);
        usable.then(|| e.secret.expose_secret().to_string())
    }

    /// The IAM user ARN of key `id` if it may sign at `now` and `secret`
    /// is its secret (compared in constant time): how an on-premises
    /// instance's agent authenticates (`hosts::agents::Presented::AwsKey`).
    pub(crate) fn user_arn_of_pair(&self, id: &str, secret: &str, now: u64) -> Option<String> {
        let stored = self.secret_if_usable(id, now)?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            stored.as_bytes(),
            secret.as_bytes(),
        )) {
            return None;
        }
        Some(self.user_arn(&self.name_of(id)?))
    }

    /// `arn:aws:iam::ACCOUNT:user/NAME`, who a key named `name` acts as.
    pub(crate) fn user_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:user/{name}", self.account)
    }

    /// Whether key `id` was issued to a build or a hook (what such code
    /// may ask is narrower than what an operator's key may).
    pub(crate) fn is_issued(&self, id: &str) -> bool {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(id).is_some_and(|e| e.issued)
    }

    /// The name (IAM user) of key `id`.
    pub(crate) fn name_of(&self, id: &str) -> Option<String> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(id).map(|e| e.name.clone())
    }

    /// Creates and stores a key; returns the stored row (secret included).
    pub(crate) async fn create(
        &self,
        name: String,
        kind: KeyKind,
        now: u64,
        expires_at: Option<u64>,
        owner: Option<String>,
    ) -> Result<AccessKeyRow, cutover_store::StoreError> {
        let mut random = [0u8; KEY_RANDOM_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let (id, secret) = new_key(kind, &random);
        let row = AccessKeyRow {
            id,
            secret: SecretString::from(secret),
            name,
            status: AccessKeyStatus::Active,
            created_at: now,
            expires_at,
            owner,
        };
        let stored = row.clone();
        self.store
            .call(move |c| access_keys::insert(c, &stored))
            .await?;
        self.write().insert(row.id.clone(), entry(&row));
        Ok(row)
    }

    /// A short-lived key for `owner` (`build:ID`, `hook:ID`), valid for
    /// `ttl_ms`; [`KeyRing::revoke`] deletes it when its owner ends.
    pub(crate) async fn issue(
        &self,
        owner: &str,
        now: u64,
        ttl_ms: u64,
    ) -> Result<IssuedKey, cutover_store::StoreError> {
        let row = self
            .create(
                owner.to_string(),
                KeyKind::ShortLived,
                now,
                Some(now.saturating_add(ttl_ms)),
                Some(owner.to_string()),
            )
            .await?;
        Ok(IssuedKey {
            id: row.id,
            secret: row.secret,
        })
    }

    /// Deletes every key issued to `owner`.
    pub(crate) async fn revoke(&self, owner: &str) -> Result<(), cutover_store::StoreError> {
        let owner = owner.to_string();
        let ids = self
            .store
            .call(move |c| access_keys::delete_owned(c, &owner))
            .await?;
        let mut keys = self.write();
        for id in ids {
            keys.remove(&id);
        }
        Ok(())
    }

    /// Deletes key `id`; returns whether it existed.
    pub(crate) async fn delete(&self, id: &str) -> Result<bool, cutover_store::StoreError> {
        let key = id.to_string();
        let existed = self
            .store
            .call(move |c| access_keys::delete(c, &key))
            .await?;
        self.write().remove(id);
        Ok(existed)
    }

    /// Deletes keys that expired before `now` (a build cut off by a crash
    /// never revoked its own).
    pub(crate) async fn prune(&self, now: u64) -> Result<(), cutover_store::StoreError> {
        let ids = self
            .store
            .call(move |c| access_keys::delete_expired(c, now))
            .await?;
        let mut keys = self.write();
        for id in ids {
            keys.remove(&id);
        }
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn entry(row: &AccessKeyRow) -> Entry {
    Entry {
        secret: row.secret.clone(),
        name: row.name.clone(),
        status: row.status,
        expires_at: row.expires_at,
        issued: row.owner.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_usable_until_deleted_revoked_or_expired() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let ring = KeyRing::load(store.clone()).await.unwrap();
        assert_eq!(ring.account().len(), 12);
        let k = ring
            .create("ci".into(), KeyKind::LongLived, 1000, None, None)
            .await
            .unwrap();
        assert_eq!(
            ring.secret_if_usable(&k.id, u64::MAX).as_deref(),
            Some(k.secret.expose_secret())
        );
        let t = ring.issue("build:b1", 1000, 500).await.unwrap();
        assert!(ring.is_issued(&t.id) && !ring.is_issued(&k.id));
        assert!(ring.secret_if_usable(&t.id, 1499).is_some());
        assert!(ring.secret_if_usable(&t.id, 1500).is_none());
        ring.revoke("build:b1").await.unwrap();
        assert!(ring.secret_if_usable(&t.id, 1000).is_none());

        // A second load sees the same account and the stored keys.
        let again = KeyRing::load(store.clone()).await.unwrap();
        assert_eq!(again.account(), ring.account());
        assert!(again.secret_if_usable(&k.id, 0).is_some());
        assert!(ring.delete(&k.id).await.unwrap());
        assert!(ring.secret_if_usable(&k.id, 0).is_none());
        assert!(!ring.delete(&k.id).await.unwrap());
    }

    #[tokio::test]
    async fn registry_tokens_verify_for_12_hours_and_survive_a_reload() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let ring = KeyRing::load(store.clone()).await.unwrap();
        let token = ring.mint_registry_token(1_000);
        assert!(ring.verify_registry_token(&token, 1_000));
        let again = KeyRing::load(store.clone()).await.unwrap();
        assert!(again.verify_registry_token(&token, 1_000 + 12 * 3_600_000 - 1));
        assert!(!again.verify_registry_token(&token, 1_000 + 12 * 3_600_000));
        assert!(!ring.verify_registry_token("AKIA.1.00", 1_000));
    }

    #[tokio::test]
    async fn expired_keys_are_pruned_from_store_and_cache() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let ring = KeyRing::load(store.clone()).await.unwrap();
        let t = ring.issue("hook:h1", 0, 10).await.unwrap();
        ring.prune(10).await.unwrap();
        assert!(ring.name_of(&t.id).is_none());
        assert!(store.call(access_keys::list).await.unwrap().is_empty());
    }
}
