//! The HA stack: CRM decisions with realistic delays, LRM workers started "by HA resource
//! agent", fencing and recovery of services from a lost node, and the HA status endpoints.

use serde_json::{Value, json};

use super::Ctx;
use super::lifecycle::{migrate_worker, shutdown_worker, start_worker};
use crate::model::HaResource;
use crate::sim::Sim;
use crate::wire::{ApiResult, Reply};

/// `hastate` / verbose service state shown in resources and status.
pub fn verbose_state(h: &HaResource) -> String {
    h.crm_state.clone()
}

/// `Thu Sep 10 19:48:41 2026` (the CRM prints localtime; the simulator runs in UTC).
pub fn ctime(epoch: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = epoch.div_euclid(86_400);
    let s = epoch.rem_euclid(86_400);
    let (y, m, d) = crate::wire::civil_from_days(days);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {y}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

fn vmid_of(sid: &str) -> Option<u32> {
    sid.split_once(':').and_then(|(_, v)| v.parse().ok())
}

/// `ha-manager set <sid> --state started|stopped`: the CRM reacts after its delay, then the
/// LRM on the owning node runs the real worker.
pub fn request_state(sim: &mut Sim, sid: &str, state: &str) {
    let Some(h) = sim.cluster.ha.get_mut(sid) else { return };
    h.request = state.to_string();
    h.crm_state = match state {
        "started" if h.crm_state != "started" => "request_start".into(),
        "stopped" => "request_stop".into(),
        _ => h.crm_state.clone(),
    };
    let sid = sid.to_string();
    let delay = sim.timing.crm_delay;
    sim.after(delay, move |sim| crm_apply(sim, &sid));
}

fn crm_apply(sim: &mut Sim, sid: &str) {
    let Some(vmid) = vmid_of(sid) else { return };
    let Some(h) = sim.cluster.ha.get(sid).cloned() else { return };
    let Some(g) = sim.cluster.guests.get(&vmid) else { return };
    let (node, running, kind) = (g.node.clone(), g.is_running(), g.kind);
    if !sim.cluster.node(&node).is_some_and(|n| n.online) {
        return;
    }
    let p = kind.task_prefix();
    match h.request.as_str() {
        "started" if !running => {
            let upid = sim.start_task(&node, &format!("{p}start"), &vmid.to_string(), "root@pam", Some(vmid));
            start_worker(sim, &upid, vmid, false, true);
            let s = sid.to_string();
            let d = sim.timing.start + 0.5;
            sim.after(d, move |sim| {
                let up = sim.cluster.guests.get(&vmid).is_some_and(|g| g.is_running());
                if let Some(h) = sim.cluster.ha.get_mut(&s) {
                    h.crm_state = if up { "started" } else { "error" }.into();
                }
            });
        }
        "stopped" if running => {
            let upid = sim.start_task(&node, &format!("{p}shutdown"), &vmid.to_string(), "root@pam", Some(vmid));
            sim.task_log(&upid, "task started by HA resource agent");
            shutdown_worker(sim, &upid, vmid, None, true);
            let s = sid.to_string();
            let d = sim.timing.shutdown + 0.5;
            sim.after(d, move |sim| {
                if let Some(h) = sim.cluster.ha.get_mut(&s) {
                    h.crm_state = "stopped".into();
                }
            });
        }
        "started" => {
            if let Some(h) = sim.cluster.ha.get_mut(sid) {
                h.crm_state = "started".into();
            }
        }
        _ => {
            if let Some(h) = sim.cluster.ha.get_mut(sid) {
                h.crm_state = h.request.clone();
            }
        }
    }
}

/// `ha-manager migrate <sid> <target>`.
pub fn request_migrate(sim: &mut Sim, sid: &str, target: &str) {
    let Some(h) = sim.cluster.ha.get_mut(sid) else { return };
    h.crm_state = "migrate".into();
    h.target = Some(target.to_string());
    let (sid, target) = (sid.to_string(), target.to_string());
    let delay = sim.timing.crm_delay;
    sim.after(delay, move |sim| {
        let Some(vmid) = vmid_of(&sid) else { return };
        let Some(g) = sim.cluster.guests.get(&vmid) else { return };
        let (node, running, kind) = (g.node.clone(), g.is_running(), g.kind);
        let ip = sim.cluster.node(&target).map(|n| n.ip.clone()).unwrap_or_default();
        let wtype = if kind == crate::model::Kind::Qemu { "qmigrate" } else { "vzmigrate" };
        let upid = sim.start_task(&node, wtype, &vmid.to_string(), "root@pam", Some(vmid));
        sim.task_log(&upid, "task started by HA resource agent");
        let restart = running && kind == crate::model::Kind::Lxc;
        migrate_worker(sim, &upid, vmid, &target, &ip, running, restart, false);
        let d = if running { sim.timing.migrate_online } else { sim.timing.migrate_offline } + 2.0;
        sim.after(d, move |sim| {
            let running = sim.cluster.guests.get(&vmid).is_some_and(|g| g.is_running());
            if let Some(h) = sim.cluster.ha.get_mut(&sid) {
                h.target = None;
                h.crm_state = if running { "started" } else { "stopped" }.into();
            }
        });
    });
}

/// A node went away: its HA services are fenced, then recovered on another node of their group.
pub fn node_lost(sim: &mut Sim, node: &str) {
    if sim.cluster.ha_master.as_deref() == Some(node) {
        sim.cluster.ha_master = sim.cluster.nodes.iter().find(|n| n.online).map(|n| n.name.clone());
    }
    let sids: Vec<String> = sim
        .cluster
        .ha
        .values()
        .filter(|h| vmid_of(&h.sid).and_then(|v| sim.cluster.guests.get(&v)).is_some_and(|g| g.node == node))
        .map(|h| h.sid.clone())
        .collect();
    let (fence, recover) = (sim.timing.ha_fence, sim.timing.ha_recover);
    for sid in sids {
        let lost = node.to_string();
        let s1 = sid.clone();
        sim.after(fence, move |sim| {
            if sim.cluster.node(&lost).is_some_and(|n| !n.online)
                && let Some(h) = sim.cluster.ha.get_mut(&s1)
            {
                h.crm_state = "fence".into();
            }
        });
        let lost = node.to_string();
        sim.after(recover, move |sim| recover_service(sim, &sid, &lost));
    }
}

fn recover_service(sim: &mut Sim, sid: &str, lost: &str) {
    if sim.cluster.node(lost).is_none_or(|n| n.online) {
        return;
    }
    let Some(h) = sim.cluster.ha.get(sid).cloned() else { return };
    let Some(vmid) = vmid_of(sid) else { return };
    let members = h.group.as_ref().and_then(|g| sim.cluster.ha_groups.get(g)).cloned();
    let target = sim
        .cluster
        .nodes
        .iter()
        .filter(|n| n.online && !n.maintenance && n.name != lost)
        .find(|n| members.as_ref().is_none_or(|m| m.contains(&n.name)))
        .or_else(|| sim.cluster.nodes.iter().find(|n| n.online && !n.maintenance && n.name != lost))
        .map(|n| n.name.clone());
    let Some(target) = target else {
        if let Some(h) = sim.cluster.ha.get_mut(sid) {
            h.crm_state = "recovery".into();
        }
        return;
    };
    if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
        g.node = target;
    }
    if let Some(h) = sim.cluster.ha.get_mut(sid) {
        h.crm_state = "recovery".into();
    }
    if h.request == "started" {
        crm_apply(sim, sid);
    } else if let Some(h) = sim.cluster.ha.get_mut(sid) {
        h.crm_state = h.request.clone();
    }
}

