//! Real builds on the host, one per buildspec rule (aws-formats.md section 8).

mod common;

use std::time::Duration;

use common::{build, build_with, request};
use cutover_build::plan::{PhaseStatus, PhaseType};
use cutover_build::run::SecretSource;
use cutover_build::{BuildStatus, parse_buildspec, run_build};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn phases_run_in_order() {
    let b = build(
        "version: 0.2\nphases:\n  post_build:\n    commands: [echo post]\n  build:\n    commands: [echo build]\n  install:\n    commands: [echo install]\n  pre_build:\n    commands: [echo pre]\n",
    )
    .await;
    assert_eq!(b.output(), ["install", "pre", "build", "post"]);
    assert_eq!(b.outcome.status, BuildStatus::Succeeded);
    let order: Vec<_> = b
        .outcome
        .phases
        .iter()
        .map(|p| (p.phase, p.status))
        .collect();
    assert_eq!(
        order,
        [
            (PhaseType::Install, PhaseStatus::Succeeded),
            (PhaseType::PreBuild, PhaseStatus::Succeeded),
            (PhaseType::Build, PhaseStatus::Succeeded),
            (PhaseType::PostBuild, PhaseStatus::Succeeded),
            (PhaseType::UploadArtifacts, PhaseStatus::Succeeded),
        ]
    );
}

#[tokio::test]
async fn a_failed_install_skips_every_later_phase() {
    let b = build(
        "version: 0.2\nphases:\n  install:\n    commands: ['false']\n  pre_build:\n    commands: [echo pre]\n  build:\n    commands: [echo build]\n  post_build:\n    commands: [echo post]\nartifacts:\n  files: ['**/*']\n",
    )
    .await;
    assert!(b.output().is_empty(), "{:?}", b.output());
    assert_eq!(b.outcome.status, BuildStatus::Failed);
    assert_eq!(b.phase(PhaseType::Install), PhaseStatus::Failed);
    assert_eq!(b.phase(PhaseType::PreBuild), PhaseStatus::Skipped);
    assert_eq!(b.phase(PhaseType::PostBuild), PhaseStatus::Skipped);
    // No UPLOAD_ARTIFACTS after a failed install.
    assert!(
        b.outcome
            .phases
            .iter()
            .all(|p| p.phase != PhaseType::UploadArtifacts)
    );
    assert_eq!(
        b.outcome.phases[0].message.as_deref(),
        Some("command did not exit successfully: false exit status 1")
    );
}

#[tokio::test]
async fn a_failed_pre_build_skips_build_and_post_build() {
    let b = build(
        "version: 0.2\nphases:\n  install:\n    commands: [echo install]\n  pre_build:\n    commands: ['exit 3']\n  build:\n    commands: [echo build]\n  post_build:\n    commands: [echo post]\n",
    )
    .await;
    assert_eq!(b.output(), ["install"]);
    assert_eq!(b.phase(PhaseType::PreBuild), PhaseStatus::Failed);
    assert_eq!(b.phase(PhaseType::Build), PhaseStatus::Skipped);
    assert_eq!(b.phase(PhaseType::PostBuild), PhaseStatus::Skipped);
}

#[tokio::test]
async fn post_build_runs_after_a_failed_build_with_succeeding_0() {
    let b = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - 'echo \"during build: $CODEBUILD_BUILD_SUCCEEDING\"'\n      - 'false'\n  post_build:\n    commands:\n      - 'echo \"post: $CODEBUILD_BUILD_SUCCEEDING\"'\nartifacts:\n  files: [out.txt]\n",
    )
    .await;
    assert_eq!(b.output(), ["during build: 1", "post: 0"]);
    assert_eq!(b.phase(PhaseType::Build), PhaseStatus::Failed);
    assert_eq!(b.phase(PhaseType::PostBuild), PhaseStatus::Succeeded);
    assert_eq!(b.outcome.status, BuildStatus::Failed);
    // Artifacts are still attempted after a failed build phase.
    assert_eq!(b.phase(PhaseType::UploadArtifacts), PhaseStatus::Failed);
}

