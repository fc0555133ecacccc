//! Snapshot list, create, delete and rollback, following `AbstractConfig`'s order of checks.

use serde_json::{Value, json};

use super::Ctx;
use super::lifecycle::set_stopped;
use crate::model::{Kind, RunState, Snapshot};
use crate::wire::{ApiError, ApiResult, Reply};
use crate::worker::{self, Plan};

pub fn list(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let g = ctx.guest(kind)?;
    let mut out: Vec<Value> = g
        .snapshots
        .iter()
        .map(|s| {
            let mut v = json!({"name": s.name, "snaptime": s.snaptime, "description": s.description});
            if kind == Kind::Qemu {
                v["vmstate"] = json!(u8::from(s.vmstate));
            }
            if let Some(p) = &s.parent {
                v["parent"] = json!(p);
            }
            if let Some(st) = &s.snapstate {
                v["snapstate"] = json!(st);
            }
            v
        })
        .collect();
    let mut cur = json!({
        "name": "current", "description": "You are here!", "running": u8::from(g.is_running()), "digest": g.digest(),
    });
    if let Some(p) = &g.parent {
        cur["parent"] = json!(p);
    }
    out.push(cur);
    Ok(Reply::data(Value::Array(out)))
}

fn first_disk(g: &crate::model::Guest) -> (String, String) {
    for k in ["scsi0", "virtio0", "sata0", "rootfs"] {
        if let Some(v) = g.config.get(k) {
            let s = crate::schema::value_text(v);
            return (k.to_string(), s.split(',').next().unwrap_or("").to_string());
        }
    }
    ("scsi0".into(), String::new())
}

pub fn create(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let snapname = ctx.str("snapname");
    if snapname == "current" || snapname == "pending" {
        return Err(ApiError::server(format!("unable to use snapshot name '{snapname}' (reserved name)")));
    }
    let (vmid, disk) = {
        let g = ctx.guest(kind)?;
        (g.vmid, first_disk(g))
    };
    let vmstate = ctx.flag("vmstate");
    let description = ctx.opt_str("description").unwrap_or_default();
    let node = ctx.node();
    let wtype = format!("{}snapshot", kind.task_prefix());
    let upid = ctx.sim.start_task(&node, &wtype, &vmid.to_string(), &ctx.task_user(), Some(vmid));
    let dur = if vmstate { ctx.sim.timing.snapshot_vmstate } else { ctx.sim.timing.snapshot };
    worker::run(ctx.sim, &upid, vmid, move |sim, upid| {
        let now = sim.now;
        let g = sim.cluster.guests.get(&vmid).ok_or("guest vanished")?;
        let word = g.kind.word();
        if g.template {
            return Err("you can't take a snapshot if it's a template".into());
        }
        if let Some(l) = &g.lock {
            return Err(format!("{word} is locked ({l})"));
        }
        if g.snapshots.iter().any(|s| s.name == snapname) {
            return Err(format!("snapshot name '{snapname}' already used"));
        }
        let with_state = vmstate && g.is_running();
        let snap = Snapshot {
            name: snapname.clone(),
            snaptime: now as i64,
            vmstate: with_state,
            description,
            parent: g.parent.clone(),
            snapstate: Some("prepare".into()),
            config: g.config.clone(),
        };
        worker::hold_lock(sim, upid, vmid, "snapshot");
        let name2 = snapname.clone();
        sim.set_abort(upid, move |c| {
            if let Some(g) = c.guests.get_mut(&vmid) {
                g.snapshots.retain(|s| s.name != name2);
                g.lock = None;
            }
        });
        if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
            g.snapshots.push(snap);
        }
        let mut plan = Plan::new();
        if with_state {
            plan = plan
                .log(0.2, "saving VM state and RAM using storage 'local-lvm'")
                .log(dur * 0.6, "completed saving the VM state in 5s, saved 1.02 GiB");
        }
        let (drive, volid) = disk;
        let disk_name = volid.split(':').nth(1).unwrap_or("vm-disk").to_string();
        plan = plan
            .log(0.1, format!("snapshotting 'drive-{drive}' ({volid})"))
            .log(dur * 0.3, format!("  Logical volume \"snap_{disk_name}_{snapname}\" created."))
            .then(0.1, move |sim, _| {
                if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
                    if let Some(s) = g.snapshots.iter_mut().find(|s| s.name == snapname) {
                        s.snapstate = None;
                    }
                    g.parent = Some(snapname.clone());
                    g.lock = None;
                }
            });
        Ok(plan)
    });
    Ok(Reply::data(json!(upid)))
}

