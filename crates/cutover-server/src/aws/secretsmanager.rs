//! Secrets Manager over AWS's JSON 1.1 protocol, on the one secret store
//! (`cutover_store::secrets`) that builds read too: CreateSecret,
//! GetSecretValue, PutSecretValue, ListSecrets, DeleteSecret.
//!
//! As on AWS: an ARN ends in the name, a hyphen and six random characters;
//! a secret is found by name, ARN or partial ARN; `PutSecretValue` makes
//! the new version `AWSCURRENT` and the old one `AWSPREVIOUS`; a
//! `ClientRequestToken` is the version id, and a retry with the same token
//! and value changes nothing; `DeleteSecret` schedules the deletion
//! (`RecoveryWindowInDays`, 7 to 30, default 30) and reads are then refused
//! with `InvalidRequestException`, or deletes at once with
//! `ForceDeleteWithoutRecovery`. Not kept: versions older than
//! `AWSPREVIOUS`, custom staging labels (refused), tags and `KmsKeyId`
//! (accepted, ignored: there is no KMS; values live in the state database,
//! readable by the server's user only).

use base64::Engine as _;
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::Timestamp;
use cutover_aws::shapes::secretsmanager::{
    CreateSecretRequest, CreateSecretResponse, DeleteSecretRequest, DeleteSecretResponse,
    FilterNameStringType, GetSecretValueRequest, GetSecretValueResponse, ListSecretsRequest,
    ListSecretsResponse, Operation, PutSecretValueRequest, PutSecretValueResponse, SecretListEntry,
    SortByType, SortOrderType, errors,
};
use cutover_store::secrets::{self, AWSCURRENT, NoVersion, SecretRow, SecretValue, SecretVersion};
use rand::Rng as _;
use rusqlite::Connection;
use secrecy::{ExposeSecret, SecretString};

use super::wire::{self, Call, Reply, input, output};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Runs `op`.
pub(super) async fn call(call: &Call<'_>, op: Operation, body: &[u8]) -> Result<Reply, AwsError> {
    match op {
        Operation::CreateSecret => output(&create(call, input(body)?).await?),
        Operation::GetSecretValue => output(&get_value(call, input(body)?).await?),
        Operation::PutSecretValue => output(&put_value(call, input(body)?).await?),
        Operation::ListSecrets => output(&list(call, input(body)?).await?),
        Operation::DeleteSecret => output(&delete(call, input(body)?).await?),
    }
}

fn invalid_parameter(message: impl Into<String>) -> AwsError {
    AwsError::client(errors::INVALID_PARAMETER_EXCEPTION, message)
}

fn not_found() -> AwsError {
    AwsError::client(
        errors::RESOURCE_NOT_FOUND_EXCEPTION,
        "Secrets Manager can't find the specified secret.",
    )
}

fn marked_for_deletion() -> AwsError {
    AwsError::client(
        errors::INVALID_REQUEST_EXCEPTION,
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

/// A secret name as AWS allows it: 1 to 512 of `A-Za-z0-9/_+=.@-`.
fn check_name(name: &str) -> Result<(), AwsError> {
    let ok = (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid_parameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ))
    }
}

/// The value a request carries: `SecretString` or `SecretBinary`
/// (base64 on the wire), never both.
fn value_of(text: Option<String>, binary: Option<String>) -> Result<Option<SecretValue>, AwsError> {
    match (text, binary) {
        (Some(_), Some(_)) => Err(invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )),
        (Some(t), None) => Ok(Some(SecretValue::Text(SecretString::from(t)))),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(|bytes| Some(SecretValue::Binary(bytes.into())))
            .map_err(|_| invalid_parameter("SecretBinary is not base64")),
        (None, None) => Ok(None),
    }
}