#[tokio::test]
async fn finally_runs_after_a_failed_command_and_the_rest_is_skipped() {
    let b = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo one\n      - exit 2\n      - echo never\n    finally:\n      - echo cleanup\n      - echo cleanup done\n",
    )
    .await;
    assert_eq!(b.output(), ["one", "cleanup", "cleanup done"]);
    assert_eq!(b.phase(PhaseType::Build), PhaseStatus::Failed);
}

#[tokio::test]
async fn on_failure_continue_goes_on_to_the_next_phase() {
    let b = build(
        "version: 0.2\nphases:\n  install:\n    on-failure: CONTINUE\n    commands: ['false', echo skipped]\n  pre_build:\n    commands: [echo pre]\n",
    )
    .await;
    assert_eq!(b.output(), ["pre"]);
    assert_eq!(b.phase(PhaseType::Install), PhaseStatus::Failed);
    assert_eq!(b.phase(PhaseType::PreBuild), PhaseStatus::Succeeded);
    assert_eq!(b.outcome.status, BuildStatus::Failed);
}

#[tokio::test]
async fn cd_export_and_variables_carry_over_commands_and_phases() {
    let b = build_with(
        "version: 0.2\nphases:\n  install:\n    commands:\n      - cd sub\n      - export FROM_INSTALL=yes\n      - PLAIN=kept\n  build:\n    commands:\n      - pwd | sed 's|.*/||'\n      - echo \"$FROM_INSTALL $PLAIN\"\n      - exit 0\n  post_build:\n    commands:\n      - 'echo \"after exit: $FROM_INSTALL $(basename \"$PWD\")\"'\n",
        |src| std::fs::create_dir(src.join("sub")).unwrap(),
        |_| {},
    )
    .await;
    // `exit 0` ends the shell: exported variables and the directory survive
    // into the new one.
    assert_eq!(b.output(), ["sub", "yes kept", "after exit: yes sub"]);
    assert_eq!(b.outcome.status, BuildStatus::Succeeded);
}

#[tokio::test]
async fn a_command_that_exits_the_shell_fails_and_finally_still_runs() {
    let b = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - export KEEP=1\n      - set -e; false; echo unreachable\n    finally:\n      - echo \"finally $KEEP\"\n",
    )
    .await;
    assert_eq!(b.output(), ["finally 1"]);
    assert_eq!(b.phase(PhaseType::Build), PhaseStatus::Failed);
}

#[tokio::test]
async fn env_variables_and_request_overrides() {
    let b = build_with(
        "version: 0.2\nenv:\n  variables:\n    GREETING: hello\n    PORT: 8080\n    OVERRIDDEN: from-buildspec\nphases:\n  build:\n    commands:\n      - echo \"$GREETING $PORT $OVERRIDDEN\"\n",
        |_| {},
        |req| req.env.push(("OVERRIDDEN".into(), "from-pipeline".into())),
    )
    .await;
    assert_eq!(b.output(), ["hello 8080 from-pipeline"]);
}

#[tokio::test]
async fn exported_variables_are_read_after_post_build() {
    let b = build(
        "version: 0.2\nenv:\n  exported-variables: [IMAGE_TAG, STAGE, NEVER_SET]\n  variables:\n    STAGE: initial\nphases:\n  build:\n    commands:\n      - export IMAGE_TAG=build-$CODEBUILD_BUILD_NUMBER\n  post_build:\n    commands:\n      - |\n        STAGE=\"multi word\n        line\"\n",
    )
    .await;
    let vars: Vec<_> = b
        .outcome
        .exported_variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [("IMAGE_TAG", "build-7"), ("STAGE", "multi word\nline")]
    );
}

