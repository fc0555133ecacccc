//! Guest power actions and migration, with Proxmox's split between synchronous errors (HTTP
//! 500, no task) and in-task failures (UPID returned, task ends with the error).

use serde_json::{Value, json};

use super::{Ctx, ha};
use crate::model::{Kind, RunState};
use crate::sim::Sim;
use crate::tasks::log_time;
use crate::wire::{ApiError, ApiResult, Reply};
use crate::worker::{self, Plan};

const ROOT_ONLY_START: &[&str] = &[
    "skiplock",
    "migratedfrom",
    "stateuri",
    "migration_type",
    "migration_network",
    "targetstorage",
    "nets-host-mtu",
    "force-cpu",
];

fn set_running(sim: &mut Sim, vmid: u32) {
    let now = sim.now;
    if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
        g.run = RunState::Running;
        g.hibernated = false;
        g.started_at = Some(now);
        g.pid = Some(1000 + ((now as u64 * 7 + vmid as u64) % 4_000_000) as u32);
    }
}

pub(crate) fn set_stopped(sim: &mut Sim, vmid: u32) {
    if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
        g.run = RunState::Stopped;
        g.started_at = None;
        g.pid = None;
    }
}

/// The common in-task lock check (`VM is locked (backup)`).
fn lock_check(sim: &Sim, vmid: u32, skiplock: bool) -> Result<(), String> {
    match sim.cluster.guests.get(&vmid) {
        Some(g) => match &g.lock {
            Some(l) if !skiplock => Err(format!("{} is locked ({l})", g.kind.word())),
            _ => Ok(()),
        },
        None => Err(format!("guest {vmid} vanished")),
    }
}

/// Worker that starts a guest (`qmstart`/`vzstart`), also used by HA and rollback.
pub(crate) fn start_worker(sim: &mut Sim, upid: &str, vmid: u32, skiplock: bool, by_ha: bool) {
    if by_ha {
        sim.task_log(upid, "task started by HA resource agent");
    }
    let dur = sim.timing.start;
    worker::run(sim, upid, vmid, move |sim, _| {
        let g = sim.cluster.guests.get(&vmid).ok_or("guest vanished")?;
        let word = g.kind.word();
        if g.template {
            // qemu-server says "vm", pve-container says "CT".
            let what = if g.kind == Kind::Qemu { "vm" } else { "CT" };
            return Err(format!("you can't start a {what} if it's a template"));
        }
        let mut plan = Plan::new();
        match g.lock.as_deref() {
            Some("suspended") if g.kind == Kind::Qemu => {
                plan = plan.log(0.0, "Resuming suspended VM").then(0.0, move |sim, _| worker::release_lock(sim, vmid));
            }
            Some("backup") if g.kind == Kind::Qemu && g.run == RunState::Paused => {
                return Ok(Plan::new().then(0.2, move |sim, _| {
                    if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
                        g.run = RunState::Running;
                    }
                }));
            }
            Some(l) if !skiplock => return Err(format!("{word} is locked ({l})")),
            _ => {}
        }
        if g.is_running() {
            return Err(format!("{word} {vmid} already running"));
        }
        if let Some(msg) = sim.cluster.guests.get_mut(&vmid).and_then(|g| g.fail_next_start.take()) {
            return Err(msg);
        }
        Ok(plan.then(dur, move |sim, _| set_running(sim, vmid)))
    });
}

/// Worker that stops a guest hard (`qmstop`/`vzstop`).
pub(crate) fn stop_worker(sim: &mut Sim, upid: &str, vmid: u32, skiplock: bool, by_ha: bool) {
    if by_ha {
        sim.task_log(upid, "task started by HA resource agent");
    }
    let dur = sim.timing.stop;
    worker::run(sim, upid, vmid, move |sim, _| {
        let running = sim.cluster.guests.get(&vmid).is_some_and(|g| g.is_running());
        if !running {
            return Ok(Plan::new());
        }
        lock_check(sim, vmid, skiplock)?;
        Ok(Plan::new().then(dur, move |sim, _| set_stopped(sim, vmid)))
    });
}

