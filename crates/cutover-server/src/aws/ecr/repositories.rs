//! ECR's repositories: CreateRepository, DescribeRepositories,
//! DeleteRepository (`force` needed when it holds images),
//! PutImageTagMutability, PutImageScanningConfiguration, and
//! GetAuthorizationToken (the registry's login).
//!
//! `repositoryUri` is `HOST:PORT/NAME` of this server's listener, what
//! Podman, skopeo and Docker push to; `registryId` is the installation's
//! account. Not kept: `tags` (accepted, as ECR's tagging is not
//! answered), `encryptionConfiguration` other than ECR's default `AES256`
//! and the `*_WITH_EXCLUSION` mutabilities are refused.

use base64::Engine as _;
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::Timestamp;
use cutover_aws::shapes::ecr::{
    AuthorizationData, CreateRepositoryRequest, CreateRepositoryResponse, DeleteRepositoryRequest,
    DeleteRepositoryResponse, DescribeRepositoriesRequest, DescribeRepositoriesResponse,
    EncryptionConfiguration, EncryptionType, GetAuthorizationTokenRequest,
    GetAuthorizationTokenResponse, ImageScanningConfiguration, ImageTagMutability,
    PutImageScanningConfigurationRequest, PutImageScanningConfigurationResponse,
    PutImageTagMutabilityRequest, PutImageTagMutabilityResponse, Repository, errors,
};
use cutover_store::StoreError;
use cutover_store::registry::{self as rows, RepositoryRow, TagMutability};

use super::{check, check_registry, invalid, page, repository, repository_not_found};
use crate::aws::wire::{self, Call};

/// The registry's `HOST:PORT` (the listener's address, from the endpoint
/// builds are given).
pub(crate) fn registry_host(call: &Call<'_>) -> String {
    let e = &call.st.aws.endpoint;
    e.strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"))
        .unwrap_or(e)
        .trim_end_matches('/')
        .to_string()
}

/// `r` in ECR's shape.
pub(super) fn shape(call: &Call<'_>, r: &RepositoryRow) -> Repository {
    Repository {
        repository_arn: Some(call.arn("ecr", &format!("repository/{}", r.name))),
        registry_id: Some(call.account().to_string()),
        repository_name: Some(r.name.clone()),
        repository_uri: Some(format!("{}/{}", registry_host(call), r.name)),
        created_at: Some(Timestamp::from_millis(r.created_at_ms)),
        image_tag_mutability: Some(to_shape(r.tag_mutability)),
        image_tag_mutability_exclusion_filters: None,
        image_scanning_configuration: Some(ImageScanningConfiguration {
            scan_on_push: Some(r.scan_on_push),
        }),
        encryption_configuration: Some(EncryptionConfiguration {
            encryption_type: EncryptionType::Aes256,
            kms_key: None,
        }),
    }
}

fn to_shape(m: TagMutability) -> ImageTagMutability {
    match m {
        TagMutability::Mutable => ImageTagMutability::Mutable,
        TagMutability::Immutable => ImageTagMutability::Immutable,
    }
}

fn from_shape(m: ImageTagMutability) -> Result<TagMutability, AwsError> {
    match m {
        ImageTagMutability::Mutable => Ok(TagMutability::Mutable),
        ImageTagMutability::Immutable => Ok(TagMutability::Immutable),
        other => Err(invalid(format!(
            "Invalid parameter at 'imageTagMutability': {} is not supported by this registry (use MUTABLE or IMMUTABLE)",
            other.as_str()
        ))),
    }
}

pub(super) async fn create(
    call: &Call<'_>,
    req: CreateRepositoryRequest,
) -> Result<CreateRepositoryResponse, AwsError> {
    check(call, req.registry_id.as_deref(), &req.repository_name)?;
    let tag_mutability = from_shape(
        req.image_tag_mutability
            .unwrap_or(ImageTagMutability::Mutable),
    )?;
    if req.image_tag_mutability_exclusion_filters.is_some() {
        return Err(invalid(
            "Invalid parameter at 'imageTagMutabilityExclusionFilters': exclusion filters are not supported by this registry",
        ));
    }
    if let Some(e) = &req.encryption_configuration
        && e.encryption_type != EncryptionType::Aes256
    {
        return Err(invalid(format!(
            "Invalid parameter at 'encryptionConfiguration': {} is not supported by this registry (it has no KMS; use AES256)",
            e.encryption_type.as_str()
        )));
    }
    let row = RepositoryRow {
        name: req.repository_name.clone(),
        created_at_ms: call.st.clock.now_ms(),
        tag_mutability,
        scan_on_push: req
            .image_scanning_configuration
            .and_then(|s| s.scan_on_push)
            .unwrap_or(false),
        anonymous_pull: false,
        lifecycle_policy: None,
    };
    let stored = row.clone();
    let account = call.account().to_string();
    call.transact(move |c| match rows::create_repository(c, &stored) {
        Ok(()) => Ok(Ok(())),
        Err(StoreError::Conflict(_)) => Ok(Err(AwsError::client(
            errors::REPOSITORY_ALREADY_EXISTS_EXCEPTION,
            format!(
                "The repository with name '{}' already exists in the registry with id '{account}'",
                stored.name
            ),
        ))),
        Err(e) => Err(e),
    })
    .await?;
    tracing::info!(repository = %row.name, "repository created (ECR's CreateRepository)");
    Ok(CreateRepositoryResponse {
        repository: Some(shape(call, &row)),
    })
}

