//! Every mcp-proxmox tool, declared once with its tier (DESIGN §4).
//!
//! GREEN reads: cluster_status, list_nodes, node_status, list_guests, guest_status, guest_config,
//! list_storage, storage_content, list_backups, list_snapshots, list_tasks, task_status,
//! node_metrics, guest_metrics, ha_status, node_temperatures (over SSH).
//! YELLOW: start_guest, resume_guest, create_snapshot, backup_guest, wake_node,
//! run_node_command and restart_service (over SSH).
//! RED: stop_guest, shutdown_guest, reboot_guest, suspend_guest, rollback_snapshot,
//! delete_snapshot, migrate_guest. BLACK: reboot_node, shutdown_node.

mod guest;
mod node;
mod read;
mod read_args;
mod remote;
mod temperatures;

use mcp_common::tool::Registry;

use crate::service::Pve;

/// The registry of all tools.
pub fn registry() -> Registry<Pve> {
    let mut r = Registry::new();
    read::register(&mut r);
    guest::register(&mut r);
    node::register(&mut r);
    temperatures::register(&mut r);
    remote::register(&mut r);
    r
}

#[cfg(test)]
mod tests {
    use mcp_common::tier::Tier;

    #[test]
    fn every_tool_has_the_tier_design_gives_it_and_consistent_annotations() {
        let r = super::registry();
        r.check().expect("declarations are consistent");
        let expect = |names: &[&str], tier: Tier| {
            for n in names {
                assert_eq!(r.declared_tier(n), Some(tier), "{n}");
            }
        };
        expect(
            &[
                "cluster_status",
                "list_nodes",
                "node_status",
                "list_guests",
                "guest_status",
                "guest_config",
                "list_storage",
                "storage_content",
                "list_backups",
                "list_snapshots",
                "list_tasks",
                "task_status",
                "node_metrics",
                "guest_metrics",
                "node_temperatures",
                "ha_status",
            ],
            Tier::Green,
        );
        expect(
            &[
                "start_guest",
                "resume_guest",
                "create_snapshot",
                "backup_guest",
                "wake_node",
                "run_node_command",
                "restart_service",
            ],
            Tier::Yellow,
        );
        expect(
            &[
                "stop_guest",
                "shutdown_guest",
                "reboot_guest",
                "suspend_guest",
                "rollback_snapshot",
                "delete_snapshot",
                "migrate_guest",
            ],
            Tier::Red,
        );
        expect(&["reboot_node", "shutdown_node"], Tier::Black);
        assert_eq!(r.len(), 32, "DESIGN §4 lists 32 mcp-proxmox tools");
    }
}
