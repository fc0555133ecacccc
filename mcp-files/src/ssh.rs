//! SSH to the nodes: the shared implementation in `mcp_common::ssh` (host keys always verified
//! against `known_hosts`, bounded by `ssh.timeout_secs`).

pub use mcp_common::ssh::{Endpoint, SshError, connect, is_timeout, known_hosts, millis};
