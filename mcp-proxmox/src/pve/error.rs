//! Proxmox API errors, classified but with Proxmox's own text preserved.

use std::collections::BTreeMap;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PveError {
    #[error("configuration error: {0}")]
    Config(String),
    /// Could not talk to the API at all (connection, TLS, timeout).
    #[error("cannot reach the Proxmox API: {0}")]
    Transport(String),
    /// pveproxy could not reach the node that owns the resource (HTTP 595).
    #[error("node offline or unreachable ({reason})")]
    Offline { reason: String },
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("permission denied by Proxmox: {0}")]
    Permission(String),
    #[error("{message}{}", fmt_errors(errors))]
    BadRequest { message: String, errors: Option<BTreeMap<String, String>> },
    /// Any other error status with Proxmox's message (usually 500).
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("unexpected answer from the Proxmox API: {0}")]
    Protocol(String),
}

fn fmt_errors(e: &Option<BTreeMap<String, String>>) -> String {
    match e {
        Some(m) if !m.is_empty() => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!(" ({})", parts.join("; "))
        }
        _ => String::new(),
    }
}

impl PveError {
    pub fn from_status(status: u16, message: String, errors: Option<BTreeMap<String, String>>) -> Self {
        match status {
            595 => PveError::Offline { reason: message },
            401 => PveError::Auth(if message.is_empty() { "401".into() } else { message }),
            403 => PveError::Permission(message),
            400 => PveError::BadRequest { message, errors },
            s => PveError::Api { status: s, message },
        }
    }

    pub fn transport(e: reqwest::Error) -> Self {
        let mut msg = e.to_string();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        if msg.contains("invalid peer certificate") || msg.contains("pinned SHA-256 fingerprint") {
            msg.push_str(
                " (TLS: the cluster's certificate is not trusted; set `fingerprint` to its SHA-256 as `pvenode cert info` \
                 shows it, or `ca_file` to the CA that signed it, /etc/pve/pve-root-ca.pem)",
            );
        }
        PveError::Transport(msg)
    }

    /// The HTTP status Proxmox answered with, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            PveError::Offline { .. } => Some(595),
            PveError::Auth(_) => Some(401),
            PveError::Permission(_) => Some(403),
            PveError::BadRequest { .. } => Some(400),
            PveError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Short machine-readable class for structured results.
    pub fn kind(&self) -> &'static str {
        match self {
            PveError::Config(_) => "config",
            PveError::Transport(_) => "unreachable",
            PveError::Offline { .. } => "node_offline",
            PveError::Auth(_) => "auth",
            PveError::Permission(_) => "permission",
            PveError::BadRequest { .. } => "bad_request",
            PveError::Api { .. } => "api",
            PveError::Protocol(_) => "protocol",
        }
    }
}
