//! GREEN tools: `list_directory` and `file_info`. File names and symlink targets come from
//! disk, so results are wrapped as untrusted data and flagged `_meta["jarvis/untrusted"]`.

use std::sync::Arc;

use mcp_common::tier::Tier::Green;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use schemars::JsonSchema;
use serde::Deserialize;

use super::blocking;
use crate::sftp::Remote;
use crate::state::{Files, NodeRef};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Node name; omit it for the machine this server runs on.
    #[serde(default)]
    pub node: Option<String>,
    /// Directory inside one of the node's roots (absolute; a relative path is taken inside the
    /// node's first root). Taken literally: no `~`, `$VAR` or `%xx` decoding; `..` is refused.
    pub path: String,
    /// Levels to list: 1 (default) is the directory's own entries.
    #[serde(default)]
    pub depth: Option<u32>,
    /// Most entries to return (default and upper bound: the server's `limits.max_list_entries`).
    #[serde(default)]
    pub max_entries: Option<u32>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InfoArgs {
    /// Node name; omit it for the machine this server runs on.
    #[serde(default)]
    pub node: Option<String>,
    /// File, directory or symlink inside one of the node's roots (a symlink is described, not followed).
    pub path: String,
}

pub fn register(r: &mut Registry<Files>) {
    r.add(
        ToolSpec {
            name: "list_directory",
            title: "List a directory",
            description: "List a directory on this machine or on a cluster node (over SFTP): name, type, size, mode, \
                          modification time, and symlink targets (shown, never followed out of the root). Only paths \
                          inside the configured roots; secrets and kernel interfaces are never listed.",
            tier: Green,
            idempotent: true,
            open_world: false,
        },
        list_directory,
    );
    r.add(
        ToolSpec {
            name: "file_info",
            title: "Describe a file",
            description: "Type, size, mode and modification time of one file, directory or symlink on this machine or \
                          on a cluster node; for a symlink its target and whether it stays inside the root.",
            tier: Green,
            idempotent: true,
            open_world: false,
        },
        file_info,
    );
}

async fn list_directory(s: Arc<Files>, a: ListArgs, _ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let node = s.node(a.node.as_deref())?;
    let at = node.guard().locate(&a.path, node.name())?;
    let limits = &s.config.limits;
    let depth = a.depth.unwrap_or(1).clamp(1, limits.max_list_depth.max(1));
    let max = a.max_entries.unwrap_or(limits.max_list_entries).clamp(1, limits.max_list_entries.max(1)) as usize;
    let remote = match node {
        NodeRef::Local(_) => None,
        NodeRef::Remote(r) => Some(r.name.clone()),
    };
    let listing = blocking(&s, move |f| match remote {
        None => Ok(crate::local::list(&f.local, &at, depth, max)?),
        Some(name) => {
            let node = f.remote.get(&name).ok_or_else(|| ToolError::Invalid(format!("unknown node '{name}'")))?;
            Ok(Remote::connect(&f.config.ssh, node, &f.sessions)?.list(&at, depth, max)?)
        }
    })
    .await?;
    let text = untrusted::wrap(&format!("listing of {} on {}", listing.path, listing.node), listing.text().trim_end());
    Ok(ToolOutput::new(text, &listing).untrusted())
}

async fn file_info(s: Arc<Files>, a: InfoArgs, _ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let node = s.node(a.node.as_deref())?;
    let node_name = node.name().to_string();
    let at = node.guard().locate(&a.path, node.name())?;
    let remote = match node {
        NodeRef::Local(_) => None,
        NodeRef::Remote(r) => Some(r.name.clone()),
    };
    let info = blocking(&s, move |f| match remote {
        None => Ok(crate::local::info(&f.local, &at)?),
        Some(name) => {
            let node = f.remote.get(&name).ok_or_else(|| ToolError::Invalid(format!("unknown node '{name}'")))?;
            Ok(Remote::connect(&f.config.ssh, node, &f.sessions)?.info(&at)?)
        }
    })
    .await?;
    let text = untrusted::wrap(&format!("file information from {node_name}"), &info.line());
    let mut structured = serde_json::to_value(&info).unwrap_or_default();
    if let Some(o) = structured.as_object_mut() {
        o.insert("node".into(), node_name.into());
    }
    Ok(ToolOutput::new(text, structured).untrusted())
}
