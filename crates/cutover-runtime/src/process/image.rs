//! Local images for the process runtime: a directory or a `.tar`/`.tar.gz` archive.
//!
//! An image is identified by a content digest (sha256 of the archive bytes,
//! or of a deterministic walk of the directory: paths, types, modes and
//! contents) and materialised once per digest in
//! `<data_dir>/images/sha256-<hex>/rootfs`: unpacked or copied into a
//! temporary directory, made read-only, then renamed into place, so
//! concurrent starts of the same image are safe and a crash never leaves a
//! half-made root behind. Image names that are not paths (`nginx:1.27`,
//! registry references) are not images for this runtime.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why an image could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image names a path that does not exist.
    #[error("no such file or directory {path}")]
    NotFound {
        /// The path the image names.
        path: PathBuf,
    },
    /// The path is neither a directory nor a regular file.
    #[error("{path} is neither a directory nor a tar archive")]
    Unsupported {
        /// The path the image names.
        path: PathBuf,
    },
    /// Reading, unpacking or copying failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// What an `image` field means to the process runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageRef {
    /// A local path: absolute, `./`/`../` relative, or a `file://` URI.
    Path(PathBuf),
    /// Anything else (a registry reference); ignored by this runtime.
    Foreign,
}

impl ImageRef {
    pub(crate) fn parse(image: &str) -> Self {
        if let Some(path) = image.strip_prefix("file://") {
            return Self::Path(PathBuf::from(path));
        }
        if image.starts_with('/') || image.starts_with("./") || image.starts_with("../") {
            return Self::Path(PathBuf::from(image));
        }
        Self::Foreign
    }
}

/// A materialised image root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PreparedImage {
    /// `sha256:<hex>`.
    pub(crate) digest: String,
    /// The read-only root directory.
    pub(crate) rootfs: PathBuf,
}

/// Returns the root of the image at `source`, materialising it under
/// `images_dir` on first use. Setuid and setgid bits are stripped from the
/// copy unless `keep_setuid` (an image of another user could otherwise
/// hand a local user a root shell); the two kinds of copy are kept apart.
pub(crate) fn prepare(
    images_dir: &Path,
    source: &Path,
    keep_setuid: bool,
) -> Result<PreparedImage, ImageError> {
    let meta = match fs::metadata(source) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ImageError::NotFound {
                path: source.to_owned(),
            });
        }
        Err(e) => return Err(io_err("inspect", source)(e)),
    };
    let hex = if meta.is_dir() {
        let mut hasher = Sha256::new();
        hash_dir(source, Path::new(""), &mut hasher)?;
        hex::encode(hasher.finalize())
    } else if meta.is_file() {
        let mut hasher = Sha256::new();
        let mut file = fs::File::open(source).map_err(io_err("open", source))?;
        io::copy(&mut file, &mut hasher).map_err(io_err("read", source))?;
        hex::encode(hasher.finalize())
    } else {
        return Err(ImageError::Unsupported {
            path: source.to_owned(),
        });
    };
    // Copies made before setuid bits were stripped kept them and live at
    // the plain name: a stripped copy gets its own name, never reusing one.
    let suffix = if keep_setuid { "" } else { "-nosuid" };
    let final_dir = images_dir.join(format!("sha256-{hex}{suffix}"));
    let rootfs = final_dir.join("rootfs");
    let prepared = PreparedImage {
        digest: format!("sha256:{hex}"),
        rootfs: rootfs.clone(),
    };
    if rootfs.is_dir() {
        return Ok(prepared);
    }
    fs::create_dir_all(images_dir).map_err(io_err("create", images_dir))?;
    let tmp_dir = images_dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let tmp_root = tmp_dir.join("rootfs");
    let result = (|| {
        fs::create_dir_all(&tmp_root).map_err(io_err("create", &tmp_root))?;
        if meta.is_dir() {
            copy_tree(source, &tmp_root)?;
        } else {
            unpack(source, &tmp_root)?;
        }
        set_read_only(&tmp_root, keep_setuid)?;
        match fs::rename(&tmp_dir, &final_dir) {
            Ok(()) => Ok(()),
            // Another start of the same image won the race: use its copy.
            Err(_) if rootfs.is_dir() => {
                discard(&tmp_dir);
                Ok(())
            }
            Err(e) => Err(io_err("rename into", &final_dir)(e)),
        }
    })();
    if result.is_err() {
        discard(&tmp_dir);
    } else {
        tracing::info!(image = %source.display(), digest = %prepared.digest, "image materialised");
    }
    result.map(|()| prepared)
}