/// Worker for an ACPI shutdown (`qmshutdown`/`vzshutdown`), honouring `timeout` and `forceStop`.
pub(crate) fn shutdown_worker(sim: &mut Sim, upid: &str, vmid: u32, timeout: Option<f64>, force: bool) {
    let dur = sim.timing.shutdown;
    let timeout = timeout.unwrap_or(sim.timing.shutdown_timeout);
    worker::run(sim, upid, vmid, move |sim, _| {
        let g = sim.cluster.guests.get(&vmid).ok_or("guest vanished")?;
        if !g.is_running() {
            return Ok(Plan::new());
        }
        let ignores = g.ignores_acpi;
        lock_check(sim, vmid, false)?;
        if !ignores {
            return Ok(Plan::new().then(dur.min(timeout), move |sim, _| set_stopped(sim, vmid)));
        }
        if force {
            return Ok(Plan::new()
                .log(timeout, "VM still running - terminating now with SIGTERM")
                .then(1.0, move |sim, _| set_stopped(sim, vmid)));
        }
        Ok(Plan::new().then(timeout, |sim, upid| {
            sim.finish_task(upid, crate::tasks::Exit::Error("VM quit/powerdown failed - got timeout".into()));
        }))
    });
}

/// An HA-managed guest: the API only files a request with the HA stack.
fn ha_request(
    ctx: &mut Ctx<'_>,
    wtype: &str,
    line: String,
    vmid: u32,
    then: impl FnOnce(&mut Sim) + Send + 'static,
) -> ApiResult<Reply> {
    let node = ctx.node();
    let upid = ctx.sim.start_task(&node, wtype, &vmid.to_string(), &ctx.task_user(), Some(vmid));
    let delay = ctx.sim.timing.ha_request;
    let u = upid.clone();
    ctx.sim.task_step(&upid, delay, move |sim| {
        sim.task_log(&u, line);
        sim.finish_task(&u, crate::tasks::Exit::Ok);
        then(sim);
    });
    Ok(Reply::data(json!(upid)))
}

