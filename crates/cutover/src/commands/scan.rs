//! `cutover scan IMAGE [--fail-on SEVERITY]`: the pipeline gate. Starts a
//! scan of an image of this registry unless one against the current
//! advisories exists, waits for it (the server holds each request until
//! the scan ends or a minute passes), prints the findings and exits 1 when
//! findings at or above the severity exist, 2 when the image is missing or
//! its scan failed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::{Globals, Output, ScanArgs};
use crate::client::{ApiFailure, Client};
use crate::output;
use anyhow::anyhow;
use cutover_api::registry::{ScanQuery, ScanStatus, ScanView, StartScanRequest};
use cutover_scan::Severity;

/// The repository and reference (tag or digest) an image name gives,
/// without the registry host: `127.0.0.1:7070/web:1` is (`web`, `1`).
pub(crate) fn parse_image(image: &str) -> Option<(String, String)> {
    let image = match image.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => image,
    };
    let (repo, reference) = match image.split_once('@') {
        Some((repo, digest)) => (repo, digest),
        None => match image.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => (image, "latest"),
        },
    };
    (!repo.is_empty() && !reference.is_empty()).then(|| (repo.to_string(), reference.to_string()))
}

pub(crate) async fn run(g: &Globals, args: ScanArgs) -> anyhow::Result<ExitCode> {
    let fail_on = args
        .fail_on
        .as_deref()
        .map(|s| s.to_ascii_uppercase().parse::<Severity>())
        .transpose()
        .map_err(|e| anyhow!("--fail-on: {e}"))?;
    let Some((repository, reference)) = parse_image(&args.image) else {
        eprintln!(
            "error: {:?} is not an image name (HOST:PORT/REPO:TAG or REPO@sha256:...)",
            args.image
        );
        return Ok(ExitCode::from(2));
    };
    let client = Client::new(g)?;
    let query = |wait| ScanQuery {
        repository: repository.clone(),
        reference: reference.clone(),
        wait: Some(wait),
    };
    let missing = |e: anyhow::Error| match e.downcast_ref::<ApiFailure>() {
        Some(f) if f.status == reqwest::StatusCode::NOT_FOUND => {
            eprintln!("error: {}", f.message);
            Ok(ExitCode::from(2))
        }
        _ => Err(e),
    };
    let mut view: ScanView = match client.get_with("/v1/registry/scans", &query(0)).await {
        Ok(v) => v,
        Err(e) => return missing(e),
    };
    if args.rescan || view.status.is_none() {
        let req = StartScanRequest {
            repository: repository.clone(),
            reference: reference.clone(),
        };
        view = match client.post("/v1/registry/scans", &req).await {
            Ok(v) => v,
            Err(e) => return missing(e),
        };
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    while view.status == Some(ScanStatus::InProgress) {
        if Instant::now() >= deadline {
            eprintln!(
                "error: the scan of {} did not end within {}s",
                args.image, args.timeout
            );
            return Ok(ExitCode::from(2));
        }
        view = match client.get_with("/v1/registry/scans", &query(55)).await {
            Ok(v) => v,
            Err(e) => return missing(e),
        };
    }
    if g.output == Output::Json {
        output::print_json(&view)?;
    } else {
        print_table(&view);
    }
    Ok(match view.status {
        Some(ScanStatus::Failed) | Some(ScanStatus::InProgress) | None => {
            eprintln!(
                "error: the scan of {} failed: {}",
                args.image, view.description
            );
            ExitCode::from(2)
        }
        Some(ScanStatus::UnsupportedImage) => {
            eprintln!(
                "warning: {} is not an image the scanner reads: {}",
                args.image, view.description
            );
            ExitCode::SUCCESS
        }
        Some(ScanStatus::Complete) => match fail_on {
            Some(s) if view.counts.at_or_above(s) > 0 => {
                eprintln!(
                    "{} finding(s) at or above {s}: the gate fails",
                    view.counts.at_or_above(s)
                );
                ExitCode::from(1)
            }
            _ => ExitCode::SUCCESS,
        },
    })
}

fn print_table(v: &ScanView) {
    println!("{}@{}", v.repository, v.digest);
    if !v.findings.is_empty() {
        let rows: Vec<Vec<String>> = v
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.severity.to_string(),
                    f.name.clone(),
                    f.package_name.clone(),
                    f.package_version.clone(),
                    output::opt(f.fixed_version.as_deref()),
                    f.uri.clone(),
                ]
            })
            .collect();
        let head = ["SEVERITY", "NAME", "PACKAGE", "INSTALLED", "FIXED", "URI"];
        print!("{}", output::table(&head, &rows));
    }
    let counts: Vec<String> = v
        .counts
        .0
        .iter()
        .rev()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    let status = v.status.map(|s| s.as_str()).unwrap_or("NOT_SCANNED");
    println!(
        "{status}: {} finding(s){}{}",
        v.findings.len(),
        if counts.is_empty() { "" } else { " — " },
        counts.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::parse_image;

    #[test]
    fn image_names_give_repository_and_reference() {
        let p = |s| parse_image(s).map(|(r, x)| format!("{r} {x}"));
        assert_eq!(p("127.0.0.1:7070/web:1").as_deref(), Some("web 1"));
        assert_eq!(p("localhost/team/web").as_deref(), Some("team/web latest"));
        assert_eq!(p("web@sha256:ab").as_deref(), Some("web sha256:ab"));
        assert_eq!(
            p("1234.dkr.ecr.us-east-1.amazonaws.com/team/web:v2").as_deref(),
            Some("team/web v2")
        );
        assert_eq!(p("team/web:v2").as_deref(), Some("team/web v2"));
        assert_eq!(p(""), None);
        assert_eq!(p("web@"), None);
    }
}
