//! Node storage list, status and content, and `vzdump` backups.

use serde_json::{Value, json};

use super::Ctx;
use super::lifecycle::set_stopped;
use crate::model::{Kind, RunState, Storage, Volume};
use crate::scenario::fmt_stamp;
use crate::sim::Sim;
use crate::tasks::{Exit, log_time};
use crate::wire::{ApiError, ApiResult, Reply};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn storage_row(s: &Storage, node: &str) -> Value {
    let used = s.used_on(node);
    json!({
        "storage": s.id, "type": s.kind, "content": s.content_str(), "active": 1, "enabled": u8::from(s.enabled),
        "shared": u8::from(s.shared), "total": s.total, "used": used, "avail": s.total.saturating_sub(used),
        "used_fraction": if s.total > 0 { used as f64 / s.total as f64 } else { 0.0 },
    })
}

fn may_see(ctx: &Ctx<'_>, id: &str) -> bool {
    let p = ctx.sim.access.privs(&ctx.who, &format!("/storage/{id}"), &ctx.sim.cluster);
    p.contains("Datastore.Audit") || p.contains("Datastore.AllocateSpace")
}

pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let node = ctx.node();
    let content = ctx.opt_str("content");
    let only = ctx.opt_str("storage");
    let out: Vec<Value> = ctx
        .sim
        .cluster
        .storages
        .iter()
        .filter(|s| s.on_node(&node))
        .filter(|s| only.as_deref().is_none_or(|o| o == s.id))
        .filter(|s| content.as_deref().is_none_or(|c| c.split(',').any(|c| s.content.iter().any(|x| x == c))))
        .filter(|s| may_see(ctx, &s.id))
        .map(|s| storage_row(s, &node))
        .collect();
    Ok(Reply::data(Value::Array(out)))
}

fn find_storage<'a>(ctx: &'a Ctx<'_>) -> ApiResult<&'a Storage> {
    let id = ctx.str("storage");
    let node = ctx.node();
    let s = ctx.sim.cluster.storage(&id).ok_or_else(|| ApiError::server(format!("storage '{id}' does not exist")))?;
    if !s.on_node(&node) {
        return Err(ApiError::server(format!("storage '{id}' is not available on node '{node}'")));
    }
    Ok(s)
}

pub fn status(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let s = find_storage(ctx)?;
    let mut row = storage_row(s, &ctx.node());
    if let Some(m) = row.as_object_mut() {
        m.remove("storage");
        m.remove("used_fraction");
    }
    Ok(Reply::data(row))
}

pub fn content(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let s = find_storage(ctx)?;
    let node = ctx.node();
    let want = ctx.opt_str("content");
    let vmid = ctx.opt_i64("vmid").map(|v| v as u32);
    let c = &ctx.sim.cluster;
    let mut out = Vec::new();
    // Guest disks live on the storage named in their config.
    for g in c.guests.values() {
        if vmid.is_some_and(|v| v != g.vmid) || (!s.shared && g.node != node) {
            continue;
        }
        for (k, v) in &g.config {
            let text = crate::schema::value_text(v);
            let Some(vol) = text.split(',').next().filter(|vol| vol.starts_with(&format!("{}:", s.id))) else {
                continue;
            };
            if !(k == "rootfs" || k.starts_with("scsi") || k.starts_with("virtio") || k.starts_with("sata")) {
                continue;
            }
            let ct = if g.kind == Kind::Lxc { "rootdir" } else { "images" };
            if want.as_deref().is_some_and(|w| w != ct) {
                continue;
            }
            out.push(json!({
                "volid": vol, "content": ct, "format": if s.kind == "nfs" { "qcow2" } else { "raw" },
                "size": g.maxdisk, "used": g.maxdisk / 3, "vmid": g.vmid, "ctime": g.snapshots.first().map_or(1_700_000_000, |x| x.snaptime),
            }));
        }
    }
    for v in c.volumes.iter().filter(|v| v.storage == s.id && (s.shared || v.node.as_deref() == Some(node.as_str()))) {
        if want.as_deref().is_some_and(|w| w != v.content) || vmid.is_some_and(|x| Some(x) != v.vmid) {
            continue;
        }
        let mut row =
            json!({"volid": v.volid, "content": v.content, "format": v.format, "size": v.size, "ctime": v.ctime});
        if let Some(id) = v.vmid {
            row["vmid"] = json!(id);
        }
        if let Some(n) = &v.notes {
            row["notes"] = json!(n);
        }
        if let Some(st) = &v.subtype {
            row["subtype"] = json!(st);
        }
        if v.protected {
            row["protected"] = json!(1);
        }
        out.push(row);
    }
    Ok(Reply::data(Value::Array(out)))
}

