//! Arguments of the read-only (GREEN) tools: each tool's input schema is derived from its struct, so the
//! doc comments here are what an MCP client shows for each field.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterArg {
    /// Cluster name when several are configured (default: the first).
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeArg {
    /// Node name, e.g. `pve1`.
    pub node: String,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VmidArg {
    /// VMID of the VM or container (100-999999999).
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListGuestsArgs {
    /// Only guests on this node.
    #[serde(default)]
    pub node: Option<String>,
    /// `qemu` (VMs) or `lxc` (containers).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Only guests in this state (`running`, `stopped`, …).
    #[serde(default)]
    pub status: Option<String>,
    /// Only guests carrying this tag.
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptNodeArgs {
    /// Only this node.
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageContentArgs {
    pub node: String,
    pub storage: String,
    /// Content type: `images`, `rootdir`, `backup`, `iso`, `vztmpl`, `snippets`, `import`.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub vmid: Option<u32>,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListBackupsArgs {
    /// Only backups of this guest.
    #[serde(default)]
    pub vmid: Option<u32>,
    /// Only this storage.
    #[serde(default)]
    pub storage: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTasksArgs {
    /// Only this node (default: the whole cluster).
    #[serde(default)]
    pub node: Option<String>,
    /// Only tasks about this guest.
    #[serde(default)]
    pub vmid: Option<u32>,
    /// Only failed tasks.
    #[serde(default)]
    pub errors_only: bool,
    /// At most this many (default 20, max 200).
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskArg {
    /// The task's UPID (also the job id write tools return when a task outlives their wait).
    pub upid: String,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeMetricsArgs {
    pub node: String,
    /// `hour` (default), `day`, `week`, `month` or `year`.
    #[serde(default)]
    pub timeframe: Option<String>,
    /// Also return every sample (`time` plus the metrics) in the structured result, for charts.
    #[serde(default)]
    pub points: bool,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestMetricsArgs {
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    /// `hour` (default), `day`, `week`, `month` or `year`.
    #[serde(default)]
    pub timeframe: Option<String>,
    /// Also return every sample (`time` plus the metrics) in the structured result, for charts.
    #[serde(default)]
    pub points: bool,
    #[serde(default)]
    pub cluster: Option<String>,
}
