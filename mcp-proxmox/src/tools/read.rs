//! GREEN tools: everything that only reads.

use std::sync::Arc;

use mcp_common::tier::Tier::Green;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use serde_json::{Value, json};

use crate::fmt;
use crate::pve::path;
use crate::pve::types::{TaskStatus, upid_node};
use crate::service::{Pve, Ttl, check_storage_id, check_vmid, pve_err};
use crate::tasks;

use super::read_args::{
    ClusterArg, GuestMetricsArgs, ListBackupsArgs, ListGuestsArgs, ListTasksArgs, NodeArg, NodeMetricsArgs,
    OptNodeArgs, StorageContentArgs, TaskArg, VmidArg,
};

const fn green(name: &'static str, title: &'static str, description: &'static str) -> ToolSpec {
    ToolSpec { name, title, description, tier: Green, idempotent: true, open_world: false }
}

fn timeframe(t: &Option<String>) -> Result<String, ToolError> {
    let t = t.clone().unwrap_or_else(|| "hour".into());
    if ["hour", "day", "week", "month", "year"].contains(&t.as_str()) {
        Ok(t)
    } else {
        Err(ToolError::Invalid(format!("timeframe must be hour, day, week, month or year, not '{t}'")))
    }
}

/// Min / average / max of a metric over RRD rows (rows without the key are skipped).
fn summarize(rows: &[Value], key: &str) -> Option<Value> {
    let vals: Vec<f64> = rows.iter().filter_map(|r| r.get(key).and_then(Value::as_f64)).collect();
    if vals.is_empty() {
        return None;
    }
    let avg = vals.iter().sum::<f64>() / vals.len() as f64;
    let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(json!({"min": min, "avg": avg, "max": max, "last": vals.last()}))
}

