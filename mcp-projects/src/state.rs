//! The server's state: the nodes and their roots (where projects may live), SSH settings, and
//! the project catalog. Opening a project checks, every time, that its real path still lies in
//! one of its node's roots and off the denylist; the tree it returns cannot leave the project.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_common::guard::GuardError;
use mcp_common::guard::local::LocalRoots;
use mcp_common::guard::path::Root;
use mcp_common::guard::secrets;
use mcp_common::tool::ToolError;
use ssh2::Sftp;

use crate::config::Config;
use crate::registry::{Catalog, Project};
use crate::ssh;
use crate::tree::{LocalTree, RemoteTree, Tree};
use mcp_common::guard::nodes as node_table;

/// A node reached over SFTP (shared with the other file-handling servers).
pub use mcp_common::guard::nodes::RemoteNode;

/// An SFTP session on a node with its roots resolved.
pub struct Session {
    pub sftp: Sftp,
    pub real_roots: Vec<PathBuf>,
    /// The SSH session the SFTP channel runs on, owned for the channel's lifetime.
    _sess: ssh2::Session,
}

pub struct State {
    pub config: Config,
    pub local_name: String,
    pub local: LocalRoots,
    pub nodes: BTreeMap<String, RemoteNode>,
    pub catalog: Catalog,
}

fn roots(paths: &[PathBuf]) -> Vec<Root> {
    paths.iter().map(|p| Root { path: p.clone(), writable: false }).collect()
}

impl State {
    /// Check the configuration and open the local roots.
    pub fn new(config: Config) -> Result<Self, String> {
        let local_name = config.local.name.clone();
        let deny = &config.paths.deny;
        let local = node_table::open_local(&local_name, roots(&config.local.roots), deny)?;
        let mut nodes = BTreeMap::new();
        for (name, n) in &config.nodes {
            let node = node_table::remote_node(name, &local_name, &n.address, config.ssh.port, roots(&n.roots), deny)?;
            nodes.insert(name.clone(), node);
        }
        if let Some(n) = &config.registry.remote_node
            && !nodes.contains_key(n)
        {
            return Err(format!("registry.remote_node '{n}' is not one of [nodes]"));
        }
        if config.registry.remote_node.is_some() != config.registry.remote_path.is_some() {
            return Err("registry.remote_node and registry.remote_path go together".into());
        }
        Ok(Self { config, local_name, local, nodes, catalog: Catalog::default() })
    }

    /// Whether `node` is known (this machine or a configured node).
    pub fn knows_node(&self, node: &str) -> bool {
        node == self.local_name || self.nodes.contains_key(node)
    }

    /// Open an SFTP session on `node` (host key verified) and resolve its roots.
    pub fn connect(&self, node: &RemoteNode) -> Result<Session, ToolError> {
        let sess = ssh::connect(&self.config.ssh, &node.endpoint)?;
        let sftp =
            sess.sftp().map_err(|e| ToolError::Failed(format!("{}: cannot start SFTP: {}", node.name, e.message())))?;
        sess.set_timeout(ssh::millis(Duration::from_secs(self.config.ssh.timeout_secs.max(1))));
        let real_roots = node.guard.roots().iter().filter_map(|r| sftp.realpath(&r.path).ok()).collect();
        Ok(Session { sftp, real_roots, _sess: sess })
    }

    /// The real path of a local project directory, checked against the local roots.
    pub fn local_project_real(&self, path: &Path) -> Result<PathBuf, GuardError> {
        let at = self.local.locate(&path.to_string_lossy())?;
        let real = self.local.resolve(&at)?;
        secrets::check(&real, &path.display().to_string())?;
        Ok(real)
    }

    /// The real path of a project directory on a node, checked against the node's roots.
    pub fn remote_project_real(&self, node: &RemoteNode, s: &Session, path: &Path) -> Result<PathBuf, GuardError> {
        node.guard.locate(&path.to_string_lossy(), &node.name)?;
        let real = s
            .sftp
            .realpath(path)
            .map_err(|e| GuardError::Failed(format!("{}:{}: {}", node.name, path.display(), e.message())))?;
        let root = s.real_roots.iter().find(|r| real.starts_with(r)).ok_or_else(|| {
            GuardError::Refused(mcp_common::policy::Refusal::new(
                "path_escape",
                format!("project '{}' on {} leads outside the node's roots", path.display(), node.name),
            ))
        })?;
        node.guard.check_real(&real, root, path)?;
        secrets::check(&real, &path.display().to_string())?;
        Ok(real)
    }

    /// Run `f` on a project's tree (blocking: call it from the blocking pool).
    pub fn with_tree<T>(&self, p: &Project, f: impl FnOnce(&dyn Tree) -> Result<T, ToolError>) -> Result<T, ToolError> {
        let path = Path::new(&p.path);
        if p.node == self.local_name {
            let real = self.local_project_real(path)?;
            let tree = LocalTree::open(&real, &self.local_name, &self.config.paths.deny)
                .map_err(|e| ToolError::Failed(format!("project {}: {e}", p.name)))?;
            return f(&tree);
        }
        let node = self
            .nodes
            .get(&p.node)
            .ok_or_else(|| ToolError::Failed(format!("project {} names the unknown node '{}'", p.name, p.node)))?;
        let s = self.connect(node)?;
        let real_root = self.remote_project_real(node, &s, path)?;
        let tree = RemoteTree { sftp: &s.sftp, node: &node.name, real_root, guard: &node.guard };
        f(&tree)
    }
}
