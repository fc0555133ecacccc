//! Guest read endpoints: lists, `status/current`, config, RRD data and the guest agent.

use serde_json::{Value, json};

use super::Ctx;
use crate::Profile;
use crate::metrics;
use crate::model::{Guest, Kind, RunState};
use crate::wire::{ApiError, ApiResult, Reply};

pub use super::lifecycle::{action, migrate, migrate_check};

fn ha_json(ctx: &Ctx<'_>, g: &Guest) -> Value {
    match ctx.sim.cluster.ha_of(g) {
        Some(h) => {
            let mut v = json!({"managed": 1, "state": h.request});
            if let Some(gr) = &h.group {
                v["group"] = json!(gr);
            }
            v
        }
        None => json!({"managed": 0}),
    }
}

/// Fields shared by the list rows and `status/current`.
fn base_status(g: &Guest, now: f64, profile: Profile, legacy_string_vmid: bool) -> Value {
    let running = g.is_running();
    let mut v = json!({
        "vmid": if legacy_string_vmid { json!(g.vmid.to_string()) } else { json!(g.vmid) },
        "name": g.name, "status": g.run.status(), "cpus": g.cpus, "maxmem": g.maxmem,
        "maxdisk": g.maxdisk, "disk": if g.kind == Kind::Lxc && running { g.disk_used } else { 0 },
        "uptime": metrics::guest_uptime(g, now), "cpu": metrics::guest_cpu(g, now),
        "mem": metrics::guest_mem(g, now),
        "netin": metrics::guest_counter(g, now, 0), "netout": metrics::guest_counter(g, now, 1),
        "diskread": metrics::guest_counter(g, now, 2), "diskwrite": metrics::guest_counter(g, now, 3),
    });
    if let Some(pid) = g.pid.filter(|_| running) {
        v["pid"] = json!(pid);
    }
    if g.template {
        v["template"] = json!(1);
    }
    if let Some(l) = &g.lock {
        v["lock"] = json!(l);
    }
    if !g.tags.is_empty() {
        v["tags"] = json!(g.tags.join(";"));
    }
    match g.kind {
        Kind::Qemu if profile == Profile::Pve9 => {
            v["memhost"] = json!((metrics::guest_mem(g, now) as f64 * 0.8) as u64);
            if running {
                let cpu = metrics::guest_cpu(g, now);
                for k in [
                    "pressurecpusome",
                    "pressurecpufull",
                    "pressureiosome",
                    "pressureiofull",
                    "pressurememorysome",
                    "pressurememoryfull",
                ] {
                    v[k] = json!(if k.starts_with("pressurecpu") {
                        ((cpu - 0.5).max(0.0) * 40.0 * 100.0).round() / 100.0
                    } else {
                        0.0
                    });
                }
            }
        }
        Kind::Lxc => {
            v["type"] = json!("lxc");
            v["maxswap"] = json!(512u64 * 1024 * 1024);
            v["swap"] = json!(0);
        }
        _ => {}
    }
    v
}