/// `POST /nodes/{node}/vzdump`: one worker that backs up the selected guests one after another.
pub fn vzdump(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    ctx.root_only(&["tmpdir", "dumpdir", "script", "job-id"])?;
    let node = ctx.node();
    let all = ctx.flag("all");
    let list = ctx.opt_str("vmid");
    if all && list.is_some() {
        return Err(ApiError::param("all", "option conflicts with option 'vmid'"));
    }
    let exclude: Vec<u32> =
        ctx.opt_str("exclude").unwrap_or_default().split(',').filter_map(|v| v.trim().parse().ok()).collect();
    let c = &ctx.sim.cluster;
    let vmids: Vec<u32> = if all {
        c.guests
            .values()
            .filter(|g| g.node == node && !g.template && !exclude.contains(&g.vmid))
            .map(|g| g.vmid)
            .collect()
    } else {
        let Some(list) = list else {
            return Err(ApiError::param("vmid", "property is missing and it is not optional"));
        };
        let mut v = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let id: u32 = part
                .parse()
                .map_err(|_| ApiError::param("vmid", format!("value '{part}' does not look like a valid VM ID")))?;
            if !c.guests.contains_key(&id) {
                return Err(ApiError::server(format!("unable to find VM {id}")));
            }
            v.push(id);
        }
        v
    };
    let storage_id = ctx.opt_str("storage").unwrap_or_else(|| "local".into());
    let st =
        c.storage(&storage_id).ok_or_else(|| ApiError::server(format!("storage '{storage_id}' does not exist")))?;
    if !st.content.iter().any(|x| x == "backup") {
        return Err(ApiError::server(format!("storage '{storage_id}' does not support backups")));
    }
    if !ctx.has(&format!("/storage/{storage_id}"), "Datastore.AllocateSpace") {
        return Err(ApiError::perm(&format!("/storage/{storage_id}"), &["Datastore.AllocateSpace"]));
    }
    for v in &vmids {
        if !ctx.has(&format!("/vms/{v}"), "VM.Backup") {
            return Err(ApiError::perm(&format!("/vms/{v}"), &["VM.Backup"]));
        }
    }
    let mode = ctx.opt_str("mode").unwrap_or_else(|| "snapshot".into());
    let compress = ctx.opt_str("compress").unwrap_or_else(|| "zstd".into());
    let notes = ctx.opt_str("notes-template");
    let protected = ctx.flag("protected");
    let local: Vec<u32> = vmids.iter().copied().filter(|v| c.guests.get(v).is_some_and(|g| g.node == node)).collect();
    let external: Vec<u32> = vmids.iter().copied().filter(|v| !local.contains(v)).collect();
    let id = if local.len() == 1 { local[0].to_string() } else { String::new() };
    let upid =
        ctx.sim.start_task(&node, "vzdump", &id, &ctx.task_user(), local.first().copied().filter(|_| local.len() == 1));
    let cmd = format!(
        "INFO: starting new backup job: vzdump {} --storage {storage_id} --mode {mode} --compress {compress} --node {node}",
        if all { "--all 1".to_string() } else { vmids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ") }
    );
    ctx.sim.task_log(&upid, cmd);
    if !external.is_empty() {
        let ext: Vec<String> = external.iter().map(u32::to_string).collect();
        ctx.sim.task_log(&upid, format!("INFO: skip external VMs: {}", ext.join(", ")));
    }
    let job = Job { upid: upid.clone(), storage: storage_id, mode, compress, notes, protected, node, errors: 0 };
    ctx.sim.task_step(&upid, 0.3, move |sim| backup_next(sim, job, local, 0));
    Ok(Reply::data(json!(upid)))
}

#[derive(Clone)]
struct Job {
    upid: String,
    storage: String,
    mode: String,
    compress: String,
    notes: Option<String>,
    protected: bool,
    node: String,
    errors: u32,
}

