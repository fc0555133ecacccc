//! The server's state: the local roots (opened once), each remote node's path rules and SSH
//! address, the URL guard with its resolver, and the write limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use mcp_common::guard::local::LocalRoots;
use mcp_common::guard::path::PathGuard;
use mcp_common::guard::url::{Resolver, SystemResolver, UrlGuard};
use mcp_common::guard::write::WriteLimits;
use mcp_common::tool::ToolError;

use crate::config::Config;
use mcp_common::config::roots;
use mcp_common::guard::nodes;

/// A node reached over SFTP (shared with the other file-handling servers).
pub use mcp_common::guard::nodes::RemoteNode;

/// Which node a call is about.
pub enum NodeRef<'a> {
    Local(&'a LocalRoots),
    Remote(&'a RemoteNode),
}

impl NodeRef<'_> {
    pub fn name(&self) -> &str {
        match self {
            NodeRef::Local(l) => l.node(),
            NodeRef::Remote(r) => &r.name,
        }
    }

    pub fn guard(&self) -> &PathGuard {
        match self {
            NodeRef::Local(l) => l.guard(),
            NodeRef::Remote(r) => &r.guard,
        }
    }
}

pub struct Files {
    pub config: Config,
    pub local: LocalRoots,
    pub remote: BTreeMap<String, RemoteNode>,
    pub urls: UrlGuard,
    pub resolver: Arc<dyn Resolver>,
    pub limits: WriteLimits,
    /// Idle SSH sessions per node.
    pub sessions: crate::sftp::SessionPool,
}

impl Files {
    /// Check the configuration and open the local roots.
    pub fn new(config: Config) -> Result<Self, String> {
        let local_name = config.local.name.clone();
        let deny = &config.paths.deny;
        let local = nodes::open_local(&local_name, roots(&config.local.roots), deny)?;
        let mut remote = BTreeMap::new();
        for (name, n) in &config.nodes {
            let node = nodes::remote_node(name, &local_name, &n.address, config.ssh.port, roots(&n.roots), deny)?;
            remote.insert(name.clone(), node);
        }
        let urls = UrlGuard::new(config.download.allowed_ports.clone(), &config.download.allow)?;
        if !urls.allow.is_empty() {
            tracing::warn!(allow = ?config.download.allow, "download allowlist is set: these networks/hosts bypass the SSRF address rules");
        }
        let limits =
            WriteLimits { max_bytes: config.limits.max_file_bytes, min_free_bytes: config.limits.min_free_bytes };
        Ok(Self {
            config,
            local,
            remote,
            urls,
            resolver: Arc::new(SystemResolver),
            limits,
            sessions: Default::default(),
        })
    }

    /// Use another resolver for downloads (tests: names that resolve to loopback).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The node a call names; `None` is the local machine.
    pub fn node(&self, name: Option<&str>) -> Result<NodeRef<'_>, ToolError> {
        let Some(name) = name.filter(|n| *n != self.local.node()) else {
            return Ok(NodeRef::Local(&self.local));
        };
        self.remote.get(name).map(NodeRef::Remote).ok_or_else(|| {
            let mut known = vec![self.local.node().to_string()];
            known.extend(self.remote.keys().cloned());
            ToolError::Invalid(format!(
                "unknown node '{}'; configured nodes: {}",
                mcp_common::guard::path::shown(name),
                known.join(", ")
            ))
        })
    }
}
