//! `download_file`: an http(s) URL into a writable local root, guarded against SSRF.
//!
//! - The destination is checked first (root, denylist, writable, no overwrite unless asked), so
//!   a refused destination costs no connection.
//! - Every hop's host is resolved by `mcp_common::guard::url` through the server's resolver and
//!   refused if any address is off limits; the HTTP client is then built for that hop with the
//!   checked addresses pinned (`resolve_to_addrs`), no proxy and no redirect following, so it
//!   can only connect where the guard looked. Redirects (301/302/303/307/308) are followed here,
//!   each `Location` checked like a new URL, at most five.
//! - The body streams into an `AtomicFile` (size cap, free space, temporary file, fsync,
//!   rename) while it is hashed; a short body, a checksum mismatch, a cancelled call or any error
//!   drops the unfinished file, which leaves nothing behind.

use std::time::{Duration, Instant};

use mcp_common::guard::path::Located;
use mcp_common::guard::url::CheckedTarget;
use mcp_common::guard::write::{AtomicFile, check_target};
use mcp_common::tool::{CallCtx, ToolError};
use serde::Serialize;
use url::Url;

use crate::config::DownloadConfig;
use crate::state::Files;
use crate::transfer::hex;

/// Body bytes gathered before one write on the blocking pool.
const FLUSH_BYTES: usize = 1024 * 1024;
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// A download with its URL parsed and its destination placed (lexical checks passed).
#[derive(Debug, Clone)]
pub struct Job {
    pub url: Url,
    pub dest_dir: Located,
    pub filename: String,
    /// Lower-case hex.
    pub sha256: Option<String>,
    pub overwrite: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Downloaded {
    pub url: String,
    /// Where the file finally came from (after redirects).
    pub final_url: String,
    pub redirects: usize,
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// A checksum was given and matched.
    pub verified: bool,
}

/// Install the process-wide TLS crypto provider (ring); harmless when already installed.
fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn failed(url: &Url, e: &reqwest::Error) -> ToolError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    ToolError::Failed(format!("downloading {url} failed: {msg}"))
}

/// A client that can only reach `t`'s checked addresses.
fn client_for(cfg: &DownloadConfig, t: &CheckedTarget) -> Result<reqwest::Client, ToolError> {
    install_provider();
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .no_gzip()
        .referer(false)
        .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs.max(1)))
        .read_timeout(Duration::from_secs(cfg.read_timeout_secs.max(1)))
        .user_agent(cfg.user_agent.clone());
    if matches!(t.url.host(), Some(url::Host::Domain(_))) {
        // Pinned: the connection goes to the addresses the guard checked, never to a second
        // DNS answer.
        b = b.resolve_to_addrs(&t.host, &t.addrs);
    }
    b.build().map_err(|e| ToolError::Failed(format!("cannot set up the HTTP client: {e}")))
}

/// Follow the URL (and its redirects, each checked) to a successful response.
async fn fetch(files: &Files, start: &Url) -> Result<(reqwest::Response, Url, usize), ToolError> {
    let mut url = start.clone();
    let mut redirects = 0;
    loop {
        let target = files.urls.resolve(&url, files.resolver.as_ref()).await?;
        let client = client_for(&files.config.download, &target)?;
        tracing::debug!(%url, addrs = ?target.addrs, "fetching");
        let resp = client.get(url.clone()).send().await.map_err(|e| failed(&url, &e))?;
        let status = resp.status();
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .ok_or_else(|| ToolError::Failed(format!("{url} answered {status} without a Location")))?;
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            redirects += 1;
            url = files.urls.check_hop(&url, &location, redirects)?;
            continue;
        }
        if !status.is_success() {
            return Err(ToolError::Failed(format!("{url} answered HTTP {status}; nothing was written")));
        }
        return Ok((resp, url, redirects));
    }
}

/// Write `buf` on the blocking pool; the writer travels there and back.
async fn flush(w: AtomicFile, buf: Vec<u8>) -> Result<AtomicFile, ToolError> {
    tokio::task::spawn_blocking(move || {
        let mut w = w;
        w.write(&buf)?;
        Ok::<_, ToolError>(w)
    })
    .await
    .map_err(|e| ToolError::Failed(format!("the writer stopped unexpectedly: {e}")))?
}

/// Run a download; see the module docs.
pub async fn download(files: &Files, job: Job, ctx: &CallCtx) -> Result<Downloaded, ToolError> {
    let (dir, dir_real) = files.local.open_dir(&job.dest_dir)?;
    check_target(&dir, &dir_real, &job.filename, job.overwrite)?;
    let (mut resp, final_url, redirects) = fetch(files, &job.url).await?;
    let expected = resp.content_length();
    let mut writer = Some(AtomicFile::create(dir, dir_real, &job.filename, job.overwrite, expected, files.limits)?);
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut pending: Vec<u8> = Vec::with_capacity(FLUSH_BYTES);
    let mut received = 0u64;
    let mut last = Instant::now();
    ctx.progress(0.0, expected.map(|n| n as f64), format!("downloading {final_url}")).await;
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(&final_url, &e))? {
        received += chunk.len() as u64;
        hash.update(&chunk);
        pending.extend_from_slice(&chunk);
        if pending.len() >= FLUSH_BYTES || received > files.limits.max_bytes {
            let w = writer.take().ok_or_else(|| ToolError::Failed("the writer is gone".into()))?;
            writer = Some(flush(w, std::mem::take(&mut pending)).await?);
        }
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            let total = expected.map(|n| n as f64);
            ctx.progress(received as f64, total, format!("downloaded {received} bytes")).await;
        }
    }
    let w = writer.take().ok_or_else(|| ToolError::Failed("the writer is gone".into()))?;
    let w = flush(w, pending).await?;
    if let Some(n) = expected.filter(|n| *n != received) {
        return Err(ToolError::Failed(format!(
            "{final_url} promised {n} bytes but sent {received}; the unfinished file was removed"
        )));
    }
    let sha256 = hex(hash.finish().as_ref());
    if let Some(want) = &job.sha256
        && *want != sha256
    {
        return Err(ToolError::Failed(format!(
            "checksum mismatch: the download has SHA-256 {sha256}, not the expected {want}; it was discarded"
        )));
    }
    let path = tokio::task::spawn_blocking(move || w.commit())
        .await
        .map_err(|e| ToolError::Failed(format!("the writer stopped unexpectedly: {e}")))??;
    ctx.progress(received as f64, Some(received as f64), "download complete").await;
    Ok(Downloaded {
        url: job.url.to_string(),
        final_url: final_url.to_string(),
        redirects,
        path: path.display().to_string(),
        bytes: received,
        sha256,
        verified: job.sha256.is_some(),
    })
}