/// Feeds a deterministic description of the tree under `dir` to `hasher`.
fn hash_dir(root: &Path, rel: &Path, hasher: &mut Sha256) -> Result<(), ImageError> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io_err("read directory", &dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err("read directory", &dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = rel.join(entry.file_name());
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err("inspect", &path))?;
        let name = rel.as_os_str().as_encoded_bytes();
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name);
        hasher.update(meta.mode().to_le_bytes());
        if meta.is_dir() {
            hasher.update(b"d");
            hash_dir(root, &rel, hasher)?;
            hasher.update(b"end");
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(io_err("read link", &path))?;
            let target = target.as_os_str().as_encoded_bytes();
            hasher.update(b"l");
            hasher.update((target.len() as u64).to_le_bytes());
            hasher.update(target);
        } else if meta.is_file() {
            hasher.update(b"f");
            hasher.update(meta.len().to_le_bytes());
            let mut file = fs::File::open(&path).map_err(io_err("open", &path))?;
            io::copy(&mut file, hasher).map_err(io_err("read", &path))?;
        }
        // Sockets, fifos and devices carry no content; their name and mode count.
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), ImageError> {
    for entry in fs::read_dir(from).map_err(io_err("read directory", from))? {
        let entry = entry.map_err(io_err("read directory", from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src).map_err(io_err("inspect", &src))?;
        if meta.is_dir() {
            fs::create_dir(&dst).map_err(io_err("create", &dst))?;
            copy_tree(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io_err("set mode of", &dst))?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&src).map_err(io_err("read link", &src))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(io_err("create link", &dst))?;
        } else if meta.is_file() {
            // fs::copy keeps the permission bits.
            fs::copy(&src, &dst).map_err(io_err("copy", &src))?;
        } else {
            tracing::warn!(path = %src.display(), "skipping special file in image directory");
        }
    }
    Ok(())
}

/// Unpacks a tar archive, gzip-compressed or not (told by its magic bytes).
fn unpack(archive: &Path, into: &Path) -> Result<(), ImageError> {
    let mut file = fs::File::open(archive).map_err(io_err("open", archive))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(io_err("read", archive))?;
    let file = fs::File::open(archive).map_err(io_err("open", archive))?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))
    } else {
        Box::new(io::BufReader::new(file))
    };
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(true);
    tar.set_overwrite(true);
    // `unpack` refuses entries that would land outside `into` (absolute or `..` paths).
    tar.unpack(into).map_err(io_err("unpack", archive))
}

/// Removes the write bits of everything under `root` (symlinks excepted),
/// and the setuid and setgid bits unless `keep_setuid`.
fn set_read_only(root: &Path, keep_setuid: bool) -> Result<(), ImageError> {
    let clear = if keep_setuid { 0o222 } else { 0o6222 };
    walk_modes(root, &|mode| mode & !clear)
}

fn walk_modes(path: &Path, change: &dyn Fn(u32) -> u32) -> Result<(), ImageError> {
    let meta = fs::symlink_metadata(path).map_err(io_err("inspect", path))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(io_err("read directory", path))? {
            let entry = entry.map_err(io_err("read directory", path))?;
            walk_modes(&entry.path(), change)?;
        }
    }
    let mode = change(meta.mode() & 0o7777);
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("set mode of", path))
}