/// The version id of a new version: the client's token (32 to 64
/// characters, as AWS's model says), or a new UUID.
fn version_id(token: Option<String>) -> Result<String, AwsError> {
    match token {
        Some(t) if (32..=64).contains(&t.len()) => Ok(t),
        Some(_) => Err(invalid_parameter(
            "ClientRequestToken must be 32 to 64 characters long.",
        )),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

/// Six random letters and digits, as AWS appends to a secret's ARN.
fn arn_suffix() -> String {
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(6)
        .map(char::from)
        .collect()
}

/// The secret `id` names, its due deletions purged first; refused if
/// there is none or (unless `deleted_ok`) if its deletion is scheduled.
fn live_secret(
    c: &Connection,
    id: &str,
    now: u64,
    deleted_ok: bool,
) -> Result<Result<SecretRow, AwsError>, cutover_store::StoreError> {
    for name in secrets::purge_deleted(c, now)? {
        tracing::info!(secret = %name, "deleted a secret whose recovery window ended");
    }
    Ok(match secrets::find_secret(c, id)? {
        None => Err(not_found()),
        Some(s) if s.scheduled_for_deletion() && !deleted_ok => Err(marked_for_deletion()),
        Some(s) => Ok(s),
    })
}

async fn create(
    call: &Call<'_>,
    req: CreateSecretRequest,
) -> Result<CreateSecretResponse, AwsError> {
    check_name(&req.name)?;
    if req
        .add_replica_regions
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        return Err(invalid_parameter(
            "Cutover does not replicate secrets to other regions.",
        ));
    }
    let value = value_of(req.secret_string, req.secret_binary)?;
    let id = version_id(req.client_request_token)?;
    let now = call.st.clock.now_ms();
    let row = SecretRow {
        name: req.name.clone(),
        arn_suffix: arn_suffix(),
        description: req.description,
        current: value.map(|value| SecretVersion {
            id,
            value,
            created_at: now,
        }),
        previous: None,
        created_at: now,
        changed_at: now,
        deleted_at: None,
        purge_at: None,
    };
    let row = call
        .transact(move |c| {
            let _ = secrets::purge_deleted(c, now)?;
            Ok(match secrets::secret(c, &row.name)? {
                Some(s) if s.scheduled_for_deletion() => Err(AwsError::client(
                    errors::INVALID_REQUEST_EXCEPTION,
                    "You can't create this secret because a secret with this name is already scheduled for deletion.",
                )),
                Some(_) => Err(AwsError::client(
                    errors::RESOURCE_EXISTS_EXCEPTION,
                    format!("The operation failed because the secret {} already exists.", row.name),
                )),
                None => {
                    secrets::put_secret(c, &row)?;
                    Ok(row)
                }
            })
        })
        .await?;
    tracing::info!(secret = %row.name, "created a secret");
    Ok(CreateSecretResponse {
        arn: Some(call.arn("secretsmanager", &row.arn_resource())),
        name: Some(row.name.clone()),
        version_id: row.current.map(|v| v.id),
        replication_status: None,
    })
}

async fn get_value(
    call: &Call<'_>,
    req: GetSecretValueRequest,
) -> Result<GetSecretValueResponse, AwsError> {
    let now = call.st.clock.now_ms();
    let id = req.secret_id.clone();
    let secret = call
        .transact(move |c| live_secret(c, &id, now, false))
        .await?;
    let (version, stage) = secret
        .version(req.version_id.as_deref(), req.version_stage.as_deref())
        .map_err(|e| {
            let message = match e {
                NoVersion::Id(id) => format!("for VersionId: {id}"),
                NoVersion::Stage(s) => format!("for staging label: {s}"),
            };
            AwsError::client(
                errors::RESOURCE_NOT_FOUND_EXCEPTION,
                format!("Secrets Manager can't find the specified secret value {message}"),
            )
        })?;
    let (text, binary) = match &version.value {
        SecretValue::Text(t) => (Some(t.expose_secret().to_string()), None),
        SecretValue::Binary(b) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(b.expose_secret())),
        ),
    };
    Ok(GetSecretValueResponse {
        arn: Some(call.arn("secretsmanager", &secret.arn_resource())),
        name: Some(secret.name.clone()),
        version_id: Some(version.id.clone()),
        secret_binary: binary,
        secret_string: text,
        version_stages: Some(vec![stage.to_string()]),
        created_date: Some(Timestamp::from_millis(version.created_at)),
    })
}

