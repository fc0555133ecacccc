//! `/version`, `/cluster/status`, `/cluster/resources`, `/cluster/nextid`, `/cluster/backup`.

use serde_json::{Value, json};

use super::Ctx;
use crate::metrics;
use crate::model::{Guest, Node, Storage};
use crate::wire::{ApiError, ApiResult, Reply};

pub fn version(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let v = &ctx.sim.version;
    let release = v.rsplitn(2, '.').last().unwrap_or(v).to_string();
    Ok(Reply::data(json!({
        "version": v, "release": release, "repoid": "3d2ea6d9f51a4c07", "console": "xtermjs",
    })))
}

pub fn status(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let c = &ctx.sim.cluster;
    let mut out = vec![json!({
        "type": "cluster", "id": "cluster", "name": c.name, "nodes": c.nodes.len(),
        "quorate": u8::from(c.quorate()), "version": c.config_version,
    })];
    for (i, n) in c.nodes.iter().enumerate() {
        out.push(json!({
            "type": "node", "id": format!("node/{}", n.name), "name": n.name, "nodeid": n.nodeid,
            "ip": n.ip, "online": u8::from(n.online), "local": u8::from(i == 0), "level": n.level,
        }));
    }
    Ok(Reply::data(Value::Array(out)))
}

pub fn node_resource(n: &Node, now: f64) -> Value {
    if !n.online {
        return json!({
            "id": format!("node/{}", n.name), "type": "node", "node": n.name, "status": "offline",
            "maxcpu": n.maxcpu, "maxmem": n.maxmem, "maxdisk": n.maxdisk, "level": n.level,
        });
    }
    json!({
        "id": format!("node/{}", n.name), "type": "node", "node": n.name, "status": "online",
        "cpu": metrics::node_cpu(n, now), "maxcpu": n.maxcpu, "mem": metrics::node_mem(n, now),
        "maxmem": n.maxmem, "disk": n.rootfs_used, "maxdisk": n.maxdisk,
        "uptime": (now - n.booted_at).max(0.0) as u64, "level": n.level, "cgroup-mode": 2,
    })
}

pub fn guest_resource(g: &Guest, node_online: bool, hastate: Option<&str>, now: f64) -> Value {
    let running = node_online && g.is_running();
    let mut v = json!({
        "id": format!("{}/{}", g.kind.api(), g.vmid), "type": g.kind.api(), "vmid": g.vmid,
        "name": g.name, "node": g.node,
        "status": if !node_online { "unknown" } else { g.run.status() },
        "cpu": if running { metrics::guest_cpu(g, now) } else { 0.0 },
        "maxcpu": g.cpus, "mem": if running { metrics::guest_mem(g, now) } else { 0 },
        "maxmem": g.maxmem, "disk": if g.kind == crate::model::Kind::Lxc && running { g.disk_used } else { 0 },
        "maxdisk": g.maxdisk,
        "netin": if running { metrics::guest_counter(g, now, 0) } else { 0 },
        "netout": if running { metrics::guest_counter(g, now, 1) } else { 0 },
        "diskread": if running { metrics::guest_counter(g, now, 2) } else { 0 },
        "diskwrite": if running { metrics::guest_counter(g, now, 3) } else { 0 },
        "uptime": if running { metrics::guest_uptime(g, now) } else { 0 },
        "template": u8::from(g.template),
    });
    if !g.tags.is_empty() {
        v["tags"] = json!(g.tags.join(";"));
    }
    if let Some(l) = &g.lock {
        v["lock"] = json!(l);
    }
    if let Some(p) = &g.pool {
        v["pool"] = json!(p);
    }
    if let Some(h) = hastate {
        v["hastate"] = json!(h);
    }
    v
}

pub fn storage_resource(s: &Storage, node: &str, node_online: bool) -> Value {
    json!({
        "id": format!("storage/{node}/{}", s.id), "type": "storage", "storage": s.id, "node": node,
        "status": if node_online && s.enabled { "available" } else { "unknown" },
        "disk": s.used_on(node), "maxdisk": s.total, "content": s.content_str(),
        "plugintype": s.kind, "shared": u8::from(s.shared),
    })
}