/// `blockstat` of a running VM: QEMU's `query-blockstats` for every attached drive. The boot
/// disk carries the guest's disk counters; other drives (CD-ROM, EFI vars) only a few reads.
fn blockstat(g: &Guest, now: f64) -> Value {
    let drive = |k: &str| {
        ["ide", "sata", "scsi", "virtio", "efidisk", "tpmstate"]
            .iter()
            .any(|p| k.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())))
    };
    let up_ns = metrics::guest_uptime(g, now).saturating_mul(1_000_000_000);
    let mut boot_disk_seen = false;
    let mut out = serde_json::Map::new();
    for (k, v) in g.config.iter().filter(|(k, _)| drive(k)) {
        let text = crate::schema::value_text(v);
        let boot = !boot_disk_seen && !text.contains("media=cdrom") && !k.starts_with("efidisk");
        boot_disk_seen |= boot;
        let (rd_bytes, wr_bytes) =
            if boot { (metrics::guest_counter(g, now, 2), metrics::guest_counter(g, now, 3)) } else { (344_348, 0) };
        let (rd_ops, wr_ops) = (rd_bytes / 41_000 + 1, wr_bytes / 9_600);
        let (flush_ops, unmap_ops) = (wr_ops / 10, wr_ops / 330);
        out.insert(
            k.clone(),
            json!({
                "rd_bytes": rd_bytes, "wr_bytes": wr_bytes, "rd_operations": rd_ops, "wr_operations": wr_ops,
                "flush_operations": flush_ops, "unmap_operations": unmap_ops, "unmap_bytes": unmap_ops * 1_048_576,
                "rd_total_time_ns": rd_ops * 455_000, "wr_total_time_ns": wr_ops * 418_000,
                "flush_total_time_ns": flush_ops * 480_000, "unmap_total_time_ns": unmap_ops * 20_000,
                "rd_merged": 0, "wr_merged": 0, "unmap_merged": 0,
                "failed_rd_operations": 0, "failed_wr_operations": 0, "failed_flush_operations": 0,
                "failed_unmap_operations": 0, "invalid_rd_operations": 0, "invalid_wr_operations": 0,
                "invalid_flush_operations": 0, "invalid_unmap_operations": 0,
                "account_failed": true, "account_invalid": true,
                "idle_time_ns": if boot { up_ns % 5_000_000_000 } else { up_ns },
                "wr_highest_offset": wr_bytes.min(g.maxdisk), "timed_stats": [],
            }),
        );
    }
    Value::Object(out)
}

fn qmpstatus(g: &Guest) -> &'static str {
    match g.run {
        RunState::Running => "running",
        RunState::Paused => "paused",
        RunState::Stopped if g.hibernated => "suspended",
        RunState::Stopped => "stopped",
    }
}

pub fn list(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let node = ctx.node();
    let full = ctx.flag("full");
    let sim = &*ctx.sim;
    let legacy = sim.profile == Profile::Pve8 && kind == Kind::Lxc;
    let mut out = Vec::new();
    for g in sim.cluster.guests.values().filter(|g| g.node == node && g.kind == kind) {
        if !sim.access.has(&ctx.who, &format!("/vms/{}", g.vmid), "VM.Audit", &sim.cluster) {
            continue;
        }
        let mut v = base_status(g, sim.now, sim.profile, legacy);
        if full && kind == Kind::Qemu {
            v["qmpstatus"] = json!(qmpstatus(g));
            if g.is_running() {
                v["running-qemu"] = json!("10.0.2");
                v["running-machine"] = json!("pc-i440fx-10.0+pve0");
            }
        }
        out.push(v);
    }
    Ok(Reply::data(Value::Array(out)))
}

pub fn current(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let g = ctx.guest(kind)?;
    let now = ctx.sim.now;
    let mut v = base_status(g, now, ctx.sim.profile, false);
    v["ha"] = ha_json(ctx, g);
    if kind == Kind::Qemu {
        v["qmpstatus"] = json!(qmpstatus(g));
        if g.agent {
            v["agent"] = json!(1);
        }
        if g.is_running() {
            let mem = metrics::guest_mem(g, now);
            v["running-qemu"] = json!("10.0.2");
            v["running-machine"] = json!("pc-i440fx-10.0+pve0");
            v["balloon"] = json!(g.maxmem);
            v["balloon_min"] = json!(g.maxmem);
            v["freemem"] = json!(g.maxmem.saturating_sub(mem));
            v["shares"] = json!(1000);
            v["ballooninfo"] = json!({
                "actual": g.maxmem, "max_mem": g.maxmem, "total_mem": g.maxmem,
                "free_mem": g.maxmem.saturating_sub(mem), "mem_swapped_in": 0, "mem_swapped_out": 0,
                "major_page_faults": 1193, "minor_page_faults": 2_210_415, "last_update": now as i64,
            });
            v["blockstat"] = blockstat(g, now);
            v["nics"] = json!({
                format!("tap{}i0", g.vmid): {
                    "netin": metrics::guest_counter(g, now, 0), "netout": metrics::guest_counter(g, now, 1),
                }
            });
            v["proxmox-support"] = json!({
                "backup-max-workers": true, "pbs-dirty-bitmap": true, "pbs-dirty-bitmap-migration": true,
                "pbs-dirty-bitmap-savevm": true, "pbs-library-version": "1.5.2 (UNKNOWN)",
                "pbs-masterkey": true, "query-bitmap-info": true,
            });
        }
    }
    Ok(Reply::data(v))
}

