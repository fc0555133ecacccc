//! `/nodes`, node status and power, Wake-on-LAN, node RRD data.

use serde_json::{Value, json};

use super::Ctx;
use crate::metrics;
use crate::model::RunState;
use crate::sim::Sim;
use crate::wire::{ApiError, ApiResult, Reply};

pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let sim = &*ctx.sim;
    let now = sim.now;
    let mut out = Vec::new();
    for n in &sim.cluster.nodes {
        let can_audit = sim.access.has(&ctx.who, &format!("/nodes/{}", n.name), "Sys.Audit", &sim.cluster);
        let mut v = json!({
            "node": n.name, "id": format!("node/{}", n.name), "type": "node",
            "status": if n.online { "online" } else { "offline" }, "ssl_fingerprint": n.ssl_fingerprint,
        });
        if can_audit && n.online {
            v["level"] = json!(n.level);
            v["cpu"] = json!(metrics::node_cpu(n, now));
            v["maxcpu"] = json!(n.maxcpu);
            v["mem"] = json!(metrics::node_mem(n, now));
            v["maxmem"] = json!(n.maxmem);
            v["disk"] = json!(n.rootfs_used);
            v["maxdisk"] = json!(n.maxdisk);
            v["uptime"] = json!((now - n.booted_at).max(0.0) as u64);
        }
        out.push(v);
    }
    Ok(Reply::data(Value::Array(out)))
}

pub fn status(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let now = ctx.sim.now;
    let version = ctx.sim.version.clone();
    let n = ctx.sim.cluster.node(&ctx.node()).ok_or_else(|| ApiError::server("no such node"))?;
    let mem = metrics::node_mem(n, now);
    let load = metrics::node_loadavg(n, now);
    let kver = format!("#1 SMP PREEMPT_DYNAMIC PMX {} (2026-10-02T09:41Z)", n.kernel.trim_end_matches("-pve"));
    Ok(Reply::data(json!({
        "boot-info": {"mode": "efi", "secureboot": 0},
        "cpu": metrics::node_cpu(n, now),
        "cpuinfo": {
            "cores": (n.maxcpu / 2).max(1), "cpus": n.maxcpu, "flags": "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx lm constant_tsc rep_good nopl xtopology cpuid pni pclmulqdq vmx ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm avx2",
            "hvm": "1", "mhz": "3400.000", "model": n.cpu_model, "sockets": n.sockets, "user_hz": 100,
        },
        "current-kernel": {"machine": "x86_64", "release": n.kernel, "sysname": "Linux", "version": kver},
        "idle": 0,
        "ksm": {"shared": 0},
        "kversion": format!("Linux {} {kver}", n.kernel),
        "loadavg": [format!("{load:.2}"), format!("{:.2}", load * 0.9), format!("{:.2}", load * 0.8)],
        "memory": {"free": n.maxmem - mem, "total": n.maxmem, "used": mem, "available": n.maxmem - mem},
        "pveversion": format!("pve-manager/{version}/b502d23c55afcba1"),
        "rootfs": {"avail": n.maxdisk - n.rootfs_used, "free": n.maxdisk - n.rootfs_used, "total": n.maxdisk, "used": n.rootfs_used},
        "swap": {"free": n.swap_total - n.swap_total / 20, "total": n.swap_total, "used": n.swap_total / 20},
        "uptime": (now - n.booted_at).max(0.0) as u64,
        "wait": 0.0012,
    })))
}

/// Take a node down: every guest on it stops (no task: the node is gone).
pub fn node_down(sim: &mut Sim, node: &str, reason: &str) {
    if let Some(n) = sim.cluster.node_mut(node) {
        n.online = false;
        n.offline_reason = reason.to_string();
    }
    let vmids: Vec<u32> = sim.cluster.guests.values().filter(|g| g.node == node).map(|g| g.vmid).collect();
    for v in &vmids {
        if let Some(g) = sim.cluster.guests.get_mut(v) {
            g.run = RunState::Stopped;
            g.started_at = None;
            g.pid = None;
        }
    }
    // Its workers die with it: no final log line, so "unexpected status"; locks they set stay.
    let dead: Vec<String> = sim.tasks.node_tasks(node).filter(|t| t.running()).map(|t| t.upid.clone()).collect();
    for upid in dead {
        sim.finish_task(&upid, crate::tasks::Exit::Unexpected);
    }
    super::ha::node_lost(sim, node);
}

/// Bring a node (back) up: it boots, then starts its `onboot` guests.
pub fn node_up(sim: &mut Sim, node: &str) {
    let now = sim.now;
    if let Some(n) = sim.cluster.node_mut(node) {
        if n.online {
            return;
        }
        n.online = true;
        n.booted_at = now;
    }
    let onboot: Vec<u32> = sim
        .cluster
        .guests
        .values()
        .filter(|g| {
            g.node == node
                && !g.is_running()
                && g.config.get("onboot").is_some_and(|v| crate::schema::value_text(v) == "1")
                && sim.cluster.ha_of(g).is_none()
        })
        .map(|g| g.vmid)
        .collect();
    if onboot.is_empty() {
        return;
    }
    let upid = sim.start_task(node, "startall", "", "root@pam", None);
    for (i, v) in onboot.into_iter().enumerate() {
        let u = upid.clone();
        sim.task_step(&upid, 1.0 + i as f64, move |sim| {
            sim.task_log(&u, format!("Starting VM {v}"));
            if let Some(g) = sim.cluster.guests.get_mut(&v) {
                g.run = RunState::Running;
                g.started_at = Some(sim.now);
                g.pid = Some(10_000 + v);
            }
        });
    }
    let u = upid.clone();
    let n = sim.cluster.guests.len() as f64;
    sim.task_step(&upid, 2.0 + n.min(60.0), move |sim| sim.finish_task(&u, crate::tasks::Exit::Ok));
}

/// `POST /nodes/{node}/status` (reboot/shutdown): the node goes away shortly after answering.
pub fn power(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let node = ctx.node();
    let cmd = ctx.str("command");
    match cmd.as_str() {
        "reboot" | "shutdown" => {
            let n2 = node.clone();
            ctx.sim.after(3.0, move |sim| node_down(sim, &n2, "No route to host"));
            if cmd == "reboot" {
                let n3 = node.clone();
                ctx.sim.after(90.0, move |sim| node_up(sim, &n3));
            }
            Ok(Reply::null())
        }
        other => Err(ApiError::param(
            "command",
            format!("value '{other}' does not have a value in the enumeration 'reboot, shutdown'"),
        )),
    }
}

/// `POST /nodes/{node}/wakeonlan`: sent by another node; the target boots if it was down.
pub fn wakeonlan(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let node = ctx.node();
    let n = ctx.sim.cluster.node(&node).ok_or_else(|| ApiError::server(format!("no such cluster node '{node}'")))?;
    let mac = format!("{}:{}", "A8:A1:59", &n.ssl_fingerprint[..8]);
    if !n.online {
        let n2 = node.clone();
        ctx.sim.after(45.0, move |sim| node_up(sim, &n2));
    }
    Ok(Reply::data(json!(mac)))
}

pub fn rrddata(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let n = ctx
        .sim
        .cluster
        .node(&ctx.node())
        .ok_or_else(|| ApiError::server(format!("RRD update error: node '{}' does not exist", ctx.node())))?;
    let cf = ctx.opt_str("cf").unwrap_or_else(|| "AVERAGE".into());
    Ok(Reply::data(Value::Array(metrics::node_rrd(n, &ctx.str("timeframe"), &cf, ctx.sim.now))))
}