#[tokio::test]
async fn secrets_are_resolved_and_masked_in_logs() {
    let b = build_with(
        "version: 0.2\nenv:\n  parameter-store:\n    DB_PASS: /prod/db/pass\n  secrets-manager:\n    TOKEN: prod/api:token\nphases:\n  build:\n    commands:\n      - echo \"pass=$DB_PASS token=$TOKEN\"\n      - echo \"$DB_PASS\" | wc -c\n      - echo Running with $TOKEN\n",
        |_| {},
        |req| {
            req.secrets = cutover_build::run::sync_lookup(|source, reference| match (source, reference) {
                (SecretSource::ParameterStore, "/prod/db/pass") => Some("s3cr3t-pass".into()),
                (SecretSource::SecretsManager, "prod/api:token") => Some("tok-123456".into()),
                _ => None,
            })
        },
    )
    .await;
    assert_eq!(b.output(), ["pass=*** token=***", "12", "Running with ***"]);
    assert!(
        b.log
            .iter()
            .all(|l| !l.text.contains("s3cr3t") && !l.text.contains("tok-123456"))
    );
}

#[tokio::test]
async fn a_missing_secret_stops_the_build_before_anything_runs() {
    let spec = parse_buildspec(
        "buildspec.yml",
        "version: 0.2\nenv:\n  parameter-store:\n    DB_PASS: /nope\nphases:\n  build:\n    commands: [touch ran]\n",
    )
    .unwrap()
    .value;
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let err = run_build(
        &spec,
        request(src.path(), work.path()),
        |_| {},
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "env.parameter-store.DB_PASS: secret \"/nope\" not found"
    );
    assert!(!src.path().join("ran").exists());
}