pub fn status_current(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let c = &ctx.sim.cluster;
    let now = ctx.sim.now_i();
    let pve9 = ctx.sim.profile == crate::Profile::Pve9;
    let Some(first) = c.nodes.iter().find(|n| n.online) else {
        return Ok(Reply::data(json!([])));
    };
    let mut out = vec![json!({
        "id": "quorum", "type": "quorum", "node": first.name, "quorate": u8::from(c.quorate()),
        "status": if c.quorate() { "OK".to_string() } else { format!("No quorum on node '{}'!", first.name) },
    })];
    if c.ha.is_empty() {
        return Ok(Reply::data(Value::Array(out)));
    }
    if let Some(m) = &c.ha_master {
        out.push(json!({
            "id": "master", "type": "master", "node": m, "timestamp": now,
            "status": format!("{m} (active, {})", ctime(now)),
        }));
        if pve9 {
            out.push(json!({
                "id": "fencing", "type": "fencing", "node": m, "armed-state": "armed",
                "status": "armed (CRM watchdog active)",
            }));
        }
    }
    let mut nodes: Vec<&crate::model::Node> = c.nodes.iter().collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    for n in nodes {
        let active = c.ha.values().any(|h| {
            vmid_of(&h.sid).and_then(|v| c.guests.get(&v)).is_some_and(|g| g.node == n.name && h.request == "started")
        });
        let (state, wd, ts) = if !n.online {
            ("old timestamp - dead?", "watchdog released", now - 120)
        } else if n.maintenance {
            ("maintenance mode", "watchdog standby", now)
        } else if active {
            ("active", "watchdog active", now)
        } else {
            ("idle", "watchdog standby", now)
        };
        let status = if pve9 {
            format!("{} ({state}, {wd}, {})", n.name, ctime(ts))
        } else {
            format!("{} ({state}, {})", n.name, ctime(ts))
        };
        out.push(
            json!({"id": format!("lrm:{}", n.name), "type": "lrm", "node": n.name, "timestamp": ts, "status": status}),
        );
    }
    for h in c.ha.values() {
        let Some(g) = vmid_of(&h.sid).and_then(|v| c.guests.get(&v)) else { continue };
        let mut v = json!({
            "id": format!("service:{}", h.sid), "type": "service", "sid": h.sid, "node": g.node,
            "state": verbose_state(h), "crm_state": h.crm_state, "request_state": h.request,
            "status": format!("{} ({}, {})", h.sid, g.node, verbose_state(h)),
            "max_restart": h.max_restart, "max_relocate": h.max_relocate, "failback": u8::from(h.failback),
        });
        if pve9 {
            v["auto-rebalance"] = json!(0);
        }
        if let Some(gr) = &h.group {
            v["group"] = json!(gr);
        }
        if let Some(cm) = &h.comment {
            v["comment"] = json!(cm);
        }
        out.push(v);
    }
    Ok(Reply::data(Value::Array(out)))
}

