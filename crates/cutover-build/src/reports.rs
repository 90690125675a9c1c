//! Test reports: the `reports` groups of a buildspec, read from JUnit XML.
//!
//! Every file a group's patterns select under its base directory is parsed
//! as JUnit XML (`<testsuites>` or a single `<testsuite>`, any nesting);
//! each `<testcase>` counts once, as failed (`<failure>`), errored
//! (`<error>`), skipped (`<skipped>`) or passed. A file that does not parse
//! is recorded in the report's `errors` and does not fail the build, as in
//! CodeBuild, where a report only reflects the tests: the build's status
//! comes from the commands' exit statuses.

use std::path::{Path, PathBuf};

use crate::glob::{Pattern, slash_path, walk_files};

/// The result of one test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStatus {
    /// Passed.
    Succeeded,
    /// An assertion failed (`<failure>`).
    Failed,
    /// The test could not run properly (`<error>`).
    Error,
    /// Skipped (`<skipped>`).
    Skipped,
}

/// One test case.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The enclosing `<testsuite name>`.
    pub suite: String,
    /// `classname`.
    pub class_name: String,
    /// `name`.
    pub name: String,
    /// The outcome.
    pub status: TestStatus,
    /// `time`, in milliseconds.
    pub duration_ms: Option<u64>,
    /// The failure or error message, if any.
    pub message: Option<String>,
}

/// One report group's results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// The group name as written in the buildspec.
    pub group: String,
    /// The files read, relative to the base directory.
    pub files: Vec<PathBuf>,
    /// Number of test cases.
    pub total: usize,
    /// Passed cases.
    pub passed: usize,
    /// Failed cases.
    pub failed: usize,
    /// Errored cases.
    pub errored: usize,
    /// Skipped cases.
    pub skipped: usize,
    /// Every case.
    pub cases: Vec<TestCase>,
    /// Files that could not be read or parsed, with the reason.
    pub errors: Vec<String>,
}

impl Report {
    /// Whether every case passed or was skipped.
    pub fn succeeded(&self) -> bool {
        self.failed == 0 && self.errored == 0 && self.errors.is_empty()
    }

    fn add(&mut self, case: TestCase) {
        self.total += 1;
        match case.status {
            TestStatus::Succeeded => self.passed += 1,
            TestStatus::Failed => self.failed += 1,
            TestStatus::Error => self.errored += 1,
            TestStatus::Skipped => self.skipped += 1,
        }
        self.cases.push(case);
    }
}

/// Parses one JUnit XML document into its test cases.
pub fn parse_junit(text: &str) -> Result<Vec<TestCase>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Err(format!(
            "expected <testsuites> or <testsuite>, found <{}>",
            root.tag_name().name()
        ));
    }
    let mut out = Vec::new();
    for case in root.descendants().filter(|n| n.has_tag_name("testcase")) {
        let suite = case
            .ancestors()
            .find(|n| n.has_tag_name("testsuite"))
            .and_then(|s| s.attribute("name"))
            .unwrap_or("")
            .to_owned();
        let child = |tag: &str| case.children().find(|c| c.has_tag_name(tag));
        let (status, detail) = if let Some(f) = child("failure") {
            (TestStatus::Failed, Some(f))
        } else if let Some(e) = child("error") {
            (TestStatus::Error, Some(e))
        } else if let Some(s) = child("skipped") {
            (TestStatus::Skipped, Some(s))
        } else {
            (TestStatus::Succeeded, None)
        };
        let message = detail.and_then(|d| {
            d.attribute("message").map(str::to_owned).or_else(|| {
                d.text()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
            })
        });
        out.push(TestCase {
            suite,
            class_name: case.attribute("classname").unwrap_or("").to_owned(),
            name: case.attribute("name").unwrap_or("").to_owned(),
            status,
            duration_ms: case
                .attribute("time")
                .and_then(|t| t.trim().replace(',', "").parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(|t| (t * 1000.0).round() as u64),
            message,
        });
    }
    Ok(out)
}

/// Reads the report of group `group` from the files `patterns` select
/// under `base`.
pub fn collect(group: &str, base: &Path, patterns: &[String]) -> Report {
    let mut report = Report {
        group: group.to_owned(),
        ..Report::default()
    };
    let mut compiled = Vec::new();
    for p in patterns {
        match Pattern::new(p) {
            Ok(p) => compiled.push(p),
            Err(e) => report.errors.push(format!("invalid pattern {p:?}: {e}")),
        }
    }
    let files = match walk_files(base) {
        Ok(f) => f,
        Err(e) => {
            report.errors.push(format!("{}: {e}", base.display()));
            return report;
        }
    };
    for file in files {
        if !compiled.iter().any(|p| p.selects(&slash_path(&file))) {
            continue;
        }
        // Never through a symlink: the build controls these files.
        let read = crate::safe_fs::open_beneath(base, &file).and_then(|mut f| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut f, &mut text).map(|_| text)
        });
        match read {
            Ok(text) => match parse_junit(&text) {
                Ok(cases) => cases.into_iter().for_each(|c| report.add(c)),
                Err(e) => report.errors.push(format!("{}: {e}", slash_path(&file))),
            },
            Err(e) => report.errors.push(format!("{}: {e}", slash_path(&file))),
        }
        report.files.push(file);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="math" tests="4">
    <testcase classname="math.Add" name="adds" time="0.012"/>
    <testcase classname="math.Add" name="overflows" time="0.5">
      <failure message="expected 2, got 3">trace</failure>
    </testcase>
    <testcase classname="math.Div" name="by zero"><error>boom</error></testcase>
    <testcase classname="math.Div" name="later"><skipped/></testcase>
  </testsuite>
</testsuites>"#;

    #[test]
    fn counts_every_outcome() {
        let cases = parse_junit(JUNIT).unwrap();
        let statuses: Vec<_> = cases.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                TestStatus::Succeeded,
                TestStatus::Failed,
                TestStatus::Error,
                TestStatus::Skipped
            ]
        );
        assert_eq!(cases[0].duration_ms, Some(12));
        assert_eq!(cases[1].message.as_deref(), Some("expected 2, got 3"));
        assert_eq!(cases[2].message.as_deref(), Some("boom"));
        assert_eq!(cases[0].suite, "math");
    }

    #[test]
    fn a_single_testsuite_root_and_bad_documents() {
        let one = r#"<testsuite name="s"><testcase name="t"/></testsuite>"#;
        assert_eq!(parse_junit(one).unwrap().len(), 1);
        assert!(parse_junit("<html/>").unwrap_err().contains("<html>"));
        assert!(parse_junit("<testsuite>").is_err());
    }
}