#[tokio::test]
async fn artifacts_globs_base_directory_discard_exclude_name_and_secondary() {
    let b = build(
        r#"version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist/js/lib dist/css docs/api
      - echo app > dist/js/app.js
      - echo map > dist/js/app.js.map
      - echo lib > dist/js/lib/util.js
      - echo css > dist/css/site.css
      - echo api > docs/api/index.md
      - echo '[{"name":"web"}]' > imagedefinitions.json
      - export OUT=dist
artifacts:
  files: ['**/*']
  base-directory: $OUT
  exclude-paths: ['**/*.map']
  name: web-$CODEBUILD_BUILD_NUMBER-$(echo x)
  secondary-artifacts:
    Flat:
      files: ['dist/js/**/*.js', imagedefinitions.json]
      discard-paths: yes
    Docs:
      files: docs
"#,
    )
    .await;
    assert_eq!(
        b.outcome.status,
        BuildStatus::Succeeded,
        "{:?}",
        b.outcome.phases
    );
    let sets: Vec<_> = b
        .outcome
        .artifacts
        .iter()
        .map(|a| {
            (
                a.identifier.clone(),
                a.name.clone(),
                a.files
                    .iter()
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        sets,
        [
            (
                None,
                Some("web-7-x".to_owned()),
                vec![
                    "css/site.css".to_owned(),
                    "js/app.js".into(),
                    "js/lib/util.js".into()
                ]
            ),
            (
                Some("Flat".to_owned()),
                None,
                vec![
                    "app.js".to_owned(),
                    "imagedefinitions.json".into(),
                    "util.js".into()
                ]
            ),
            (
                Some("Docs".to_owned()),
                None,
                vec!["docs/api/index.md".to_owned()]
            ),
        ]
    );
    let primary = &b.outcome.artifacts[0];
    assert_eq!(
        primary.dir,
        b.work
            .path()
            .canonicalize()
            .unwrap()
            .join("artifacts/primary")
    );
    assert_eq!(
        std::fs::read_to_string(primary.dir.join("js/app.js")).unwrap(),
        "app\n"
    );
    let flat = &b.outcome.artifacts[1];
    assert_eq!(
        std::fs::read_to_string(flat.dir.join("util.js")).unwrap(),
        "lib\n"
    );
}

#[tokio::test]
async fn no_matching_artifact_fails_the_upload() {
    let b = build("version: 0.2\nphases:\n  build:\n    commands: ['true']\nartifacts:\n  files: [missing.json]\n").await;
    assert_eq!(b.phase(PhaseType::UploadArtifacts), PhaseStatus::Failed);
    assert_eq!(b.outcome.status, BuildStatus::Failed);
    let message = b.outcome.phases.last().unwrap().message.clone().unwrap();
    assert!(
        message.starts_with("primary: no matching artifact paths found under "),
        "{message}"
    );
}

#[tokio::test]
async fn junit_reports_are_read() {
    let b = build(
        r#"version: 0.2
phases:
  build:
    commands:
      - mkdir -p build/test-results
      - |
        cat > build/test-results/TEST-a.xml <<'EOF'
        <testsuite name="a"><testcase name="ok"/><testcase name="bad"><failure message="no"/></testcase></testsuite>
        EOF
      - |
        cat > build/test-results/TEST-b.xml <<'EOF'
        <testsuites><testsuite name="b"><testcase name="later"><skipped/></testcase><testcase name="fine"/></testsuite></testsuites>
        EOF
      - echo not xml > build/test-results/notes.txt
reports:
  unit-tests:
    files: ['**/*.xml']
    base-directory: build/test-results
    file-format: JUNITXML
"#,
    )
    .await;
    assert_eq!(b.outcome.reports.len(), 1);
    let r = &b.outcome.reports[0];
    assert_eq!(r.group, "unit-tests");
    assert_eq!((r.total, r.passed, r.failed, r.skipped), (4, 2, 1, 1));
    assert_eq!(r.files.len(), 2);
    assert!(!r.succeeded());
    // A failing report does not fail the build.
    assert_eq!(b.outcome.status, BuildStatus::Succeeded);
}

#[tokio::test]
async fn cache_paths_come_back_in_the_next_build() {
    let cache = tempfile::tempdir().unwrap();
    let yaml = "version: 0.2\nphases:\n  build:\n    commands:\n      - 'if [ -f deps/lib.txt ]; then echo \"cached: $(cat deps/lib.txt)\"; else mkdir -p deps && echo v1 > deps/lib.txt && echo downloaded; fi'\ncache:\n  paths: ['deps/**/*']\n";
    let dir = cache.path().to_path_buf();
    let first = build_with(yaml, |_| {}, |req| req.cache_dir = Some(dir.clone())).await;
    assert_eq!(first.output(), ["downloaded"]);
    let second = build_with(yaml, |_| {}, |req| req.cache_dir = Some(dir.clone())).await;
    assert_eq!(second.output(), ["cached: v1"]);
}

#[tokio::test]
async fn codebuild_variables_are_set() {
    let b = build_with(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"$CODEBUILD_BUILD_NUMBER|$CODEBUILD_RESOLVED_SOURCE_VERSION|$CODEBUILD_SOURCE_VERSION|$CODEBUILD_INITIATOR|$CODEBUILD_BUILD_SUCCEEDING\"\n      - 'echo \"$CODEBUILD_BUILD_ID\" | cut -d: -f1'\n      - '[ \"$CODEBUILD_SRC_DIR\" = \"$PWD\" ] && echo src ok'\n      - 'case $CODEBUILD_START_TIME in *[!0-9]*|\"\") echo bad;; *) echo time ok;; esac'\n      - echo \"${CODEBUILD_BUILD_ID#*:}\" | wc -c\n",
        |_| {},
        |req| {
            req.resolved_source_version = Some("0123abc".into());
            req.source_version = Some("refs/heads/main".into());
            req.initiator = "codepipeline/web".into();
        },
    )
    .await;
    assert_eq!(
        b.output(),
        [
            "7|0123abc|refs/heads/main|codepipeline/web|1",
            "web-build",
            "src ok",
            "time ok",
            "37"
        ]
    );
}

#[tokio::test]
async fn version_0_1_runs_each_command_in_a_fresh_shell() {
    let b = build_with(
        "version: 0.1\nphases:\n  build:\n    commands:\n      - cd sub && pwd | sed 's|.*/||'\n      - export X=1\n      - echo \"x=$X\"\n      - pwd | sed 's|.*/||'\n",
        |src| std::fs::create_dir(src.join("sub")).unwrap(),
        |_| {},
    )
    .await;
    let src_name = b.output()[2].to_owned();
    assert_eq!(b.output()[..2], ["sub", "x="]);
    assert_ne!(src_name, "sub");
}

#[tokio::test]
async fn sh_is_supported() {
    let b = build("version: 0.2\nenv:\n  shell: sh\nphases:\n  build:\n    commands:\n      - export A=1\n      - echo \"a=$A\"\n      - exit 4\n    finally:\n      - echo \"still a=$A\"\n").await;
    assert_eq!(b.output(), ["a=1", "still a=1"]);
    assert_eq!(b.phase(PhaseType::Build), PhaseStatus::Failed);
}

#[tokio::test]
async fn logs_stream_live_and_stopping_kills_the_process_group() {
    let spec = parse_buildspec(
        "buildspec.yml",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - (sleep 300; echo leaked) & echo $! > bg.pid\n      - echo ready; sleep 300\n  post_build:\n    commands: [echo post]\n",
    )
    .unwrap()
    .value;
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let run = tokio::spawn({
        let req = request(src.path(), work.path());
        async move {
            run_build(
                &spec,
                req,
                move |l| {
                    let _ = tx.send(l);
                },
                cancel,
            )
            .await
        }
    });
    // "ready" arrives while its command is still running: lines are live.
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if line.text == "ready" {
            break;
        }
    }
    assert!(work.path().join("build.pid").exists());
    stopper.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, BuildStatus::Stopped);
    assert_eq!(outcome.phases[2].status, PhaseStatus::Stopped);
    let bg: i32 = std::fs::read_to_string(src.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The background process is gone (reaped by init soon after the kill).
    let mut gone = false;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{bg}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "background process {bg} survived the stop");
    assert!(!work.path().join("build.pid").exists());
}

