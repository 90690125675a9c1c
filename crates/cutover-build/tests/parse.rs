//! The buildspec parser: accepted forms, located errors (full messages) and
//! warnings.

use cutover_build::spec::{OnFailure, ReportFormat, Shell, Version, parse_buildspec};

/// Parses `text` expecting errors; returns them one per line.
fn errors(text: &str) -> String {
    match parse_buildspec("buildspec.yml", text) {
        Ok(p) => panic!("expected errors, parsed {:?}", p.value),
        Err(e) => e.to_string(),
    }
}

fn warnings(text: &str) -> Vec<String> {
    let parsed = parse_buildspec("buildspec.yml", text).unwrap_or_else(|e| panic!("{e}"));
    parsed.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn a_command_that_yaml_read_as_a_mapping() {
    let text = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo one\n      - echo two\n      - echo Result: done\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:7:9: phases.build.commands[2]: expected a string, found a mapping"
    );
}

#[test]
fn missing_version() {
    assert_eq!(
        errors("phases:\n  build:\n    commands: [make]\n"),
        "buildspec.yml:1:1: missing field \"version\""
    );
}

#[test]
fn unsupported_version() {
    assert_eq!(
        errors("version: 0.3\nphases: {}\n"),
        "buildspec.yml:1:10: version: expected 0.2 or 0.1, found 0.3"
    );
}

#[test]
fn on_failure_must_be_abort_or_continue() {
    let text = "version: 0.2\nphases:\n  install:\n    on-failure: STOP\n    commands: [make]\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:4:17: phases.install.on-failure: expected ABORT or CONTINUE, found \"STOP\""
    );
}

#[test]
fn discard_paths_must_be_a_boolean() {
    let text = "version: 0.2\nartifacts:\n  files: ['**/*']\n  discard-paths: maybe\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:4:18: artifacts.discard-paths: expected yes or no, found \"maybe\""
    );
}

#[test]
fn artifacts_need_files() {
    let text = "version: 0.2\nartifacts:\n  base-directory: dist\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:3:3: artifacts: missing field \"files\""
    );
}

#[test]
fn exported_variable_names_are_checked() {
    let text = "version: 0.2\nenv:\n  exported-variables:\n    - IMAGE_TAG\n    - 1TAG\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:5:7: env.exported-variables[1]: \"1TAG\" is not a valid variable name"
    );
}

#[test]
fn windows_shells_are_accepted_with_a_located_warning() {
    for (name, shell) in [
        ("powershell.exe", Shell::PowerShell),
        ("pwsh", Shell::Pwsh),
        ("cmd.exe", Shell::Cmd),
    ] {
        let text = format!(
            "version: 0.2\nenv:\n  shell: {name}\nphases:\n  build:\n    commands: [dir]\n"
        );
        let parsed = parse_buildspec("buildspec.yml", &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.value.env.shell, shell);
        assert!(shell.is_windows());
        assert_eq!(
            warnings(&text),
            [format!(
                "buildspec.yml:3:10: env.shell: \"{name}\" runs only on CodeBuild's Windows images; \
                 Windows builds are not supported here, so a build of this buildspec fails at start"
            )]
        );
    }
}

#[test]
fn unknown_shell() {
    let text = "version: 0.2\nenv:\n  shell: fish\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:3:10: env.shell: expected bash or sh (or powershell.exe, pwsh or cmd.exe for Windows images), found \"fish\""
    );
}

#[test]
fn misspelt_phase_is_an_error_not_a_silent_skip() {
    let text = "version: 0.2\nphases:\n  biuld:\n    commands: [make]\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:4:5: phases.biuld: unknown phase \"biuld\", expected install, pre_build, build or post_build (did you mean \"build\"?)"
    );
}

#[test]
fn bad_pattern_in_artifacts() {
    let text = "version: 0.2\nartifacts:\n  files:\n    - 'dist/[ab'\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:4:7: artifacts.files[0]: invalid pattern \"dist/[ab\": unclosed character class in \"dist/[ab\""
    );
}

#[test]
fn variable_values_must_be_scalars() {
    let text = "version: 0.2\nenv:\n  variables:\n    TAGS: [a, b]\n    PORT: 8080\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:4:11: env.variables.TAGS: expected a string, found a list"
    );
}

#[test]
fn yaml_syntax_errors_are_located() {
    let text = "version: 0.2\nphases:\n  build:\n    commands: [make\n  post_build: {}\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:5:13: illegal placement of ':' indicator"
    );
}

#[test]
fn every_error_is_reported_in_one_pass() {
    let text = "version: 0.2\nenv:\n  shell: zsh\nphases:\n  build:\n    on-failure: NEVER\n";
    assert_eq!(
        errors(text),
        "buildspec.yml:3:10: env.shell: expected bash or sh (or powershell.exe, pwsh or cmd.exe for Windows images), found \"zsh\"\n\
         buildspec.yml:6:17: phases.build.on-failure: expected ABORT or CONTINUE, found \"NEVER\""
    );
}