pub fn delete(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let snapname = ctx.str("snapname");
    let vmid = ctx.guest(kind)?.vmid;
    let force = ctx.flag("force");
    let node = ctx.node();
    let wtype = format!("{}delsnapshot", kind.task_prefix());
    let upid = ctx.sim.start_task(&node, &wtype, &vmid.to_string(), &ctx.task_user(), Some(vmid));
    let dur = ctx.sim.timing.delete_snapshot;
    worker::run(ctx.sim, &upid, vmid, move |sim, upid| {
        let g = sim.cluster.guests.get(&vmid).ok_or("guest vanished")?;
        if !g.snapshots.iter().any(|s| s.name == snapname) {
            return Err(format!("snapshot '{snapname}' does not exist"));
        }
        if let Some(l) = g.lock.as_ref().filter(|_| !force) {
            return Err(format!("{} is locked ({l})", g.kind.word()));
        }
        worker::hold_lock(sim, upid, vmid, "snapshot-delete");
        if let Some(s) =
            sim.cluster.guests.get_mut(&vmid).and_then(|g| g.snapshots.iter_mut().find(|s| s.name == snapname))
        {
            s.snapstate = Some("delete".into());
        }
        Ok(Plan::new().then(dur, move |sim, _| {
            if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
                let parent = g.snapshots.iter().find(|s| s.name == snapname).and_then(|s| s.parent.clone());
                g.snapshots.retain(|s| s.name != snapname);
                for s in &mut g.snapshots {
                    if s.parent.as_deref() == Some(snapname.as_str()) {
                        s.parent = parent.clone();
                    }
                }
                if g.parent.as_deref() == Some(snapname.as_str()) {
                    g.parent = parent;
                }
                g.lock = None;
            }
        }))
    });
    Ok(Reply::data(json!(upid)))
}

pub fn rollback(ctx: &mut Ctx<'_>, kind: Kind) -> ApiResult<Reply> {
    let snapname = ctx.str("snapname");
    let vmid = ctx.guest(kind)?.vmid;
    let start = ctx.flag("start");
    if start && !ctx.has(&format!("/vms/{vmid}"), "VM.PowerMgmt") {
        return Err(ApiError::perm(&format!("/vms/{vmid}"), &["VM.PowerMgmt"]));
    }
    let node = ctx.node();
    let wtype = format!("{}rollback", kind.task_prefix());
    let upid = ctx.sim.start_task(&node, &wtype, &vmid.to_string(), &ctx.task_user(), Some(vmid));
    let (stop_d, dur, start_d) = (ctx.sim.timing.stop, ctx.sim.timing.rollback, ctx.sim.timing.start);
    worker::run(ctx.sim, &upid, vmid, move |sim, upid| {
        let g = sim.cluster.guests.get(&vmid).ok_or("guest vanished")?;
        let snap =
            g.snapshots.iter().find(|s| s.name == snapname).ok_or(format!("snapshot '{snapname}' does not exist"))?;
        if let Some(st) = &snap.snapstate {
            return Err(format!("unable to rollback to incomplete snapshot (snapstate = {st})"));
        }
        if let Some(l) = &g.lock {
            return Err(format!("{} is locked ({l})", g.kind.word()));
        }
        let (vmstate, config, running) = (snap.vmstate, snap.config.clone(), g.is_running());
        worker::hold_lock(sim, upid, vmid, "rollback");
        let mut plan = Plan::new();
        if running {
            plan = plan.then(stop_d, move |sim, _| set_stopped(sim, vmid));
        }
        plan = plan.then(dur, move |sim, _| {
            if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
                g.config = config;
                g.parent = Some(snapname.clone());
                g.lock = None;
            }
        });
        if vmstate || start {
            plan = plan.then(start_d, move |sim, _| {
                let now = sim.now;
                if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
                    g.run = RunState::Running;
                    g.started_at = Some(now);
                    g.pid = Some(2000 + vmid);
                }
            });
        }
        Ok(plan)
    });
    Ok(Reply::data(json!(upid)))
}
