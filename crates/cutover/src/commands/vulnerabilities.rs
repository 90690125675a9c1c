//! `cutover vulnerabilities import|update|status`: the advisory database.
//! Every import streams a zip archive of OSV records to the server (a
//! directory's `*.json` records are first packed into one, uncompressed,
//! in a temporary file; its `*.zip` files go as they are): the server
//! never reads a path the client names. `update` downloads OSV's
//! per-ecosystem `all.zip` files to temporary files and imports them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use cutover_api::registry::{AdvisoryStatus, ImportResponse};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::cli::{Globals, Output, VulnerabilitiesCommand};
use crate::client::Client;
use crate::output;

pub(crate) async fn run(g: &Globals, command: VulnerabilitiesCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    match command {
        VulnerabilitiesCommand::Status => {
            let s: AdvisoryStatus = client.get("/v1/vulnerabilities").await?;
            if g.output == Output::Json {
                output::print_json(&s)?;
            } else {
                print_status(&s);
            }
        }
        VulnerabilitiesCommand::Import { path } => {
            let mut archives = Vec::new();
            if path.is_dir() {
                let (json, zips) = walk(&path)?;
                if !json.is_empty() {
                    archives.push((format!("{} JSON records", json.len()), pack(&path, &json)?));
                }
                for z in zips {
                    let f = std::fs::File::open(&z)
                        .with_context(|| format!("cannot open {}", z.display()))?;
                    archives.push((z.display().to_string(), f));
                }
                if archives.is_empty() {
                    bail!("{} holds no *.json or *.zip file", path.display());
                }
            } else {
                let f = std::fs::File::open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                archives.push((path.display().to_string(), f));
            }
            for (what, file) in archives {
                import(g, &client, &what, file).await?;
            }
        }
        VulnerabilitiesCommand::Update { source, ecosystems } => {
            let ecosystems = if ecosystems.is_empty() {
                let s: AdvisoryStatus = client.get("/v1/vulnerabilities").await?;
                s.image_ecosystems
            } else {
                ecosystems
            };
            if ecosystems.is_empty() {
                bail!(
                    "no scanned image names an ecosystem yet; name some with --ecosystem Debian --ecosystem npm"
                );
            }
            let http = reqwest::Client::builder().build()?;
            for eco in ecosystems {
                let url = format!("{}/{eco}/all.zip", source.trim_end_matches('/'));
                let file = download(&http, &url).await?;
                import(g, &client, &url, file).await?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(
    g: &Globals,
    client: &Client,
    what: &str,
    file: std::fs::File,
) -> anyhow::Result<()> {
    let r: ImportResponse = client
        .post_file(
            "/v1/vulnerabilities/import",
            "application/zip",
            tokio::fs::File::from_std(file),
        )
        .await
        .with_context(|| format!("importing {what}"))?;
    if g.output == Output::Json {
        return output::print_json(&r);
    }
    println!(
        "{what}: {} records read, {} kept, {} skipped{}",
        r.records,
        r.kept,
        r.skipped,
        if r.changed { "" } else { " (no change)" }
    );
    for n in &r.notes {
        eprintln!("  note: {n}");
    }
    print_status(&r.status);
    Ok(())
}

fn print_status(s: &AdvisoryStatus) {
    let updated = match s.updated_at_ms {
        Some(_) => format!("{} ago", output::age(s.updated_at_ms, output::now_ms())),
        None => "never".into(),
    };
    println!(
        "advisories: {}  version: {}  updated: {updated}",
        s.advisories,
        s.version.get(..12).unwrap_or(&s.version)
    );
    if !s.image_ecosystems.is_empty() {
        println!(
            "ecosystems of stored images: {}",
            s.image_ecosystems.join(", ")
        );
    }
    if s.rescans_pending > 0 {
        println!("images being rescanned: {}", s.rescans_pending);
    }
}

/// The `*.json` and `*.zip` files under `dir` (symbolic links not
/// followed), sorted.
fn walk(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut json, mut zips) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?
        {
            let entry = entry?;
            let (path, ft) = (entry.path(), entry.file_type()?);
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && ext == "json" {
                json.push(path);
            } else if ft.is_file() && ext == "zip" {
                zips.push(path);
            }
        }
    }
    json.sort();
    zips.sort();
    Ok((json, zips))
}

/// Packs files under `dir` into an uncompressed zip archive in a temporary
/// file, each named by its path relative to `dir` (as the server's notes
/// then name it).
fn pack(dir: &Path, files: &[PathBuf]) -> anyhow::Result<std::fs::File> {
    let tmp = tempfile::tempfile().context("cannot create a temporary file")?;
    let mut zip = zip::ZipWriter::new(tmp);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    for path in files {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let name = path.strip_prefix(dir).unwrap_or(path).to_string_lossy();
        zip.start_file(name, options)?;
        std::io::copy(&mut f, &mut zip)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    let mut file = zip.finish()?;
    std::io::Seek::rewind(&mut file)?;
    Ok(file)
}

/// Downloads `url` into a temporary file, streaming.
async fn download(http: &reqwest::Client, url: &str) -> anyhow::Result<std::fs::File> {
    let resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot download {url}"))?;
    if !resp.status().is_success() {
        bail!("cannot download {url}: {}", resp.status());
    }
    let mut file = tokio::fs::File::from_std(tempfile::tempfile()?);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        file.write_all(&chunk.with_context(|| format!("downloading {url}"))?)
            .await?;
    }
    file.flush().await?;
    let mut file = file.into_std().await;
    std::io::Seek::rewind(&mut file)?;
    Ok(file)
}
