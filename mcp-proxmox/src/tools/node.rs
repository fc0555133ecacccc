//! Node tools: Wake-on-LAN (YELLOW) and node power (BLACK: declared so clients see them and
//! the gate can refuse them with an explanation; Jarvis never runs them).

use std::sync::Arc;

use mcp_common::policy::Target;
use mcp_common::tier::Tier::{Black, Yellow};
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use serde_json::json;

use super::read_args::NodeArg;
use crate::pve::path;
use crate::service::{Pve, pve_err};

async fn node_power(s: Arc<Pve>, a: NodeArg, ctx: CallCtx, command: &str) -> Result<ToolOutput, ToolError> {
    let c = s.cluster(a.cluster.as_deref())?;
    let node = c.node(&a.node).await?;
    ctx.guard(&Target { node: Some(node.clone()), ..Default::default() })?;
    let _: serde_json::Value = c
        .client
        .post(&path(&["nodes", &node, "status"]), &[("command", command.to_string())])
        .await
        .map_err(pve_err)?;
    c.invalidate();
    Ok(ToolOutput::new(format!("{command} of node {node} requested"), json!({"node": node, "command": command})))
}

pub fn register(r: &mut Registry<Pve>) {
    r.add(
        ToolSpec {
            name: "wake_node",
            title: "Wake node",
            description: "Power on an offline node with Wake-on-LAN (sent by another node of the cluster).",
            tier: Yellow,
            idempotent: true,
            open_world: false,
        },
        |s: Arc<Pve>, a: NodeArg, ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let node = c.node(&a.node).await?;
            ctx.guard(&Target { node: Some(node.clone()), ..Default::default() })?;
            let online = c.node_names().await.map_err(pve_err)?.into_iter().any(|(n, on)| n == node && on);
            if online {
                return Ok(ToolOutput::new(format!("Node {node} is already online; nothing to do."), json!({"node": node, "changed": false})));
            }
            let mac: String = c.client.post(&path(&["nodes", &node, "wakeonlan"]), &[]).await.map_err(pve_err)?;
            c.invalidate();
            Ok(ToolOutput::new(
                format!("Wake-on-LAN packet sent to {node} ({mac}); a node usually needs one to three minutes to boot and rejoin."),
                json!({"node": node, "mac": mac, "changed": true}),
            ))
        },
    );
    r.add(
        ToolSpec {
            name: "reboot_node",
            title: "Reboot node",
            description: "Reboot a whole node and every guest on it. BLACK: Jarvis never runs this; do it yourself.",
            tier: Black,
            idempotent: false,
            open_world: false,
        },
        |s, a: NodeArg, ctx| node_power(s, a, ctx, "reboot"),
    );
    r.add(
        ToolSpec {
            name: "shutdown_node",
            title: "Shut down node",
            description: "Shut a whole node down. BLACK: Jarvis never runs this; do it yourself.",
            tier: Black,
            idempotent: false,
            open_world: false,
        },
        |s, a: NodeArg, ctx| node_power(s, a, ctx, "shutdown"),
    );
}
