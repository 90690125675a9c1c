//! File-system access that never follows a symlink out of a directory tree
//! a build controls, and private files and directories.
//!
//! A build (or the repository it builds) can plant symlinks in its source
//! and work directories. Cutover reads and writes there on the host, as the
//! server's user, when it restores the cache, collects artifacts and the
//! cache, and reads reports. Every such access goes through [`open_beneath`]
//! and [`create_beneath`]: the path is walked one component at a time with
//! `openat(2)` and `O_NOFOLLOW`, so neither a symlinked directory nor a
//! symlinked file is ever followed, and only a regular file is opened (a
//! FIFO cannot block the server). Symlinks themselves are copied as
//! symlinks ([`copy_symlink_beneath`]) and never read through.
//!
//! [`private_dir`] and [`write_private`] give the build's own directories
//! mode 0700 and its secret-bearing files mode 0600, whatever the umask.
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path};

/// Creates `path` (and its parents) and gives it mode 0700.
pub fn private_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// Writes `data` to `path` with mode 0600, never through a symlink.
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(data)
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte in path"))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// An open directory, reached without following symlinks.
struct Dir(OwnedFd);

impl Dir {
    fn open(path: &Path) -> io::Result<Dir> {
        let c = cstr(path.as_os_str())?;
        // SAFETY: `c` is a valid nul-terminated string for the call.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
        Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn openat(&self, name: &OsStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
        let c = cstr(name)?;
        // SAFETY: the directory descriptor is open for the call and `c` is a
        // valid nul-terminated string.
        let fd = check(unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                libc::c_uint::from(mode),
            )
        })?;
        // SAFETY: `fd` was just returned by openat(2) and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn sub(&self, name: &OsStr, create: bool) -> io::Result<Dir> {
        if create {
            let c = cstr(name)?;
            // SAFETY: as in `openat`.
            let rc = unsafe { libc::mkdirat(self.0.as_raw_fd(), c.as_ptr(), 0o755) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(e);
                }
            }
        }
        self.openat(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map(Dir)
    }

    fn unlink(&self, name: &OsStr) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: as in `openat`.
        let rc = unsafe { libc::unlinkat(self.0.as_raw_fd(), c.as_ptr(), 0) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The parent directory of `rel` under `root` (created if `create`), and
/// the last component; `rel` must be relative without `..`.
fn walk(root: &Path, rel: &Path, create: bool) -> io::Result<(Dir, std::ffi::OsString)> {
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => names.push(n.to_os_string()),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} leaves its directory", rel.display()),
                ));
            }
        }
    }
    let last = names
        .pop()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))?;
    let mut dir = Dir::open(root)?;
    for n in &names {
        dir = dir.sub(n, create)?;
    }
    Ok((dir, last))
}

fn not_regular(rel: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is not a regular file", rel.display()),
    )
}

/// Opens the regular file `rel` under `root` for reading; fails if any
/// component is a symlink, or the file is not a regular file.
pub fn open_beneath(root: &Path, rel: &Path) -> io::Result<File> {
    let (dir, last) = walk(root, rel, false)?;
    let fd = dir.openat(&last, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(not_regular(rel));
    }
    Ok(file)
}

/// Creates (or truncates) the file `rel` under `root`, with its missing
/// directories; fails if any component is a symlink.
pub fn create_beneath(root: &Path, rel: &Path, mode: u32) -> io::Result<File> {
    let (dir, last) = walk(root, rel, true)?;
    let fd = dir.openat(
        &last,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NONBLOCK,
        mode as libc::mode_t,
    )?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(not_regular(rel));
    }
    Ok(file)
}

/// Copies the regular file `from_rel` under `from_root` to `to_rel` under
/// `to_root`, keeping its permission bits; never follows a symlink.
pub fn copy_beneath(
    from_root: &Path,
    from_rel: &Path,
    to_root: &Path,
    to_rel: &Path,
) -> io::Result<u64> {
    let mut from = open_beneath(from_root, from_rel)?;
    let mode = from.metadata()?.permissions().mode() & 0o777;
    let mut to = create_beneath(to_root, to_rel, mode)?;
    let n = io::copy(&mut from, &mut to)?;
    to.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(n)
}

/// Whether `rel` under `root` is a symlink (its directories are not
/// followed either: a path through a symlinked directory is an error).
pub fn is_symlink_beneath(root: &Path, rel: &Path) -> io::Result<bool> {
    let (dir, last) = walk(root, rel, false)?;
    let c = cstr(&last)?;
    // SAFETY: `stat` is plain old data, written by fstatat(2) before it is read.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as in `Dir::openat`; `st` is a valid out pointer.
    check(unsafe {
        libc::fstatat(
            dir.0.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// Copies the symlink `from_rel` under `from_root` to `to_rel` under
/// `to_root` as a symlink with the same target (which is not read).
pub fn copy_symlink_beneath(
    from_root: &Path,
    from_rel: &Path,
    to_root: &Path,
    to_rel: &Path,
) -> io::Result<()> {
    let (from_dir, from_last) = walk(from_root, from_rel, false)?;
    let c = cstr(&from_last)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `buf` is valid for `buf.len()` bytes; readlinkat(2) writes at
    // most that many.
    let n = check(unsafe {
        libc::readlinkat(
            from_dir.0.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        ) as libc::c_int
    })?;
    buf.truncate(n as usize);
    let target = CString::new(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "nul byte in link"))?;
    let (to_dir, to_last) = walk(to_root, to_rel, true)?;
    to_dir.unlink(&to_last)?;
    let name = cstr(&to_last)?;
    // SAFETY: as in `Dir::openat`; both strings are valid.
    check(unsafe { libc::symlinkat(target.as_ptr(), to_dir.0.as_raw_fd(), name.as_ptr()) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_are_never_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        symlink(outside.path().join("secret"), root.path().join("link")).unwrap();
        symlink(outside.path(), root.path().join("dir")).unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::fs::write(root.path().join("real/f"), "ok").unwrap();

        assert!(open_beneath(root.path(), Path::new("link")).is_err());
        assert!(open_beneath(root.path(), Path::new("dir/secret")).is_err());
        assert!(open_beneath(root.path(), Path::new("../x")).is_err());
        assert!(open_beneath(root.path(), Path::new("real/f")).is_ok());
        assert!(create_beneath(root.path(), Path::new("link"), 0o644).is_err());
        assert!(create_beneath(root.path(), Path::new("dir/new"), 0o644).is_err());
        assert!(!outside.path().join("new").exists());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "host"
        );
        assert!(is_symlink_beneath(root.path(), Path::new("link")).unwrap());
        assert!(!is_symlink_beneath(root.path(), Path::new("real/f")).unwrap());

        let to = tempfile::tempdir().unwrap();
        copy_symlink_beneath(root.path(), Path::new("link"), to.path(), Path::new("a/l")).unwrap();
        assert_eq!(
            std::fs::read_link(to.path().join("a/l")).unwrap(),
            outside.path().join("secret")
        );
        copy_beneath(
            root.path(),
            Path::new("real/f"),
            to.path(),
            Path::new("b/f"),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(to.path().join("b/f")).unwrap(),
            "ok"
        );
    }

    #[test]
    fn private_files_and_dirs_ignore_the_umask() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("a/b");
        private_dir(&d).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d), 0o700);
        let f = d.join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&f, b"y").unwrap();
        assert_eq!(mode(&f), 0o600);
        symlink(&f, d.join("l")).unwrap();
        assert!(write_private(&d.join("l"), b"z").is_err());
    }
}