pub fn action(ctx: &mut Ctx<'_>, kind: Kind, action: &str) -> ApiResult<Reply> {
    ctx.root_only(&["skiplock"])?;
    if action == "start" {
        ctx.root_only(ROOT_ONLY_START)?;
    }
    let (vmid, running, paused, hibernated, ha) = {
        let g = ctx.guest(kind)?;
        (
            g.vmid,
            g.is_running(),
            g.run == RunState::Paused,
            g.hibernated,
            ctx.sim.cluster.ha_of(g).map(|h| h.sid.clone()),
        )
    };
    let word = kind.word();
    let skiplock = ctx.flag("skiplock");
    let node = ctx.node();
    let user = ctx.task_user();
    let p = kind.task_prefix();
    let fork = |ctx: &mut Ctx<'_>, t: &str| {
        ctx.sim.start_task(&node, &format!("{p}{t}"), &vmid.to_string(), &user, Some(vmid))
    };

    // Synchronous checks (no task is created when they fail).
    match (kind, action) {
        (Kind::Lxc, "start") if running => return Err(ApiError::server(format!("CT {vmid} already running"))),
        (Kind::Lxc, "stop" | "shutdown" | "suspend") if !running => {
            return Err(ApiError::server(format!("CT {vmid} not running")));
        }
        (Kind::Lxc, "reboot") if !running => return Err(ApiError::server(format!("VM {vmid} not running"))),
        (Kind::Lxc, "resume") if !running => return Err(ApiError::server(format!("CT {vmid} not running"))),
        (Kind::Qemu, "shutdown") if paused && !ctx.flag("forceStop") => {
            return Err(ApiError::server("VM is paused - cannot shutdown"));
        }
        (Kind::Qemu, "reboot") if paused => return Err(ApiError::server("VM is paused - cannot shutdown")),
        (Kind::Qemu, "reboot" | "reset" | "suspend") if !running => {
            return Err(ApiError::server(format!("VM {vmid} not running")));
        }
        (Kind::Qemu, "resume") if !running && !hibernated => {
            return Err(ApiError::server(format!("VM {vmid} not running")));
        }
        (Kind::Qemu, "suspend") if ctx.flag("todisk") && ha.is_some() => {
            return Err(ApiError::server("Cannot suspend HA managed VM to disk"));
        }
        (_, "shutdown") if ha.is_some() && ctx.params.contains_key("overrule-shutdown") => {
            return Err(ApiError::param("overrule-shutdown", "not supported for HA managed guests"));
        }
        _ => {}
    }

    if let Some(sid) = ha {
        match action {
            "start" => {
                return ha_request(
                    ctx,
                    "hastart",
                    format!("Requesting HA start for {word} {vmid}"),
                    vmid,
                    move |sim| ha::request_state(sim, &sid, "started"),
                );
            }
            "stop" | "shutdown" => {
                return ha_request(ctx, "hastop", format!("Requesting HA stop for {word} {vmid}"), vmid, move |sim| {
                    ha::request_state(sim, &sid, "stopped")
                });
            }
            _ => {}
        }
    }

    let upid = match action {
        "start" => {
            let upid = fork(ctx, "start");
            start_worker(ctx.sim, &upid, vmid, skiplock, false);
            upid
        }
        "stop" => {
            let upid = fork(ctx, "stop");
            stop_worker(ctx.sim, &upid, vmid, skiplock, false);
            upid
        }
        "shutdown" => {
            let upid = fork(ctx, "shutdown");
            let timeout = ctx.opt_i64("timeout").map(|t| t as f64);
            shutdown_worker(ctx.sim, &upid, vmid, timeout, ctx.flag("forceStop"));
            upid
        }
        "reboot" => {
            let upid = fork(ctx, "reboot");
            let (down, up) = (ctx.sim.timing.shutdown, ctx.sim.timing.start);
            worker::run(ctx.sim, &upid, vmid, move |sim, _| {
                lock_check(sim, vmid, false)?;
                Ok(Plan::new()
                    .then(down, move |sim, _| set_stopped(sim, vmid))
                    .then(up, move |sim, _| set_running(sim, vmid)))
            });
            upid
        }
        "reset" => {
            let upid = fork(ctx, "reset");
            let d = ctx.sim.timing.reset;
            worker::run(ctx.sim, &upid, vmid, move |sim, _| {
                lock_check(sim, vmid, skiplock)?;
                Ok(Plan::new().then(d, move |sim, _| set_running(sim, vmid)))
            });
            upid
        }
        "suspend" => {
            let todisk = ctx.flag("todisk") && kind == Kind::Qemu;
            let upid = fork(
                ctx,
                if todisk {
                    "suspend"
                } else if kind == Kind::Qemu {
                    "pause"
                } else {
                    "suspend"
                },
            );
            let d = ctx.sim.timing.suspend;
            worker::run(ctx.sim, &upid, vmid, move |sim, upid| {
                lock_check(sim, vmid, skiplock)?;
                if todisk {
                    worker::hold_lock(sim, upid, vmid, "suspending");
                    return Ok(Plan::new().log(0.0, "suspend vm to disk").then(d * 4.0, move |sim, _| {
                        set_stopped(sim, vmid);
                        if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
                            g.hibernated = true;
                            g.lock = Some("suspended".into());
                        }
                    }));
                }
                Ok(Plan::new().then(d, move |sim, _| {
                    if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
                        g.run = RunState::Paused;
                    }
                }))
            });
            upid
        }
        "resume" => {
            if hibernated {
                let upid = fork(ctx, "start");
                start_worker(ctx.sim, &upid, vmid, skiplock, false);
                upid
            } else {
                let upid = fork(ctx, "resume");
                let d = ctx.sim.timing.resume;
                worker::run(ctx.sim, &upid, vmid, move |sim, _| {
                    if sim.cluster.guests.get(&vmid).is_some_and(|g| g.kind == Kind::Qemu) {
                        lock_check(sim, vmid, skiplock)?;
                    }
                    Ok(Plan::new().then(d, move |sim, _| {
                        if let Some(g) = sim.cluster.guests.get_mut(&vmid)
                            && g.run == RunState::Paused
                        {
                            g.run = RunState::Running;
                        }
                    }))
                });
                upid
            }
        }
        other => return Err(ApiError::not_implemented("POST", &format!("/status/{other}"))),
    };
    Ok(Reply::data(json!(upid)))
}