/// Best-effort removal of a temporary tree that may already be read-only.
fn discard(dir: &Path) {
    let _ = walk_modes(dir, &|mode| mode | 0o700);
    if let Err(error) = fs::remove_dir_all(dir) {
        tracing::warn!(path = %dir.display(), %error, "cannot remove temporary image directory");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        assert_eq!(
            ImageRef::parse("/srv/app"),
            ImageRef::Path("/srv/app".into())
        );
        assert_eq!(
            ImageRef::parse("./app.tar.gz"),
            ImageRef::Path("./app.tar.gz".into())
        );
        assert_eq!(
            ImageRef::parse("file:///srv/app.tar"),
            ImageRef::Path("/srv/app.tar".into())
        );
        assert_eq!(ImageRef::parse("nginx:1.27"), ImageRef::Foreign);
        assert_eq!(
            ImageRef::parse("123.dkr.ecr.us-east-1.amazonaws.com/web:latest"),
            ImageRef::Foreign
        );
    }

    #[test]
    fn directory_digest_follows_content_and_modes() {
        let src = tempfile::tempdir().unwrap();
        let images = tempfile::tempdir().unwrap();
        fs::create_dir(src.path().join("bin")).unwrap();
        fs::write(src.path().join("bin/app"), "one").unwrap();
        let first = prepare(images.path(), src.path(), false).unwrap();
        assert_eq!(
            prepare(images.path(), src.path(), false).unwrap(),
            first,
            "same content, same image"
        );

        fs::write(src.path().join("bin/app"), "two").unwrap();
        let second = prepare(images.path(), src.path(), false).unwrap();
        assert_ne!(second.digest, first.digest);

        fs::set_permissions(
            src.path().join("bin/app"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let third = prepare(images.path(), src.path(), false).unwrap();
        assert_ne!(third.digest, second.digest);
        let mode = fs::metadata(third.rootfs.join("bin/app")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o555, "executable kept, write bits removed");
        assert_eq!(
            fs::read_to_string(third.rootfs.join("bin/app")).unwrap(),
            "two"
        );
    }

    #[test]
    fn missing_path_is_reported() {
        let images = tempfile::tempdir().unwrap();
        let err = prepare(images.path(), Path::new("/nonexistent/image.tar"), false).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/image.tar"), "{err}");
    }

    /// A tar image with a setuid-root shell and a setgid directory.
    fn setuid_archive(dir: &Path) -> PathBuf {
        let path = dir.join("image.tar");
        let mut builder = tar::Builder::new(fs::File::create(&path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o2755);
        header.set_size(0);
        builder
            .append_data(&mut header, "shared/", io::empty())
            .unwrap();
        let body = b"#!/bin/sh\nid\n";
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o4755);
        header.set_uid(0);
        header.set_size(body.len() as u64);
        builder
            .append_data(&mut header, "shared/rootsh", &body[..])
            .unwrap();
        builder.finish().unwrap();
        path
    }

    #[test]
    fn setuid_and_setgid_bits_are_stripped_unless_kept() {
        let src = tempfile::tempdir().unwrap();
        let images = tempfile::tempdir().unwrap();
        let archive = setuid_archive(src.path());

        let stripped = prepare(images.path(), &archive, false).unwrap();
        let file = fs::metadata(stripped.rootfs.join("shared/rootsh")).unwrap();
        assert_eq!(file.mode() & 0o7777, 0o555, "setuid bit stripped");
        let dir = fs::metadata(stripped.rootfs.join("shared")).unwrap();
        assert_eq!(dir.mode() & 0o7777, 0o555, "setgid bit stripped");

        let kept = prepare(images.path(), &archive, true).unwrap();
        assert_ne!(
            kept.rootfs, stripped.rootfs,
            "the two policies never share a copy"
        );
        let file = fs::metadata(kept.rootfs.join("shared/rootsh")).unwrap();
        assert_eq!(file.mode() & 0o7777, 0o4555, "opted in: setuid kept");
    }
}
