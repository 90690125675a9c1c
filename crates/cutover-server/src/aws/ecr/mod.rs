//! Amazon ECR's API over AWS's JSON 1.1 protocol, on the registry that
//! `/v2/` serves (`cutover_store::registry` rows, `cutover_registry`
//! blobs): one implementation, two protocols.
//!
//! Split by area: `repositories.rs` (create, describe, delete, settings,
//! GetAuthorizationToken), `images.rs` (describe, list, get, delete, layer
//! availability), `lifecycle.rs` (policies and their preview, evaluated by
//! the one function a lifecycle run uses, `crate::registry::lifecycle`)
//! and `scanning.rs` (StartImageScan, DescribeImageScanFindings over the
//! `Scans` seam).
//!
//! Refusals carry ECR's exception names from the model
//! (`shapes::ecr::errors`) and its messages' wording. A `registryId` other
//! than the installation's account is refused: there is one registry.

mod images;
mod lifecycle;
mod repositories;
mod scanning;
#[cfg(test)]
mod tests;

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::ecr::{ImageIdentifier, Operation, errors};
use cutover_store::registry::{self as rows, ImageRef, ImageRow, RepositoryRow};

use super::wire::{self, Call, Reply, input, output};

/// Runs `op`.
pub(super) async fn call(call: &Call<'_>, op: Operation, body: &[u8]) -> Result<Reply, AwsError> {
    match op {
        Operation::CreateRepository => output(&repositories::create(call, input(body)?).await?),
        Operation::DescribeRepositories => {
            output(&repositories::describe(call, input(body)?).await?)
        }
        Operation::DeleteRepository => output(&repositories::delete(call, input(body)?).await?),
        Operation::PutImageTagMutability => {
            output(&repositories::put_mutability(call, input(body)?).await?)
        }
        Operation::PutImageScanningConfiguration => {
            output(&repositories::put_scanning(call, input(body)?).await?)
        }
        Operation::GetAuthorizationToken => {
            output(&repositories::authorization_token(call, input(body)?)?)
        }
        Operation::DescribeImages => output(&images::describe(call, input(body)?).await?),
        Operation::ListImages => output(&images::list(call, input(body)?).await?),
        Operation::BatchGetImage => output(&images::batch_get(call, input(body)?).await?),
        Operation::BatchDeleteImage => output(&images::batch_delete(call, input(body)?).await?),
        Operation::BatchCheckLayerAvailability => {
            output(&images::check_layers(call, input(body)?).await?)
        }
        Operation::PutLifecyclePolicy => output(&lifecycle::put(call, input(body)?).await?),
        Operation::GetLifecyclePolicy => output(&lifecycle::get(call, input(body)?).await?),
        Operation::DeleteLifecyclePolicy => output(&lifecycle::delete(call, input(body)?).await?),
        Operation::StartLifecyclePolicyPreview => {
            output(&lifecycle::start_preview(call, input(body)?).await?)
        }
        Operation::GetLifecyclePolicyPreview => {
            output(&lifecycle::get_preview(call, input(body)?).await?)
        }
        Operation::StartImageScan => output(&scanning::start(call, input(body)?).await?),
        Operation::DescribeImageScanFindings => {
            output(&scanning::findings(call, input(body)?).await?)
        }
    }
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::client(errors::INVALID_PARAMETER_EXCEPTION, message)
}

/// ECR's `maxResults` (1 to 1,000; 100 when absent), refused outside.
fn max_results(max: Option<i32>, most: i32) -> Result<usize, AwsError> {
    match max {
        None => Ok(100.min(most) as usize),
        Some(n) if (1..=most).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between 1 and {most}' (got {n})"
        ))),
    }
}

/// One page of `items` (ECR answers a token it did not hand out with
/// `InvalidParameterException`).
fn page<T>(
    items: Vec<T>,
    max: Option<i32>,
    most: i32,
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let size = max_results(max, most)?;
    wire::page(items, size, token, || {
        invalid("Invalid parameter at 'nextToken': the token was not handed out by this registry")
    })
}

/// Checks a request's `registryId`: absent, or this installation's account.
fn check_registry(call: &Call<'_>, registry_id: Option<&str>) -> Result<(), AwsError> {
    match registry_id {
        Some(id) if id != call.account() => Err(invalid(format!(
            "Invalid parameter at 'registryId': this registry's id is '{}', not '{id}'",
            call.account()
        ))),
        _ => Ok(()),
    }
}

/// Checks the request's `registryId` and the repository name's grammar
/// (ECR's model pattern).
fn check(call: &Call<'_>, registry_id: Option<&str>, name: &str) -> Result<(), AwsError> {
    check_registry(call, registry_id)?;
    if !cutover_spec::ecr::is_repository_name(name) {
        return Err(invalid(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' and have length between 2 and 256 (got {:?})",
            name.chars().take(300).collect::<String>()
        )));
    }
    Ok(())
}

