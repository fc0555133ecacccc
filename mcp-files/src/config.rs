//! mcp-files configuration. Every key can be set in the TOML file or through an environment
//! variable `JARVIS_FILES_<SECTION>_<KEY>` (e.g. `JARVIS_FILES_SERVER_MAX_TIER`,
//! `JARVIS_FILES_DOWNLOAD_ALLOW`); `mcp-files config-keys` lists them all.

use std::collections::BTreeMap;

use mcp_common::config::ServerSection;
use schemars::JsonSchema;
use serde::Deserialize;

pub const ENV_PREFIX: &str = "JARVIS_FILES_";

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    /// The machine this server runs on.
    pub local: LocalConfig,
    /// Cluster nodes reached over SSH/SFTP, by name (`[nodes.pve2]`; a JSON object in the environment).
    pub nodes: BTreeMap<String, NodeConfig>,
    pub ssh: SshConfig,
    pub paths: PathsConfig,
    pub limits: LimitsConfig,
    pub download: DownloadConfig,
}

pub use mcp_common::config::{LocalConfig, RootConfig};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// SSH address of the node: `host`, `host:port` or `[v6]:port`.
    pub address: String,
    /// Roots on that node.
    #[serde(default)]
    pub roots: Vec<RootConfig>,
}

/// `[ssh]`: how this server reaches the nodes (shared with the other servers).
pub use mcp_common::ssh::SshConfig;

/// `[paths]`: the denylist on top of the built-in one (shared with the other servers).
pub use mcp_common::config::PathsConfig;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest file a download, copy or transfer may write, in bytes.
    pub max_file_bytes: u64,
    /// Free space that must remain on the destination file system after a write, in bytes.
    pub min_free_bytes: u64,
    /// Most entries `list_directory` returns (a caller may ask for fewer).
    pub max_list_entries: u32,
    /// Deepest `list_directory` recursion (a caller may ask for less).
    pub max_list_depth: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { max_file_bytes: 64 << 30, min_free_bytes: 1 << 30, max_list_entries: 2000, max_list_depth: 5 }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DownloadConfig {
    /// Ports downloads may use.
    pub allowed_ports: Vec<u16>,
    /// Operator allowlist for a LAN mirror: addresses, networks or host names, each with an optional
    /// port (`192.168.1.20:8080`, `10.10.0.0/16`, `mirror.lan`). Empty (off) by default. Never opens
    /// unspecified, multicast, broadcast or cloud metadata addresses.
    pub allow: Vec<String>,
    /// Seconds to establish a connection.
    pub connect_timeout_secs: u64,
    /// Seconds a download may go without receiving data.
    pub read_timeout_secs: u64,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            allowed_ports: vec![80, 443],
            allow: Vec::new(),
            connect_timeout_secs: 15,
            read_timeout_secs: 60,
            user_agent: concat!("jarvis-mcp-files/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_documents_every_key() {
        let text = include_str!("../mcp-files.example.toml");
        let c: Config = toml::from_str(text).expect("the example is a valid config");
        assert!(c.nodes.contains_key("pve2"), "the example shows a remote node");
        let missing = mcp_common::config::undocumented::<Config>(ENV_PREFIX, text);
        assert!(missing.is_empty(), "not documented in mcp-files.example.toml: {missing:?}");
    }

    #[test]
    fn every_key_has_a_jarvis_files_variable() {
        let vars: Vec<String> = mcp_common::config::env_keys::<Config>(ENV_PREFIX).into_iter().map(|k| k.var).collect();
        for v in [
            "JARVIS_FILES_SERVER_MAX_TIER",
            "JARVIS_FILES_LOCAL_ROOTS",
            "JARVIS_FILES_NODES",
            "JARVIS_FILES_DOWNLOAD_ALLOW",
        ] {
            assert!(vars.iter().any(|x| x == v), "{v} missing from {vars:?}");
        }
    }

    #[test]
    fn roots_and_nodes_can_come_from_json_environment_variables() {
        let env = |k: &str| match k {
            "JARVIS_FILES_LOCAL_ROOTS" => {
                Some(r#"[{"path": "/var/lib/vz/template/iso", "writable": true}]"#.to_string())
            }
            "JARVIS_FILES_NODES" => {
                Some(r#"{"pve2": {"address": "10.0.0.2", "roots": [{"path": "/srv"}]}}"#.to_string())
            }
            "JARVIS_FILES_DOWNLOAD_ALLOW" => Some("192.168.1.20:8080, 10.10.0.0/16".to_string()),
            _ => None,
        };
        let c: Config = mcp_common::config::load(None, ENV_PREFIX, env).expect("loads");
        assert_eq!(c.local.roots, vec![RootConfig { path: "/var/lib/vz/template/iso".into(), writable: true }]);
        assert!(!c.nodes["pve2"].roots[0].writable);
        assert_eq!(c.download.allow, vec!["192.168.1.20:8080", "10.10.0.0/16"]);
    }
}
