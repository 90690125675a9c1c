//! ECR's images: DescribeImages (with each image's scan status and
//! findings summary from the `Scans` seam), ListImages, BatchGetImage (the
//! manifest's exact text), BatchDeleteImage (by digest: the image and its
//! tags; by tag: the tag, and the image with its last tag, as ECR; never an
//! image an index lists, `ImageReferencedByManifestList`) and
//! BatchCheckLayerAvailability. A deleted image's blobs stay until the
//! registry's garbage collection finds nothing references them.

use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::Timestamp;
use cutover_aws::shapes::ecr::{
    BatchCheckLayerAvailabilityRequest, BatchCheckLayerAvailabilityResponse,
    BatchDeleteImageRequest, BatchDeleteImageResponse, BatchGetImageRequest, BatchGetImageResponse,
    DescribeImagesRequest, DescribeImagesResponse, Image, ImageDetail, ImageFailure,
    ImageFailureCode, ImageIdentifier, Layer, LayerAvailability, LayerFailure, LayerFailureCode,
    ListImagesRequest, ListImagesResponse, TagStatus,
};
use cutover_store::registry::{self as rows, ImageRow};

use super::{Unresolved, invalid, page, repository, resolve, scanning};
use crate::aws::wire::{self, Call};

/// At most this many image ids in one batch (ECR's model: 1 to 100).
const MAX_BATCH: usize = 100;

fn check_batch<T>(ids: &[T], what: &str) -> Result<(), AwsError> {
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(invalid(format!(
            "Invalid parameter at '{what}' failed to satisfy constraint: 'Member must have length between 1 and {MAX_BATCH}'"
        )));
    }
    Ok(())
}

fn tag_status_keeps(status: Option<TagStatus>, image: &ImageRow) -> bool {
    match status {
        None | Some(TagStatus::Any) => true,
        Some(TagStatus::Tagged) => !image.tags.is_empty(),
        Some(TagStatus::Untagged) => image.tags.is_empty(),
    }
}

pub(super) async fn describe(
    call: &Call<'_>,
    req: DescribeImagesRequest,
) -> Result<DescribeImagesResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let images = match &req.image_ids {
        Some(ids) => {
            check_batch(ids, "imageIds")?;
            let mut found: Vec<ImageRow> = Vec::with_capacity(ids.len());
            for id in ids {
                let image = super::one_image(call, &repo, id).await?;
                if !found.iter().any(|i| i.digest == image.digest) {
                    found.push(image);
                }
            }
            found
        }
        None => {
            let name = repo.name.clone();
            call.st
                .store
                .call(move |c| rows::list_images(c, &name))
                .await
                .map_err(wire::store)?
        }
    };
    let status = req.filter.as_ref().and_then(|f| f.tag_status);
    let images: Vec<ImageRow> = images
        .into_iter()
        .filter(|i| tag_status_keeps(status, i))
        .collect();
    let (images, next) = page(images, req.max_results, 1000, req.next_token.as_deref())?;
    let mut details = Vec::with_capacity(images.len());
    for i in images {
        let (scan_status, summary) = scanning::summary(call, &repo.name, &i.digest).await?;
        details.push(ImageDetail {
            registry_id: Some(call.account().to_string()),
            repository_name: Some(repo.name.clone()),
            image_digest: Some(i.digest.clone()),
            image_tags: (!i.tags.is_empty()).then(|| i.tags.clone()),
            image_size_in_bytes: Some(i.image_size as i64),
            image_pushed_at: Some(Timestamp::from_millis(i.pushed_at_ms)),
            image_scan_status: scan_status,
            image_scan_findings_summary: summary,
            image_manifest_media_type: Some(i.media_type.clone()),
            artifact_media_type: i.artifact_type.clone(),
            ..ImageDetail::default()
        });
    }
    Ok(DescribeImagesResponse {
        image_details: Some(details),
        next_token: next,
    })
}

