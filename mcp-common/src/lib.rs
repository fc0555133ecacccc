//! What every Jarvis MCP server shares.
//!
//! - [`tier`]: GREEN < YELLOW < RED < BLACK and the MCP annotations each implies.
//! - [`tool`]: declare a tool once (spec + argument type + handler) in a [`tool::Registry`].
//! - [`server`]: the gate (max tier, BLACK, protected resources via `CallCtx::guard`, audit)
//!   and start-up over stdio or streamable HTTP (bearer token, Origin and Host checks).
//! - [`tasks`]: long tool calls offered as MCP tasks (`io.modelcontextprotocol/tasks`) to clients that take them.
//! - [`resources`]: resources with `resources/subscribe` change notifications.
//! - [`guard`]: hostile-input guards: paths (roots, denylist, symlinks), atomic writes, URLs/SSRF.
//! - [`ssh`]: SSH to nodes with host keys always verified against `known_hosts`.
//! - [`policy`], [`audit`], [`untrusted`], [`config`], [`cli`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use mcp_common::tool::{Registry, ToolSpec, ToolOutput, CallCtx, ToolError};
//! use mcp_common::tier::Tier;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Args { vmid: u32 }
//!
//! let mut tools: Registry<()> = Registry::new();
//! tools.add(
//!     ToolSpec { name: "guest_status", title: "Guest status", description: "Status of one guest.",
//!                tier: Tier::Green, idempotent: true, open_world: false },
//!     |_state: Arc<()>, a: Args, _ctx: CallCtx| async move {
//!         Ok::<_, ToolError>(ToolOutput::text(format!("guest {} is running", a.vmid)))
//!     },
//! );
//! ```

pub mod audit;
pub mod cli;
pub mod config;
pub mod guard;
pub mod policy;
pub mod resources;
pub mod server;
pub mod ssh;
pub mod tasks;
pub mod tier;
pub mod time;
pub mod tool;
pub mod untrusted;

pub use tier::Tier;