pub fn config(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let g = ctx.guest(kind)?;
    let mut cfg = match ctx.opt_str("snapshot") {
        Some(name) => g
            .snapshots
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.config.clone())
            .ok_or_else(|| ApiError::server(format!("snapshot '{name}' does not exist")))?,
        None => g.config.clone(),
    };
    if ctx.opt_str("snapshot").is_none() {
        if let Some(l) = &g.lock {
            cfg.insert("lock".into(), json!(l));
        }
        if let Some(p) = &g.parent {
            cfg.insert("parent".into(), json!(p));
        }
    }
    let mut v: serde_json::Map<String, Value> = cfg.into_iter().collect();
    v.insert("digest".into(), json!(g.digest()));
    Ok(Reply::data(Value::Object(v)))
}

pub fn rrddata(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let g = ctx.guest(kind)?;
    let cf = ctx.opt_str("cf").unwrap_or_else(|| "AVERAGE".into());
    Ok(Reply::data(Value::Array(metrics::guest_rrd(g, &ctx.str("timeframe"), &cf, ctx.sim.now))))
}

pub fn agent_interfaces(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let g = ctx.guest(Kind::Qemu)?;
    if !g.is_running() {
        return Err(ApiError::server(format!("VM {} is not running", g.vmid)));
    }
    if !g.config.contains_key("agent") {
        return Err(ApiError::server("No QEMU guest agent configured"));
    }
    if !g.agent || g.run == RunState::Paused {
        return Err(ApiError::server("QEMU guest agent is not running"));
    }
    let mac = g.mac.to_lowercase();
    let mut addrs = vec![];
    if let Some(ip) = &g.ipv4 {
        addrs.push(json!({"ip-address": ip, "ip-address-type": "ipv4", "prefix": 24}));
    }
    let tail: Vec<&str> = mac.split(':').collect();
    addrs.push(json!({
        "ip-address": format!("fe80::be24:11ff:fe{}:{}{}", tail.get(3).unwrap_or(&"00"), tail.get(4).unwrap_or(&"00"), tail.get(5).unwrap_or(&"00")),
        "ip-address-type": "ipv6", "prefix": 64,
    }));
    let now = ctx.sim.now;
    Ok(Reply::data(json!({"result": [
        {"name": "lo", "hardware-address": "00:00:00:00:00:00",
         "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
                          {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128}],
         "statistics": {"rx-bytes": 1_048_576, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 12_000,
                        "tx-bytes": 1_048_576, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 12_000}},
        {"name": "ens18", "hardware-address": mac, "ip-addresses": addrs,
         "statistics": {"rx-bytes": metrics::guest_counter(g, now, 0), "rx-dropped": 0, "rx-errs": 0, "rx-packets": metrics::guest_counter(g, now, 0) / 900,
                        "tx-bytes": metrics::guest_counter(g, now, 1), "tx-dropped": 0, "tx-errs": 0, "tx-packets": metrics::guest_counter(g, now, 1) / 900}},
    ]})))
}

/// `POST /nodes/{node}/qemu|lxc`: the checks a create runs before it allocates anything. Creating
/// guests is not simulated; a create that passes them is answered 501 like any other
/// unimplemented call.
pub fn create(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let vmid = ctx.vmid();
    let path = format!("/vms/{vmid}");
    if !ctx.has(&path, "VM.Allocate") {
        return Err(ApiError::perm(&path, &["VM.Allocate"]));
    }
    if let Some(g) = ctx.sim.cluster.guests.get(&vmid) {
        let exists = format!("{} {vmid} already exists on node '{}'", g.kind.word(), g.node);
        return Err(ApiError::server(match kind {
            Kind::Qemu => format!("unable to create VM {vmid} - {exists}"),
            Kind::Lxc => exists,
        }));
    }
    Err(ApiError::not_implemented(&ctx.method, &ctx.path))
}