pub(super) async fn describe(
    call: &Call<'_>,
    req: DescribeRepositoriesRequest,
) -> Result<DescribeRepositoriesResponse, AwsError> {
    let rows = match &req.repository_names {
        Some(names) => {
            if names.is_empty() || names.len() > 100 {
                return Err(invalid(
                    "Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'Member must have length between 1 and 100'",
                ));
            }
            let mut found = Vec::with_capacity(names.len());
            for name in names {
                found.push(repository(call, req.registry_id.as_deref(), name).await?);
            }
            found
        }
        None => {
            check_registry(call, req.registry_id.as_deref())?;
            call.st
                .store
                .call(|c| rows::list_repositories(c, None, usize::MAX))
                .await
                .map_err(wire::store)?
        }
    };
    let (rows, next) = page(rows, req.max_results, 1000, req.next_token.as_deref())?;
    Ok(DescribeRepositoriesResponse {
        repositories: Some(rows.iter().map(|r| shape(call, r)).collect()),
        next_token: next,
    })
}

pub(super) async fn delete(
    call: &Call<'_>,
    req: DeleteRepositoryRequest,
) -> Result<DeleteRepositoryResponse, AwsError> {
    let row = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let (name, force) = (row.name.clone(), req.force.unwrap_or(false));
    let account = call.account().to_string();
    let gone = repository_not_found(call, &row.name);
    call.transact(move |c| match rows::delete_repository(c, &name, force) {
        Ok(()) => Ok(Ok(())),
        Err(StoreError::Conflict(_)) => Ok(Err(AwsError::client(
            errors::REPOSITORY_NOT_EMPTY_EXCEPTION,
            format!(
                "The repository with name '{name}' in registry with id '{account}' cannot be deleted because it still contains images"
            ),
        ))),
        Err(StoreError::NotFound { .. }) => Ok(Err(gone)),
        Err(e) => Err(e),
    })
    .await?;
    call.st.lifecycle.forget(&row.name);
    tracing::info!(repository = %row.name, force, "repository deleted (ECR's DeleteRepository)");
    Ok(DeleteRepositoryResponse {
        repository: Some(shape(call, &row)),
    })
}

pub(super) async fn put_mutability(
    call: &Call<'_>,
    req: PutImageTagMutabilityRequest,
) -> Result<PutImageTagMutabilityResponse, AwsError> {
    let row = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let m = from_shape(req.image_tag_mutability)?;
    if req.image_tag_mutability_exclusion_filters.is_some() {
        return Err(invalid(
            "Invalid parameter at 'imageTagMutabilityExclusionFilters': exclusion filters are not supported by this registry",
        ));
    }
    let name = row.name.clone();
    call.st
        .store
        .transact(move |c| rows::set_tag_mutability(c, &name, m))
        .await
        .map_err(wire::store)?;
    Ok(PutImageTagMutabilityResponse {
        registry_id: Some(call.account().to_string()),
        repository_name: Some(row.name),
        image_tag_mutability: Some(to_shape(m)),
        image_tag_mutability_exclusion_filters: None,
    })
}

pub(super) async fn put_scanning(
    call: &Call<'_>,
    req: PutImageScanningConfigurationRequest,
) -> Result<PutImageScanningConfigurationResponse, AwsError> {
    let row = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let on = req
        .image_scanning_configuration
        .scan_on_push
        .unwrap_or(false);
    let name = row.name.clone();
    call.st
        .store
        .transact(move |c| rows::set_scan_on_push(c, &name, on))
        .await
        .map_err(wire::store)?;
    Ok(PutImageScanningConfigurationResponse {
        registry_id: Some(call.account().to_string()),
        repository_name: Some(row.name),
        image_scanning_configuration: Some(ImageScanningConfiguration {
            scan_on_push: Some(on),
        }),
    })
}

/// GetAuthorizationToken: `base64("AWS:" + token)`, the token valid 12
/// hours, and the registry's endpoint.
pub(super) fn authorization_token(
    call: &Call<'_>,
    req: GetAuthorizationTokenRequest,
) -> Result<GetAuthorizationTokenResponse, AwsError> {
    for id in req.registry_ids.iter().flatten() {
        check_registry(call, Some(id))?;
    }
    let now = call.st.clock.now_ms();
    let token = call.st.aws.keys.mint_registry_token(now);
    let data = AuthorizationData {
        authorization_token: Some(
            base64::engine::general_purpose::STANDARD.encode(format!("AWS:{token}")),
        ),
        expires_at: Some(Timestamp::from_millis(
            now + cutover_registry::token::TOKEN_TTL_MS,
        )),
        proxy_endpoint: Some(call.st.aws.endpoint.trim_end_matches('/').to_string()),
    };
    Ok(GetAuthorizationTokenResponse {
        authorization_data: Some(vec![data]),
    })
}
