//! Access keys for AWS's protocols: what `cutover access-keys` sends and
//! reads. The answers have IAM's shapes (`aws iam create-access-key`,
//! `aws iam list-access-keys`), so scripts written for IAM read them.

use cutover_aws::keys::AccessKeyStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/access-keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccessKeyRequest {
    /// Who the key is for (IAM's `UserName`); default `cutover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A new key, secret included: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKey {
    /// Who the key is for.
    pub user_name: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// Whether it may sign.
    pub status: AccessKeyStatus,
    /// When it was created (RFC 3339).
    pub create_date: String,
}

/// The answer of `POST /v1/access-keys` (`aws iam create-access-key`'s shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAccessKeyResponse {
    /// The key.
    pub access_key: AccessKey,
}

/// A key without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyMetadata {
    /// Who the key is for.
    pub user_name: String,
    /// The access key id.
    pub access_key_id: String,
    /// Whether it may sign.
    pub status: AccessKeyStatus,
    /// When it was created (RFC 3339).
    pub create_date: String,
    /// When a short-lived key stops working (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// What a short-lived key was made for (`build:ID`, `hook:ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The answer of `GET /v1/access-keys` (`aws iam list-access-keys`'s shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyList {
    /// Every key, oldest first.
    pub access_key_metadata: Vec<AccessKeyMetadata>,
}

/// The answer of `DELETE /v1/access-keys/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteAccessKeyResponse {
    /// The deleted key's id.
    pub access_key_id: String,
}
