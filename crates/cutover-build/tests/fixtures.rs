//! Real-world buildspecs (tests/fixtures/real, sources in SOURCES.md): all
//! parse; what Cutover does not support comes out as warnings.

use std::path::Path;

use cutover_build::spec::{ReportFormat, parse_buildspec};

fn fixtures() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn warnings(name: &str) -> Vec<String> {
    let (_, text) = fixtures().into_iter().find(|(n, _)| n == name).unwrap();
    parse_buildspec(name, &text)
        .unwrap()
        .warnings
        .iter()
        .map(|w| w.to_string())
        .collect()
}

#[test]
fn every_fixture_parses() {
    let all = fixtures();
    assert!(all.len() >= 10, "only {} fixtures", all.len());
    let sources = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real/SOURCES.md"),
    )
    .unwrap();
    for (name, text) in &all {
        assert!(
            sources.contains(&format!("`{name}`")),
            "{name} is not in SOURCES.md"
        );
        if let Err(e) = parse_buildspec(name, text) {
            panic!("{name} was refused:\n{e}");
        }
    }
}

#[test]
fn run_as_and_runtime_versions_are_warnings() {
    assert_eq!(
        warnings("aws-toolkit-vscode-linuxTests.yml"),
        [
            "aws-toolkit-vscode-linuxTests.yml:4:9: run-as: \"run-as\" is not supported by cutover, ignored",
            "aws-toolkit-vscode-linuxTests.yml:19:17: phases.install.run-as: \"run-as\" is not supported by cutover, ignored",
            "aws-toolkit-vscode-linuxTests.yml:21:13: phases.install.runtime-versions: \"runtime-versions\" is not supported by cutover, ignored",
        ]
    );
}

#[test]
fn batch_builds_and_other_report_formats_are_warnings() {
    let w = warnings("amplify-cli-pr_workflow.yml");
    assert!(
        w.iter()
            .any(|w| w.contains(": batch: \"batch\" is not supported by cutover, ignored")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains(": env.compute-type: unknown field \"compute-type\", ignored")),
        "{w:#?}"
    );

    let (_, text) = fixtures()
        .into_iter()
        .find(|(n, _)| n == "amplify-cli-run_e2e_tests_linux.yml")
        .unwrap();
    let parsed = parse_buildspec("run_e2e_tests_linux.yml", &text).unwrap();
    let formats: Vec<_> = parsed
        .value
        .reports
        .iter()
        .map(|r| r.format.clone())
        .collect();
    assert_eq!(
        formats,
        [
            ReportFormat::JunitXml,
            ReportFormat::Other("CLOVERXML".into())
        ]
    );
    assert!(
        parsed
            .warnings
            .iter()
            .any(|w| w.path == "reports.e2e-coverage-report.file-format")
    );
}

#[test]
fn empty_command_items_are_skipped_with_a_warning() {
    let w = warnings("photo-sharing-devsecops.yml");
    assert!(
        w.iter()
            .any(|w| w.contains("phases.pre_build.commands[2]: empty item, ignored")),
        "{w:#?}"
    );
}
