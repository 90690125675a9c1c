//! The agent's file work and scripts under a temporary root: install with
//! each `file_exists_behavior`, permissions, hostile bundles, timeouts,
//! huge output, `runas` refused when not root.

use super::fsops::{self, Root};
use super::scripts::{self, TAIL_BYTES, Tail};
use cutover_api::agents::{BundleFormat, CommandStatus};
use cutover_spec::appspec_host::{FileExistsBehavior, HostAppSpec, Script};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

fn spec(text: &str) -> HostAppSpec {
    cutover_spec::parse_host_appspec("appspec.yml", text)
        .unwrap()
        .value
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const APPSPEC: &str = "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /opt/app\n  - source: conf/app.conf\n    destination: /etc/app\npermissions:\n  - object: /opt/app\n    pattern: \"*.sh\"\n    mode: 750\n    type: [file]\n";

#[test]
fn install_copies_files_and_trees_under_the_root_with_each_behavior() {
    let rev = tempfile::tempdir().unwrap();
    write(&rev.path().join("app/bin/run.sh"), "echo v1");
    write(&rev.path().join("app/index.html"), "v1");
    write(&rev.path().join("conf/app.conf"), "port=1");
    let host = tempfile::tempdir().unwrap();
    let root = Root::new(Some(host.path())).unwrap();
    let spec = spec(APPSPEC);
    let mut log = String::new();
    let written = fsops::install(
        &spec,
        rev.path(),
        &root,
        FileExistsBehavior::Disallow,
        &mut log,
    )
    .unwrap();
    let base = host.path().canonicalize().unwrap();
    assert_eq!(written.len(), 3, "{written:?}");
    assert_eq!(
        std::fs::read_to_string(base.join("opt/app/bin/run.sh")).unwrap(),
        "echo v1"
    );
    assert_eq!(
        std::fs::read_to_string(base.join("etc/app/app.conf")).unwrap(),
        "port=1"
    );
    fsops::apply_permissions(&spec.permissions, &root, false, &mut log).unwrap();
    let mode = |p: &str| {
        std::fs::metadata(base.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("opt/app/bin/run.sh"), 0o750);
    assert_ne!(
        mode("opt/app/index.html"),
        0o750,
        "not matched by the pattern"
    );

    // A second install over the same files: DISALLOW refuses, RETAIN
    // keeps, OVERWRITE replaces; after removing what was installed, it works.
    write(&rev.path().join("app/index.html"), "v2");
    let err = fsops::install(
        &spec,
        rev.path(),
        &root,
        FileExistsBehavior::Disallow,
        &mut log,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("DISALLOW"), "{err:#}");
    fsops::install(
        &spec,
        rev.path(),
        &root,
        FileExistsBehavior::Retain,
        &mut log,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(base.join("opt/app/index.html")).unwrap(),
        "v1"
    );
    fsops::install(
        &spec,
        rev.path(),
        &root,
        FileExistsBehavior::Overwrite,
        &mut log,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(base.join("opt/app/index.html")).unwrap(),
        "v2"
    );
    fsops::remove_installed(&written, &root);
    fsops::install(
        &spec,
        rev.path(),
        &root,
        FileExistsBehavior::Disallow,
        &mut log,
    )
    .unwrap();
}

#[test]
fn nothing_is_written_outside_the_root() {
    let rev = tempfile::tempdir().unwrap();
    write(&rev.path().join("app/x"), "x");
    let host = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = Root::new(Some(host.path())).unwrap();
    let mut log = String::new();
    // The parser refuses `..` already; the agent does not rely on it.
    let mut s = spec("version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /x\n");
    s.files[0].source = "../../etc/passwd".into();
    assert!(
        fsops::install(
            &s,
            rev.path(),
            &root,
            FileExistsBehavior::Overwrite,
            &mut log
        )
        .is_err()
    );
    s.files[0].source = "app".into();
    s.files[0].destination = "/opt/../../../x".into();
    assert!(
        fsops::install(
            &s,
            rev.path(),
            &root,
            FileExistsBehavior::Overwrite,
            &mut log
        )
        .is_err()
    );
    assert!(root.map("/opt/../../etc").is_err());
    assert!(root.map("relative").is_err());
    // A link inside the root pointing out is not written through.
    std::os::unix::fs::symlink(outside.path(), host.path().join("opt")).unwrap();
    let s = spec("version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /opt/app\n");
    let err = fsops::install(
        &s,
        rev.path(),
        &root,
        FileExistsBehavior::Overwrite,
        &mut log,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("outside the root"), "{err:#}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> tempfile::NamedTempFile {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let bytes = b.into_inner().unwrap();
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    f
}

#[test]
fn hostile_bundles_are_refused() {
    let header = |size: u64, kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h
    };
    let escape_name = tar_with(|b| {
        let mut h = header(1, tar::EntryType::Regular);
        // `append_data` refuses `..`: write the name into the header as is.
        h.as_old_mut().name[..12].copy_from_slice(b"../../evil.x");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
    });
    let escape_link = tar_with(|b| {
        let mut h = header(0, tar::EntryType::Symlink);
        b.append_link(&mut h, "link", "../../etc").unwrap();
    });
    let absolute_link = tar_with(|b| {
        let mut h = header(0, tar::EntryType::Symlink);
        b.append_link(&mut h, "a/link", "/etc/passwd").unwrap();
    });
    let hard_link = tar_with(|b| {
        let mut h = header(0, tar::EntryType::Link);
        b.append_link(&mut h, "hard", "/etc/passwd").unwrap();
    });
    for (what, f) in [
        ("a .. name", escape_name),
        ("a link out", escape_link),
        ("an absolute link", absolute_link),
        ("a hard link", hard_link),
    ] {
        let dest = tempfile::tempdir().unwrap();
        let r = fsops::unpack(f.path(), BundleFormat::Tar, &dest.path().join("rev"));
        assert!(r.is_err(), "{what} was accepted");
    }
    let inner_link = tar_with(|b| {
        let mut h = header(0, tar::EntryType::Symlink);
        b.append_link(&mut h, "a/link", "../b").unwrap();
    });
    let dest = tempfile::tempdir().unwrap();
    fsops::unpack(
        inner_link.path(),
        BundleFormat::Tar,
        &dest.path().join("rev"),
    )
    .unwrap();
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"\x1f\x8bnot gzip at all").unwrap();
    assert!(fsops::unpack(garbage.path(), BundleFormat::Tgz, &dest.path().join("g")).is_err());
    assert!(fsops::unpack(garbage.path(), BundleFormat::Zip, &dest.path().join("z")).is_err());
}

fn script(dir: &Path, name: &str, body: &str) -> Script {
    write(&dir.join(name), &format!("#!/bin/sh\n{body}\n"));
    Script {
        location: name.into(),
        timeout: Some(2),
        runas: None,
    }
}

fn cx(dir: &Path) -> scripts::Context<'_> {
    scripts::Context {
        revision: dir,
        env: vec![("LIFECYCLE_EVENT".into(), "AfterInstall".into())],
        is_root: false,
        cancel: CancellationToken::new(),
        started: &|_| {},
    }
}

