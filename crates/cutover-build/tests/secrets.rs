//! Secrets and the host in real builds: masking every way a build can print
//! a secret, the shell state deleted and private, and symlinks in the
//! source never followed by the cache or the artifacts (issue 14, findings
//! 7, 9 and 15).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Build, build_with};
use cutover_build::BuildStatus;
use cutover_build::run::SecretSource;

const SECRET: &str = "hunter2-s3cr3t";

/// A build with `$TOKEN` resolved from the parameter store to `value`.
async fn with_secret(value: &'static str, commands: &[&str]) -> Build {
    let mut yaml = String::from(
        "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /prod/token\nphases:\n  build:\n    commands:\n",
    );
    for c in commands {
        yaml.push_str(&format!("      - {}\n", serde_quote(c)));
    }
    build_with(
        &yaml,
        |_| {},
        move |req| {
            req.secrets = cutover_build::run::sync_lookup(move |source, reference| {
                (source == SecretSource::ParameterStore && reference == "/prod/token")
                    .then(|| value.to_owned())
            });
        },
    )
    .await
}

/// `s` as a single-quoted YAML scalar.
fn serde_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn whole_log(b: &Build) -> String {
    b.log
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn base64_and_url_encoded_secrets_are_masked() {
    let b = with_secret(
        SECRET,
        &[
            "printf %s \"$TOKEN\" | base64",
            "printf 'x%s' \"$TOKEN\" | base64",
            "printf 'xy%s' \"$TOKEN\" | base64 -w0; echo",
            "printf %s \"$TOKEN\" | base64 | tr '+/' '-_'",
        ],
    )
    .await;
    assert_eq!(b.outcome.status, BuildStatus::Succeeded);
    let log = whole_log(&b);
    for leaked in [
        "aHVudGVyMi1zM2NyM3", // the core of base64 at offset 0
        "h1bnRlcjItczNjcjN0", // at offset 1
        "odW50ZXIyLXMzY3Izd", // at offset 2
        SECRET,
    ] {
        assert!(!log.contains(leaked), "{leaked} in {log}");
    }
    assert_eq!(b.output().len(), 4, "{:?}", b.output());
    assert!(b.output().iter().all(|l| l.contains("***")), "{log}");
}

#[tokio::test]
async fn a_url_encoded_secret_is_masked() {
    let b = with_secret(
        "p@ss w/rd!x",
        &["echo \"u=$(printf %s \"$TOKEN\" | sed 's/@/%40/g; s/ /%20/g; s|/|%2F|g; s/!/%21/g')&next\""],
    )
    .await;
    assert_eq!(b.output(), ["u=***&next"]);
}

#[tokio::test]
async fn a_secret_written_in_two_pieces_is_masked() {
    let b = with_secret(
        "hunter2",
        &[
            "printf 'pw=hun'; sleep 0.2; printf 'ter2\\n'",
            "printf hun",
            "echo ter2",
        ],
    )
    .await;
    let log = whole_log(&b);
    assert!(!log.contains("hunter2"), "{log}");
    assert_eq!(b.output(), ["pw=***", "***"]);
}

#[tokio::test]
async fn a_multi_line_secret_is_masked_whole_and_line_by_line() {
    let b = with_secret(
        "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\n-----END KEY-----",
        &[
            "echo \"$TOKEN\"",
            "echo \"$TOKEN\" | sed -n 2p",
            "echo \"$TOKEN\" | tr '\\n' ' '; echo",
        ],
    )
    .await;
    let log = whole_log(&b);
    assert!(!log.contains("MIIEpAIBAAKCAQEA"), "{log}");
    assert!(!log.contains("BEGIN KEY-----"), "{log}");
    assert_eq!(b.output()[0], "***");
    assert_eq!(b.output()[1], "***");
}

#[tokio::test]
async fn set_x_quoting_does_not_reveal_a_secret() {
    let b = with_secret(
        "it's-a-s3cret",
        &["set -x; curl_args=\"$TOKEN\"; echo \"$TOKEN\""],
    )
    .await;
    let log = whole_log(&b);
    assert!(!log.contains(r"it'\''s-a-s3cret"), "{log}");
    assert!(!log.contains("s-a-s3cret"), "{log}");
    assert!(log.contains("+ echo '***'"), "{log}");
}

#[tokio::test]
async fn a_secret_across_the_64_kib_line_split_is_masked() {
    // 65,531 bytes, then the 7-byte secret: it straddles byte 65,536.
    let b = with_secret(
        "hunter2",
        &["head -c 65531 /dev/zero | tr '\\0' a; printf '%s tail\\n' \"$TOKEN\""],
    )
    .await;
    let out = b.output();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].len(), 64 * 1024);
    assert!(out[0].ends_with("aaa*** t"), "{}", &out[0][65_000..]);
    assert_eq!(out[1], "ail");
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every regular file under `dir`.
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files_under(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

fn assert_no_secret_left(b: &Build) {
    let work = b.work.path();
    assert!(!work.join("shell").exists(), "the shell state is deleted");
    assert_eq!(mode(work), 0o700);
    let mut files = Vec::new();
    files_under(work, &mut files);
    for f in files {
        let text = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&text).contains(SECRET),
            "{} holds the secret",
            f.display()
        );
    }
}