pub fn manager_status(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let c = &ctx.sim.cluster;
    let now = ctx.sim.now_i();
    let mut services = serde_json::Map::new();
    for h in c.ha.values() {
        if let Some(g) = vmid_of(&h.sid).and_then(|v| c.guests.get(&v)) {
            services.insert(
                h.sid.clone(),
                json!({"node": g.node, "state": h.crm_state, "uid": format!("{:x}", h.sid.len() * 7919)}),
            );
        }
    }
    let mut node_status = serde_json::Map::new();
    let mut node_request = serde_json::Map::new();
    let mut lrm_status = serde_json::Map::new();
    for n in &c.nodes {
        let status = if !n.online {
            "unknown"
        } else if n.maintenance {
            "maintenance"
        } else {
            "online"
        };
        node_status.insert(n.name.clone(), json!(status));
        node_request.insert(n.name.clone(), if n.maintenance { json!({"maintenance": 1}) } else { json!({}) });
        let active = c.ha.values().any(|h| {
            vmid_of(&h.sid).and_then(|v| c.guests.get(&v)).is_some_and(|g| g.node == n.name && h.request == "started")
        });
        let (state, ts) = match (n.online, active && !n.maintenance) {
            (false, _) => ("lost_agent_lock", now - 120),
            (true, true) => ("active", now),
            (true, false) => ("wait_for_agent_lock", now),
        };
        let mode = if n.maintenance { "maintenance" } else { "active" };
        lrm_status.insert(n.name.clone(), json!({"mode": mode, "results": {}, "state": state, "timestamp": ts}));
    }
    Ok(Reply::data(json!({
        "quorum": {"node": c.nodes.iter().find(|n| n.online).map(|n| n.name.clone()), "quorate": if c.quorate() { "1" } else { "0" }},
        "manager_status": {
            "master_node": c.ha_master, "node_request": node_request, "node_status": node_status,
            "service_status": services, "timestamp": now,
        },
        "lrm_status": lrm_status,
    })))
}

pub fn resources(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let out: Vec<Value> = ctx
        .sim
        .cluster
        .ha
        .values()
        .map(|h| {
            let mut v = json!({"sid": h.sid, "type": h.sid.split(':').next(), "state": h.request, "digest": crate::auth::sha1_hex(h.sid.as_bytes())});
            if let Some(g) = &h.group {
                v["group"] = json!(g);
            }
            v
        })
        .collect();
    Ok(Reply::data(Value::Array(out)))
}
