//! YELLOW tools that create files: `download_file`, `copy_file`, `transfer_file`.
//!
//! Every argument is checked before any connection or file is opened: URLs by the URL guard,
//! paths by the node's path guard (roots, denylist, writable root), file names as single plain
//! components, and both nodes against the policy's protected nodes. The work itself (see
//! `download` and `transfer`) re-checks what the file system or the network really resolves to.

use std::path::Path;
use std::sync::Arc;

use mcp_common::guard::path::{Located, check_file_name};
use mcp_common::policy::Target;
use mcp_common::tier::Tier::Yellow;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::state::{Files, NodeRef};
use crate::{download, transfer};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadArgs {
    /// An http:// or https:// URL. Hosts that resolve to loopback, private, link-local, metadata or other
    /// non-public addresses are refused, as are credentials in the URL and ports other than the allowed ones.
    pub url: String,
    /// Local directory inside a writable root.
    pub dest_dir: String,
    /// Name of the file to create (default: the URL's last path segment, taken literally).
    #[serde(default)]
    pub filename: Option<String>,
    /// Expected SHA-256 as 64 hex digits; the file is kept only if it matches.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Replace an existing regular file of that name (default false: an existing file is a refusal).
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyArgs {
    /// Node name; omit it for the machine this server runs on.
    #[serde(default)]
    pub node: Option<String>,
    /// The file to copy (a regular file inside a root).
    pub src: String,
    /// The copy: a file path inside a writable root, or a directory ending in `/` to keep the source's name.
    pub dest: String,
    /// Replace an existing regular file (default false).
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferArgs {
    /// Node holding the file (this machine's name, e.g. `local`, for a local file).
    pub src_node: String,
    /// The file to send.
    pub src: String,
    /// Node to write to.
    pub dest_node: String,
    /// A file path inside a writable root on `dest_node`, or a directory ending in `/`.
    pub dest: String,
    /// Replace an existing regular file (default false).
    #[serde(default)]
    pub overwrite: bool,
}

pub fn register(r: &mut Registry<Files>) {
    r.add(
        ToolSpec {
            name: "download_file",
            title: "Download a file",
            description: "Download an http(s) URL (an ISO, a template, a backup) into a writable directory on this \
                          machine, with progress notifications and optional SHA-256 verification. Private, loopback \
                          and metadata addresses are refused, redirects are checked hop by hop, and a failed download \
                          leaves nothing behind.",
            tier: Yellow,
            idempotent: false,
            open_world: true,
        },
        download_file,
    );
    r.add(
        ToolSpec {
            name: "copy_file",
            title: "Copy a file",
            description: "Copy a file within one node (this machine, or a cluster node over SFTP) into a writable root, \
                          with progress notifications. Never overwrites unless asked; a failed copy leaves nothing behind.",
            tier: Yellow,
            idempotent: false,
            open_world: false,
        },
        copy_file,
    );
    r.add(
        ToolSpec {
            name: "transfer_file",
            title: "Transfer a file between nodes",
            description: "Stream a file from one node to another over SSH (e.g. move a backup to another node), with \
                          progress notifications and a SHA-256 of what was written. Never overwrites unless asked; an \
                          interrupted transfer leaves no partial file at the destination.",
            tier: Yellow,
            idempotent: false,
            open_world: false,
        },
        transfer_file,
    );
}

fn node_id(n: &NodeRef<'_>) -> Option<String> {
    match n {
        NodeRef::Local(_) => None,
        NodeRef::Remote(r) => Some(r.name.clone()),
    }
}

/// The directory and file name a destination argument means: `dir/` keeps `default_name`,
/// a root itself is a directory, anything else is `parent` + last component.
fn split_dest(at: Located, dest: &str, default_name: &str) -> (Located, String) {
    if dest.ends_with('/') || at.rel.as_os_str().is_empty() {
        return (at, default_name.to_string());
    }
    let name = at.name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parent = Located {
        root: at.root,
        rel: at.rel_parent(),
        full: at.full.parent().map(Path::to_path_buf).unwrap_or_else(|| at.full.clone()),
    };
    (parent, name)
}

/// Check a copy's arguments and place its paths (no I/O).
fn plan(
    s: &Files,
    ctx: &CallCtx,
    src_node: Option<&str>,
    src: &str,
    dest_node: Option<&str>,
    dest: &str,
    overwrite: bool,
) -> Result<transfer::Job, ToolError> {
    let from = s.node(src_node)?;
    let to = s.node(dest_node)?;
    let src_at = from.guard().locate(src, from.name())?;
    let src_name = src_at
        .name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| ToolError::Invalid(format!("'{src}' is a root directory, not a file")))?;
    let dest_at = to.guard().locate(dest, to.name())?;
    let (dest_dir, dest_name) = split_dest(dest_at, dest, &src_name);
    check_file_name(&dest_name)?;
    to.guard().require_writable(&dest_dir, to.name())?;
    for n in [from.name(), to.name()] {
        ctx.guard(&Target { node: Some(n.to_string()), ..Default::default() })?;
    }
    Ok(transfer::Job { src_node: node_id(&from), src: src_at, dest_node: node_id(&to), dest_dir, dest_name, overwrite })
}

fn copied_output(c: &transfer::Copied) -> ToolOutput {
    let text = format!(
        "Copied {}:{} to {}:{} ({} bytes, SHA-256 {}).",
        c.src_node, c.src, c.dest_node, c.dest, c.bytes, c.sha256
    );
    ToolOutput::new(text, c)
}

async fn copy_file(s: Arc<Files>, a: CopyArgs, ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let job = plan(&s, &ctx, a.node.as_deref(), &a.src, a.node.as_deref(), &a.dest, a.overwrite)?;
    Ok(copied_output(&transfer::run(s, job, &ctx).await?))
}

async fn transfer_file(s: Arc<Files>, a: TransferArgs, ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let job = plan(&s, &ctx, Some(&a.src_node), &a.src, Some(&a.dest_node), &a.dest, a.overwrite)?;
    Ok(copied_output(&transfer::run(s, job, &ctx).await?))
}

/// A SHA-256 given by the caller: 64 hex digits, compared in lower case.
fn parse_sha256(s: &str) -> Result<String, ToolError> {
    let t = s.trim().to_ascii_lowercase();
    if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(t)
    } else {
        Err(ToolError::Invalid("sha256 must be 64 hexadecimal digits".into()))
    }
}

