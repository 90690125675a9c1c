//! Reading one stored image for the scanner: its manifest (an image, or an
//! index whose platform images are each scanned and merged), its layers
//! opened as files in the registry's store and streamed through
//! `cutover_scan::scan` on the blocking pool. Nothing in an image is ever
//! executed or unpacked.

use cutover_registry::Registry;
use cutover_scan::{EcosystemKind, Inventory};
use oci_spec::image::{ImageIndex, ImageManifest};

/// What reading an image gave.
#[derive(Debug)]
pub(crate) enum Read {
    /// The image's packages (all platforms' for an index).
    Inventory(Inventory),
    /// Not an image the scanner reads, and why.
    Unsupported(String),
    /// It could not be read (a corrupt layer, a missing blob), and why.
    Failed(String),
}

const IMAGE_CONFIGS: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
const INDEXES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Reads the image `digest` of `repo`.
pub(crate) async fn read(registry: &Registry, repo: &str, digest: &str) -> Read {
    let m = match registry.get_manifest(repo, digest).await {
        Ok(m) => m,
        Err(e) => return Read::Failed(format!("cannot read the manifest: {e}")),
    };
    if !INDEXES.contains(&m.stored.media_type.as_str()) {
        return read_image(registry, repo, &m.bytes).await;
    }
    let index: ImageIndex = match serde_json::from_slice(&m.bytes) {
        Ok(i) => i,
        Err(e) => return Read::Failed(format!("cannot read the index: {e}")),
    };
    // Every platform image is scanned and the inventories merged;
    // attestation manifests (platform unknown/unknown) are not images.
    let mut merged = Inventory::default();
    let mut scanned = 0;
    for child in index.manifests() {
        if child
            .platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == "unknown")
        {
            continue;
        }
        let child_bytes = match registry.get_manifest(repo, child.digest().as_ref()).await {
            Ok(c) if !INDEXES.contains(&c.stored.media_type.as_str()) => c.bytes,
            Ok(_) => continue,
            Err(e) => return Read::Failed(format!("cannot read {}: {e}", child.digest())),
        };
        match Box::pin(read_image(registry, repo, &child_bytes)).await {
            Read::Inventory(inv) => {
                scanned += 1;
                merge(&mut merged, inv);
            }
            Read::Unsupported(_) => {}
            failed @ Read::Failed(_) => return failed,
        }
    }
    if scanned == 0 {
        return Read::Unsupported("the index holds no image the scanner reads".into());
    }
    merged.packages.sort();
    merged.packages.dedup();
    Read::Inventory(merged)
}

fn merge(into: &mut Inventory, inv: Inventory) {
    if into.distro.is_none() {
        into.distro = inv.distro;
    }
    into.packages.extend(inv.packages);
    into.notes.extend(inv.notes);
}

async fn read_image(registry: &Registry, repo: &str, bytes: &[u8]) -> Read {
    let manifest: ImageManifest = match serde_json::from_slice(bytes) {
        Ok(m) => m,
        Err(e) => return Read::Failed(format!("cannot read the manifest: {e}")),
    };
    let config = manifest.config().media_type().to_string();
    if !IMAGE_CONFIGS.contains(&config.as_str()) || manifest.artifact_type().is_some() {
        return Read::Unsupported(format!(
            "an artifact (config {config:?}), not a container image"
        ));
    }
    let mut files = Vec::new();
    for layer in manifest.layers() {
        let media = layer.media_type().to_string();
        if !media.contains("tar") {
            return Read::Unsupported(format!("a layer of type {media:?} is not a tar archive"));
        }
        match registry
            .open_blob(repo, layer.digest().as_ref(), None)
            .await
        {
            Ok(b) => files.push(b.file.into_std().await),
            Err(e) => return Read::Failed(format!("layer {}: {e}", layer.digest())),
        }
    }
    let scanned = tokio::task::spawn_blocking(move || cutover_scan::scan(files)).await;
    let inventory = match scanned {
        Ok(Ok(inv)) => inv,
        Ok(Err(e)) => return Read::Failed(e.to_string()),
        Err(e) => return Read::Failed(format!("the scanner stopped: {e}")),
    };
    if let Some(d) = &inventory.distro
        && d.ecosystem.is_none()
        && inventory.packages.iter().all(|p| p.ecosystem.kind.is_os())
    {
        return Read::Unsupported(format!(
            "the operating system {} {} is not supported",
            d.id,
            d.version_id.as_deref().unwrap_or("")
        ));
    }
    Read::Inventory(inventory)
}

/// The OSV ecosystems (without release: `Debian`, `npm`) of an inventory.
pub(crate) fn ecosystems(inv: &Inventory) -> Vec<String> {
    let mut kinds: Vec<EcosystemKind> = inv.packages.iter().map(|p| p.ecosystem.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|k| k.osv_name().to_string())
        .collect()
}
