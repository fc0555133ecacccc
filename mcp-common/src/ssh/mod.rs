//! Connecting to a node over SSH (ssh2 / libssh2), shared by the servers that reach nodes (SFTP in
//! mcp-files and mcp-projects; mcp-proxmox uses [`known_hosts`] for its command channel):
//! host keys are always verified against the configured `known_hosts` (a missing file, an
//! unknown host or a different key refuses the connection; nothing is trusted on first use),
//! the client key authenticates, and every step is bounded by `ssh.timeout_secs`. libssh2 is
//! blocking, so callers run this on tokio's blocking pool.

pub mod known_hosts;

use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::policy::Refusal;
use crate::tool::ToolError;
use ssh2::{ErrorCode, Session};

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SshConfig {
    /// SSH user on the nodes.
    pub user: String,
    /// SSH port when a node's address names none.
    pub port: u16,
    /// Private key file.
    pub key_file: Option<PathBuf>,
    /// known_hosts file; host keys are always verified against it (no trust on first use).
    pub known_hosts: Option<PathBuf>,
    /// Seconds allowed to connect, and for any single SFTP operation to answer.
    pub timeout_secs: u64,
}

impl Default for SshConfig {
    fn default() -> Self {
        Self { user: "root".into(), port: 22, key_file: None, known_hosts: None, timeout_secs: 15 }
    }
}

/// libssh2's `LIBSSH2_ERROR_TIMEOUT`.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error("SSH is not configured: {0}")]
    NotConfigured(String),
    #[error("host key verification failed: {0}")]
    HostKey(String),
    #[error("'{0}' is not a valid SSH address (host, host:port or [ipv6]:port)")]
    BadAddress(String),
    #[error("cannot connect to {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("{addr}: no answer within {secs} s while {during}")]
    Timeout { addr: String, secs: u64, during: &'static str },
    #[error("SSH {stage} with {addr} failed: {message}")]
    Protocol { addr: String, stage: &'static str, message: String },
    #[error("{addr} refused the key {key} for user '{user}' ({message})")]
    Auth { addr: String, user: String, key: String, message: String },
    #[error("cannot run this command: {0}")]
    Command(String),
    #[error("the SSH worker stopped unexpectedly: {0}")]
    Worker(String),
}

impl From<SshError> for ToolError {
    fn from(e: SshError) -> Self {
        match e {
            SshError::HostKey(_) => ToolError::Refused(Refusal::new("host_key_verification", e.to_string())),
            SshError::Command(_) | SshError::BadAddress(_) => ToolError::Invalid(e.to_string()),
            other => ToolError::Failed(other.to_string()),
        }
    }
}

/// Where a node's sshd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parse `host`, `host:port`, `[v6]:port` or a bare IPv6 address; `default_port` when none.
    pub fn parse(spec: &str, default_port: u16) -> Result<Self, SshError> {
        let bad = || SshError::BadAddress(spec.to_string());
        let spec = spec.trim();
        let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(bad)?;
            match after {
                "" => (h, default_port),
                p => (h, p.strip_prefix(':').and_then(|p| p.parse().ok()).ok_or_else(bad)?),
            }
        } else if spec.parse::<IpAddr>().is_ok() {
            (spec, default_port)
        } else if let Some((h, p)) = spec.split_once(':') {
            (h, p.parse().map_err(|_| bad())?)
        } else {
            (spec, default_port)
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '%'))
            && !host.starts_with('-');
        if !host_ok || port == 0 {
            return Err(bad());
        }
        Ok(Self { host: host.to_string(), port })
    }

    /// The name OpenSSH writes in known_hosts: `host` on port 22, else `[host]:port`.
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 { self.host.clone() } else { format!("[{}]:{}", self.host, self.port) }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

pub fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

/// Whether an ssh2 error is libssh2's timeout.
pub fn is_timeout(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT)
}

