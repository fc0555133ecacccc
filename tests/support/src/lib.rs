//! Helpers the integration tests of several crates share (a test binary cannot include files
//! of another crate, so they live here as a dev-dependency).
//!
//! - [`pyenv`]: a cached Python virtualenv with pinned packages from PyPI for interop tests
//!   (the official `mcp` client, `proxmoxer`), and child processes run with a deadline.
//! - [`sshd`]: a real OpenSSH server with SFTP on loopback, with its own host key and an
//!   authorized client key, for node tests.
//! - [`xtts`]: a steerable server implementing the `xtts-api-server` API (slow, failing,
//!   hanging, stopped, recovered) with synthetic 24 kHz audio.
//! - [`mcp_tasks`]: an rmcp client that may declare the MCP tasks extension, connected to a server
//!   built in-process, and `tasks/get` polling.
//! - [`tool_results`]: tool results as strings (`render`, `outcome`) for assertions.
//! - [`speech`]: real Piper (HTTP) and Whisper tiny.en (OpenAI-compatible transcriptions) from
//!   a cached virtualenv.

pub mod mcp_tasks;
pub mod pyenv;
pub mod speech;
pub mod sshd;
pub mod tool_results;
pub mod xtts;
