//! Every mcp-files tool, declared once with its tier (DESIGN §4).
//!
//! GREEN: `list_directory`, `file_info` (local, or on a node over SFTP).
//! YELLOW: `download_file` (http/https into a local root), `copy_file` (within one node),
//! `transfer_file` (node to node over SSH).
//!
//! Every path and URL argument goes through `mcp_common::guard` before anything is touched;
//! a refusal names its rule and is audited by the gate.

mod browse;
mod write;

use std::sync::Arc;

use mcp_common::tool::{Registry, ToolError};

use crate::state::Files;

/// The registry of all tools.
pub fn registry() -> Registry<Files> {
    let mut r = Registry::new();
    browse::register(&mut r);
    write::register(&mut r);
    r
}

/// Run `f` on the blocking pool (local file system calls and libssh2 block).
async fn blocking<T: Send + 'static>(
    files: &Arc<Files>,
    f: impl FnOnce(&Files) -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    let files = files.clone();
    tokio::task::spawn_blocking(move || f(&files))
        .await
        .map_err(|e| ToolError::Failed(format!("the worker stopped unexpectedly: {e}")))?
}
