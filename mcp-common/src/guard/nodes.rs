//! The nodes a file-handling server works on: this machine (`[local]`, its roots opened) and the
//! `[nodes.<name>]` reached over SFTP, each with its own path guard. Checked once at start: node names
//! are plain names, no remote node shadows the local one, addresses parse, roots are absolute.

use crate::config::is_node_name;
use crate::guard::local::LocalRoots;
use crate::guard::path::{PathGuard, Root};
use crate::ssh::Endpoint;

/// A node reached over SFTP.
pub struct RemoteNode {
    pub name: String,
    pub endpoint: Endpoint,
    pub guard: PathGuard,
}

/// Open this machine's roots under the node name `local` (`local.name`).
pub fn open_local(local: &str, roots: Vec<Root>, deny: &[String]) -> Result<LocalRoots, String> {
    if !is_node_name(local) {
        return Err(format!("local.name '{local}' is not a node name (letters, digits, . _ -)"));
    }
    LocalRoots::open(PathGuard::new(roots, deny)?, local)
}

/// Check `[nodes.<name>]`: its name (not `local`'s), its address (`host`, `host:port`, `[v6]:port`;
/// `ssh_port` by default) and its roots.
pub fn remote_node(
    name: &str,
    local: &str,
    address: &str,
    ssh_port: u16,
    roots: Vec<Root>,
    deny: &[String],
) -> Result<RemoteNode, String> {
    if !is_node_name(name) || name == local {
        return Err(format!("nodes.{name}: not a valid node name, or the same as local.name"));
    }
    let endpoint = Endpoint::parse(address, ssh_port).map_err(|e| format!("nodes.{name}: {e}"))?;
    let guard = PathGuard::new(roots, deny).map_err(|e| format!("nodes.{name}: {e}"))?;
    Ok(RemoteNode { name: name.to_string(), endpoint, guard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_roots_are_checked() {
        let root = |p: &str| vec![Root { path: p.into(), writable: false }];
        assert!(open_local("../x", Vec::new(), &[]).is_err_and(|e| e.contains("not a node name")));
        let n = remote_node("pve2", "local", "192.168.1.12:2222", 22, root("/srv"), &[]).expect("valid");
        assert_eq!((n.name.as_str(), n.endpoint.port), ("pve2", 2222));
        for (name, address, roots) in [
            ("local", "10.0.0.1", root("/srv")),
            ("pve 2", "10.0.0.1", root("/srv")),
            ("pve2", "-oProxyCommand=x", root("/srv")),
            ("pve2", "10.0.0.1", root("relative")),
        ] {
            let e = remote_node(name, "local", address, 22, roots, &[]).err().unwrap_or_default();
            assert!(e.starts_with(&format!("nodes.{name}")), "{name} {address}: {e}");
        }
    }
}