/// An image's ids as ListImages gives them: one per tag, or the digest
/// alone when untagged.
fn ids_of(image: &ImageRow) -> Vec<ImageIdentifier> {
    if image.tags.is_empty() {
        return vec![ImageIdentifier {
            image_digest: Some(image.digest.clone()),
            image_tag: None,
        }];
    }
    image
        .tags
        .iter()
        .map(|t| ImageIdentifier {
            image_digest: Some(image.digest.clone()),
            image_tag: Some(t.clone()),
        })
        .collect()
}

pub(super) async fn list(
    call: &Call<'_>,
    req: ListImagesRequest,
) -> Result<ListImagesResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    let status = req.filter.as_ref().and_then(|f| f.tag_status);
    let name = repo.name.clone();
    let images = call
        .st
        .store
        .call(move |c| rows::list_images(c, &name))
        .await
        .map_err(wire::store)?;
    let ids: Vec<ImageIdentifier> = images
        .iter()
        .filter(|i| tag_status_keeps(status, i))
        .flat_map(ids_of)
        .collect();
    let (ids, next) = page(ids, req.max_results, 1000, req.next_token.as_deref())?;
    Ok(ListImagesResponse {
        image_ids: Some(ids),
        next_token: next,
    })
}

/// ECR's per-id failure for an id that names no image.
fn failure(id: &ImageIdentifier, why: Unresolved) -> ImageFailure {
    let (code, reason) = match why {
        Unresolved::Missing => (
            ImageFailureCode::MissingDigestAndTag,
            "Invalid request parameters: both tag and digest cannot be null",
        ),
        Unresolved::BadDigest => (
            ImageFailureCode::InvalidImageDigest,
            "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
        ),
        Unresolved::BadTag => (
            ImageFailureCode::InvalidImageTag,
            "Invalid request parameters: image tag should satisfy the registry's tag grammar",
        ),
        Unresolved::Mismatch => (
            ImageFailureCode::ImageTagDoesNotMatchDigest,
            "Invalid request parameters: given tag does not match the given digest",
        ),
        Unresolved::NotFound => (ImageFailureCode::ImageNotFound, "Requested image not found"),
    };
    ImageFailure {
        image_id: Some(id.clone()),
        failure_code: Some(code),
        failure_reason: Some(reason.to_string()),
    }
}