#[tokio::test]
async fn leftover_groups_are_killed_from_the_pid_file() {
    let work = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("sleep");
    std::os::unix::process::CommandExt::process_group(&mut child, 0);
    let mut child = child.arg("300").spawn().unwrap();
    let pid = child.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_owned();
    std::fs::write(work.path().join("build.pid"), format!("{pid} {start}\n")).unwrap();
    assert!(cutover_build::process::kill_leftover(work.path()).unwrap());
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!work.path().join("build.pid").exists());
    // A stale file (recycled pid) kills nothing.
    std::fs::write(
        work.path().join("build.pid"),
        format!("{} 1\n", std::process::id()),
    )
    .unwrap();
    assert!(!cutover_build::process::kill_leftover(work.path()).unwrap());
}

#[tokio::test]
async fn a_chatty_background_process_does_not_hold_the_build_open() {
    let started = std::time::Instant::now();
    let b = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - (while true; do echo spam; sleep 0.01; done) &\n      - echo built\n",
    )
    .await;
    assert_eq!(b.outcome.status, BuildStatus::Succeeded);
    assert!(b.output().contains(&"built"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn set_x_traces_commands_but_not_the_session_loop() {
    let b = build("version: 0.2\nphases:\n  build:\n    commands:\n      - set -x\n      - echo hi\n      - 'false'\n").await;
    let out = b.output();
    assert!(out.iter().all(|l| !l.contains("__cutover")), "{out:#?}");
    assert!(out.contains(&"hi"), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with("echo hi")), "{out:#?}");
    assert_eq!(b.phase(PhaseType::Build), PhaseStatus::Failed);
}

#[tokio::test]
async fn a_windows_shell_fails_the_build_at_start_with_a_clear_message() {
    let yaml = "version: 0.2\nenv:\n  shell: powershell.exe\nphases:\n  build:\n    commands:\n      - echo ran > ran.txt\n";
    let spec = parse_buildspec("buildspec.yml", yaml).unwrap().value;
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let err = run_build(
        &spec,
        request(src.path(), work.path()),
        |_| {},
        CancellationToken::new(),
    )
    .await
    .expect_err("a Windows shell must not start");
    assert!(matches!(
        err,
        cutover_build::run::BuildError::WindowsShell {
            program: "powershell.exe"
        }
    ));
    assert_eq!(
        err.to_string(),
        "env.shell is powershell.exe, a Windows shell: Windows builds are not supported here (builds run on Linux with bash or sh)"
    );
    assert!(!src.path().join("ran.txt").exists());
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        0,
        "nothing prepared"
    );
}