#[test]
fn version_as_float_or_string_and_yaml_1_1_booleans() {
    for version in ["0.2", "\"0.2\"", "'0.2'"] {
        for (word, expected) in [
            ("yes", true),
            ("no", false),
            ("\"yes\"", true),
            ("on", true),
            ("off", false),
            ("true", true),
            ("No", false),
        ] {
            let text = format!(
                "version: {version}\nartifacts:\n  files: ['**/*']\n  discard-paths: {word}\nreports:\n  tests:\n    files: ['*.xml']\n    discard-paths: {word}\n"
            );
            let spec = parse_buildspec("buildspec.yml", &text).unwrap().value;
            assert_eq!(spec.version, Version::V0_2);
            assert_eq!(
                spec.artifacts.unwrap().primary.unwrap().discard_paths,
                expected,
                "{word}"
            );
            assert_eq!(spec.reports[0].discard_paths, expected, "{word}");
        }
    }
    let v01 = parse_buildspec(
        "buildspec.yml",
        "version: 0.1\nphases: {build: {commands: [make]}}\n",
    )
    .unwrap();
    assert_eq!(v01.value.version, Version::V0_1);
}

#[test]
fn everything_a_buildspec_can_say() {
    let text = r#"version: 0.2
env:
  shell: sh
  variables:
    PORT: 8080
    CI: true
    NAME: "web"
  parameter-store:
    DB_PASS: /prod/db/pass
  secrets-manager:
    TOKEN: prod/api:token
  exported-variables: [IMAGE_TAG]
phases:
  install:
    on-failure: CONTINUE
    commands:
      - echo install
  build:
    commands:
      - make
      - |
        if true; then
          echo multi
        fi
    finally:
      - echo done
reports:
  unit:
    files: ['**/*.xml']
    base-directory: build/test-results
    file-format: JUNITXML
  coverage:
    files: [coverage.xml]
    file-format: COBERTURAXML
artifacts:
  files: imagedefinitions.json
  name: web-$CODEBUILD_BUILD_NUMBER
  base-directory: out
  discard-paths: yes
  exclude-paths: ['**/*.map']
  secondary-artifacts:
    docs:
      files: ['docs/**/*']
cache:
  paths: ['/root/.m2/**/*', node_modules/**/*]
"#;
    let spec = parse_buildspec("buildspec.yml", text).unwrap().value;
    assert_eq!(spec.env.shell, Shell::Sh);
    assert_eq!(
        spec.env.variables,
        vec![
            ("PORT".into(), "8080".into()),
            ("CI".into(), "true".into()),
            ("NAME".into(), "web".into())
        ]
    );
    assert_eq!(
        spec.env.parameter_store,
        vec![("DB_PASS".into(), "/prod/db/pass".into())]
    );
    assert_eq!(
        spec.env.secrets_manager,
        vec![("TOKEN".into(), "prod/api:token".into())]
    );
    assert_eq!(spec.env.exported_variables, vec!["IMAGE_TAG".to_owned()]);
    assert_eq!(spec.phases.install.on_failure, Some(OnFailure::Continue));
    assert_eq!(spec.phases.build.commands.len(), 2);
    assert_eq!(
        spec.phases.build.commands[1],
        "if true; then\n  echo multi\nfi\n"
    );
    assert_eq!(spec.phases.build.finally, vec!["echo done".to_owned()]);
    assert!(spec.phases.post_build.commands.is_empty());
    assert_eq!(spec.reports.len(), 2);
    assert_eq!(spec.reports[0].format, ReportFormat::JunitXml);
    assert_eq!(
        spec.reports[1].format,
        ReportFormat::Other("COBERTURAXML".into())
    );
    let artifacts = spec.artifacts.unwrap();
    let primary = artifacts.primary.unwrap();
    assert_eq!(primary.files, vec!["imagedefinitions.json".to_owned()]);
    assert_eq!(primary.name.as_deref(), Some("web-$CODEBUILD_BUILD_NUMBER"));
    assert!(primary.discard_paths);
    assert_eq!(artifacts.secondary[0].0, "docs");
    assert_eq!(
        spec.cache_paths,
        vec!["/root/.m2/**/*".to_owned(), "node_modules/**/*".to_owned()]
    );
}

#[test]
fn unsupported_and_unknown_keys_are_warnings_with_their_path() {
    let text = "version: 0.2\nrun-as: codebuild-user\nenv:\n  git-credential-helper: yes\nphases:\n  install:\n    runtime-versions:\n      nodejs: 18\n    comands: [make]\n";
    assert_eq!(
        warnings(text),
        vec![
            "buildspec.yml:2:9: run-as: \"run-as\" is not supported by cutover, ignored",
            "buildspec.yml:4:26: env.git-credential-helper: \"git-credential-helper\" is not supported by cutover, ignored",
            "buildspec.yml:8:7: phases.install.runtime-versions: \"runtime-versions\" is not supported by cutover, ignored",
            "buildspec.yml:9:14: phases.install.comands: unknown field \"comands\", ignored (did you mean \"commands\"?)",
        ]
    );
}

#[test]
fn anchors_and_merge_keys() {
    let text = "version: 0.2\nx-common: &common\n  on-failure: CONTINUE\n  finally: [echo done]\nphases:\n  pre_build:\n    <<: *common\n    commands: [make deps]\n  build:\n    <<: *common\n    on-failure: ABORT\n    commands: [make]\n";
    let parsed = parse_buildspec("buildspec.yml", text).unwrap_or_else(|e| panic!("{e}"));
    let phases = &parsed.value.phases;
    assert_eq!(phases.pre_build.on_failure, Some(OnFailure::Continue));
    assert_eq!(phases.pre_build.finally, ["echo done"]);
    // A key written in the mapping wins over a merged one.
    assert_eq!(phases.build.on_failure, Some(OnFailure::Abort));
    assert_eq!(phases.build.commands, ["make"]);
    assert_eq!(
        parsed
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["buildspec.yml:2:11: x-common: unknown field \"x-common\", ignored"]
    );
}