fn tcp(ep: &Endpoint, timeout: Duration) -> Result<TcpStream, SshError> {
    let addr = ep.to_string();
    let addrs: Vec<_> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| SshError::Connect { addr: addr.clone(), message: format!("cannot resolve: {e}") })?
        .collect();
    let mut last = format!("{} resolves to no address", ep.host);
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(SshError::Timeout { addr, secs: timeout.as_secs(), during: "connecting" });
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(SshError::Connect { addr, message: last })
}

/// Connect to `ep`, verify its host key, log in: an authenticated session whose blocking
/// operations time out after `cfg.timeout_secs`.
pub fn connect(cfg: &SshConfig, ep: &Endpoint) -> Result<Session, SshError> {
    let known_hosts_path = cfg.known_hosts.clone().ok_or_else(|| {
        SshError::HostKey(
            "ssh.known_hosts is not set; Jarvis only connects to nodes whose host keys it knows (no trust on first use)"
                .into(),
        )
    })?;
    let key_file = cfg.key_file.clone().ok_or_else(|| SshError::NotConfigured("ssh.key_file is not set".into()))?;
    let key_name = || key_file.display().to_string();
    let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
    let addr = ep.to_string();
    let protocol = |stage: &'static str, during: &'static str, e: ssh2::Error| {
        if is_timeout(&e) {
            SshError::Timeout { addr: addr.clone(), secs: timeout.as_secs(), during }
        } else {
            SshError::Protocol { addr: addr.clone(), stage, message: e.message().to_string() }
        }
    };
    let mut sess = Session::new().map_err(|e| protocol("set-up", "setting up", e))?;
    let name = ep.known_hosts_name();
    // Read known_hosts before touching the network: an unknown host costs no connection.
    let kh = known_hosts::load(&sess, &known_hosts_path)?;
    let algorithms = known_hosts::algorithms_for(&kh, &name);
    if algorithms.is_empty() {
        return Err(SshError::HostKey(format!(
            "{} has no entry for {name}; add the node's host key (e.g. `ssh-keyscan -p {} {} >> {}` after checking it)",
            known_hosts_path.display(),
            ep.port,
            ep.host,
            known_hosts_path.display()
        )));
    }
    sess.set_tcp_stream(tcp(ep, timeout)?);
    sess.set_timeout(millis(timeout));
    sess.method_pref(ssh2::MethodType::HostKey, &algorithms.join(","))
        .map_err(|e| protocol("set-up", "setting up", e))?;
    sess.handshake().map_err(|e| protocol("handshake", "in the SSH handshake", e))?;
    known_hosts::verify(&sess, &kh, &name)?;
    sess.userauth_pubkey_file(&cfg.user, None, &key_file, None).map_err(|e| {
        if is_timeout(&e) {
            SshError::Timeout { addr: addr.clone(), secs: timeout.as_secs(), during: "authenticating" }
        } else {
            SshError::Auth {
                addr: addr.clone(),
                user: cfg.user.clone(),
                key: key_name(),
                message: e.message().to_string(),
            }
        }
    })?;
    if !sess.authenticated() {
        return Err(SshError::Auth {
            addr,
            user: cfg.user.clone(),
            key: key_name(),
            message: "not authenticated".into(),
        });
    }
    Ok(sess)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_bracket_non_default_ports_for_known_hosts() {
        assert_eq!(Endpoint::parse("192.168.1.11", 22).expect("ip").known_hosts_name(), "192.168.1.11");
        assert_eq!(Endpoint::parse("127.0.0.1:2222", 22).expect("ip:port").known_hosts_name(), "[127.0.0.1]:2222");
        assert_eq!(Endpoint::parse("[::1]:2200", 22).expect("v6").port, 2200);
        for bad in ["", "-oProxyCommand=x", "a b", "host:0", "[::1", "h;x"] {
            assert!(Endpoint::parse(bad, 22).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_key_problems_become_refusals() {
        let e: ToolError = SshError::HostKey("mismatch".into()).into();
        assert!(matches!(e, ToolError::Refused(ref r) if r.rule == "host_key_verification"));
    }
}