fn repository_not_found(call: &Call<'_>, name: &str) -> AwsError {
    AwsError::client(
        errors::REPOSITORY_NOT_FOUND_EXCEPTION,
        format!(
            "The repository with name '{name}' does not exist in the registry with id '{}'",
            call.account()
        ),
    )
}

/// The repository `name` (checked), or ECR's RepositoryNotFoundException.
async fn repository(
    call: &Call<'_>,
    registry_id: Option<&str>,
    name: &str,
) -> Result<RepositoryRow, AwsError> {
    check(call, registry_id, name)?;
    let owned = name.to_string();
    let row = call
        .st
        .store
        .call(move |c| rows::get_repository(c, &owned))
        .await
        .map_err(wire::store)?;
    row.ok_or_else(|| repository_not_found(call, name))
}

/// `{imageDigest:'..', imageTag:'..'}` as ECR's messages print an image id.
fn shown(id: &ImageIdentifier) -> String {
    format!(
        "{{imageDigest:'{}', imageTag:'{}'}}",
        id.image_digest.as_deref().unwrap_or("null"),
        id.image_tag.as_deref().unwrap_or("null")
    )
}

fn image_not_found(call: &Call<'_>, repo: &str, id: &ImageIdentifier) -> AwsError {
    AwsError::client(
        errors::IMAGE_NOT_FOUND_EXCEPTION,
        format!(
            "The image with imageId {} does not exist within the repository with name '{repo}' in the registry with id '{}'",
            shown(id),
            call.account()
        ),
    )
}

/// Why an image id names no image (ECR's failure codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unresolved {
    /// Neither a digest nor a tag.
    Missing,
    /// A digest that is no `sha256:` digest.
    BadDigest,
    /// A tag that breaks the tag grammar.
    BadTag,
    /// The tag names another image than the digest.
    Mismatch,
    /// No such image.
    NotFound,
}

/// The image `id` names in `repo`, inside a store transaction.
fn resolve(
    c: &rusqlite::Connection,
    repo: &str,
    id: &ImageIdentifier,
) -> Result<Result<ImageRow, Unresolved>, cutover_store::StoreError> {
    let digest = id.image_digest.as_deref();
    let tag = id.image_tag.as_deref();
    if let Some(d) = digest
        && cutover_registry::Digest::parse(d).is_err()
    {
        return Ok(Err(Unresolved::BadDigest));
    }
    if let Some(t) = tag
        && !is_tag(t)
    {
        return Ok(Err(Unresolved::BadTag));
    }
    let which = match (digest, tag) {
        (Some(d), _) => ImageRef::Digest(d),
        (None, Some(t)) => ImageRef::Tag(t),
        (None, None) => return Ok(Err(Unresolved::Missing)),
    };
    let Some(image) = rows::get_image(c, repo, which)? else {
        return Ok(Err(Unresolved::NotFound));
    };
    if let (Some(_), Some(t)) = (digest, tag)
        && !image.tags.iter().any(|x| x == t)
    {
        // A digest that exists with a tag that names something else (or
        // nothing) is ECR's mismatch only when the tag exists.
        return Ok(Err(match rows::get_image(c, repo, ImageRef::Tag(t))? {
            Some(_) => Unresolved::Mismatch,
            None => Unresolved::NotFound,
        }));
    }
    Ok(Ok(image))
}

/// A tag as the registry's grammar (the Distribution Spec's) allows it.
fn is_tag(t: &str) -> bool {
    matches!(
        cutover_registry::Reference::parse(t),
        Ok(cutover_registry::Reference::Tag(_))
    )
}

/// The one image `id` names (for the operations that take one), or ECR's
/// refusal.
async fn one_image(
    call: &Call<'_>,
    repo: &RepositoryRow,
    id: &ImageIdentifier,
) -> Result<ImageRow, AwsError> {
    let (name, owned) = (repo.name.clone(), id.clone());
    let found = call
        .st
        .store
        .call(move |c| resolve(c, &name, &owned))
        .await
        .map_err(wire::store)?;
    found.map_err(|why| match why {
        Unresolved::Missing => {
            invalid("Invalid parameter: both imageDigest and imageTag are empty")
        }
        Unresolved::BadDigest => invalid(format!(
            "Invalid parameter at 'imageDigest': {:?} is not a sha256 digest",
            id.image_digest.as_deref().unwrap_or_default()
        )),
        Unresolved::BadTag => invalid(format!(
            "Invalid parameter at 'imageTag': {:?} is not a valid tag",
            id.image_tag.as_deref().unwrap_or_default()
        )),
        Unresolved::Mismatch | Unresolved::NotFound => image_not_found(call, &repo.name, id),
    })
}
