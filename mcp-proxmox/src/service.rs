//! The server's state: one client and one set of caches per cluster.
//!
//! Reads go through moka caches with per-class TTLs; concurrent identical reads are coalesced
//! into one upstream call (`try_get_with`), and every write invalidates the cached reads it can
//! change. Guests are always resolved from `/cluster/resources` (never from a caller's node).

use std::sync::Arc;
use std::time::Duration;

use mcp_common::policy::Target;
use mcp_common::tool::ToolError;
use moka::future::Cache;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{CacheConfig, ClusterConfig, Config};
use crate::pve::types::Resource;
use crate::pve::{PveClient, PveError};

/// How long a cached read stays fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Resources,
    Storage,
    Tasks,
    Default,
}

pub struct Cluster {
    pub name: String,
    pub client: PveClient,
    resources: Cache<String, Arc<Value>>,
    storage: Cache<String, Arc<Value>>,
    tasks: Cache<String, Arc<Value>>,
    other: Cache<String, Arc<Value>>,
}

fn cache(secs: u64) -> Cache<String, Arc<Value>> {
    Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(secs.max(1))).build()
}

/// A guest as resolved from `/cluster/resources`.
#[derive(Debug, Clone)]
pub struct Guest {
    pub vmid: u32,
    /// `qemu` or `lxc`.
    pub kind: String,
    pub node: String,
    pub res: Resource,
}

impl Guest {
    /// "VM 100" or "CT 200".
    pub fn label(&self) -> String {
        format!("{} {}", if self.kind == "lxc" { "CT" } else { "VM" }, self.vmid)
    }

    pub fn name(&self) -> &str {
        self.res.name.as_deref().unwrap_or("")
    }

    pub fn status(&self) -> &str {
        self.res.status.as_deref().unwrap_or("unknown")
    }

    pub fn target(&self) -> Target {
        Target {
            vmid: Some(self.vmid),
            tags: self.res.tag_list(),
            pool: self.res.pool.clone(),
            node: Some(self.node.clone()),
            service: None,
        }
    }

    /// API path of the guest (`/nodes/<node>/<kind>/<vmid>` + `rest`).
    pub fn path(&self, rest: &[&str]) -> String {
        let vmid = self.vmid.to_string();
        let mut segs = vec!["nodes", self.node.as_str(), self.kind.as_str(), vmid.as_str()];
        segs.extend_from_slice(rest);
        crate::pve::path(&segs)
    }
}

impl Cluster {
    pub fn new(cfg: &ClusterConfig, c: &CacheConfig) -> Result<Self, PveError> {
        Ok(Self {
            name: cfg.name.clone(),
            client: PveClient::new(cfg)?,
            resources: cache(c.resources_ttl_secs),
            storage: cache(c.storage_ttl_secs),
            tasks: cache(c.tasks_ttl_secs),
            other: cache(c.default_ttl_secs),
        })
    }

    fn cache_for(&self, ttl: Ttl) -> &Cache<String, Arc<Value>> {
        match ttl {
            Ttl::Resources => &self.resources,
            Ttl::Storage => &self.storage,
            Ttl::Tasks => &self.tasks,
            Ttl::Default => &self.other,
        }
    }

