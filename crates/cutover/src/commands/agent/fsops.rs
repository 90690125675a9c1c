//! The agent's file work, synchronous and confined: unpacking a bundle into
//! a revision directory (no entry may leave it: `..`, absolute names,
//! links pointing out and hard links are refused), installing an appspec's
//! `files` with `file_exists_behavior`, and applying its `permissions`.
//!
//! Every host path goes through [`Root::map`]: with `--root DIR`, an
//! absolute destination `/opt/app` becomes `DIR/opt/app`, and nothing is
//! ever written outside `DIR` (a symbolic link inside it pointing out is
//! refused before anything is written through it).

use anyhow::{Context, anyhow, bail};
use cutover_api::agents::BundleFormat;
use cutover_spec::appspec_host::{FileExistsBehavior, HostAppSpec, ObjectType, Permission};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Where host paths land.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    /// `--root`, canonical; `None`: the real `/`.
    dir: Option<PathBuf>,
}

impl Root {
    pub(crate) fn new(dir: Option<&Path>) -> anyhow::Result<Root> {
        let dir = match dir {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .with_context(|| format!("cannot create the root {}", d.display()))?;
                Some(d.canonicalize()?)
            }
            None => None,
        };
        Ok(Root { dir })
    }

    /// The path on this machine of the host's absolute path `host`.
    pub(crate) fn map(&self, host: &str) -> anyhow::Result<PathBuf> {
        let p = Path::new(host);
        if !p.is_absolute() {
            bail!("{host:?} is not an absolute path");
        }
        let mut rel = PathBuf::new();
        for c in p.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => rel.push(n),
                _ => bail!("{host:?}: \"..\" is not allowed in a destination"),
            }
        }
        Ok(match &self.dir {
            Some(d) => d.join(rel),
            None => Path::new("/").join(rel),
        })
    }

    /// Refuses `path` if, following links, it leads outside the root.
    /// Checks the deepest existing ancestor (what a write would go through).
    fn confine(&self, path: &Path) -> anyhow::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let mut probe = path;
        let real = loop {
            match probe.canonicalize() {
                Ok(r) => break r,
                Err(_) => match probe.parent() {
                    Some(p) => probe = p,
                    None => bail!("{} has no existing ancestor", path.display()),
                },
            }
        };
        if !real.starts_with(dir) {
            bail!(
                "{} leads outside the root {} (through a symbolic link)",
                path.display(),
                dir.display()
            );
        }
        Ok(())
    }
}

/// `rel` joined under `base`, refusing absolute names and `..`.
pub(crate) fn join_inside(base: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let mut out = base.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => bail!("{rel:?}: \"..\" is not allowed"),
        }
    }
    Ok(out)
}

/// Whether a link at `entry` (relative, inside the revision) with `target`
/// stays inside the revision.
fn link_stays_inside(entry: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = entry.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Unpacks the bundle at `file` into the new directory `dest`.
pub(crate) fn unpack(file: &Path, format: BundleFormat, dest: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dest)?;
    let f = std::fs::File::open(file)?;
    match format {
        BundleFormat::Tar => unpack_tar(f, dest),
        BundleFormat::Tgz => unpack_tar(flate2::read::GzDecoder::new(f), dest),
        BundleFormat::Zip => unpack_zip(f, dest),
    }
}

fn unpack_tar(r: impl Read, dest: &Path) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(r);
    archive.set_preserve_permissions(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let target = join_inside(dest, &path.to_string_lossy())
            .with_context(|| format!("bundle entry {}", path.display()))?;
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            bail!(
                "bundle entry {}: hard links are not allowed",
                path.display()
            );
        }
        if kind.is_symlink() {
            let link = entry.link_name()?.ok_or_else(|| {
                anyhow!("bundle entry {}: a link without a target", path.display())
            })?;
            if !link_stays_inside(&path, &link) {
                bail!(
                    "bundle entry {}: the link to {} leaves the bundle",
                    path.display(),
                    link.display()
                );
            }
        }
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // `unpack_in` checks again that nothing leaves `dest`.
        if !entry.unpack_in(dest)? {
            bail!("bundle entry {} leaves the bundle", path.display());
        }
    }
    Ok(())
}

fn unpack_zip(f: std::fs::File, dest: &Path) -> anyhow::Result<()> {
    let mut archive = zip::ZipArchive::new(f)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        let Some(name) = entry.enclosed_name() else {
            bail!("bundle entry {:?} leaves the bundle", entry.name());
        };
        let target = join_inside(dest, &name.to_string_lossy())?;
        if entry.is_symlink() {
            bail!(
                "bundle entry {}: links are not allowed in zip bundles",
                name.display()
            );
        }
        if entry.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::File::create(&target)?;
        std::io::copy(&mut entry, &mut out)?;
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o777))?;
        }
    }
    Ok(())
}

/// Copies the revision's `files` to the host; returns every file and link
/// it wrote (removed again before the next install of the group).
pub(crate) fn install(
    spec: &HostAppSpec,
    revision: &Path,
    root: &Root,
    behavior: FileExistsBehavior,
    log: &mut String,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for m in &spec.files {
        let src = join_inside(revision, &m.source)?;
        let dest_dir = root.map(&m.destination)?;
        let meta = std::fs::symlink_metadata(&src)
            .with_context(|| format!("files: source {:?} is not in the revision", m.source))?;
        if meta.is_dir() {
            copy_tree(&src, &dest_dir, root, behavior, &mut written, log)?;
        } else {
            let name = src
                .file_name()
                .ok_or_else(|| anyhow!("bad source {:?}", m.source))?;
            copy_one(
                &src,
                &dest_dir.join(name),
                root,
                behavior,
                &mut written,
                log,
            )?;
        }
    }
    Ok(written)
}