#[tokio::test]
async fn the_shell_state_holding_secrets_is_deleted_whatever_the_outcome() {
    // Success, with a variable read at the end, and a shell ended by `exit`
    // (which saves the environment for the next shell).
    let ok = with_secret(SECRET, &["export COPY=\"$TOKEN\"", "exit 0", "true"]).await;
    assert_eq!(ok.outcome.status, BuildStatus::Succeeded);
    assert_no_secret_left(&ok);
    let failed = with_secret(SECRET, &["export COPY=\"$TOKEN\"", "false"]).await;
    assert_eq!(failed.outcome.status, BuildStatus::Failed);
    assert_no_secret_left(&failed);
}

#[tokio::test]
async fn the_state_of_a_stopped_build_is_deleted_too() {
    use tokio_util::sync::CancellationToken;
    let spec = cutover_build::parse_buildspec(
        "buildspec.yml",
        "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: t\nphases:\n  build:\n    commands:\n      - 'export COPY=\"$TOKEN\"; exit 0'\n      - 'echo started; sleep 30'\n",
    )
    .unwrap()
    .value;
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut req = common::request(src.path(), work.path());
    req.secrets = cutover_build::run::sync_lookup(|_, _| Some(SECRET.to_owned()));
    let cancel = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut tx = Some(tx);
    let log = move |l: cutover_build::LogLine| {
        if l.text == "started"
            && let Some(tx) = tx.take()
        {
            let _ = tx.send(());
        }
    };
    let state = work.path().join("shell/state.env");
    let stop = async {
        tokio::time::timeout(std::time::Duration::from_secs(20), rx)
            .await
            .unwrap()
            .unwrap();
        // The saved state exists while the build runs, private.
        assert_eq!(mode(&state), 0o600);
        assert_eq!(mode(&work.path().join("shell")), 0o700);
        cancel.cancel();
    };
    let (outcome, ()) = tokio::join!(
        cutover_build::run_build(&spec, req, log, cancel.clone()),
        stop
    );
    assert_eq!(outcome.unwrap().status, BuildStatus::Stopped);
    assert!(!work.path().join("shell").exists());
}

#[tokio::test]
async fn host_commands_get_no_server_secrets() {
    // The test process's own environment stands for the server's: only the
    // allow-listed variables reach the build.
    let b = build_with(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - env | cut -d= -f1 | sort\n",
        |_| {},
        |_| {},
    )
    .await;
    let allowed = [
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "PWD", "SHLVL", "OLDPWD", "_",
    ];
    for name in b.output() {
        assert!(
            allowed.contains(&name) || name.starts_with("LC_") || name.starts_with("CODEBUILD_"),
            "{name} leaked into the build"
        );
    }
}

#[tokio::test]
async fn symlinks_in_the_source_are_never_followed_by_artifacts_or_cache() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("id_rsa"), "PRIVATE KEY").unwrap();
    std::fs::write(host.path().join("bashrc"), "original").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let key = host.path().join("id_rsa");
    let host_dir = host.path().to_path_buf();
    let yaml = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - \'[ -L deps ] || {{ mkdir -p deps && echo v1 > deps/lib.txt; }}\'\nartifacts:\n  files: ['**/*']\n  exclude-paths: ['deps/**/*']\ncache:\n  paths: ['deps/**/*', '{}/**/*']\n",
        host.path().display()
    );
    let dir = cache.path().to_path_buf();
    // The repository commits a symlink to a host file.
    let first = build_with(
        &yaml,
        |src| {
            std::os::unix::fs::symlink(&key, src.join("leak")).unwrap();
            std::fs::write(src.join("app.txt"), "app").unwrap();
        },
        |req| req.cache_dir = Some(dir.clone()),
    )
    .await;
    assert_eq!(
        first.outcome.status,
        BuildStatus::Succeeded,
        "{:?}",
        first.log
    );
    let art = &first.outcome.artifacts[0];
    let leak = art.dir.join("leak");
    assert!(
        std::fs::symlink_metadata(&leak)
            .unwrap()
            .file_type()
            .is_symlink(),
        "kept as a symlink, not a copy of the host file"
    );
    let log = whole_log(&first);
    assert!(
        log.contains("is outside the source directory: not cached"),
        "{log}"
    );
    assert!(!cache.path().join("files/root").exists());

    // The next revision of the repository makes `deps` a symlink to a host
    // directory: restoring the cache must not write through it.
    let second = build_with(
        &yaml,
        |src| std::os::unix::fs::symlink(&host_dir, src.join("deps")).unwrap(),
        |req| req.cache_dir = Some(dir.clone()),
    )
    .await;
    let log = whole_log(&second);
    assert!(log.contains("deps/lib.txt: not restored"), "{log}");
    assert!(!host.path().join("lib.txt").exists());
    assert_eq!(
        std::fs::read_to_string(host.path().join("bashrc")).unwrap(),
        "original"
    );
}