/// Disks of a guest as (config key, storage id).
fn disks(g: &crate::model::Guest) -> Vec<(String, String)> {
    g.config
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k == "rootfs"
                || ["scsi", "virtio", "sata", "ide", "efidisk", "tpmstate", "mp"]
                    .iter()
                    .any(|p| k.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())))
        })
        .filter_map(|(k, v)| {
            let s = crate::schema::value_text(v);
            if s.contains("media=cdrom") || s.starts_with("none") {
                return None;
            }
            s.split(':').next().map(|st| (k.clone(), st.to_string()))
        })
        .collect()
}

pub fn migrate_check(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let g = ctx.guest(kind)?;
    let c = &ctx.sim.cluster;
    let local_disks: Vec<Value> = disks(g)
        .into_iter()
        .filter(|(_, st)| c.storage(st).is_some_and(|s| !s.shared))
        .map(|(k, st)| json!({"volid": format!("{st}:vm-{}-disk-0", g.vmid), "drivename": k, "size": g.maxdisk, "is_attached": 1}))
        .collect();
    let mut allowed = vec![];
    let mut not_allowed = serde_json::Map::new();
    for n in c.nodes.iter().filter(|n| n.name != g.node) {
        let missing: Vec<String> = disks(g)
            .into_iter()
            .map(|(_, st)| st)
            .filter(|st| c.storage(st).is_some_and(|s| !s.on_node(&n.name)))
            .collect();
        if !n.online {
            not_allowed.insert(n.name.clone(), json!({"unavailable_storages": [], "offline": 1}));
        } else if missing.is_empty() {
            allowed.push(json!(n.name));
        } else {
            not_allowed.insert(n.name.clone(), json!({"unavailable_storages": missing}));
        }
    }
    let mut v = json!({
        "running": u8::from(g.is_running()), "allowed_nodes": allowed, "not_allowed_nodes": not_allowed,
        "local_resources": [], "mapped-resources": [], "mapped-resource-info": {},
    });
    if kind == Kind::Qemu {
        v["local_disks"] = json!(local_disks);
        v["has-dbus-vmstate"] = json!(0);
    }
    Ok(Reply::data(v))
}

pub fn migrate(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let node = ctx.node();
    let target = ctx.str("target");
    if target == node {
        return Err(ApiError::param("target", "target is local node."));
    }
    let tnode =
        ctx.sim.cluster.node(&target).ok_or_else(|| ApiError::server(format!("no such cluster node '{target}'")))?;
    if !tnode.online {
        return Err(ApiError::server(format!("target node '{target}' is not online")));
    }
    let target_ip = tnode.ip.clone();
    let online = ctx.flag("online");
    let restart = kind == Kind::Lxc && ctx.flag("restart");
    let (vmid, running, lock, ha, local_disks, missing) = {
        let g = ctx.guest(kind)?;
        let c = &ctx.sim.cluster;
        let local: Vec<String> =
            disks(g).into_iter().filter(|(_, st)| c.storage(st).is_some_and(|s| !s.shared)).map(|(_, st)| st).collect();
        let missing: Vec<String> = disks(g)
            .into_iter()
            .map(|(_, st)| st)
            .filter(|st| c.storage(st).is_some_and(|s| !s.on_node(&target)))
            .collect();
        (g.vmid, g.is_running(), g.lock.clone(), c.ha_of(g).map(|h| h.sid.clone()), local, missing)
    };
    if let Some(l) = lock {
        return Err(ApiError::server(format!("{} is locked ({l})", kind.word())));
    }
    if running && !online && !restart {
        return Err(ApiError::server(match kind {
            Kind::Qemu => "can't migrate running VM without --online".to_string(),
            Kind::Lxc => "can't migrate running container without --online or --restart".to_string(),
        }));
    }
    if let Some(st) = missing.first() {
        return Err(ApiError::server(format!("storage '{st}' is not available on node '{target}'")));
    }
    if kind == Kind::Qemu && running && online && !local_disks.is_empty() && !ctx.flag("with-local-disks") {
        return Err(ApiError::server("can't live migrate attached local disks without with-local-disks option"));
    }
    if let Some(sid) = ha {
        let t = target.clone();
        return ha_request(
            ctx,
            "hamigrate",
            format!("Requesting HA migration for {} {vmid} to node {target}", kind.word()),
            vmid,
            move |sim| ha::request_migrate(sim, &sid, &t),
        );
    }
    let wtype = match kind {
        Kind::Qemu => "qmigrate",
        Kind::Lxc => "vzmigrate",
    };
    let upid = ctx.sim.start_task(&node, wtype, &vmid.to_string(), &ctx.task_user(), Some(vmid));
    migrate_worker(
        ctx.sim,
        &upid,
        vmid,
        &target,
        &target_ip,
        running && (online || restart),
        restart,
        online && !running,
    );
    Ok(Reply::data(json!(upid)))
}