pub fn resources(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let filter = ctx.opt_str("type");
    let want = |t: &str| filter.as_deref().is_none_or(|f| f == t);
    let sim = &*ctx.sim;
    let c = &sim.cluster;
    let now = sim.now;
    let privs = |path: &str| sim.access.privs(&ctx.who, path, c);
    let mut out = Vec::new();
    if want("vm") {
        for g in c.guests.values() {
            if !privs(&format!("/vms/{}", g.vmid)).contains("VM.Audit") {
                continue;
            }
            let online = c.node(&g.node).is_some_and(|n| n.online);
            let ha = c.ha_of(g).map(crate::api::ha::verbose_state);
            out.push(guest_resource(g, online, ha.as_deref(), now));
        }
    }
    if want("node") {
        for n in &c.nodes {
            if privs(&format!("/nodes/{}", n.name)).contains("Sys.Audit") {
                out.push(node_resource(n, now));
            }
        }
    }
    if want("storage") {
        for n in &c.nodes {
            for s in c.storages.iter().filter(|s| s.on_node(&n.name)) {
                let p = privs(&format!("/storage/{}", s.id));
                if p.contains("Datastore.Audit") || p.contains("Datastore.AllocateSpace") {
                    out.push(storage_resource(s, &n.name, n.online));
                }
            }
        }
    }
    if filter.is_none() {
        for pool in c.pools.keys() {
            if privs(&format!("/pool/{pool}")).contains("Pool.Audit") {
                out.push(json!({"id": format!("/pool/{pool}"), "type": "pool", "pool": pool}));
            }
        }
    }
    if want("sdn") {
        for n in c.nodes.iter().filter(|n| n.online) {
            if privs(&format!("/nodes/{}", n.name)).contains("Sys.Audit") {
                out.push(json!({
                    "id": format!("sdn/{}/localnetwork", n.name), "type": "sdn", "sdn": "localnetwork",
                    "node": n.name, "status": "ok",
                }));
            }
        }
    }
    Ok(Reply::data(Value::Array(out)))
}

pub fn nextid(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let c = &ctx.sim.cluster;
    if let Some(v) = ctx.opt_i64("vmid") {
        let v = v as u32;
        if c.guests.contains_key(&v) {
            return Err(ApiError::param("vmid", format!("VM {v} already exists")));
        }
        return Ok(Reply::data(json!(v.to_string())));
    }
    let next = (100..).find(|i| !c.guests.contains_key(i)).unwrap_or(100);
    Ok(Reply::data(json!(next.to_string())))
}

pub fn backup_jobs(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    Ok(Reply::data(Value::Array(ctx.sim.cluster.backup_jobs.clone())))
}

pub fn create_backup_job(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    ctx.root_only(&["tmpdir", "dumpdir", "script"])?;
    let storage = ctx.opt_str("storage");
    if let Some(s) = &storage
        && ctx.sim.cluster.storage(s).is_none()
    {
        return Err(ApiError::param("storage", format!("storage '{s}' does not exist")));
    }
    let id = ctx.opt_str("id").unwrap_or_else(|| {
        format!("backup-{:08x}-{:04x}", metrics::seed_of(&format!("{}{}", ctx.sim.now, ctx.params.len())) as u32, 0)
    });
    if ctx.sim.cluster.backup_jobs.iter().any(|j| j.get("id").and_then(Value::as_str) == Some(id.as_str())) {
        return Err(ApiError::server(format!("Job '{id}' already exists")));
    }
    let props = crate::schema::Schema::get()
        .find("POST", "/cluster/backup")
        .and_then(|m| m.endpoint.parameters.get("properties").cloned())
        .unwrap_or(Value::Null);
    let mut job = serde_json::Map::new();
    for (k, v) in &ctx.params {
        job.insert(k.clone(), job_value(k, v, &props[k.as_str()]));
    }
    job.insert("id".into(), json!(id));
    job.insert("type".into(), json!("vzdump"));
    job.entry("enabled").or_insert(json!(1));
    if job.contains_key("schedule") {
        let tomorrow = ctx.sim.now_i().div_euclid(86_400).saturating_add(1).saturating_mul(86_400);
        job.insert("next-run".into(), json!(tomorrow.saturating_add(3600)));
    }
    ctx.sim.cluster.backup_jobs.push(Value::Object(job));
    Ok(Reply::null())
}

/// A job option as `jobs.cfg` gives it back: booleans and integers as numbers, `prune-backups`
/// as an object of strings.
fn job_value(key: &str, v: &Value, prop: &Value) -> Value {
    let text = crate::schema::value_text(v);
    if key == "prune-backups" {
        let keep: serde_json::Map<String, Value> = text
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), json!(v.trim())))
            .collect();
        return Value::Object(keep);
    }
    match prop.get("type").and_then(Value::as_str) {
        Some("boolean") => crate::schema::parse_bool(&text).map_or_else(|| v.clone(), |b| json!(u8::from(b))),
        Some("integer") => text.trim_start_matches('+').parse::<i64>().map_or_else(|_| v.clone(), |n| json!(n)),
        _ => v.clone(),
    }
}