pub fn register(r: &mut Registry<Pve>) {
    r.add(
        green("cluster_status", "Cluster status", "Quorum, nodes online/offline and guest counts of the Proxmox cluster."),
        |s: Arc<Pve>, a: ClusterArg, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let status: Vec<Value> = c.get_as(Ttl::Resources, "/cluster/status", &[]).await.map_err(pve_err)?;
            let res = c.resources().await.map_err(pve_err)?;
            let cl = status.iter().find(|x| x.get("type").and_then(Value::as_str) == Some("cluster"));
            let quorate = cl.and_then(|x| x.get("quorate")).and_then(Value::as_u64).unwrap_or(1) == 1;
            let nodes: Vec<Value> = status.iter().filter(|x| x.get("type").and_then(Value::as_str) == Some("node")).cloned().collect();
            let online = nodes.iter().filter(|n| n.get("online").and_then(Value::as_u64) == Some(1)).count();
            let guests: Vec<_> = res.iter().filter(|r| r.is_guest()).collect();
            let running = guests.iter().filter(|g| g.status.as_deref() == Some("running")).count();
            let name = cl.and_then(|x| x.get("name")).and_then(Value::as_str).unwrap_or(&c.name).to_string();
            let text = format!(
                "Cluster {name}: {} — {online}/{} nodes online, {running}/{} guests running.",
                if quorate { "quorate" } else { "NOT QUORATE (writes are blocked)" },
                nodes.len(),
                guests.len()
            );
            Ok(ToolOutput::new(text, json!({"cluster": name, "quorate": quorate, "nodes_online": online, "nodes": nodes.len(), "guests": guests.len(), "guests_running": running, "node_status": nodes})))
        },
    );
    r.add(
        green("list_nodes", "List nodes", "Nodes of the cluster with status, CPU, memory, disk and uptime."),
        |s: Arc<Pve>, a: ClusterArg, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let nodes: Vec<_> =
                c.resources().await.map_err(pve_err)?.into_iter().filter(|r| r.kind == "node").collect();
            let lines: Vec<String> = nodes
                .iter()
                .map(|n| {
                    let name = n.node.clone().unwrap_or_default();
                    match n.status.as_deref() {
                        Some("online") => format!(
                            "- {name}: online, CPU {} of {} cores, RAM {} / {}, up {}",
                            fmt::pct(n.cpu),
                            n.maxcpu,
                            fmt::bytes(n.mem),
                            fmt::bytes(n.maxmem),
                            fmt::duration(n.uptime)
                        ),
                        other => format!("- {name}: {}", other.unwrap_or("unknown")),
                    }
                })
                .collect();
            Ok(ToolOutput::new(format!("{} nodes:\n{}", nodes.len(), lines.join("\n")), json!({"nodes": nodes})))
        },
    );
    r.add(
        green(
            "node_status",
            "Node status",
            "Detailed status of one node: CPU model, load, memory, swap, root disk, kernel, PVE version, uptime.",
        ),
        |s: Arc<Pve>, a: NodeArg, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let node = c.node(&a.node).await?;
            let v: Value = c.get_as(Ttl::Default, &path(&["nodes", &node, "status"]), &[]).await.map_err(pve_err)?;
            let mem = |k: &str| v.pointer(&format!("/memory/{k}")).and_then(Value::as_u64).unwrap_or(0);
            let text = format!(
                "{node}: {} ({} CPUs), load {}, RAM {} / {}, up {}, {}",
                v.pointer("/cpuinfo/model").and_then(Value::as_str).unwrap_or("?"),
                v.pointer("/cpuinfo/cpus").and_then(Value::as_u64).unwrap_or(0),
                v.get("loadavg").map(|l| l.to_string()).unwrap_or_default(),
                fmt::bytes(mem("used")),
                fmt::bytes(mem("total")),
                fmt::duration(v.get("uptime").and_then(Value::as_u64).unwrap_or(0)),
                v.get("pveversion").and_then(Value::as_str).unwrap_or("")
            );
            Ok(ToolOutput::new(text, v))
        },
    );
    r.add(
        green(
            "list_guests",
            "List guests",
            "VMs and containers with state, node, CPU and memory; filter by node, type, status or tag.",
        ),
        |s: Arc<Pve>, a: ListGuestsArgs, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            if let Some(k) = a.kind.as_deref().filter(|k| *k != "qemu" && *k != "lxc") {
                return Err(ToolError::Invalid(format!("type must be 'qemu' or 'lxc', not '{k}'")));
            }
            let guests: Vec<_> = c
                .resources()
                .await
                .map_err(pve_err)?
                .into_iter()
                .filter(|r| r.is_guest())
                .filter(|r| a.node.as_deref().is_none_or(|n| r.node.as_deref() == Some(n)))
                .filter(|r| a.kind.as_deref().is_none_or(|k| r.kind == k))
                .filter(|r| a.status.as_deref().is_none_or(|st| r.status.as_deref() == Some(st)))
                .filter(|r| a.tag.as_deref().is_none_or(|t| r.tag_list().iter().any(|x| x.eq_ignore_ascii_case(t))))
                .collect();
            let lines: Vec<String> = guests
                .iter()
                .map(|g| {
                    format!(
                        "- {} {} \"{}\" on {}: {}{}{}",
                        if g.kind == "lxc" { "CT" } else { "VM" },
                        g.vmid.unwrap_or(0),
                        untrusted::sanitize(g.name.as_deref().unwrap_or("")).0,
                        g.node.as_deref().unwrap_or("?"),
                        g.status.as_deref().unwrap_or("?"),
                        if g.template { " (template)" } else { "" },
                        g.lock.as_ref().map(|l| format!(" [locked: {l}]")).unwrap_or_default()
                    )
                })
                .collect();
            Ok(ToolOutput::new(format!("{} guests:\n{}", guests.len(), lines.join("\n")), json!({"guests": guests})))
        },
    );
    r.add(
        green(
            "guest_status",
            "Guest status",
            "Live status of one VM or container: state (incl. paused), uptime, CPU, memory, HA state, lock.",
        ),
        |s: Arc<Pve>, a: VmidArg, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let g = c.guest(a.vmid).await?;
            let v: Value = c.get_as(Ttl::Default, &g.path(&["status", "current"]), &[]).await.map_err(pve_err)?;
            let qmp = v.get("qmpstatus").and_then(Value::as_str);
            let state = qmp
                .filter(|q| *q != "running" && *q != "stopped")
                .unwrap_or(v.get("status").and_then(Value::as_str).unwrap_or("?"));
            let text = format!(
                "{} \"{}\" on {}: {state}, up {}, CPU {}, RAM {} / {}{}",
                g.label(),
                untrusted::sanitize(g.name()).0,
                g.node,
                fmt::duration(v.get("uptime").and_then(Value::as_u64).unwrap_or(0)),
                fmt::pct(v.get("cpu").and_then(Value::as_f64).unwrap_or(0.0)),
                fmt::bytes(v.get("mem").and_then(Value::as_u64).unwrap_or(0)),
                fmt::bytes(v.get("maxmem").and_then(Value::as_u64).unwrap_or(0)),
                v.get("lock").and_then(Value::as_str).map(|l| format!(", locked ({l})")).unwrap_or_default()
            );
            Ok(ToolOutput::new(
                text,
                json!({"vmid": g.vmid, "type": g.kind, "node": g.node, "state": state, "status": v}),
            ))
        },
    );
    r.add(
        green("guest_config", "Guest configuration", "Configuration of one VM or container (CPU, memory, disks, network, options). Its description/notes are outside text and marked untrusted."),
        |s: Arc<Pve>, a: VmidArg, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let g = c.guest(a.vmid).await?;
            let mut v: Value = c.get_as(Ttl::Default, &g.path(&["config"]), &[]).await.map_err(pve_err)?;
            let notes = v.as_object_mut().and_then(|m| m.remove("description")).and_then(|d| d.as_str().map(str::to_string));
            let mut lines: Vec<String> = v
                .as_object()
                .map(|m| m.iter().filter(|(k, _)| *k != "digest").map(|(k, x)| format!("{k}: {}", x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))).collect())
                .unwrap_or_default();
            lines.sort();
            let mut text = format!("Configuration of {} on {}:\n{}", g.label(), g.node, lines.join("\n"));
            let mut out_v = json!({"vmid": g.vmid, "node": g.node, "type": g.kind, "config": v});
            let mut marked = false;
            if let Some(n) = notes {
                let wrapped = untrusted::wrap(&format!("notes of {}", g.label()), &n);
                text.push_str("\n\nNotes:\n");
                text.push_str(&wrapped);
                out_v["notes"] = json!(wrapped);
                marked = true;
            }
            let out = ToolOutput::new(text, out_v);
            Ok(if marked { out.untrusted() } else { out })
        },
    );
    r.add(
        green(
            "list_storage",
            "List storage",
            "Storage of the cluster per node: type, content types, used / total, shared or local.",
        ),
        |s: Arc<Pve>, a: OptNodeArgs, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let st: Vec<_> = c
                .resources()
                .await
                .map_err(pve_err)?
                .into_iter()
                .filter(|r| r.kind == "storage")
                .filter(|r| a.node.as_deref().is_none_or(|n| r.node.as_deref() == Some(n)))
                .collect();
            let lines: Vec<String> = st
                .iter()
                .map(|r| {
                    let frac = if r.maxdisk > 0 { r.disk as f64 / r.maxdisk as f64 } else { 0.0 };
                    format!(
                        "- {} on {}: {} used of {} ({}), {}{}",
                        r.storage.as_deref().unwrap_or("?"),
                        r.node.as_deref().unwrap_or("?"),
                        fmt::bytes(r.disk),
                        fmt::bytes(r.maxdisk),
                        fmt::pct(frac),
                        r.content.as_deref().unwrap_or(""),
                        if r.shared { ", shared" } else { "" }
                    )
                })
                .collect();
            Ok(ToolOutput::new(format!("{} storage entries:\n{}", st.len(), lines.join("\n")), json!({"storage": st})))
        },
    );
    r.add(
        green(
            "storage_content",
            "Storage content",
            "Volumes on one storage of one node (disk images, backups, ISOs, templates).",
        ),
        |s: Arc<Pve>, a: StorageContentArgs, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let node = c.node(&a.node).await?;
            check_storage_id(&a.storage)?;
            let mut q = vec![];
            if let Some(ct) = &a.content {
                q.push(("content", ct.clone()));
            }
            if let Some(v) = a.vmid {
                check_vmid(v)?;
                q.push(("vmid", v.to_string()));
            }
            let rows: Vec<Value> = c
                .get_as(Ttl::Storage, &path(&["nodes", &node, "storage", &a.storage, "content"]), &q)
                .await
                .map_err(pve_err)?;
            let lines: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "- {} ({}, {})",
                        untrusted::sanitize(r.get("volid").and_then(Value::as_str).unwrap_or("?")).0,
                        r.get("content").and_then(Value::as_str).unwrap_or("?"),
                        fmt::bytes(r.get("size").and_then(Value::as_u64).unwrap_or(0))
                    )
                })
                .collect();
            Ok(ToolOutput::new(
                format!("{} volumes on {}:{}:\n{}", rows.len(), node, a.storage, lines.join("\n")),
                json!({"volumes": rows}),
            ))
        },
    );
    r.add(
        green("list_backups", "List backups", "Backups (vzdump archives) across every backup storage, newest first, optionally for one guest. Backup notes are outside text."),
        |s: Arc<Pve>, a: ListBackupsArgs, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            if let Some(v) = a.vmid {
                check_vmid(v)?;
            }
            let res = c.resources().await.map_err(pve_err)?;
            // One (node, storage) per shared storage, every node for local ones.
            let mut seen_shared = std::collections::HashSet::new();
            let mut backups: Vec<Value> = Vec::new();
            for st in res.iter().filter(|r| r.kind == "storage" && r.content.as_deref().unwrap_or("").split(',').any(|x| x == "backup")) {
                let (Some(node), Some(id)) = (st.node.as_deref(), st.storage.as_deref()) else { continue };
                if a.storage.as_deref().is_some_and(|x| x != id) || st.status.as_deref() != Some("available") {
                    continue;
                }
                if st.shared && !seen_shared.insert(id.to_string()) {
                    continue;
                }
                let mut q = vec![("content", "backup".to_string())];
                if let Some(v) = a.vmid {
                    q.push(("vmid", v.to_string()));
                }
                match c.get_as::<Vec<Value>>(Ttl::Storage, &path(&["nodes", node, "storage", id, "content"]), &q).await {
                    Ok(rows) => backups.extend(rows.into_iter().map(|mut r| {
                        r["storage"] = json!(id);
                        r["node"] = json!(node);
                        if let Some(n) = r.get("notes").and_then(Value::as_str).map(str::to_string) {
                            r["notes"] = json!(untrusted::sanitize(&n).0);
                        }
                        r
                    })),
                    Err(e) => tracing::warn!(storage = id, node, error = %e, "cannot list backups"),
                }
            }
            backups.sort_by_key(|b| std::cmp::Reverse(b.get("ctime").and_then(Value::as_i64).unwrap_or(0)));
            let lines: Vec<String> = backups
                .iter()
                .take(50)
                .map(|b| format!("- {} ({}, guest {})", b.get("volid").and_then(Value::as_str).unwrap_or("?"), fmt::bytes(b.get("size").and_then(Value::as_u64).unwrap_or(0)), b.get("vmid").map(|v| v.to_string()).unwrap_or_default()))
                .collect();
            let any_notes = backups.iter().any(|b| b.get("notes").is_some());
            let out = ToolOutput::new(format!("{} backups (newest first):\n{}", backups.len(), lines.join("\n")), json!({"backups": backups}));
            Ok(if any_notes { out.untrusted() } else { out })
        },
    );
    r.add(
        green(
            "list_snapshots",
            "List snapshots",
            "Snapshots of a VM or container as a tree (name, time, RAM state, description, parent).",
        ),
        |s: Arc<Pve>, a: VmidArg, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let g = c.guest(a.vmid).await?;
            let rows: Vec<Value> = c.get_as(Ttl::Default, &g.path(&["snapshot"]), &[]).await.map_err(pve_err)?;
            let snaps: Vec<Value> = rows
                .into_iter()
                .map(|mut r| {
                    if let Some(d) = r.get("description").and_then(Value::as_str).map(str::to_string) {
                        r["description"] = json!(untrusted::sanitize(&d).0);
                    }
                    r
                })
                .collect();
            let lines: Vec<String> = snaps
                .iter()
                .filter(|r| r.get("name").and_then(Value::as_str) != Some("current"))
                .map(|r| {
                    format!(
                        "- {} (parent: {}){}",
                        r.get("name").and_then(Value::as_str).unwrap_or("?"),
                        r.get("parent").and_then(Value::as_str).unwrap_or("-"),
                        if r.get("vmstate").and_then(Value::as_u64) == Some(1) { ", with RAM" } else { "" }
                    )
                })
                .collect();
            let text = if lines.is_empty() {
                format!("{} has no snapshots.", g.label())
            } else {
                format!("Snapshots of {}:\n{}", g.label(), lines.join("\n"))
            };
            Ok(ToolOutput::new(text, json!({"vmid": g.vmid, "snapshots": snaps})).untrusted())
        },
    );
    r.add(
        green(
            "list_tasks",
            "List tasks",
            "Recent Proxmox tasks (newest first) of the cluster or one node, optionally only failures or one guest's.",
        ),
        |s: Arc<Pve>, a: ListTasksArgs, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let limit = a.limit.unwrap_or(20).clamp(1, 200) as usize;
            let mut rows: Vec<Value> = match &a.node {
                Some(n) => {
                    let node = c.node(n).await?;
                    let mut q = vec![("limit", limit.to_string()), ("source", "all".to_string())];
                    if a.errors_only {
                        q.push(("errors", "1".into()));
                    }
                    if let Some(v) = a.vmid {
                        q.push(("vmid", v.to_string()));
                    }
                    c.get_as(Ttl::Tasks, &path(&["nodes", &node, "tasks"]), &q).await.map_err(pve_err)?
                }
                None => c.get_as(Ttl::Tasks, "/cluster/tasks", &[]).await.map_err(pve_err)?,
            };
            rows.retain(|t| {
                let st = t.get("status").and_then(Value::as_str).unwrap_or("");
                (!a.errors_only || (st != "OK" && !st.starts_with("WARNINGS") && st != "RUNNING" && !st.is_empty()))
                    && a.vmid.is_none_or(|v| t.get("id").and_then(Value::as_str) == Some(v.to_string().as_str()))
            });
            rows.truncate(limit);
            let lines: Vec<String> = rows
                .iter()
                .map(|t| {
                    format!(
                        "- {} {} on {} by {}: {}",
                        t.get("type").and_then(Value::as_str).unwrap_or("?"),
                        t.get("id").and_then(Value::as_str).unwrap_or(""),
                        t.get("node").and_then(Value::as_str).unwrap_or("?"),
                        t.get("user").and_then(Value::as_str).unwrap_or("?"),
                        untrusted::sanitize(t.get("status").and_then(Value::as_str).unwrap_or("running")).0
                    )
                })
                .collect();
            Ok(ToolOutput::new(format!("{} tasks:\n{}", rows.len(), lines.join("\n")), json!({"tasks": rows})))
        },
    );
    r.add(
        green("task_status", "Task status", "Status, exit status and log tail of a Proxmox task by UPID (the job id write tools return). The log is outside text."),
        |s: Arc<Pve>, a: TaskArg, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let node = upid_node(&a.upid).ok_or_else(|| ToolError::Invalid(format!("'{}' is not a Proxmox UPID", a.upid)))?.to_string();
            let st: TaskStatus = c.client.get(&path(&["nodes", &node, "tasks", &a.upid, "status"]), &[]).await.map_err(pve_err)?;
            let tail = tasks::log_tail(&c, &node, &a.upid, tasks::LOG_TAIL).await.map_err(pve_err)?;
            let state = if st.running() { "running".to_string() } else { format!("finished: {}", st.exitstatus.clone().unwrap_or_default()) };
            let log = untrusted::wrap(&format!("log of task {}", st.kind), &tail.join("\n"));
            Ok(ToolOutput::new(
                format!("Task {} ({}) on {node}: {state}\n{log}", st.kind, st.id.clone().unwrap_or_default()),
                json!({"task": st, "running": st.running(), "succeeded": st.succeeded(), "log_tail": tail}),
            )
            .untrusted())
        },
    );
    r.add(
        green(
            "node_metrics",
            "Node metrics",
            "CPU, memory, network and load history of a node (min/avg/max over the timeframe) from Proxmox RRD data.",
        ),
        |s: Arc<Pve>, a: NodeMetricsArgs, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let node = c.node(&a.node).await?;
            let tf = timeframe(&a.timeframe)?;
            let rows: Vec<Value> = c
                .get_as(
                    Ttl::Default,
                    &path(&["nodes", &node, "rrddata"]),
                    &[("timeframe", tf.clone()), ("cf", "AVERAGE".into())],
                )
                .await
                .map_err(pve_err)?;
            let mut m = serde_json::Map::new();
            for k in ["cpu", "loadavg", "memused", "memtotal", "netin", "netout", "iowait", "swapused", "rootused"] {
                if let Some(x) = summarize(&rows, k) {
                    m.insert(k.into(), x);
                }
            }
            let cpu = m.get("cpu").and_then(|x| x.get("avg")).and_then(Value::as_f64).unwrap_or(0.0);
            let cpu_max = m.get("cpu").and_then(|x| x.get("max")).and_then(Value::as_f64).unwrap_or(0.0);
            let text = format!(
                "{node} over the last {tf}: CPU avg {} (max {}), {} samples",
                fmt::pct(cpu),
                fmt::pct(cpu_max),
                rows.len()
            );
            let mut out = json!({"node": node, "timeframe": tf, "summary": m, "samples": rows.len()});
            if a.points {
                out["points"] = Value::Array(rows);
            }
            Ok(ToolOutput::new(text, out))
        },
    );
    r.add(
        green(
            "guest_metrics",
            "Guest metrics",
            "CPU, memory, network and disk I/O history of a VM or container (min/avg/max over the timeframe).",
        ),
        |s: Arc<Pve>, a: GuestMetricsArgs, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let g = c.guest(a.vmid).await?;
            let tf = timeframe(&a.timeframe)?;
            let rows: Vec<Value> = c
                .get_as(Ttl::Default, &g.path(&["rrddata"]), &[("timeframe", tf.clone()), ("cf", "AVERAGE".into())])
                .await
                .map_err(pve_err)?;
            let mut m = serde_json::Map::new();
            for k in ["cpu", "mem", "maxmem", "netin", "netout", "diskread", "diskwrite"] {
                if let Some(x) = summarize(&rows, k) {
                    m.insert(k.into(), x);
                }
            }
            let cpu = m.get("cpu").and_then(|x| x.get("avg")).and_then(Value::as_f64).unwrap_or(0.0);
            let text = format!("{} over the last {tf}: CPU avg {}, {} samples", g.label(), fmt::pct(cpu), rows.len());
            let mut out = json!({"vmid": g.vmid, "timeframe": tf, "summary": m, "samples": rows.len()});
            if a.points {
                out["points"] = Value::Array(rows);
            }
            Ok(ToolOutput::new(text, out))
        },
    );
    r.add(
        green(
            "ha_status",
            "HA status",
            "High-availability state: quorum, CRM master, each node's LRM and each HA-managed service.",
        ),
        |s: Arc<Pve>, a: ClusterArg, _ctx: CallCtx| async move {
            let c = s.cluster(a.cluster.as_deref())?;
            let rows: Vec<Value> = c.get_as(Ttl::Default, "/cluster/ha/status/current", &[]).await.map_err(pve_err)?;
            let lines: Vec<String> =
                rows.iter().filter_map(|r| r.get("status").and_then(Value::as_str)).map(|s| format!("- {s}")).collect();
            Ok(ToolOutput::new(format!("HA status:\n{}", lines.join("\n")), json!({"ha": rows})))
        },
    );
}