/// Back up guest `queue[i]`, then continue with the next one.
fn backup_next(sim: &mut Sim, mut job: Job, queue: Vec<u32>, i: usize) {
    let upid = job.upid.clone();
    let Some(&vmid) = queue.get(i) else {
        if job.errors == 0 {
            sim.task_log(&upid, "INFO: Backup job finished successfully");
            let exit = sim.injected_failure("vzdump", None).unwrap_or(Exit::Ok);
            sim.finish_task(&upid, exit);
        } else {
            sim.task_log(&upid, "INFO: Backup job finished with errors");
            sim.finish_task(&upid, Exit::Error("job errors".into()));
        }
        return;
    };
    let now = sim.now;
    let Some(g) = sim.cluster.guests.get(&vmid) else {
        return backup_next(sim, job, queue, i + 1);
    };
    let (kind, name, running, size, lock) = (g.kind, g.name.clone(), g.is_running(), g.maxdisk, g.lock.clone());
    sim.task_log(&upid, format!("INFO: Starting Backup of VM {vmid} ({})", kind.api()));
    sim.task_log(&upid, format!("INFO: Backup started at {}", log_time(now)));
    let word = kind.word();
    let injected = sim.faults.take_task_failure("vzdump", Some(vmid));
    let free = sim.cluster.storage(&job.storage).map(|s| s.total.saturating_sub(s.used_on(&job.node))).unwrap_or(0);
    let archive = (size as f64 * 0.18) as u64;
    let failure = if let Some(l) = lock {
        Some(format!("{word} is locked ({l})"))
    } else if archive > free {
        Some(format!("vma_queue_write: write error - No space left on device (storage '{}')", job.storage))
    } else {
        injected.filter(|m| m != "OK")
    };
    if let Some(err) = failure {
        sim.task_log(&upid, format!("ERROR: Backup of VM {vmid} failed - {err}"));
        sim.task_log(&upid, format!("INFO: Failed at {}", log_time(now)));
        job.errors += 1;
        let u = upid.clone();
        sim.task_step(&u, 0.5, move |sim| backup_next(sim, job, queue, i + 1));
        return;
    }
    let (prefix, ext) = match kind {
        Kind::Qemu => ("qemu", "vma"),
        Kind::Lxc => ("lxc", "tar"),
    };
    let ext = match job.compress.as_str() {
        "0" => ext.to_string(),
        "gzip" => format!("{ext}.gz"),
        "lzo" => format!("{ext}.lzo"),
        _ => format!("{ext}.zst"),
    };
    let stamp = fmt_stamp(now as i64);
    let volid = format!("{}:backup/vzdump-{prefix}-{vmid}-{stamp}.{ext}", job.storage);
    sim.task_log(&upid, format!("INFO: status = {}", if running { "running" } else { "stopped" }));
    sim.task_log(&upid, format!("INFO: {word} Name: {name}"));
    sim.task_log(&upid, format!("INFO: backup mode: {}", job.mode));
    sim.task_log(&upid, "INFO: ionice priority: 7");
    sim.task_log(&upid, format!("INFO: creating vzdump archive '{volid}'"));
    let dur = sim.timing.backup_overhead + size as f64 / sim.timing.backup_rate;
    if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
        g.lock = Some("backup".into());
    }
    sim.set_abort(&upid, move |c| {
        if let Some(g) = c.guests.get_mut(&vmid) {
            g.lock = None;
        }
    });
    let stop_mode = job.mode == "stop" && running;
    let suspend_mode = job.mode == "suspend" && running && kind == Kind::Qemu;
    if stop_mode {
        sim.task_log(&upid, format!("INFO: stopping virtual guest {vmid}"));
        set_stopped(sim, vmid);
    } else if suspend_mode && let Some(g) = sim.cluster.guests.get_mut(&vmid) {
        g.run = RunState::Paused;
    }
    let gib = size as f64 / GIB;
    for (k, pct) in [25u32, 50, 75, 100].into_iter().enumerate() {
        let u = upid.clone();
        let line = format!(
            "INFO: {pct:>3}% ({:.1} GiB of {gib:.1} GiB) in {}s, read: {:.1} MiB/s, write: {:.1} MiB/s",
            gib * pct as f64 / 100.0,
            (dur * pct as f64 / 100.0) as u64,
            sim.timing.backup_rate / 1048576.0,
            sim.timing.backup_rate / 1048576.0 * 0.2
        );
        sim.task_step(&upid, dur * (k as f64 + 1.0) / 4.0, move |sim| sim.task_log(&u, line));
    }
    let u = upid.clone();
    sim.task_step(&upid, dur + 0.1, move |sim| {
        let end = sim.now;
        sim.task_log(&u, format!("INFO: archive file size: {:.2}GB", archive as f64 / 1e9));
        let notes = job.notes.as_ref().map(|t| {
            t.replace("{{guestname}}", &name).replace("{{node}}", &job.node).replace("{{vmid}}", &vmid.to_string())
        });
        if notes.is_some() {
            sim.task_log(&u, "INFO: adding notes to backup");
        }
        let shared = sim.cluster.storage(&job.storage).is_some_and(|s| s.shared);
        sim.cluster.volumes.push(Volume {
            volid,
            storage: job.storage.clone(),
            node: (!shared).then(|| job.node.clone()),
            content: "backup".into(),
            format: ext,
            size: archive,
            ctime: end as i64,
            vmid: Some(vmid),
            notes,
            protected: job.protected,
            subtype: Some(kind.api().into()),
        });
        if let Some(s) = sim.cluster.storage_mut(&job.storage) {
            s.add_used(&job.node, archive as i64);
        }
        if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
            g.lock = None;
            if suspend_mode && g.run == RunState::Paused {
                g.run = RunState::Running;
            }
        }
        if stop_mode {
            sim.task_log(&u, "INFO: restarting vm");
            if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
                g.run = RunState::Running;
                g.started_at = Some(end);
                g.pid = Some(3000 + vmid);
            }
        }
        let d = (end - now) as u64;
        sim.task_log(
            &u,
            format!("INFO: Finished Backup of VM {vmid} ({:02}:{:02}:{:02})", d / 3600, (d / 60) % 60, d % 60),
        );
        sim.task_log(&u, format!("INFO: Backup finished at {}", log_time(end)));
        backup_next(sim, job, queue, i + 1);
    });
}
