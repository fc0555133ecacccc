//! Guest write tools (YELLOW and RED): power actions, snapshots, backup, migration.
//!
//! Each resolves the guest from `/cluster/resources` (never trusting a node from the caller),
//! checks the policy's protected resources, pre-checks the state so that known outcomes ("already
//! running") come back as calm answers instead of failed tasks, then follows the Proxmox task.

use std::sync::Arc;
use std::time::Duration;

use mcp_common::tier::Tier::{self, Red, Yellow};
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::pve::{PveError, path};
use crate::service::{Cluster, Guest, Pve, Ttl, check_snapshot_name, check_storage_id, pve_err};
use crate::tasks;

const fn spec(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    tier: Tier,
    idempotent: bool,
) -> ToolSpec {
    ToolSpec { name, title, description, tier, idempotent, open_world: false }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerArgs {
    /// VMID of the VM or container.
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShutdownArgs {
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    /// Seconds to wait for the guest OS (default: Proxmox's 60 s).
    #[serde(default)]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout: Option<u32>,
    /// Power off if the guest does not shut down in time.
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendArgs {
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    /// Hibernate to disk instead of pausing in RAM (VMs only).
    #[serde(default)]
    pub to_disk: bool,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotArgs {
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    /// Snapshot name: a letter, then letters, digits, `_` or `-` (2-40 characters).
    pub name: String,
    /// Free text stored with the snapshot.
    #[serde(default)]
    pub description: Option<String>,
    /// Also save the VM's RAM (VMs only; slower, allows resuming exactly).
    #[serde(default)]
    pub include_ram: bool,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotNameArgs {
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    /// Name of an existing snapshot.
    pub name: String,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackArgs {
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    pub name: String,
    /// Start the guest after the rollback.
    #[serde(default)]
    pub start: bool,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupArgs {
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    /// Target storage (default: a shared backup storage reachable from the guest's node).
    #[serde(default)]
    pub storage: Option<String>,
    /// `snapshot` (default, no downtime) or `suspend`.
    #[serde(default)]
    pub mode: Option<String>,
    /// `zstd` (default), `lzo`, `gzip` or `none`.
    #[serde(default)]
    pub compress: Option<String>,
    /// Notes stored with the backup.
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateArgs {
    #[schemars(range(min = 100, max = 999_999_999))]
    pub vmid: u32,
    /// Target node.
    pub target: String,
    /// Live migration of a running VM (default: on for running VMs).
    #[serde(default)]
    pub online: Option<bool>,
    /// Containers cannot live-migrate: restart a running container on the target instead.
    #[serde(default)]
    pub restart: bool,
    #[serde(default)]
    pub cluster: Option<String>,
}

/// Follow a started task and turn its outcome into a result (a failed task is a tool error).
async fn finish(
    s: &Pve,
    c: &Cluster,
    g: &Guest,
    ctx: &CallCtx,
    upid: String,
    what: &str,
) -> Result<ToolOutput, ToolError> {
    // From here the call may go on as an MCP task (long-running tools, clients that take tasks): it then
    // follows the Proxmox task to its end instead of handing back the UPID after `tasks.wait_secs`.
    ctx.accepted(format!("Proxmox task {upid}: {what} {}", g.label()));
    let wait =
        if ctx.may_run_as_task() { mcp_common::tasks::TASK_TTL } else { Duration::from_secs(s.config.tasks.wait_secs) };
    let poll = Duration::from_millis(s.config.tasks.poll_ms.max(50));
    let out = tasks::follow(c, &upid, ctx, wait, poll).await.map_err(pve_err)?;
    c.invalidate();
    let log = untrusted::wrap(&format!("log of task {}", out.kind), &out.log_tail.join("\n"));
    let structured = json!({"vmid": g.vmid, "node": g.node, "action": what, "task": out});
    if out.finished && !out.succeeded {
        let err = out.exitstatus.clone().unwrap_or_default();
        if err.contains("already running") {
            return Ok(ToolOutput::new(format!("{} is already running; nothing to do.", g.label()), structured));
        }
        return Err(ToolError::Failed(format!("{what} {} failed: {err}\n{log}", g.label())));
    }
    let text = if out.finished && out.kind.starts_with("ha") {
        // hastart/hastop/hamigrate only hand the request to the HA stack; the CRM acts later.
        format!(
            "{} is HA-managed: the HA manager accepted the {what} request ({}); the cluster resource manager carries it out within a few seconds to a minute (see ha_status).\n{log}",
            g.label(),
            out.exitstatus.as_deref().unwrap_or("OK")
        )
    } else if out.finished {
        format!("{what} {}: done ({}).\n{log}", g.label(), out.exitstatus.as_deref().unwrap_or("OK"))
    } else {
        out.summary()
    };
    Ok(ToolOutput::new(text, structured).untrusted())
}

/// Resolve the guest and apply the protected-resource policy.
async fn writable(
    s: &Pve,
    vmid: u32,
    cluster: &Option<String>,
    ctx: &CallCtx,
) -> Result<(Arc<Cluster>, Guest), ToolError> {
    let c = s.cluster(cluster.as_deref())?;
    let g = c.guest(vmid).await?;
    ctx.guard(&g.target())?;
    if g.status() == "unknown" {
        return Err(ToolError::Failed(format!(
            "{} is on node {}, which is offline or unreachable; nothing can be done to it now",
            g.label(),
            g.node
        )));
    }
    Ok((c, g))
}

fn noop(g: &Guest, msg: &str) -> ToolOutput {
    ToolOutput::new(
        format!("{} {msg}; nothing to do.", g.label()),
        json!({"vmid": g.vmid, "node": g.node, "changed": false}),
    )
}

/// Containers check their state before forking a task (`CT 214 already running`, `CT 214 not
/// running`, HTTP 500). When our cached state was stale, that answer means the guest is already
/// where the call wants it: a calm answer, not a failure. Any other error stays an error.
fn already_there(c: &Cluster, g: &Guest, action: &str, e: PveError) -> Result<ToolOutput, ToolError> {
    let message = match &e {
        PveError::Api { message, .. } => message.as_str(),
        _ => "",
    };
    let calm = match action {
        "start" | "resume" if message.contains("already running") => Some("is already running"),
        "stop" | "shutdown" if message.contains("not running") => Some("is already stopped"),
        _ => None,
    };
    match calm {
        Some(msg) => {
            c.invalidate();
            Ok(noop(g, msg))
        }
        None => Err(pve_err(e)),
    }
}

async fn qmp_state(c: &Cluster, g: &Guest) -> Result<String, ToolError> {
    let v: Value = c.client.get(&g.path(&["status", "current"]), &[]).await.map_err(pve_err)?;
    Ok(v.get("qmpstatus").or_else(|| v.get("status")).and_then(Value::as_str).unwrap_or("unknown").to_string())
}

async fn power(s: Arc<Pve>, a: PowerArgs, ctx: CallCtx, action: &'static str) -> Result<ToolOutput, ToolError> {
    let (c, g) = writable(&s, a.vmid, &a.cluster, &ctx).await?;
    let running = g.status() == "running";
    match action {
        "start" if g.res.template => {
            return Err(ToolError::Invalid(format!("{} is a template; clone it instead of starting it", g.label())));
        }
        "start" if running => return Ok(noop(&g, "is already running")),
        "stop" if !running => return Ok(noop(&g, "is already stopped")),
        "reboot" if !running => {
            return Err(ToolError::Invalid(format!("{} is not running; use start_guest", g.label())));
        }
        "resume" => {
            let st = qmp_state(&c, &g).await?;
            // Only QEMU reports a pause (`qmpstatus`); a frozen container still reads `running`.
            if st == "running" && g.kind == "qemu" {
                return Ok(noop(&g, "is running, not paused"));
            }
            if st == "stopped" && g.kind == "lxc" {
                return Err(ToolError::Invalid(format!("{} is stopped, not suspended; use start_guest", g.label())));
            }
        }
        _ => {}
    }
    let upid: String = match c.client.post(&g.path(&["status", action]), &[]).await {
        Ok(upid) => upid,
        Err(e) => return already_there(&c, &g, action, e),
    };
    c.invalidate();
    if g.res.hastate.is_some() && matches!(action, "start" | "stop") {
        let out = tasks::follow(&c, &upid, &ctx, Duration::from_secs(10), Duration::from_millis(300))
            .await
            .map_err(pve_err)?;
        return Ok(ToolOutput::new(
            format!(
                "{} is HA-managed: the HA manager was asked to {action} it ({}); it changes state within a few seconds.",
                g.label(),
                out.exitstatus.unwrap_or_else(|| "requested".into())
            ),
            json!({"vmid": g.vmid, "node": g.node, "action": action, "ha": true, "upid": upid}),
        ));
    }
    finish(&s, &c, &g, &ctx, upid, action).await
}

pub fn register(r: &mut Registry<Pve>) {
    r.add(
        spec(
            "start_guest",
            "Start guest",
            "Start a stopped VM or container (HA-managed guests are started through the HA manager).",
            Yellow,
            true,
        ),
        |s, a: PowerArgs, ctx| power(s, a, ctx, "start"),
    );
    r.add(
        spec("resume_guest", "Resume guest", "Resume a paused or suspended VM or container.", Yellow, true),
        |s, a: PowerArgs, ctx| power(s, a, ctx, "resume"),
    );
    r.add(
        spec(
            "stop_guest",
            "Stop guest (hard)",
            "Power off a VM or container immediately, like pulling the plug. Prefer shutdown_guest.",
            Red,
            true,
        ),
        |s, a: PowerArgs, ctx| power(s, a, ctx, "stop"),
    );
    r.add(
        spec(
            "reboot_guest",
            "Reboot guest",
            "Reboot a running VM or container (clean shutdown, then start; applies pending changes).",
            Red,
            false,
        ),
        |s, a: PowerArgs, ctx| power(s, a, ctx, "reboot"),
    );
    r.add(
        spec(
            "shutdown_guest",
            "Shut down guest",
            "Shut a VM or container down cleanly through the guest OS (ACPI); optionally force after the timeout.",
            Red,
            true,
        ),
        |s: Arc<Pve>, a: ShutdownArgs, ctx: CallCtx| async move {
            let (c, g) = writable(&s, a.vmid, &a.cluster, &ctx).await?;
            if g.status() != "running" {
                return Ok(noop(&g, "is already stopped"));
            }
            let mut form = vec![];
            if let Some(t) = a.timeout {
                form.push(("timeout", t.clamp(1, 3600).to_string()));
            }
            if a.force {
                form.push(("forceStop", "1".to_string()));
            }
            let upid: String = match c.client.post(&g.path(&["status", "shutdown"]), &form).await {
                Ok(upid) => upid,
                Err(e) => return already_there(&c, &g, "shutdown", e),
            };
            finish(&s, &c, &g, &ctx, upid, "shutdown").await
        },
    );
    r.add(
        spec(
            "suspend_guest",
            "Suspend guest",
            "Pause a running VM or container in RAM, or hibernate a VM to disk.",
            Red,
            true,
        ),
        |s: Arc<Pve>, a: SuspendArgs, ctx: CallCtx| async move {
            let (c, g) = writable(&s, a.vmid, &a.cluster, &ctx).await?;
            if g.status() != "running" {
                return Err(ToolError::Invalid(format!("{} is not running", g.label())));
            }
            if a.to_disk && g.kind == "lxc" {
                return Err(ToolError::Invalid("containers cannot hibernate to disk".into()));
            }
            let form = if a.to_disk { vec![("todisk", "1".to_string())] } else { vec![] };
            let upid: String = c.client.post(&g.path(&["status", "suspend"]), &form).await.map_err(pve_err)?;
            finish(&s, &c, &g, &ctx, upid, "suspend").await
        },
    );
    r.add(
        spec(
            "create_snapshot",
            "Create snapshot",
            "Take a snapshot of a VM or container (optionally with the VM's RAM).",
            Yellow,
            false,
        ),
        |s: Arc<Pve>, a: SnapshotArgs, ctx: CallCtx| async move {
            check_snapshot_name(&a.name)?;
            let (c, g) = writable(&s, a.vmid, &a.cluster, &ctx).await?;
            if a.include_ram && g.kind == "lxc" {
                return Err(ToolError::Invalid("containers cannot save RAM state in a snapshot".into()));
            }
            let existing = snapshot_names(&c, &g).await?;
            if existing.contains(&a.name) {
                return Err(ToolError::Invalid(format!("{} already has a snapshot named '{}'", g.label(), a.name)));
            }
            let mut form = vec![("snapname", a.name.clone())];
            if let Some(d) = &a.description {
                form.push(("description", untrusted::sanitize(d).0));
            }
            if a.include_ram {
                form.push(("vmstate", "1".into()));
            }
            let upid: String = c.client.post(&g.path(&["snapshot"]), &form).await.map_err(pve_err)?;
            finish(&s, &c, &g, &ctx, upid, "snapshot").await
        },
    );
    r.add(
        spec(
            "delete_snapshot",
            "Delete snapshot",
            "Delete a snapshot of a VM or container. The guest's current state is not affected.",
            Red,
            true,
        ),
        |s: Arc<Pve>, a: SnapshotNameArgs, ctx: CallCtx| async move {
            check_snapshot_name(&a.name)?;
            let (c, g) = writable(&s, a.vmid, &a.cluster, &ctx).await?;
            require_snapshot(&c, &g, &a.name).await?;
            let upid: String = c.client.delete(&g.path(&["snapshot", &a.name]), &[]).await.map_err(pve_err)?;
            finish(&s, &c, &g, &ctx, upid, "delete snapshot").await
        },
    );
    r.add(
        spec("rollback_snapshot", "Roll back to snapshot", "Return a VM or container to a snapshot. Everything since the snapshot is lost; a running guest is stopped first.", Red, false),
        |s: Arc<Pve>, a: RollbackArgs, ctx: CallCtx| async move {
            check_snapshot_name(&a.name)?;
            let (c, g) = writable(&s, a.vmid, &a.cluster, &ctx).await?;
            require_snapshot(&c, &g, &a.name).await?;
            let form = if a.start { vec![("start", "1".to_string())] } else { vec![] };
            let upid: String = c.client.post(&g.path(&["snapshot", &a.name, "rollback"]), &form).await.map_err(pve_err)?;
            finish(&s, &c, &g, &ctx, upid, "rollback").await
        },
    );
    r.add_long_running(
        spec(
            "backup_guest",
            "Back up guest",
            "Back up a VM or container with vzdump (snapshot mode by default: no downtime).",
            Yellow,
            false,
        ),
        |s: Arc<Pve>, a: BackupArgs, ctx: CallCtx| async move {
            let (c, g) = writable(&s, a.vmid, &a.cluster, &ctx).await?;
            let mode = a.mode.clone().unwrap_or_else(|| "snapshot".into());
            if !["snapshot", "suspend"].contains(&mode.as_str()) {
                return Err(ToolError::Invalid(format!(
                    "mode must be 'snapshot' or 'suspend' (not '{mode}': 'stop' mode shuts the guest down)"
                )));
            }
            let compress = match a.compress.as_deref().unwrap_or("zstd") {
                "none" => "0".to_string(),
                x @ ("zstd" | "lzo" | "gzip") => x.to_string(),
                other => {
                    return Err(ToolError::Invalid(format!("compress must be zstd, lzo, gzip or none, not '{other}'")));
                }
            };
            let storage = match &a.storage {
                Some(st) => {
                    check_storage_id(st)?;
                    st.clone()
                }
                None => default_backup_storage(&c, &g).await?,
            };
            let mut form =
                vec![("vmid", g.vmid.to_string()), ("storage", storage), ("mode", mode), ("compress", compress)];
            if let Some(n) = &a.notes {
                form.push(("notes-template", untrusted::sanitize(n).0.replace('\n', " ")));
            }
            let upid: String = c.client.post(&path(&["nodes", &g.node, "vzdump"]), &form).await.map_err(pve_err)?;
            finish(&s, &c, &g, &ctx, upid, "backup").await
        },
    );
    r.add_long_running(
        spec("migrate_guest", "Migrate guest", "Move a VM or container to another node (live for running VMs; containers restart on the target).", Red, false),
        |s: Arc<Pve>, a: MigrateArgs, ctx: CallCtx| async move {
            let (c, g) = writable(&s, a.vmid, &a.cluster, &ctx).await?;
            let target = c.node(&a.target).await?;
            if target == g.node {
                return Ok(noop(&g, &format!("is already on {target}")));
            }
            ctx.guard(&mcp_common::policy::Target { node: Some(target.clone()), ..Default::default() })?;
            let pre: Value = c.client.get(&g.path(&["migrate"]), &[("target", target.clone())]).await.map_err(pve_err)?;
            if let Some(why) = pre.get("not_allowed_nodes").and_then(|n| n.get(&target)) {
                return Err(ToolError::Invalid(format!("{} cannot move to {target}: {why}", g.label())));
            }
            let running = g.status() == "running";
            let mut form = vec![("target", target.clone())];
            if running && g.kind == "qemu" && a.online.unwrap_or(true) {
                form.push(("online", "1".into()));
                if pre.get("local_disks").and_then(Value::as_array).is_some_and(|d| !d.is_empty()) {
                    form.push(("with-local-disks", "1".into()));
                }
            } else if running && g.kind == "qemu" {
                return Err(ToolError::Invalid(format!("{} is running; live migration (online) is needed, or shut it down first", g.label())));
            } else if running && g.kind == "lxc" {
                if !a.restart {
                    return Err(ToolError::Invalid(format!("{} is a running container; containers cannot live-migrate. Pass restart=true to restart it on {target}", g.label())));
                }
                form.push(("restart", "1".into()));
            }
            let upid: String = c.client.post(&g.path(&["migrate"]), &form).await.map_err(pve_err)?;
            finish(&s, &c, &g, &ctx, upid, "migrate").await
        },
    );
}

async fn snapshot_names(c: &Cluster, g: &Guest) -> Result<Vec<String>, ToolError> {
    let rows: Vec<Value> = c.client.get(&g.path(&["snapshot"]), &[]).await.map_err(pve_err)?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get("name").and_then(Value::as_str))
        .filter(|n| *n != "current")
        .map(str::to_string)
        .collect())
}

async fn require_snapshot(c: &Cluster, g: &Guest, name: &str) -> Result<(), ToolError> {
    let names = snapshot_names(c, g).await?;
    if names.iter().any(|n| n == name) {
        return Ok(());
    }
    Err(ToolError::Invalid(if names.is_empty() {
        format!("{} has no snapshots", g.label())
    } else {
        format!("{} has no snapshot '{name}' (it has: {})", g.label(), names.join(", "))
    }))
}

/// A backup storage on the guest's node: shared ones first, then the one with most free space.
async fn default_backup_storage(c: &Cluster, g: &Guest) -> Result<String, ToolError> {
    let rows: Vec<Value> = c
        .get_as(Ttl::Storage, &path(&["nodes", &g.node, "storage"]), &[("content", "backup".into())])
        .await
        .map_err(pve_err)?;
    rows.iter()
        .filter(|r| r.get("active").and_then(Value::as_u64).unwrap_or(1) == 1)
        .max_by_key(|r| {
            (r.get("shared").and_then(Value::as_u64).unwrap_or(0), r.get("avail").and_then(Value::as_u64).unwrap_or(0))
        })
        .and_then(|r| r.get("storage").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| {
            ToolError::Invalid(format!("node {} has no storage for backups; name one with `storage`", g.node))
        })
}
