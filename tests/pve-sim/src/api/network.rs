//! `/nodes/{node}/network`: the node's interfaces (loopback, one NIC, the `vmbr0` bridge that
//! carries the node address). Only the list and the create checks are simulated.

use serde_json::{Value, json};

use super::Ctx;
use crate::wire::{ApiError, ApiResult, Reply};

/// Interfaces of a node, as `GET /nodes/{node}/network` lists them.
fn interfaces(ctx: &Ctx<'_>, node: &str) -> Vec<Value> {
    let ip = ctx.sim.cluster.node(node).map(|n| n.ip.clone()).unwrap_or_default();
    let gateway = ip.rsplit_once('.').map(|(net, _)| format!("{net}.1")).unwrap_or_default();
    vec![
        json!({"iface": "lo", "type": "loopback", "method": "loopback", "method6": "manual", "autostart": 1,
               "active": 1, "families": ["inet"], "priority": 1}),
        json!({"iface": "eno1", "type": "eth", "method": "manual", "method6": "manual", "exists": 1, "active": 1,
               "families": ["inet"], "priority": 2}),
        json!({"iface": "vmbr0", "type": "bridge", "method": "static", "method6": "manual", "autostart": 1,
               "active": 1, "families": ["inet"], "priority": 3, "address": ip, "netmask": "24",
               "cidr": format!("{ip}/24"), "gateway": gateway, "bridge_ports": "eno1", "bridge_stp": "off",
               "bridge_fd": "0"}),
    ]
}

pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let node = ctx.node();
    let want = ctx.opt_str("type");
    let rows = interfaces(ctx, &node)
        .into_iter()
        .filter(|r| match want.as_deref() {
            None => true,
            Some("any_bridge" | "any_local_bridge") => r["type"] == "bridge",
            Some(t) => r["type"] == t,
        })
        .collect();
    Ok(Reply::data(Value::Array(rows)))
}

/// `POST /nodes/{node}/network`: an existing name is a parameter error (`interface already
/// exists`); writing a new interface is not simulated (501).
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let node = ctx.node();
    let iface = ctx.str("iface");
    if interfaces(ctx, &node).iter().any(|r| r["iface"] == iface.as_str()) {
        return Err(ApiError::param("iface", "interface already exists"));
    }
    Err(ApiError::not_implemented(&ctx.method, &ctx.path))
}
