//! Training on a GPU node over SSH (see `jobs` for the local side).

use std::sync::Arc;

use mcp_common::tool::ToolError;

use crate::state::Voice;
use crate::store::JobRow;

/// Follow a job running on a node until it ends.
pub fn watch_remote(_s: Arc<Voice>, id: String) {
    tracing::warn!(job = %id, "remote jobs are not supported yet");
}

/// Stop a job running on a node.
pub async fn cancel(_s: &Arc<Voice>, job: &JobRow) -> Result<(), ToolError> {
    Err(ToolError::Failed(format!("job {} runs on a node; remote cancel is not supported yet", job.id)))
}

/// Start a job on a node.
pub async fn start(
    _s: &Arc<Voice>,
    node: &str,
    _spec: crate::jobs::Spec,
    _ctx: &mcp_common::tool::CallCtx,
) -> Result<JobRow, ToolError> {
    Err(ToolError::Failed(format!("training on node {node} is not supported yet")))
}