pub(super) async fn batch_get(
    call: &Call<'_>,
    req: BatchGetImageRequest,
) -> Result<BatchGetImageResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    check_batch(&req.image_ids, "imageIds")?;
    let (name, ids) = (repo.name.clone(), req.image_ids.clone());
    let resolved = call
        .st
        .store
        .call(move |c| {
            ids.iter()
                .map(|id| resolve(c, &name, id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(wire::store)?;
    let (mut images, mut failures) = (Vec::new(), Vec::new());
    for (id, found) in req.image_ids.iter().zip(resolved) {
        let image = match found {
            Ok(image) => image,
            Err(why) => {
                failures.push(failure(id, why));
                continue;
            }
        };
        if let Some(accepted) = &req.accepted_media_types
            && !accepted.iter().any(|m| m == &image.media_type)
        {
            failures.push(ImageFailure {
                image_id: Some(id.clone()),
                failure_code: Some(ImageFailureCode::ImageNotFound),
                failure_reason: Some(format!(
                    "The image's manifest media type {} is not among the acceptedMediaTypes",
                    image.media_type
                )),
            });
            continue;
        }
        let manifest = match call
            .st
            .registry
            .get_manifest(&repo.name, &image.digest)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(repository = %repo.name, digest = %image.digest, error = %e, "BatchGetImage cannot read a manifest");
                failures.push(failure(id, Unresolved::NotFound));
                continue;
            }
        };
        images.push(Image {
            registry_id: Some(call.account().to_string()),
            repository_name: Some(repo.name.clone()),
            image_id: Some(ImageIdentifier {
                image_digest: Some(image.digest.clone()),
                image_tag: id.image_tag.clone(),
            }),
            image_manifest: Some(String::from_utf8_lossy(&manifest.bytes).into_owned()),
            image_manifest_media_type: Some(manifest.stored.media_type),
        });
    }
    Ok(BatchGetImageResponse {
        images: Some(images),
        failures: Some(failures),
    })
}

pub(super) async fn batch_delete(
    call: &Call<'_>,
    req: BatchDeleteImageRequest,
) -> Result<BatchDeleteImageResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    check_batch(&req.image_ids, "imageIds")?;
    let (name, ids) = (repo.name.clone(), req.image_ids);
    let (deleted, failures) = call
        .transact(move |c| {
            let (mut deleted, mut failures) = (Vec::new(), Vec::new());
            for id in &ids {
                let image = match resolve(c, &name, id)? {
                    Ok(image) => image,
                    Err(why) => {
                        failures.push(failure(id, why));
                        continue;
                    }
                };
                let takes_image = id.image_tag.is_none() || image.tags.len() == 1;
                if takes_image && rows::in_an_index(c, &name, &image.digest)? {
                    failures.push(ImageFailure {
                        image_id: Some(id.clone()),
                        failure_code: Some(ImageFailureCode::ImageReferencedByManifestList),
                        failure_reason: Some(
                            "Requested image is referenced by an image index (manifest list)"
                                .into(),
                        ),
                    });
                    continue;
                }
                if let Some(tag) = &id.image_tag {
                    rows::delete_tag(c, &name, tag)?;
                    if image.tags.len() == 1 {
                        rows::delete_manifest(c, &name, &image.digest)?;
                    }
                    deleted.push(ImageIdentifier {
                        image_digest: Some(image.digest),
                        image_tag: Some(tag.clone()),
                    });
                } else {
                    rows::delete_manifest(c, &name, &image.digest)?;
                    deleted.extend(ids_of(&image));
                }
            }
            Ok(Ok((deleted, failures)))
        })
        .await?;
    if !deleted.is_empty() {
        tracing::info!(repository = %repo.name, images = deleted.len(), "images deleted (ECR's BatchDeleteImage)");
    }
    Ok(BatchDeleteImageResponse {
        image_ids: Some(deleted),
        failures: Some(failures),
    })
}

pub(super) async fn check_layers(
    call: &Call<'_>,
    req: BatchCheckLayerAvailabilityRequest,
) -> Result<BatchCheckLayerAvailabilityResponse, AwsError> {
    let repo = repository(call, req.registry_id.as_deref(), &req.repository_name).await?;
    check_batch(&req.layer_digests, "layerDigests")?;
    let (name, digests) = (repo.name.clone(), req.layer_digests);
    let sizes = call
        .st
        .store
        .call(move |c| {
            digests
                .into_iter()
                .map(|d| {
                    let size = if cutover_registry::Digest::parse(&d).is_ok() {
                        Some(rows::linked_blob(c, &name, &d)?)
                    } else {
                        None
                    };
                    Ok((d, size))
                })
                .collect::<Result<Vec<_>, cutover_store::StoreError>>()
        })
        .await
        .map_err(wire::store)?;
    let (mut layers, mut failures) = (Vec::new(), Vec::new());
    for (digest, size) in sizes {
        match size {
            Some(Some(size)) => layers.push(Layer {
                layer_digest: Some(digest),
                layer_availability: Some(LayerAvailability::Available),
                layer_size: Some(size as i64),
                media_type: None,
            }),
            Some(None) => failures.push(LayerFailure {
                layer_digest: Some(digest),
                failure_code: Some(LayerFailureCode::MissingLayerDigest),
                failure_reason: Some("Could not find layer".into()),
            }),
            None => failures.push(LayerFailure {
                layer_digest: Some(digest),
                failure_code: Some(LayerFailureCode::InvalidLayerDigest),
                failure_reason: Some("Invalid layer digest".into()),
            }),
        }
    }
    Ok(BatchCheckLayerAvailabilityResponse {
        layers: Some(layers),
        failures: Some(failures),
    })
}
