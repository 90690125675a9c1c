//! What a buildspec's `env.parameter-store` and `env.secrets-manager`
//! entries name, resolved against the secret store.
//!
//! - `parameter-store: {VAR: NAME}`: the SSM parameter `NAME` (or its
//!   ARN), decrypted.
//! - `secrets-manager: {VAR: "secret-id:json-key:version-stage:version-id"}`
//!   (CodeBuild's grammar): `secret-id` is a name or an ARN, which itself
//!   contains `:` (an ARN's first seven `:`-separated fields are the id);
//!   the other parts are optional and may be empty. `json-key` picks a key
//!   of a secret whose text is a JSON object (a string value as is, any
//!   other value as JSON); `version-stage` defaults to `AWSCURRENT` when no
//!   `version-id` is given.

use secrecy::{ExposeSecret, SecretString};

use super::{SecretValue, find_secret, parameter};
use crate::StoreError;

/// A parsed `env.secrets-manager` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference<'a> {
    /// The secret's name or ARN.
    pub secret_id: &'a str,
    /// The JSON key to pick, if any.
    pub json_key: Option<&'a str>,
    /// The staging label, if any.
    pub version_stage: Option<&'a str>,
    /// The version id, if any.
    pub version_id: Option<&'a str>,
}

/// Why a reference names no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is not `secret-id[:json-key[:version-stage[:version-id]]]`.
    #[error("{0:?} is not secret-id:json-key:version-stage:version-id")]
    Malformed(String),
    /// No such secret, or it is scheduled for deletion.
    #[error("no secret {0:?}")]
    NoSecret(String),
    /// The secret has no such version.
    #[error("secret {0:?} has no version {1:?}")]
    NoVersion(String, String),
    /// The secret is binary; environment variables are text.
    #[error("secret {0:?} is binary")]
    Binary(String),
    /// A `json-key` was given and the value is not a JSON object with it.
    #[error("secret {0:?} is not a JSON object with key {1:?}")]
    NoJsonKey(String, String),
    /// No such parameter.
    #[error("no parameter {0:?}")]
    NoParameter(String),
}

impl<'a> SecretReference<'a> {
    /// Reads `text`.
    pub fn parse(text: &'a str) -> Result<SecretReference<'a>, ReferenceError> {
        let malformed = || ReferenceError::Malformed(text.to_string());
        // An ARN's own colons: arn:PARTITION:SERVICE:REGION:ACCOUNT:secret:NAME.
        let id_end = if text.starts_with("arn:") {
            match text.match_indices(':').nth(6) {
                Some((i, _)) => i,
                None if text.matches(':').count() == 6 => text.len(),
                None => return Err(malformed()),
            }
        } else {
            text.find(':').unwrap_or(text.len())
        };
        let (secret_id, rest) = text.split_at(id_end);
        let mut fields = rest.strip_prefix(':').unwrap_or(rest).split(':');
        let mut next = || fields.next().filter(|f| !f.is_empty());
        let reference = SecretReference {
            secret_id,
            json_key: next(),
            version_stage: next(),
            version_id: next(),
        };
        if secret_id.is_empty() || fields.next().is_some() {
            return Err(malformed());
        }
        Ok(reference)
    }
}

/// The value of the SSM parameter `name` (a name or an ARN).
pub fn parameter_value(
    c: &rusqlite::Connection,
    name: &str,
) -> Result<Result<SecretString, ReferenceError>, StoreError> {
    let name = parameter_name(name);
    Ok(parameter(c, name)?
        .map(|p| p.value)
        .ok_or_else(|| ReferenceError::NoParameter(name.to_string())))
}

/// The parameter name an SSM `Name` stands for: the name itself, or the
/// name in an ARN (`arn:...:parameter/a/b` is `/a/b`, `...:parameter/a` is
/// `a`).
pub fn parameter_name(name: &str) -> &str {
    let Some(resource) = name
        .strip_prefix("arn:")
        .and_then(|r| r.splitn(5, ':').nth(4))
        .and_then(|r| r.strip_prefix("parameter"))
    else {
        return name;
    };
    match resource.strip_prefix('/') {
        Some(top) if !top.contains('/') => top,
        _ => resource,
    }
}

/// The text an `env.secrets-manager` reference names.
pub fn secret_value(
    c: &rusqlite::Connection,
    reference: &str,
) -> Result<Result<String, ReferenceError>, StoreError> {
    let r = match SecretReference::parse(reference) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let Some(secret) = find_secret(c, r.secret_id)?.filter(|s| !s.scheduled_for_deletion()) else {
        return Ok(Err(ReferenceError::NoSecret(r.secret_id.to_string())));
    };
    let version = match secret.version(r.version_id, r.version_stage) {
        Ok((v, _)) => v,
        Err(_) => {
            let which = r
                .version_id
                .or(r.version_stage)
                .unwrap_or(super::AWSCURRENT);
            return Ok(Err(ReferenceError::NoVersion(
                secret.name.clone(),
                which.to_string(),
            )));
        }
    };
    let SecretValue::Text(text) = &version.value else {
        return Ok(Err(ReferenceError::Binary(secret.name.clone())));
    };
    let Some(key) = r.json_key else {
        return Ok(Ok(text.expose_secret().to_string()));
    };
    let picked =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text.expose_secret())
            .ok()
            .and_then(|mut m| m.remove(key))
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
    Ok(picked.ok_or_else(|| ReferenceError::NoJsonKey(secret.name.clone(), key.to_string())))
}