async fn put_value(
    call: &Call<'_>,
    req: PutSecretValueRequest,
) -> Result<PutSecretValueResponse, AwsError> {
    if req
        .version_stages
        .as_ref()
        .is_some_and(|s| s.iter().any(|s| s != AWSCURRENT))
    {
        return Err(invalid_parameter(
            "Cutover keeps only the AWSCURRENT and AWSPREVIOUS staging labels; VersionStages may only be [\"AWSCURRENT\"].",
        ));
    }
    let Some(value) = value_of(req.secret_string, req.secret_binary)? else {
        return Err(invalid_parameter(
            "You must provide either SecretString or SecretBinary.",
        ));
    };
    let id = version_id(req.client_request_token)?;
    let now = call.st.clock.now_ms();
    let secret_id = req.secret_id.clone();
    let (secret, version) = call
        .transact(move |c| {
            let mut secret = match live_secret(c, &secret_id, now, false)? {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(existing) = secret.version_by_id(&id) {
                // A retry of the same request is answered as the first was.
                return Ok(if existing.value.same_as(&value) {
                    Ok((secret, id))
                } else {
                    Err(AwsError::client(
                        errors::RESOURCE_EXISTS_EXCEPTION,
                        format!(
                            "A version with VersionId {id} already exists with a different value."
                        ),
                    ))
                });
            }
            secret.push_version(SecretVersion {
                id: id.clone(),
                value,
                created_at: now,
            });
            secrets::put_secret(c, &secret)?;
            Ok(Ok((secret, id)))
        })
        .await?;
    let stage = secret
        .versions_to_stages()
        .into_iter()
        .find(|(id, _)| *id == version)
        .map_or(AWSCURRENT, |(_, s)| s);
    Ok(PutSecretValueResponse {
        arn: Some(call.arn("secretsmanager", &secret.arn_resource())),
        name: Some(secret.name.clone()),
        version_id: Some(version),
        version_stages: Some(vec![stage.to_string()]),
    })
}

/// Whether `s` passes every filter (each value a prefix, `!` negating).
fn passes(s: &SecretRow, key: FilterNameStringType, values: &[String]) -> bool {
    let description = s.description.as_deref().unwrap_or("").to_lowercase();
    values.iter().any(|v| {
        let (negate, v) = v
            .strip_prefix('!')
            .map_or((false, v.as_str()), |v| (true, v));
        let hit = match key {
            FilterNameStringType::Name => s.name.starts_with(v),
            FilterNameStringType::Description => description.starts_with(&v.to_lowercase()),
            _ => {
                let v = v.to_lowercase();
                s.name.to_lowercase().starts_with(&v) || description.starts_with(&v)
            }
        };
        hit != negate
    })
}

async fn list(call: &Call<'_>, req: ListSecretsRequest) -> Result<ListSecretsResponse, AwsError> {
    let mut filters = Vec::new();
    for f in req.filters.unwrap_or_default() {
        let key = f.key.unwrap_or(FilterNameStringType::All);
        if !matches!(
            key,
            FilterNameStringType::Name
                | FilterNameStringType::Description
                | FilterNameStringType::All
        ) {
            return Err(invalid_parameter(format!(
                "Cutover filters secrets by name, description and all, not by {}.",
                key.as_str()
            )));
        }
        filters.push((key, f.values.unwrap_or_default()));
    }
    let max = match req.max_results {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(invalid_parameter("MaxResults must be between 1 and 100.")),
    };
    let now = call.st.clock.now_ms();
    let mut all = call
        .transact(move |c| {
            let _ = secrets::purge_deleted(c, now)?;
            Ok(Ok(secrets::list_secrets(c)?))
        })
        .await?;
    let planned = req.include_planned_deletion.unwrap_or(false);
    all.retain(|s| {
        (planned || !s.scheduled_for_deletion()) && filters.iter().all(|(k, v)| passes(s, *k, v))
    });
    if req.sort_by == Some(SortByType::Name) {
        all.sort_by(|a, b| a.name.cmp(&b.name));
    } else if req.sort_by == Some(SortByType::LastChangedDate) {
        all.sort_by_key(|s| s.changed_at);
    }
    if req.sort_order == Some(SortOrderType::Desc) {
        all.reverse();
    }
    let (page, next_token) = wire::page(all, max, req.next_token.as_deref(), || {
        AwsError::client(
            errors::INVALID_NEXT_TOKEN_EXCEPTION,
            "The NextToken value is invalid.",
        )
    })?;
    let stamp = |t: Option<u64>| t.map(Timestamp::from_millis);
    let secret_list = page
        .iter()
        .map(|s| SecretListEntry {
            arn: Some(call.arn("secretsmanager", &s.arn_resource())),
            name: Some(s.name.clone()),
            description: s.description.clone(),
            last_changed_date: stamp(Some(s.changed_at)),
            created_date: stamp(Some(s.created_at)),
            deleted_date: stamp(s.deleted_at),
            secret_versions_to_stages: Some(
                s.versions_to_stages()
                    .into_iter()
                    .map(|(id, stage)| (id, vec![stage.to_string()]))
                    .collect(),
            ),
            ..SecretListEntry::default()
        })
        .collect();
    Ok(ListSecretsResponse {
        secret_list: Some(secret_list),
        next_token,
    })
}

async fn delete(
    call: &Call<'_>,
    req: DeleteSecretRequest,
) -> Result<DeleteSecretResponse, AwsError> {
    let force = req.force_delete_without_recovery.unwrap_or(false);
    let window_days = match (force, req.recovery_window_in_days) {
        (true, Some(_)) => {
            return Err(invalid_parameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
            ));
        }
        (false, Some(d)) if !(7..=30).contains(&d) => {
            return Err(invalid_parameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
            ));
        }
        (_, d) => d.unwrap_or(30) as u64,
    };
    let now = call.st.clock.now_ms();
    let id = req.secret_id.clone();
    let secret = call
        .transact(move |c| {
            let mut secret = match live_secret(c, &id, now, true)? {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            if force {
                secrets::delete_secret(c, &secret.name)?;
                secret.purge_at = Some(now);
            } else if secret.scheduled_for_deletion() {
                return Ok(Err(AwsError::client(
                    errors::INVALID_REQUEST_EXCEPTION,
                    "You can't perform this operation on the secret because it was already scheduled for deletion.",
                )));
            } else {
                secret.deleted_at = Some(now);
                secret.purge_at = Some(now + window_days * DAY_MS);
                secrets::put_secret(c, &secret)?;
            }
            Ok(Ok(secret))
        })
        .await?;
    tracing::info!(secret = %secret.name, force, "deleted a secret");
    Ok(DeleteSecretResponse {
        arn: Some(call.arn("secretsmanager", &secret.arn_resource())),
        name: Some(secret.name.clone()),
        deletion_date: secret.purge_at.map(Timestamp::from_millis),
    })
}
