//! Hostile-input guards every server reuses: a model (or text planted in something it read)
//! will eventually ask for `/etc/pve/priv/authkey.key`, `../../etc/passwd` or
//! `http://169.254.169.254/`. These modules decide, before and after touching anything, whether
//! a request stays inside what the operator configured.
//!
//! - [`path`]: lexical path rules: literal input (no expansion, no decoding), NUL and control
//!   characters refused, `..` refused, component-wise roots, the denylist.
//! - [`local`]: the local file system seen through capability handles (`cap-std`, which uses
//!   `openat2(RESOLVE_BENEATH)` where the kernel has it): symlinks are resolved by the kernel
//!   beneath the root, the real path of what was opened is re-checked, and device files, FIFOs
//!   and sockets are never opened.
//! - [`write`]: new files are written to a temporary file in the destination directory, size
//!   capped, disk space checked, fsynced and renamed into place; a failed write leaves nothing.
//! - [`url`] and [`ip`]: URL parsing (WHATWG), scheme/port/credential rules, SSRF address
//!   classes, an injectable resolver, pinned addresses, redirect checks, the operator allowlist.
//!
//! Every refusal is a [`Refusal`] naming its rule, so the gate audits it and the caller learns
//! which rule refused and why.

pub mod ip;
pub mod local;
pub mod nodes;
pub mod path;
pub mod secrets;
pub mod url;
pub mod write;

use crate::policy::Refusal;
use crate::tool::ToolError;

/// A guard's answer when it does not let a request through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GuardError {
    /// A rule refused the request.
    #[error("{0}")]
    Refused(Refusal),
    /// The request was allowed but the operation failed (not found, I/O error, DNS failure).
    #[error("{0}")]
    Failed(String),
}

impl From<Refusal> for GuardError {
    fn from(r: Refusal) -> Self {
        GuardError::Refused(r)
    }
}

impl From<GuardError> for ToolError {
    fn from(e: GuardError) -> Self {
        match e {
            GuardError::Refused(r) => ToolError::Refused(r),
            GuardError::Failed(m) => ToolError::Failed(m),
        }
    }
}
