//! Helpers the integration tests of several crates share (a test binary cannot include files
//! of another crate, so they live here as a dev-dependency).
//!
//! - [`pyenv`]: a cached Python virtualenv with pinned packages from PyPI for interop tests
//!   (the official `mcp` client, `proxmoxer`), and child processes run with a deadline.

pub mod pyenv;