#[tokio::test]
async fn scripts_run_in_order_with_their_env_and_stop_at_the_first_failure() {
    let rev = tempfile::tempdir().unwrap();
    let a = script(rev.path(), "a.sh", "echo a $LIFECYCLE_EVENT; echo err >&2");
    let b = script(rev.path(), "b.sh", "echo b; exit 3");
    let c = script(rev.path(), "c.sh", "echo c");
    let out = Arc::new(Mutex::new(Tail::default()));
    let o = scripts::run_all(&[a, b, c], &cx(rev.path()), &out).await;
    assert_eq!(o.status, CommandStatus::Failed);
    assert!(o.error.unwrap().contains("b.sh"));
    assert_eq!(out.lock().unwrap().text(), "a AfterInstall\nerr\nb\n");
}

#[tokio::test]
async fn a_script_past_its_timeout_is_killed_with_what_it_started() {
    let rev = tempfile::tempdir().unwrap();
    let pidfile = rev.path().join("child.pid");
    let s = script(
        rev.path(),
        "slow.sh",
        &format!("sleep 300 & echo $! > {}; wait", pidfile.display()),
    );
    let s = Script {
        timeout: Some(1),
        ..s
    };
    let out = Arc::new(Mutex::new(Tail::default()));
    let started = std::time::Instant::now();
    let o = scripts::run_all(&[s], &cx(rev.path()), &out).await;
    assert_eq!(o.status, CommandStatus::TimedOut);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The background child went with the group (it is gone or a zombie).
    // SIGKILL lands when the child is next scheduled: on a loaded machine
    // that can be after run_all returned, so give it a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stat}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn huge_output_keeps_its_tail_and_runas_needs_root() {
    let rev = tempfile::tempdir().unwrap();
    let loud = script(
        rev.path(),
        "loud.sh",
        "head -c 5000000 /dev/zero | tr '\\0' x; echo; echo last line",
    );
    let out = Arc::new(Mutex::new(Tail::default()));
    let o = scripts::run_all(&[loud], &cx(rev.path()), &out).await;
    assert_eq!(o.status, CommandStatus::Succeeded);
    let text = out.lock().unwrap().text();
    assert!(text.len() < TAIL_BYTES + 100 && text.ends_with("last line\n"));
    assert!(text.starts_with("[4934"), "{}", &text[..40]);

    if rustix::process::geteuid().is_root() {
        return;
    }
    let mut s = script(rev.path(), "as.sh", "echo ran");
    s.runas = Some("some-other-user".into());
    let out = Arc::new(Mutex::new(Tail::default()));
    let o = scripts::run_all(&[s], &cx(rev.path()), &out).await;
    assert_eq!(o.status, CommandStatus::Failed);
    assert!(o.error.unwrap().contains("root"));
    assert!(out.lock().unwrap().text().is_empty(), "not run");
}