fn copy_tree(
    src: &Path,
    dest: &Path,
    root: &Root,
    behavior: FileExistsBehavior,
    written: &mut Vec<PathBuf>,
    log: &mut String,
) -> anyhow::Result<()> {
    root.confine(dest)?;
    std::fs::create_dir_all(dest)?;
    let mut names: Vec<_> = std::fs::read_dir(src)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let (s, d) = (src.join(&name), dest.join(&name));
        if std::fs::symlink_metadata(&s)?.is_dir() {
            copy_tree(&s, &d, root, behavior, written, log)?;
        } else {
            copy_one(&s, &d, root, behavior, written, log)?;
        }
    }
    Ok(())
}

fn copy_one(
    src: &Path,
    dest: &Path,
    root: &Root,
    behavior: FileExistsBehavior,
    written: &mut Vec<PathBuf>,
    log: &mut String,
) -> anyhow::Result<()> {
    let parent = dest.parent().unwrap_or(dest);
    root.confine(parent)?;
    std::fs::create_dir_all(parent)?;
    root.confine(parent)?;
    if std::fs::symlink_metadata(dest).is_ok() {
        match behavior {
            FileExistsBehavior::Disallow => bail!(
                "{} already exists and was not installed by the previous deployment (file_exists_behavior DISALLOW)",
                dest.display()
            ),
            FileExistsBehavior::Retain => {
                log.push_str(&format!("kept existing {}\n", dest.display()));
                return Ok(());
            }
            FileExistsBehavior::Overwrite => std::fs::remove_file(dest)
                .with_context(|| format!("cannot replace {}", dest.display()))?,
        }
    }
    if std::fs::symlink_metadata(src)?.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dest)?;
    } else {
        std::fs::copy(src, dest).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    written.push(dest.to_path_buf());
    Ok(())
}

/// Removes what the previous install of a group wrote (CodeDeploy's
/// clean-up before Install). Only paths under the root are touched.
pub(crate) fn remove_installed(files: &[PathBuf], root: &Root) {
    for f in files {
        if let Some(dir) = &root.dir
            && !f.starts_with(dir)
        {
            continue;
        }
        let _ = std::fs::remove_file(f);
    }
}

/// The numeric id of `name` in an `/etc/passwd`-like file (`name:x:id:...`).
pub(crate) fn lookup_id(file: &str, name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.nth(1)?.parse().ok())?
    })
}

/// Applies the appspec's `permissions`. Owners and groups are changed only
/// when the agent runs as root (else noted in `log`).
pub(crate) fn apply_permissions(
    perms: &[Permission],
    root: &Root,
    is_root: bool,
    log: &mut String,
) -> anyhow::Result<()> {
    for p in perms {
        let object = root.map(&p.object)?;
        root.confine(&object)?;
        let meta = std::fs::symlink_metadata(&object)
            .with_context(|| format!("permissions: {} does not exist", p.object))?;
        let targets = if meta.is_dir() {
            let pattern = globset::Glob::new(&p.pattern)?.compile_matcher();
            let mut except = globset::GlobSetBuilder::new();
            for e in &p.except {
                except.add(globset::Glob::new(e)?);
            }
            let except = except.build()?;
            let mut found = Vec::new();
            walk(&object, &object, &mut |rel, path, is_dir| {
                let kind = if is_dir {
                    ObjectType::Directory
                } else {
                    ObjectType::File
                };
                if (p.kind.is_empty() || p.kind.contains(&kind))
                    && pattern.is_match(rel)
                    && !except.is_match(rel)
                {
                    found.push(path.to_path_buf());
                }
            })?;
            found
        } else {
            vec![object]
        };
        for t in targets {
            apply_one(p, &t, is_root, log)?;
        }
    }
    Ok(())
}

fn walk(base: &Path, dir: &Path, f: &mut dyn FnMut(&Path, &Path, bool)) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let is_dir = e.file_type()?.is_dir();
        f(path.strip_prefix(base).unwrap_or(&path), &path, is_dir);
        if is_dir {
            walk(base, &path, f)?;
        }
    }
    Ok(())
}

fn apply_one(p: &Permission, path: &Path, is_root: bool, log: &mut String) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::symlink_metadata(path)?.is_symlink() {
        return Ok(());
    }
    if let Some(mode) = &p.mode {
        let bits = mode
            .bits()
            .ok_or_else(|| anyhow!("permissions: bad mode {mode:?}"))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
    }
    if p.owner.is_some() || p.group.is_some() {
        if !is_root {
            log.push_str(&format!(
                "owner/group of {} left as is: the agent does not run as root\n",
                path.display()
            ));
            return Ok(());
        }
        let uid = match &p.owner {
            Some(o) => Some(lookup_id("/etc/passwd", o).ok_or_else(|| anyhow!("no user {o:?}"))?),
            None => None,
        };
        let gid = match &p.group {
            Some(g) => Some(lookup_id("/etc/group", g).ok_or_else(|| anyhow!("no group {g:?}"))?),
            None => None,
        };
        std::os::unix::fs::chown(path, uid, gid)
            .with_context(|| format!("cannot chown {}", path.display()))?;
    }
    Ok(())
}