/// The migration worker, shared with the HA stack.
#[allow(clippy::too_many_arguments)]
pub(crate) fn migrate_worker(
    sim: &mut Sim,
    upid: &str,
    vmid: u32,
    target: &str,
    ip: &str,
    live: bool,
    restart: bool,
    offline_fallback: bool,
) {
    let dur = if live && !restart { sim.timing.migrate_online } else { sim.timing.migrate_offline };
    let (target, ip) = (target.to_string(), ip.to_string());
    let started = sim.now;
    worker::run(sim, upid, vmid, move |sim, upid| {
        let now = sim.now;
        let word = sim.cluster.guests.get(&vmid).map(|g| g.kind.word()).unwrap_or("VM");
        lock_check(sim, vmid, false)?;
        worker::hold_lock(sim, upid, vmid, "migrate");
        let mut plan = Plan::new();
        if offline_fallback {
            plan = plan.log(0.0, format!("{} {word} isn't running. Doing offline migration instead.", log_time(now)));
        }
        plan =
            plan.log(0.0, format!("{} starting migration of {word} {vmid} to node '{target}' ({ip})", log_time(now)));
        if restart {
            plan = plan
                .log(0.0, format!("{} shutdown CT {vmid}", log_time(now)))
                .then(1.0, move |sim, _| set_stopped(sim, vmid));
        }
        if live && !restart {
            plan = plan
                .log(1.0, format!("{} starting VM {vmid} on remote node '{target}'", log_time(now + 1.0)))
                .log(
                    2.0,
                    format!("{} start migrate command to unix:/run/qemu-server/{vmid}.migrate", log_time(now + 3.0)),
                )
                .log(
                    dur * 0.5,
                    format!(
                        "{} migration active, transferred 1.2 GiB of 4.0 GiB VM-state",
                        log_time(now + 3.0 + dur * 0.5)
                    ),
                );
        }
        let t2 = target.clone();
        // A live migration already spent 3 s + dur/2 in the steps above.
        let rest = if live && !restart { (dur * 0.5 - 3.0).max(0.5) } else { dur };
        plan = plan.then(rest, move |sim, upid| {
            if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
                g.node = t2.clone();
            }
            worker::release_lock(sim, vmid);
            let d = sim.now - started;
            let line = format!(
                "{} migration finished successfully (duration {:02}:{:02}:{:02})",
                log_time(sim.now),
                d as u64 / 3600,
                (d as u64 / 60) % 60,
                d as u64 % 60
            );
            sim.task_log(upid, line);
        });
        if restart {
            plan = plan.then(1.0, move |sim, _| set_running(sim, vmid));
        }
        Ok(plan)
    });
}
