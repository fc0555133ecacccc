//! mcp-proxmox configuration. Every key can be set in the TOML file or through an environment
//! variable `JARVIS_PVE_<SECTION>_<KEY>` (e.g. `JARVIS_PVE_CLUSTER_TOKEN_SECRET`,
//! `JARVIS_PVE_SERVER_MAX_TIER`); `mcp-proxmox config-keys` lists them all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mcp_common::config::ServerSection;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::pve::error::PveError;

pub const ENV_PREFIX: &str = "JARVIS_PVE_";

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    /// The default cluster.
    pub cluster: ClusterConfig,
    /// More clusters, chosen with a tool's `cluster` argument (JSON array in the environment).
    pub clusters: Vec<ClusterConfig>,
    pub cache: CacheConfig,
    pub tasks: TaskConfig,
    pub ssh: SshConfig,
    pub commands: CommandConfig,
    pub snapshot: SnapshotConfig,
}

/// The `pve://cluster/snapshot` resource: one poller shared by every subscriber, so the
/// number of Proxmox calls does not grow with the number of dashboards.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Seconds between refreshes of nodes, guests and storage while someone subscribes.
    pub interval_secs: u64,
    /// Quorum and recent tasks are refreshed every this many intervals.
    pub slow_every: u32,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self { interval_secs: 10, slow_every: 3 }
    }
}

#[derive(Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Name used in tool arguments and results.
    pub name: String,
    /// API address, e.g. `https://pve1.lan:8006`.
    pub url: String,
    /// API token id, `user@realm!tokenid` (preferred over a password).
    pub token_id: Option<String>,
    /// API token secret (set it from the environment, not in the file).
    pub token_secret: Option<String>,
    /// File holding the API token secret.
    pub token_secret_file: Option<PathBuf>,
    /// User for ticket login, `user@realm`.
    pub username: Option<String>,
    /// Password for ticket login (set it from the environment, not in the file).
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// PEM file with the CA that signed the cluster's certificate (`/etc/pve/pve-root-ca.pem`).
    pub ca_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the API certificate to pin (`AA:BB:…`, as in `GET /nodes`).
    pub fingerprint: Option<String>,
    /// Skip TLS verification. Dangerous; logs a warning at every start.
    pub insecure: bool,
    /// Allow an `http://` URL (tests against the simulator only).
    pub allow_plain_http: bool,
    /// Timeout of one API call in seconds.
    pub timeout_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            name: "default".into(),
            url: "https://127.0.0.1:8006".into(),
            token_id: None,
            token_secret: None,
            token_secret_file: None,
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            fingerprint: None,
            insecure: false,
            allow_plain_http: false,
            timeout_secs: 20,
        }
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "[redacted]");
        f.debug_struct("ClusterConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("token_id", &self.token_id)
            .field("token_secret", &redact(&self.token_secret))
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("fingerprint", &self.fingerprint)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

fn secret(inline: &Option<String>, file: &Option<PathBuf>, what: &str) -> Result<Option<String>, PveError> {
    if let Some(s) = inline.as_ref().filter(|s| !s.is_empty()) {
        return Ok(Some(s.clone()));
    }
    match file {
        Some(p) => std::fs::read_to_string(p)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|e| PveError::Config(format!("cannot read {what} file {}: {e}", p.display()))),
        None => Ok(None),
    }
}

impl ClusterConfig {
    pub fn token_secret(&self) -> Result<Option<String>, PveError> {
        secret(&self.token_secret, &self.token_secret_file, "token secret")
    }

    pub fn password(&self) -> Result<Option<String>, PveError> {
        secret(&self.password, &self.password_file, "password")
    }
}

/// How long cached reads stay fresh, in seconds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// `/cluster/resources` and node lists.
    pub resources_ttl_secs: u64,
    /// Storage lists and contents.
    pub storage_ttl_secs: u64,
    /// Task lists.
    pub tasks_ttl_secs: u64,
    /// Everything else (configs, snapshots, status, metrics).
    pub default_ttl_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { resources_ttl_secs: 5, storage_ttl_secs: 15, tasks_ttl_secs: 10, default_ttl_secs: 5 }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TaskConfig {
    /// How long a write tool follows its Proxmox task before returning a job id instead.
    pub wait_secs: u64,
    /// Poll interval of a running task, in milliseconds.
    pub poll_ms: u64,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self { wait_secs: 120, poll_ms: 1000 }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SshConfig {
    /// SSH user on the nodes.
    pub user: String,
    /// SSH port on the nodes.
    pub port: u16,
    /// Private key file.
    pub key_file: Option<PathBuf>,
    /// known_hosts file; host keys are always verified against it.
    pub known_hosts: Option<PathBuf>,
    /// Per-node timeout in seconds.
    pub timeout_secs: u64,
    /// Address of each node (`pve1 = "192.168.1.11"`, or `host:port`); defaults to the IP Proxmox reports.
    pub hosts: BTreeMap<String, String>,
}

impl Default for SshConfig {
    fn default() -> Self {
        Self {
            user: "root".into(),
            port: 22,
            key_file: None,
            known_hosts: None,
            timeout_secs: 8,
            hosts: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CommandConfig {
    /// Commands `run_node_command` may run, each an argv prefix (`["df", "-h"]`); arguments
    /// beyond the prefix are refused unless the entry ends with `"*"`.
    pub allow: Vec<Vec<String>>,
    /// systemd units `restart_service` refuses.
    pub protected_services: Vec<String>,
}

impl Default for CommandConfig {
    fn default() -> Self {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Self {
            allow: vec![
                argv(&["uptime"]),
                argv(&["df", "-h"]),
                argv(&["free", "-m"]),
                argv(&["pveversion", "-v"]),
                argv(&["zpool", "status"]),
                argv(&["zpool", "list"]),
                argv(&["qm", "list"]),
                argv(&["pct", "list"]),
                argv(&["pvecm", "status"]),
                argv(&["ha-manager", "status"]),
                argv(&["systemctl", "status", "*"]),
                argv(&["journalctl", "-u", "*"]),
            ],
            protected_services: [
                "pve-cluster",
                "corosync",
                "pvedaemon",
                "pveproxy",
                "pve-ha-crm",
                "pve-ha-lrm",
                "sshd",
                "ssh",
                "networking",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}

impl Config {
    /// All clusters, the default first.
    pub fn all_clusters(&self) -> Vec<ClusterConfig> {
        let mut v = vec![self.cluster.clone()];
        v.extend(self.clusters.iter().cloned());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_documents_every_key() {
        let text = include_str!("../mcp-proxmox.example.toml");
        let _: Config = toml::from_str(text).expect("the example is a valid config");
        let missing = mcp_common::config::undocumented::<Config>(ENV_PREFIX, text);
        assert!(missing.is_empty(), "not documented in mcp-proxmox.example.toml: {missing:?}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = ClusterConfig {
            token_secret: Some("s3cr3t".into()),
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("s3cr3t") && !d.contains("hunter2"), "{d}");
    }
}