    /// A cached GET; concurrent identical calls share one upstream request.
    pub async fn get_cached(&self, ttl: Ttl, path: &str, query: &[(&str, String)]) -> Result<Arc<Value>, PveError> {
        let key = format!("{path}?{}", query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
        self.cache_for(ttl)
            .try_get_with(key, async { self.client.get::<Value>(path, query).await.map(Arc::new) })
            .await
            .map_err(|e: Arc<PveError>| (*e).clone())
    }

    /// A cached GET decoded into `T`.
    pub async fn get_as<T: DeserializeOwned>(
        &self,
        ttl: Ttl,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, PveError> {
        let v = self.get_cached(ttl, path, query).await?;
        serde_json::from_value((*v).clone()).map_err(|e| PveError::Protocol(format!("unexpected shape of {path}: {e}")))
    }

    pub async fn resources(&self) -> Result<Vec<Resource>, PveError> {
        self.get_as(Ttl::Resources, "/cluster/resources", &[]).await
    }

    /// Resolve a guest by VMID from `/cluster/resources` (type and current node).
    pub async fn guest(&self, vmid: u32) -> Result<Guest, ToolError> {
        check_vmid(vmid)?;
        let all = self.resources().await.map_err(pve_err)?;
        let res = all.into_iter().find(|r| r.is_guest() && r.vmid == Some(vmid)).ok_or_else(|| {
            ToolError::Invalid(format!("there is no VM or container with VMID {vmid} in cluster '{}'", self.name))
        })?;
        let node = res
            .node
            .clone()
            .ok_or_else(|| ToolError::Failed(format!("guest {vmid} has no node in /cluster/resources")))?;
        Ok(Guest { vmid, kind: res.kind.clone(), node, res })
    }

    /// Forget cached reads after a write.
    pub fn invalidate(&self) {
        self.resources.invalidate_all();
        self.tasks.invalidate_all();
        self.other.invalidate_all();
        self.storage.invalidate_all();
    }

    pub async fn node_names(&self) -> Result<Vec<(String, bool)>, PveError> {
        Ok(self
            .resources()
            .await?
            .into_iter()
            .filter(|r| r.kind == "node")
            .filter_map(|r| r.node.map(|n| (n, r.status.as_deref() == Some("online"))))
            .collect())
    }

    /// Check a node name against the cluster (names from a model are hostile input).
    pub async fn node(&self, node: &str) -> Result<String, ToolError> {
        check_node_name(node)?;
        let nodes = self.node_names().await.map_err(pve_err)?;
        if nodes.iter().any(|(n, _)| n == node) {
            return Ok(node.to_string());
        }
        let names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
        Err(ToolError::Invalid(format!(
            "no node named '{node}' in cluster '{}' (nodes: {})",
            self.name,
            names.join(", ")
        )))
    }
}

/// The server state shared by all tools.
pub struct Pve {
    pub config: Config,
    clusters: Vec<Arc<Cluster>>,
}

impl Pve {
    pub fn new(config: Config) -> Result<Self, PveError> {
        let clusters = config
            .all_clusters()
            .iter()
            .map(|c| Cluster::new(c, &config.cache).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { config, clusters })
    }

    /// The named cluster, or the default one.
    pub fn cluster(&self, name: Option<&str>) -> Result<Arc<Cluster>, ToolError> {
        match name {
            None => self.clusters.first().cloned().ok_or_else(|| ToolError::Failed("no cluster configured".into())),
            Some(n) => self.clusters.iter().find(|c| c.name == n).cloned().ok_or_else(|| {
                let names: Vec<&str> = self.clusters.iter().map(|c| c.name.as_str()).collect();
                ToolError::Invalid(format!("unknown cluster '{n}' (configured: {})", names.join(", ")))
            }),
        }
    }

    pub fn clusters(&self) -> &[Arc<Cluster>] {
        &self.clusters
    }

    /// Upstream API calls over all clusters.
    pub fn upstream_calls(&self) -> u64 {
        self.clusters.iter().map(|c| c.client.upstream_calls()).sum()
    }
}

/// Turn a Proxmox error into a tool error that keeps Proxmox's words.
pub fn pve_err(e: PveError) -> ToolError {
    match e {
        PveError::BadRequest { .. } => ToolError::Invalid(format!("Proxmox refused the parameters: {e}")),
        PveError::Offline { reason } => ToolError::Failed(format!(
            "the node is offline or unreachable from the cluster ({reason}); try again when it is back"
        )),
        other => ToolError::Failed(other.to_string()),
    }
}

pub fn check_vmid(vmid: u32) -> Result<(), ToolError> {
    if (100..=999_999_999).contains(&vmid) {
        Ok(())
    } else {
        Err(ToolError::Invalid(format!("VMID {vmid} is out of range (100 to 999999999)")))
    }
}

/// Proxmox node names: letters, digits and inner hyphens, at most 63 characters.
pub fn check_node_name(n: &str) -> Result<(), ToolError> {
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !n.starts_with('-')
        && !n.ends_with('-');
    if ok { Ok(()) } else { Err(ToolError::Invalid(format!("'{n}' is not a valid node name"))) }
}

/// Snapshot names (`pve-configid`): a letter, then letters, digits, `_` or `-`; at most 40.
pub fn check_snapshot_name(n: &str) -> Result<(), ToolError> {
    let mut chars = n.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && n.len() >= 2
        && n.len() <= 40;
    if !ok {
        return Err(ToolError::Invalid(format!(
            "'{n}' is not a valid snapshot name (2-40 characters: a letter, then letters, digits, '_' or '-')"
        )));
    }
    if n == "current" || n == "pending" {
        return Err(ToolError::Invalid(format!("'{n}' is a reserved snapshot name")));
    }
    Ok(())
}

/// Storage ids: a letter, then letters, digits, `-`, `_`, `.`; ending in a letter or digit.
pub fn check_storage_id(s: &str) -> Result<(), ToolError> {
    let ok = s.len() >= 2
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(ToolError::Invalid(format!("'{s}' is not a valid storage id"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_rejected() {
        assert!(check_node_name("pve1").is_ok());
        for bad in ["", "../etc", "pve1;reboot", "-x", "a b", &"a".repeat(64)] {
            assert!(check_node_name(bad).is_err(), "{bad}");
        }
        assert!(check_snapshot_name("pre-upgrade_2").is_ok());
        for bad in ["1abc", "current", "a", "x/y", "a b", &"a".repeat(41)] {
            assert!(check_snapshot_name(bad).is_err(), "{bad}");
        }
        assert!(check_vmid(99).is_err() && check_vmid(100).is_ok());
        assert!(check_storage_id("local-lvm").is_ok() && check_storage_id("../x").is_err());
    }
}
