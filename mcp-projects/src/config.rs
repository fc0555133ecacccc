//! mcp-projects configuration. Every key can be set in the TOML file or through an environment
//! variable `JARVIS_PROJECTS_<SECTION>_<KEY>` (e.g. `JARVIS_PROJECTS_REGISTRY_FILE`,
//! `JARVIS_PROJECTS_LOCAL_ROOTS`); `mcp-projects config-keys` lists them all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mcp_common::config::ServerSection;
use schemars::JsonSchema;
use serde::Deserialize;

pub const ENV_PREFIX: &str = "JARVIS_PROJECTS_";

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    /// The machine this server runs on.
    pub local: LocalConfig,
    /// Cluster nodes reached over SSH/SFTP, by name (`[nodes.pve2]`; a JSON object in the environment).
    pub nodes: BTreeMap<String, NodeConfig>,
    pub ssh: SshConfig,
    pub registry: RegistryConfig,
    pub paths: PathsConfig,
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Node name that means this machine in the registry and in results.
    pub name: String,
    /// Directories on this machine that projects must lie in (read-only; discovery looks here).
    /// Without roots no local project is served.
    pub roots: Vec<PathBuf>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self { name: "local".into(), roots: Vec::new() }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// SSH address of the node: `host`, `host:port` or `[v6]:port`.
    pub address: String,
    /// Directories on that node that projects must lie in (discovery looks here).
    #[serde(default)]
    pub roots: Vec<PathBuf>,
}

/// `[ssh]`: how this server reaches the nodes (shared with the other servers).
pub use mcp_common::ssh::SshConfig;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Registry file on this machine (`.json`, or TOML otherwise) with `[[projects]]` entries.
    pub file: Option<PathBuf>,
    /// Node (from `[nodes]`) whose registry file is read over SSH.
    pub remote_node: Option<String>,
    /// Path of the registry file on `remote_node`.
    pub remote_path: Option<PathBuf>,
    /// Seconds the registry (remote file and discovery) is cached; a registry host that is down is
    /// served from the stale cache with a warning.
    pub cache_secs: u64,
    /// Find git repositories under each node's roots.
    pub discover: bool,
    /// Directory levels below a root searched for repositories.
    pub discover_depth: u32,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { file: None, remote_node: None, remote_path: None, cache_secs: 300, discover: true, discover_depth: 3 }
    }
}

/// `[paths]`: the denylist on top of the built-in one (shared with the other servers).
pub use mcp_common::config::PathsConfig;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest part of a file that is read, in bytes (larger files are cut and say so).
    pub max_file_bytes: u64,
    /// Most lines `read_project_file` returns (a caller may ask for fewer).
    pub max_read_lines: u32,
    /// Most entries `project_structure` returns (a caller may ask for fewer).
    pub max_structure_entries: u32,
    /// Deepest `project_structure` listing (a caller may ask for less).
    pub max_structure_depth: u32,
    /// Most matches `search_project` returns (a caller may ask for fewer).
    pub max_search_results: u32,
    /// Most files one search looks at, over all projects.
    pub max_search_files: u32,
    /// Bytes of context `analyze_project` gathers at most.
    pub analyze_max_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 1 << 20,
            max_read_lines: 2000,
            max_structure_entries: 1000,
            max_structure_depth: 8,
            max_search_results: 200,
            max_search_files: 20_000,
            analyze_max_bytes: 96 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_documents_every_key() {
        let text = include_str!("../mcp-projects.example.toml");
        let c: Config = toml::from_str(text).expect("the example is a valid config");
        assert!(c.nodes.contains_key("pve2"), "the example shows a remote node");
        let missing = mcp_common::config::undocumented::<Config>(ENV_PREFIX, text);
        assert!(missing.is_empty(), "not documented in mcp-projects.example.toml: {missing:?}");
    }

    #[test]
    fn every_key_has_a_jarvis_projects_variable() {
        let vars: Vec<String> = mcp_common::config::env_keys::<Config>(ENV_PREFIX).into_iter().map(|k| k.var).collect();
        for v in [
            "JARVIS_PROJECTS_SERVER_MAX_TIER",
            "JARVIS_PROJECTS_LOCAL_ROOTS",
            "JARVIS_PROJECTS_NODES",
            "JARVIS_PROJECTS_REGISTRY_FILE",
            "JARVIS_PROJECTS_REGISTRY_CACHE_SECS",
        ] {
            assert!(vars.iter().any(|x| x == v), "{v} missing from {vars:?}");
        }
    }

    #[test]
    fn roots_and_nodes_can_come_from_the_environment() {
        let env = |k: &str| match k {
            "JARVIS_PROJECTS_LOCAL_ROOTS" => Some("/srv/projects, /opt/code".to_string()),
            "JARVIS_PROJECTS_NODES" => Some(r#"{"pve2": {"address": "10.0.0.2", "roots": ["/srv"]}}"#.to_string()),
            "JARVIS_PROJECTS_REGISTRY_CACHE_SECS" => Some("60".to_string()),
            _ => None,
        };
        let c: Config = mcp_common::config::load(None, ENV_PREFIX, env).expect("loads");
        assert_eq!(c.local.roots, vec![PathBuf::from("/srv/projects"), PathBuf::from("/opt/code")]);
        assert_eq!(c.nodes["pve2"].roots, vec![PathBuf::from("/srv")]);
        assert_eq!(c.registry.cache_secs, 60);
    }
}
