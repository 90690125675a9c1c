//! The registry page (`/registry`): each repository with its settings, its
//! images (tags, digest, size, when pushed) and each image's latest scan,
//! its findings counted and listed by severity.
//!
//! Repositories and images are read with the store functions ECR's
//! DescribeRepositories and DescribeImages call
//! (`cutover_store::registry::{list_repositories, list_images}`; there is
//! no `/v1` read of them), scans through `GET /v1/registry/scans`'s handler.

use super::auth::Session;
use super::layout::{badge, page, time};
use super::pages::error_page;
use crate::api::{ApiError, AppState, scans};
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use cutover_api::registry::{ScanQuery, ScanView};
use cutover_api::wire_name;
use cutover_scan::SeverityCounts;
use cutover_store::registry::{self as rows, ImageRow, RepositoryRow};
use maud::{Markup, html};

/// Images shown per repository, newest first.
const IMAGES_SHOWN: usize = 25;

pub(crate) async fn show(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    match markup(&st, &session).await {
        Ok(m) => m.into_response(),
        Err(e) => error_page(e),
    }
}

/// An image and its latest scan (`None`: the scan cannot be read).
type Shown = (ImageRow, Option<ScanView>);

async fn markup(st: &AppState, session: &Session) -> Result<Markup, ApiError> {
    let repos = st
        .store
        .call(|c| rows::list_repositories(c, None, usize::MAX))
        .await?;
    let mut shown: Vec<(RepositoryRow, usize, Vec<Shown>)> = Vec::new();
    for r in repos {
        let name = r.name.clone();
        let mut images = st.store.call(move |c| rows::list_images(c, &name)).await?;
        images.sort_by_key(|i| std::cmp::Reverse(i.pushed_at_ms));
        let total = images.len();
        let mut with_scans = Vec::new();
        for i in images.into_iter().take(IMAGES_SHOWN) {
            let q = ScanQuery {
                repository: r.name.clone(),
                reference: i.digest.clone(),
                wait: None,
            };
            let scan = scans::report(State(st.clone()), Query(q)).await.ok();
            with_scans.push((i, scan.map(|s| s.0)));
        }
        shown.push((r, total, with_scans));
    }
    Ok(page(
        "Registry",
        None,
        session,
        html! {
            @if shown.is_empty() {
                p { "No repositories yet. Push an image: " code { "docker push HOST/team/app:tag" } }
            }
            @for (r, total, images) in &shown {
                section.card aria-label={ "Repository " (r.name) } {
                    h2 { (r.name) }
                    p { "Tags " (wire_name(&r.tag_mutability).to_lowercase()) " · scan on push "
                        (if r.scan_on_push { "on" } else { "off" })
                        @if r.anonymous_pull { " · anonymous pulls" }
                        " · created " (time(r.created_at_ms)) " · " (total) " images"
                        @if *total > images.len() { " (newest " (images.len()) " shown)" } }
                    @if !images.is_empty() { (image_table(&r.name, images)) }
                }
            }
        },
    ))
}

/// The severities of a scan, highest first, as badges.
fn counts(c: &SeverityCounts) -> Markup {
    html! {
        @if c.0.is_empty() { "no findings" }
        @for (sev, n) in c.0.iter().rev() { (badge(sev.as_str())) " " (n) " " }
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        0..1_024 => format!("{bytes} B"),
        1_024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1_024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

fn image_table(repo: &str, images: &[Shown]) -> Markup {
    html! {
        div.scroll { table {
            caption.sr { "Images of " (repo) ", newest first" }
            thead { tr {
                th scope="col" { "Tags" } th scope="col" { "Digest" } th scope="col" { "Size" }
                th scope="col" { "Pushed" } th scope="col" { "Scan" }
            } }
            tbody { @for (i, scan) in images { tr {
                th scope="row" { @if i.tags.is_empty() { "untagged" } @for t in &i.tags { code { (t) } " " } }
                td { code title=(i.digest) { (i.digest.get(..19).unwrap_or(&i.digest)) "…" } }
                td { (size(i.image_size)) }
                td { (time(i.pushed_at_ms)) }
                td { (scan_cell(repo, i, scan.as_ref())) }
            } } }
        } }
    }
}

fn scan_cell(repo: &str, i: &ImageRow, scan: Option<&ScanView>) -> Markup {
    let Some(s) = scan else {
        return html! { "—" };
    };
    html! {
        @match &s.status {
            None => { "not scanned" }
            Some(status) => {
                (badge(&wire_name(status))) " " (counts(&s.counts))
                @if !s.findings.is_empty() {
                    details id={ "scan-" (repo) "-" (i.digest) } {
                        summary { (s.findings.len()) " findings" }
                        ul.findings { @for f in &s.findings { li {
                            (badge(f.severity.as_str())) " " a href=(f.uri) { (f.name) } " "
                            code { (f.package_name) " " (f.package_version) }
                            @if let Some(v) = &f.fixed_version { " · fixed in " code { (v) } }
                        } } }
                    }
                }
                @if !s.description.is_empty() { div { small { (s.description) } } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(super::size(512), "512 B");
        assert_eq!(super::size(2_048), "2.0 KiB");
        assert_eq!(super::size(3 << 20), "3.0 MiB");
    }
}