async fn download_file(s: Arc<Files>, a: DownloadArgs, ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let url = s.urls.parse(&a.url)?;
    let sha256 = a.sha256.as_deref().map(parse_sha256).transpose()?;
    let dest_dir = s.local.locate(&a.dest_dir)?;
    s.local.guard().require_writable(&dest_dir, s.local.node())?;
    let filename = match a.filename {
        Some(f) => f,
        // The last path segment as it stands in the URL: percent escapes stay literal.
        None => url
            .path_segments()
            .and_then(|mut segs| segs.next_back())
            .filter(|seg| !seg.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ToolError::Invalid("the URL names no file; pass filename".into()))?,
    };
    check_file_name(&filename)?;
    ctx.guard(&Target { node: Some(s.local.node().to_string()), ..Default::default() })?;
    let job = download::Job { url, dest_dir, filename, sha256, overwrite: a.overwrite };
    let d = download::download(&s, job, &ctx).await?;
    let check = if d.verified { " (checksum verified)" } else { "" };
    let mut text = format!("Downloaded {} to {}: {} bytes, SHA-256 {}{check}.", d.url, d.path, d.bytes, d.sha256);
    let mut out = ToolOutput::new(String::new(), &d);
    if d.redirects > 0 {
        // The final address came from the remote server's Location headers: outside text.
        let via = untrusted::wrap("redirect target", &d.final_url);
        text.push_str(&format!("\nAfter {} redirect(s) it came from:\n{via}", d.redirects));
        out = out.untrusted();
    }
    out.text = text;
    Ok(out)
}
